"""The one pass over a history: it replays the facts every rule needs (allocations, each
thread's pointers, which allocation owns each slot's counter, the trees, the folio mappings, the
rcuref operation each thread has in flight) and hands each event to the rules it concerns, in a
fixed order, so that the first violation found is the same whatever the rules' layout.

Attribution (DESIGN.md section 5).  Plain accesses (read, write, use, atomics for memory safety,
free) belong to the allocation the thread's pointer refers to: the allocation that was in the slot
at the thread's latest pointer acquisition of it (`alloc`, `lookup`, `mapping_load`).  An rcuref
operation changes the *counter stored in the slot*, so for linearizability and for the holders it
belongs to the allocation whose counter the slot held when the operation's first atomic ran: the
latest allocation of the slot whose `init` store had happened.  Under SLAB_TYPESAFE_BY_RCU a
reader holding a stale pointer legitimately pins the *new* occupant with a successful get (and
must then revalidate); between the new occupant's `kmem_cache_alloc` and its `vma_rcuref_init`
the counter still belongs to the dead previous allocation, so a get that succeeds there is
reported against that dead allocation.
"""

from __future__ import annotations

from typing import Final

from .debugchecks import DebugChecks
from .invariants import check_vmas
from .kinds import (
    K_READ, K_WRITE, K_USE, K_ATOMIC, K_REF_CALL, K_REF_RET, K_OP_END, K_LOCK, K_UNLOCK, K_RCU_LOCK,
    K_PREEMPT_OFF, K_RCU_UNLOCK, K_PREEMPT_ON, K_MAPPING_STORE, K_MAPPING_LOAD, K_ALLOC, K_LOOKUP,
    K_TREE_INSERT, K_TREE_UPDATE, K_FREE, K_FENCE, K_TREE_REMOVE, K_WARN, K_RECLAIM, K_PANIC, K_RMAP_LOCK,
    K_RMAP_UNLOCK, NO_KIND, SLOTS, THREAD_INDICES, bound)
from .lifetime import Lifetime
from .linearizability import Linearizability
from .ordering import HappensBefore
from .rcu import ReadSideSections
from .rmaplock import RmapLock
from .spec import KERNEL_NAME, NO_WARNING, SAT, spec_for, state_from_counter
from .violation import Violation, thread_name

_FREE: Final = bytes((K_FREE,))
# (called unbound: the compiled build looks a method up by name on its object at every call)
_RFIND: Final = bytes.rfind


def last_free(kinds: bytes) -> int:
    """The index of the history's last free, -1 without one (`kinds`: the history's kind codes):
    ordering judges only at a free, so its clocks are kept up to the last one and not past it."""
    return _RFIND(kinds, _FREE)


class Allocation:
    """One object: a (slot, generation) the slab handed out.  A History keeps the ones it made
    and hands them out again in later histories (`renew`), as it keeps its containers."""

    __slots__ = ("aid", "slot", "gen", "alloc_idx", "allocer", "before", "free", "freer", "reclaim",
                 "start", "end", "pgoff", "ranges", "trees", "init", "preset", "root")

    def __init__(self, aid: int, slot: int, gen: int, idx: int, t: int):
        self.aid = aid
        # the events that set its range fields (a write of one, a tree insertion or update), in
        # event order: a use rebuilds the ranges from them (a use is rare, these events are not)
        self.ranges: list[int] = []
        self.renew(slot, gen, idx, t)

    def renew(self, slot: int, gen: int, idx: int, t: int) -> None:
        """Every field but `aid` as a new allocation's (tests/test_oracle.py compares one renewed
        with one built)."""
        self.slot = slot
        self.gen = gen
        self.alloc_idx = idx
        self.allocer = t
        self.before = -1          # the slot's allocation before it (-1: none)
        self.free = -1            # free event index
        self.freer: int | None = None
        self.reclaim = -1         # reclaim event index (deferred slab)
        self.start: int | None = None  # vm_start, vm_end, vm_pgoff (None: never set)
        self.end: int | None = None
        self.pgoff: int | None = None
        self.ranges.clear()
        self.trees = 0            # bitmask of the mms whose tree holds it
        self.init: int | None = None  # initial spec state (None: never initialised)
        self.preset = 0           # external holders preset by setup (-1: unknown, saturated)
        self.root: int | None = None  # mapping=root: the allocation of its root (None: itself)


class InFlight:
    """An rcuref operation a thread has in flight: where it was called, on which slot, which
    function; the allocation whose counter its first atomic acted on (None: no atomic yet) and the
    warnings it raised so far.  A native class, so that the compiled build reads its fields typed;
    one per thread, started again at each of its calls (a thread has one operation in flight at a
    time, and nothing keeps a finished one)."""

    __slots__ = ("call", "slot", "fn", "aid", "warns")

    def __init__(self) -> None:
        self.call = -1
        self.slot = -1
        self.fn = ""
        self.aid: int | None = None
        self.warns: list[str] | None = None

    def start(self, call: int, slot: int, fn: str) -> None:
        self.call = call
        self.slot = slot
        self.fn = fn
        self.aid = None
        self.warns = None


class History:
    """The pass and the facts it keeps, for one configuration: `start` empties them (and the
    rules' state) for the next history, so that a caller judging many histories of one
    configuration (`DistinctHistories`) builds the containers once, not for every history."""

    def __init__(self, config: dict[str, str]):
        self.on = config.get("vma_ref", "on") == "on"
        self.deferred = config.get("slab", "typesafe") == "deferred"
        self.debug = config.get("debug_vm", "on") == "on"
        self.root_policy = config.get("mapping", "repoint") == "root"
        self.spec = spec_for(config)
        self.get_algo = config.get("get", "rcuref")
        # An inc-not-zero get takes effect at its last access (the compare-exchange that succeeds,
        # or the load that finds no reference to take): a slot recycled between its load and its
        # compare-exchange makes it a get on the slot's new object.
        self.cas_get = self.get_algo == "inc_not_zero"
        nthreads = THREAD_INDICES
        # Everything below is per history: built empty here, emptied by `start`.
        self.events: list[tuple] = []
        self.kinds = b""  # one code per event (kinds.py)
        # Ordering and memory safety judge only at a free (and at what follows one: a reclaim, the
        # slot's next allocation, an access to freed memory); without a free in the history their
        # clocks and read-side sections are never consulted, so they are not kept.  What the clocks
        # decide is only ever read at a free, so they are kept up to the last one, not past it.
        self.last_free = -1
        self.frees = False
        self.allocs: list[Allocation] = []
        # every Allocation this History made, by aid: a history's allocs are the first of them,
        # renewed (kept from one history to the next, as `ops_of` is)
        self.made: list[Allocation] = []
        # Per slot (and per page), lists indexed by it: a probe of a list where a dictionary cost
        # a hash and a lookup; -1 for none.  Built at full size (kinds.SLOTS), so that a history
        # neither grows them nor frees them: `start` sets back only the entries of the slots
        # below `nslots` (the history's allocations', `grow`) and the pages below `npages`.
        none = [-1] * SLOTS
        self.nslots = 0
        self.npages = 0
        # per thread index, by slot: its pointer's allocation
        self.ptr: list[list[int]] = [none[:] for _ in range(nthreads)]
        self.open_op: list[InFlight | None] = [None] * nthreads  # per thread index
        # per thread index: its InFlight, once it has one.  Kept from one history to the next:
        # `InFlight.start` sets every field at each call, and only `open_op` says one is in flight.
        self.ops_of: list[InFlight | None] = self.open_op[:]
        self.slot_cur: list[int] = none[:]    # by slot: its latest allocation
        self.slot_owner: list[int] = none[:]  # by slot: the allocation whose counter the slot holds
        # by mm (mms 0 and 1 as built, another added at its first event, `tree`): its tree, by
        # slot the allocation it holds
        self.trees: list[list[int]] = [none[:], none[:]]
        # by folio page: the allocation its mapping names (-1: none, or never stored), and the
        # index of that store
        self.mapped: list[int] = none[:]
        self.mapped_at: list[int] = none[:]
        self.mmap_held = [0] * nthreads  # per thread index: mmap_lock acquisitions held (rule 10 reads it)
        self.lin = Linearizability(self)
        self.life = Lifetime(self)
        self.rcu = ReadSideSections(self, nthreads)
        self.hb = HappensBefore(self, nthreads)
        self.debug_checks = DebugChecks(config)
        self.rmap_lock = RmapLock(config, self.mmap_held)

    def start(self, events: list[tuple], kinds: bytes) -> None:
        """Make this the History of `events`, whose kind codes are `kinds` (kinds.py): every
        per-history fact, here and in the rules, back to what `__init__` builds
        (tests/test_oracle.py compares a started History with a new one)."""
        self.events = events
        self.kinds = kinds
        self.last_free = last_free(kinds)
        self.frees = self.last_free >= 0
        self.allocs.clear()
        ptr = self.ptr
        opn = self.open_op
        held = self.mmap_held
        n = self.nslots
        for j in range(THREAD_INDICES):
            row = ptr[j]
            for s in range(n):
                row[s] = -1
            opn[j] = None
            held[j] = 0
        cur = self.slot_cur
        owner = self.slot_owner
        trees = self.trees
        tr0 = trees[0]
        tr1 = trees[1]
        for s in range(n):
            cur[s] = -1
            owner[s] = -1
            tr0[s] = -1
            tr1[s] = -1
        if len(trees) > 2:  # the trees of mms 0 and 1 only, as built
            del trees[2:]
        mapped = self.mapped
        mapped_at = self.mapped_at
        for p in range(self.npages):
            mapped[p] = -1
            mapped_at[p] = -1
        self.nslots = 0
        self.npages = 0
        self.lin.reset()
        self.life.reset()
        self.rcu.reset()
        self.hb.reset()
        self.debug_checks.reset(events)
        self.rmap_lock.reset(events)

    def close(self) -> None:
        """Drop the rules' references back to the history: without the cycle, a judged history's
        state is freed at once instead of waiting for (and feeding) the cyclic garbage collector."""
        del self.lin.h, self.life.h, self.rcu.h, self.hb.h

    def an(self, aid: int) -> str:
        a = self.allocs[aid]
        return f"VMA slot {a.slot} gen {a.gen}"

    def viol(self, kind: str, msg: str, idx: int) -> Violation:
        return Violation(kind, msg, idx, self.events)

    def root_field(self, write: bool, a, t, value, idx) -> None:
        """`mapping=root`: a VMA's root and the reference it holds on it.  Writing a root into a
        VMA turns the writer's reference on the root into the VMA's own (the split's pin); the
        thread that reads the root of a VMA it has released inherits that pin, to drop it.  Reading
        a root is how a thread comes by the root's pointer."""
        r = self.cur(value - 1) if value else -1
        root = r if r >= 0 else None
        if root is not None:
            # the root's pointer: the pin keeps the slot's current object the root
            self.ptr[t + 2][value - 1] = root
        if write:
            a.root = root
            if root is not None:
                self.life.pinned(root, a.aid, t, idx)
        elif root is not None and self.life.released_by(a.aid, t):
            self.life.unpinned(root, a.aid, t, idx)

    def tree(self, mm: int) -> list[int]:
        """mm's tree (by slot, the allocation it holds; -1: none), made at its mm's first event."""
        trees = self.trees
        if mm >= len(trees) or mm < 0:
            bound(mm, "mm")
            while len(trees) <= mm:
                trees.append([-1] * SLOTS)
        return trees[mm]

    def grow(self, slot: int) -> None:
        """`slot` among the history's slots (below `nslots`), at its allocation."""
        if slot < self.nslots and slot >= 0:
            return
        bound(slot, "VMA slot")
        self.nslots = slot + 1

    def find(self, slot: int, gen: int) -> Allocation | None:
        """The allocation (slot, gen), if the slab handed it out: a walk back through the slot's
        occupants from its latest (a generation is allocated once: a second is a double free)."""
        aid = self.cur(slot)
        while aid >= 0:
            a = self.allocs[aid]
            if a.gen == gen:
                return a
            aid = a.before
        return None

    def cur(self, slot: int) -> int:
        """The slot's latest allocation (-1: none)."""
        c = self.slot_cur
        return c[slot] if 0 <= slot < len(c) else -1

    def owner(self, slot: int) -> int:
        """The allocation whose counter the slot holds (-1: none)."""
        o = self.slot_owner
        return o[slot] if 0 <= slot < len(o) else -1

    def acquired(self, ti: int, slot: int) -> int:
        """The allocation thread index ti last acquired a pointer to the slot to (-1: none)."""
        return self.ptr[ti][slot] if 0 <= slot < len(self.slot_cur) else -1

    def pointer(self, ti: int, slot: int) -> int:
        """The allocation thread index ti's pointer to the slot refers to: the one it acquired last,
        else the slot's latest (-1: none)."""
        if not 0 <= slot < len(self.slot_cur):
            return -1
        aid = self.ptr[ti][slot]
        return self.slot_cur[slot] if aid < 0 else aid

    def run(self) -> None:
        """Replay every event; raises the first event-level violation."""
        events = self.events
        on = self.on
        allocs = self.allocs
        ptr = self.ptr
        opn = self.open_op
        slot_cur = self.slot_cur
        slot_owner = self.slot_owner
        lin, life, rcu, hb = self.lin, self.life, self.rcu, self.hb
        viol = self.viol
        frees = self.frees
        # The clocks are kept for the events from the first one after setup up to the last free.
        # Setup's own events order nothing a free reads: before any other thread runs, every view
        # setup can release is made of setup's clock alone, and ordering compares only the clock
        # entries of the threads whose accesses it records (setup's are not among them).
        ordered = -1
        debug_checks = self.debug_checks
        # The debug checks and rule 10 are called from the branches of the events they read, first
        # thing in each: a violation the other rules find at the same event does not keep them
        # from seeing it.  Without a free, only lockdep's debug checks can fire
        # (vma_assert_detached is in vm_area_free), so the trees are fed to them only with one.
        debug_kinds = debug_checks.kind_mask if frees or debug_checks.lockdep else 0
        dtrees = debug_kinds != 0
        lockdep = debug_checks.lockdep
        rmap_lock = self.rmap_lock
        rmap = rmap_lock.on
        mmap_held = self.mmap_held
        wlock = 0
        dirty = True   # something the VMA invariants read changed since they were last checked
        started = False

        kinds = self.kinds
        for idx, ev in enumerate(events):
            t: int = ev[1]
            kind = kinds[idx]
            ti = t + 2
            if not started and t != -1:
                started = True
                ordered = self.last_free
                if dirty and wlock == 0:
                    try:
                        check_vmas(self, idx, None)
                    except Violation:
                        # before this event's branch, where the debug checks and rule 10 would
                        # have seen it
                        if (debug_kinds >> kind) & 1:
                            debug_checks.see(idx, kind, ev)
                        if rmap:
                            rmap_lock.see(idx, kind, ev)
                        raise
                    dirty = False
            if kind == NO_KIND:
                continue

            if kind <= K_USE:
                if rmap and t >= 0:
                    if kind == K_WRITE:
                        rmap_lock.written(idx, t, ev[2], ev[3], ev[4])
                    elif mmap_held[ti] <= 0:  # no mmap_lock: a walker
                        if kind == K_READ:
                            rmap_lock.read(idx, t, ev[2], ev[3])
                        else:
                            rmap_lock.used(idx, t, ev[2], ev[3])
                slot: int = ev[2]
                if not 0 <= slot < len(slot_cur):
                    continue
                aid = ptr[ti][slot]
                if aid < 0:
                    aid = slot_cur[slot]
                    if aid < 0:
                        continue
                a = allocs[aid]
                if a.free >= 0:
                    what = f"{ev[0]} of {ev[3]} of" if kind != K_USE else f"use of page {ev[3]} through"
                    rcu.check_access(a, t, ti, idx, what)
                if t >= 0 and idx < ordered:
                    hb.accessed(aid, ti, idx)
                if kind == K_USE:
                    life.check_use(a, t, ev[3], idx)
                    continue
                field: str = ev[3]  # the field read or written (a use has its page there)
                if field == "vm_root":
                    self.root_field(kind == K_WRITE, a, t, ev[4], idx)
                    dirty = True
                elif kind == K_WRITE:
                    if field == "vm_start":
                        a.start = ev[4]
                    elif field == "vm_end":
                        a.end = ev[4]
                    elif field == "vm_pgoff":
                        a.pgoff = ev[4]
                    else:
                        continue
                    a.ranges.append(idx)
                    # the invariants read the ranges of the VMAs in a tree only: one that is
                    # in none is checked when it is inserted
                    if a.trees:
                        dirty = True

            elif kind == K_REF_CALL:
                if lockdep and ev[3] == "put":
                    debug_checks.put_called(idx, t, ev[2])
                cur = self.ops_of[ti]
                if cur is None:
                    cur = self.ops_of[ti] = InFlight()
                cur.start(idx, ev[2], ev[3])
                opn[ti] = cur

            elif kind == K_REF_RET:
                cur = opn[ti]
                opn[ti] = None
                if cur is None:
                    continue
                fn = cur.fn
                # (typed: an untyped int the compiled build compares as a generic object)
                slot = cur.slot
                result = ev[4]
                warns = frozenset(cur.warns) if cur.warns else NO_WARNING
                if fn == "init":
                    if cur.aid is None and t != -1 and on:
                        aid = self.pointer(ti, slot)
                        if aid >= 0:
                            slot_owner[slot] = aid
                            allocs[aid].init = 1
                    continue
                if not on:
                    p = self.acquired(ti, slot)
                    lin.disabled_op(t, slot, fn, result, warns, cur.call, idx, p if p >= 0 else None)
                    continue
                done = cur.aid
                if done is None:
                    # no atomic ran (the counter was never touched): the slot's owner
                    aid = self.owner(slot)
                    if aid < 0:
                        continue
                    if fn == "put":
                        life.dropped(aid, t)
                else:
                    aid = done
                result = bool(result)
                lin.completed(aid, cur.call, idx, t, fn, result, warns)
                if fn == "get":
                    if result:
                        life.got(aid, t, idx)
                elif fn == "put":
                    life.put_returned(aid, t, result, idx)

            elif kind == K_ATOMIC:
                slot = ev[2]
                op: str = ev[3]
                aid = self.pointer(ti, slot)
                a = None
                if aid >= 0:
                    a = allocs[aid]
                    if a.free >= 0:
                        rcu.check_access(a, t, ti, idx, f"atomic {op} on the counter of")
                cur = opn[ti]
                if cur is not None and cur.slot == slot:
                    fn = cur.fn
                    if fn == "init":
                        if op == "store" and t != -1 and a is not None:
                            slot_owner[slot] = a.aid
                            a.init = 1
                            cur.aid = aid
                    elif on and (cur.aid is None or (fn == "get" and self.cas_get)):
                        # the operation's first atomic: it acts on the slot counter's owner
                        if cur.aid is None and a is not None and a.init is None and a.free < 0 \
                                and a.allocer == t:
                            raise lin.uninitialised(a, t, idx, f"{KERNEL_NAME[fn]} (called at event {cur.call}) runs on")
                        o = self.owner(slot)
                        cur.aid = o if o >= 0 else None
                        if fn == "put" and o >= 0:
                            life.dropped(o, t)
                if t == -1 and op == "store" and a is not None and on:
                    st = state_from_counter(ev[6])
                    slot_owner[slot] = a.aid
                    a.init = st
                    a.preset = -1 if st == SAT else (st - 1 if st > 0 else 0)
                if idx < ordered:
                    hb.atomic(ti, slot, op, ev[4])

            elif kind == K_OP_END:
                if lockdep:
                    debug_checks.op_ended(idx, t, ev[2])
                if dirty and wlock == 0:
                    check_vmas(self, idx, ev)
                    dirty = False

            elif kind == K_LOCK:
                if lockdep:
                    debug_checks.locking(idx, t, ev[2])
                if idx < ordered:
                    hb.locked(ti)
                # (`x[i] = x[i] + 1`: the compiled build runs `x[i] += 1` as a generic in-place add)
                mmap_held[ti] = mmap_held[ti] + 1
                mode: str = ev[2]
                if mode == "write":
                    wlock += 1

            elif kind == K_UNLOCK:
                if idx < ordered:
                    hb.unlocked(ti)
                mmap_held[ti] = mmap_held[ti] - 1
                mode = ev[2]
                if mode == "write" and wlock > 0:
                    wlock -= 1

            elif kind == K_RCU_LOCK or kind == K_PREEMPT_OFF:
                if lockdep:
                    debug_checks.entered(t, kind == K_RCU_LOCK)
                if frees:
                    rcu.enter(ti, idx, kind == K_RCU_LOCK)

            elif kind == K_RCU_UNLOCK or kind == K_PREEMPT_ON:
                if lockdep:
                    debug_checks.left(t, kind == K_RCU_UNLOCK)
                if frees and rcu.leave(ti, kind == K_RCU_UNLOCK) and idx < ordered:
                    hb.section_ended(ti)

            elif kind == K_MAPPING_STORE:
                page: int = ev[2]
                named: int | None = ev[3]  # the slot the folio now names (-1 or None: none)
                if idx < ordered:
                    hb.mapping_stored(ti, page)
                aid = -1 if named is None or named < 0 else self.pointer(ti, named)
                if not (page < self.npages and page >= 0):
                    bound(page, "folio page")
                    self.npages = page + 1
                self.mapped[page] = aid
                self.mapped_at[page] = idx
                dirty = True

            elif kind == K_MAPPING_LOAD:
                if idx < ordered:
                    hb.mapping_loaded(ti, ev[2])
                named = ev[3]
                if named is not None and named >= 0:
                    aid = self.cur(named)
                    if aid >= 0:
                        ptr[ti][named] = aid

            elif kind == K_ALLOC:
                if rmap:
                    rmap_lock.allocated(ev[2])
                self.alloc(t, ti, ev[2], ev[3], idx)

            elif kind == K_LOOKUP:
                slot = ev[3]
                tr = self.tree(ev[2])
                aid = tr[slot] if slot < len(tr) and slot >= 0 else -1
                if aid < 0:
                    aid = self.cur(slot)
                if aid >= 0:
                    ptr[ti][slot] = aid

            elif kind == K_TREE_INSERT or kind == K_TREE_UPDATE:
                mm: int = ev[2]
                slot = ev[3]
                if kind == K_TREE_INSERT:
                    if dtrees:
                        debug_checks.inserted(mm, slot)
                    if rmap:
                        rmap_lock.inserted(slot)
                tr = self.tree(mm)
                held = tr[slot] if slot < len(tr) and slot >= 0 else -1
                aid = held if held >= 0 and kind == K_TREE_UPDATE else self.pointer(ti, slot)
                if aid < 0:
                    continue
                a = allocs[aid]
                if kind == K_TREE_INSERT:
                    if on and a.init is None:
                        raise lin.uninitialised(a, t, idx, f"insertion into mm {mm}'s tree publishes")
                    if held >= 0 and held != aid:
                        allocs[held].trees &= ~(1 << mm)
                    tr[slot] = aid
                    if not (a.trees >> mm) & 1:
                        a.trees |= 1 << mm
                        life.published(aid, t)
                a.start = ev[4]
                a.end = ev[5]
                a.pgoff = ev[6]
                a.ranges.append(idx)
                dirty = True

            elif kind == K_FREE:
                debug_checks.freed(idx, t, ev[2], ev[3])  # (a free makes `dtrees`)
                a = life.check_free(t, ev[2], ev[3], idx, self.acquired(ti, ev[2]))
                hb.check_free(a, t, idx)
                a.free = idx
                a.freer = t
                rcu.freed(a)
                hb.freed(a, ti)

            elif kind == K_FENCE:
                if idx < ordered:
                    hb.fence(ti)

            elif kind == K_TREE_REMOVE:
                if dtrees:
                    debug_checks.removed(ev[2], ev[3])
                if rmap:
                    rmap_lock.removed(ev[3])
                mm = ev[2]
                slot = ev[3]
                tr = self.tree(mm)
                gone = tr[slot] if slot < len(tr) and slot >= 0 else -1
                if gone >= 0:
                    tr[slot] = -1
                    allocs[gone].trees &= ~(1 << mm)
                    life.detached(gone, t, idx)
                # The invariants are about the VMAs a tree holds: one fewer breaks none that held
                # before.  With `mapping=root` they also read whether a root was freed, which no
                # event marks dirty: there the removal's op is when it gets checked.
                if self.root_policy:
                    dirty = True

            elif kind == K_WARN:
                self.warning(t, ti, ev[2], ev[3], idx)

            elif kind == K_RECLAIM:
                a = rcu.check_reclaim(ev[2], ev[3], idx)
                a.reclaim = idx
                if idx < ordered:
                    hb.reclaimed(a, ti, rcu.waited(a.aid))

            elif kind == K_PANIC:
                raise viol("panic", f"the Rust core hit an internal assertion in {thread_name(t)}: {ev[2]}", idx)

            elif kind == K_RMAP_LOCK:
                if rmap:
                    rmap_lock.locked(idx, t, ev[2], ev[3])

            elif kind == K_RMAP_UNLOCK:
                if rmap:
                    rmap_lock.unlocked(idx, t, ev[2], ev[3])

        if wlock == 0 and dirty:
            check_vmas(self, len(events), None)

    def alloc(self, t: int, ti: int, slot: int, gen: int, idx: int) -> None:
        self.grow(slot)
        prev = self.slot_cur[slot]
        old = self.allocs[prev] if prev >= 0 else None
        self.life.check_reuse(old, t, slot, gen, idx)
        self.rcu.check_reuse(old, t, slot, gen, idx)
        self.life.check_generation(slot, gen, idx)
        aid = len(self.allocs)
        made = self.made
        if aid < len(made):
            a = made[aid]
            a.renew(slot, gen, idx, t)
        else:
            a = Allocation(aid, slot, gen, idx, t)
            made.append(a)
        a.before = prev
        self.allocs.append(a)
        # each rule's own hook, called by name: a loop over the rules calls them through the
        # interpreter's generic method lookup in the compiled build
        self.lin.allocated(a)
        self.life.allocated(a)
        self.rcu.allocated(a)
        self.hb.allocated(a)
        self.slot_cur[slot] = a.aid
        self.ptr[ti][slot] = a.aid
        if idx < self.last_free:
            self.hb.allocating(ti, slot)

    def warning(self, t, ti, slot, what, idx) -> None:
        """Rule 8: a warning is legal only where the specification predicts it; an rcuref
        operation's warnings are kept with it and judged by linearizability."""
        cur = self.open_op[ti]
        if what == "vma_get_disabled":
            if self.on or not self.debug:
                why = ("CONFIG_VMA_REF=y" if self.on else "CONFIG_DEBUG_VM is off")
                raise self.viol("unexpected-warning",
                                f"{thread_name(t)} hit the vma_get 'not allowed' warning on VMA slot {slot} "
                                f"although {why}.", idx)
        elif not (self.on and cur is not None and cur.fn in ("get", "put")):
            where = "outside any rcuref operation" if self.on else "with CONFIG_VMA_REF=n"
            raise self.viol("unexpected-warning",
                            f"{thread_name(t)} raised warning '{what}' on VMA slot {slot} {where}; "
                            "the rcuref specification predicts no warning there.", idx)
        if cur is not None:
            if cur.warns is None:
                cur.warns = [what]
            else:
                cur.warns.append(what)
