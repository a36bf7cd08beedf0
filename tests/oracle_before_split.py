"""The independent oracle: judges one event history against DESIGN.md sections 4 and 5.

`check(events, config, final_counters)` returns None for a correct history and raises
`Violation` for the first violation found.  It never looks at the mutant name and never asks the
Rust core anything: every verdict is re-derived from the events.

How it works (one pass over the events, then two small per-allocation passes):

* The pass tracks allocations `(slot, gen)`, each thread's pointers (`alloc`, `lookup`,
  `mapping_load`), read-side sections, the trees, the folio mappings, the real holders of every
  allocation and vector clocks (happens-before).  It checks, event by event: the free rules,
  memory safety, ordering (data races at the free), `use`, reclaim, stray warnings, the VMA
  invariants (at every `op_end` without the write lock) and `panic`.  It stops at the first
  violation.
* Linearizability of each allocation's rcuref operations (rcuref ops observed before the stop) is
  then checked against the sequential specification: a plain replay when the operations never
  overlap, a memoized Wing & Gong search otherwise.  A linearizability violation that was
  observed earlier than the event-level one wins.
* With no violation so far, the end state is checked with the final spec state of every
  allocation: leaks, raw counters, and spec count against real holders.

Attribution.  Plain accesses (read, write, use, atomics for memory safety, free) belong to the
allocation the thread's pointer refers to (DESIGN.md section 5).  An rcuref operation (get/put)
changes the *counter stored in the slot*, so for linearizability and for holder accounting it is
attributed to the allocation whose counter the slot held when the operation's first atomic ran:
the most recent allocation of that slot whose `init` store had happened.  Under
SLAB_TYPESAFE_BY_RCU a reader holding a stale pointer legitimately pins the *new* occupant with a
successful get (and must then revalidate); between the new occupant's `kmem_cache_alloc` and its
`vma_rcuref_init` the counter still belongs to the dead previous allocation, so a get that
succeeds there is reported against that dead allocation.
"""

from __future__ import annotations

MAXREF = 0x7FFFFFFF
SAT_LO = 0x80000000
RELEASED = 0xC0000000

# Spec state encoding: n >= 1 is Live(n), 0 is Dead, -1 is Saturated.
DEAD = 0
SAT = -1

_NOW = frozenset()
_W_SAT = frozenset(("saturated",))
_W_IMB = frozenset(("imbalanced_put",))
_W_DIS = frozenset(("vma_get_disabled",))
_FIELD = {"vm_start": 0, "vm_end": 1, "vm_pgoff": 2}
_RMW = ("add", "sub", "cas_ok")
_ACCESS = frozenset(("read", "write", "use"))
# Facts the verdicts do not depend on (kept in the history for reports and the minimizer).
_UNJUDGED = frozenset(("op_begin", "folio_map", "mapped_load"))
_REL = ("release", "acq_rel", "seq_cst")
_ACQ = ("acquire", "acq_rel", "seq_cst")
_FN = {"get": "vma_get", "put": "vma_put", "init": "vma_rcuref_init"}


class Violation(Exception):
    """A violation of the specification, found at `events[event_index]`."""

    def __init__(self, kind: str, message: str, event_index: int, events: list):
        Exception.__init__(self, kind, message)
        self.kind = kind
        self.message = message
        self.event_index = event_index
        self.events = events

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"

    def __reduce__(self):
        return (Violation, (self.kind, self.message, self.event_index, self.events))

    def __repr__(self) -> str:
        return f"Violation({self.kind!r}, {self.message!r}, event_index={self.event_index})"


# --------------------------------------------------------------------------- the specification

def spec_step(state: int, fn: str):
    """One rcuref operation on the sequential spec: returns (new_state, result, warnings)."""
    if fn == "get":
        if state == DEAD:
            return DEAD, False, _NOW
        if state == SAT or state - 1 == MAXREF:
            return SAT, True, _W_SAT
        return state + 1, True, _NOW
    if state == DEAD:
        return DEAD, False, _W_IMB
    if state == SAT:
        return SAT, False, _NOW
    if state == 1:
        return DEAD, True, _NOW
    return state - 1, False, _NOW


def state_from_counter(c: int) -> int:
    """Spec state of a raw counter value (setup presets)."""
    c &= 0xFFFFFFFF
    if c <= MAXREF:
        return c + 1
    if c < RELEASED:
        return SAT
    return DEAD


def _sname(state) -> str:
    if state is None:
        return "uninitialised"
    if state == DEAD:
        return "DEAD"
    if state == SAT:
        return "SATURATED"
    return f"{state} reference{'s' if state != 1 else ''} (counter {state - 1:#x})"


def _tn(t: int) -> str:
    if t == -1:
        return "setup"
    if t == -2:
        return "the RCU callback"
    return f"T{t}"


def _res(r, w) -> str:
    s = "true" if r else "false"
    if w:
        s += " with warning " + "+".join(sorted(w))
    return s


# Operation tuples stored per allocation: (call_idx, ret_idx or None, thread, fn, result, warns)
def _opshort(op) -> str:
    call, ret, t, fn, r, w = op
    if ret is None:
        return f"T{t} {fn}@{call}..(pending)"
    return f"T{t} {fn}@{call}..{ret}->{_res(r, w)}"


# --------------------------------------------------------------------------- linearizability

_INF = float("inf")


def _search(ops, inits):
    """Wing & Gong search with memoization on (done set, spec state) over one cluster of
    operations (sorted by call index), from every state in `inits`.

    Returns (True, set of final states) or (False, (failing index, state, path of indices)) for
    the deepest dead end found.  Pending operations (ret None) may be linearized anywhere after
    their call or dropped; their result is not observed.
    """
    n = len(ops)
    calls = [op[0] for op in ops]
    rets = [op[1] if op[1] is not None else _INF for op in ops]
    fns = [op[3] for op in ops]
    obs = [(op[4], op[5]) for op in ops]
    pend = [op[1] is None for op in ops]
    need = 0
    for i in range(n):
        if not pend[i]:
            need |= 1 << i
    seen = set()
    finals = set()
    best = [-1, None, -1]
    path = []
    step = spec_step

    def dfs(mask, state, depth):
        key = (mask, state)
        if key in seen:
            return
        seen.add(key)
        if mask & need == need:
            finals.add(state)
        minret = _INF
        for i in range(n):
            if not (mask >> i) & 1 and rets[i] < minret:
                minret = rets[i]
        failed = None
        for i in range(n):
            if (mask >> i) & 1 or calls[i] > minret:
                continue
            ns, r, w = step(state, fns[i])
            if not pend[i] and (r != obs[i][0] or w != obs[i][1]):
                if failed is None or rets[i] > rets[failed]:
                    failed = i
                continue
            path.append(i)
            dfs(mask | (1 << i), ns, depth + 1)
            path.pop()
        # report the deepest dead end; among equally deep ones, the operation that returned last
        # (its result is the one that contradicts everything completed before it)
        if failed is not None and (depth > best[0] or (depth == best[0] and rets[failed] > best[2])):
            best[0] = depth
            best[1] = (failed, state, list(path))
            best[2] = rets[failed]

    for s in sorted(inits):
        dfs(0, s, 0)
    if finals:
        return True, finals
    return False, best[1]


def linearize_ops(ops, init):
    """Check one allocation's operations (sorted by call index) from spec state `init`.

    The history is cut into clusters at quiescent points (no operation in flight); a cluster of one
    operation is a plain replay, a larger one a memoized search.  Returns (True, set of possible
    final states) or (False, (failing index, state, path of indices into ops)).
    """
    states = {init}
    n = len(ops)
    i = 0
    while i < n:
        j = i + 1
        r = ops[i][1]
        hi = r if r is not None else _INF
        while j < n and ops[j][0] < hi:
            r = ops[j][1]
            if r is None:
                hi = _INF
            elif r > hi:
                hi = r
            j += 1
        if j == i + 1:
            op = ops[i]
            nxt = set()
            for s in states:
                ns, r, w = spec_step(s, op[3])
                if op[1] is None:
                    nxt.add(s)
                    nxt.add(ns)
                elif r == op[4] and w == op[5]:
                    nxt.add(ns)
            if not nxt:
                return False, (i, min(states), list(range(i)))
            states = nxt
        else:
            ok, out = _search(ops[i:j], states)
            if not ok:
                if out is None:
                    return False, (i, min(states), list(range(i)))
                k, s, p = out
                return False, (i + k, s, list(range(i)) + [i + x for x in p])
            states = out
        i = j
    return True, states


# --------------------------------------------------------------------------- the checker

def _join(clock: list, other: list) -> None:
    """clock := the pointwise maximum of clock and other (vector-clock join, in place). Most
    joins find the clock already ahead, so comparing before storing is the fast path."""
    for j, c in enumerate(other):
        if c > clock[j]:
            clock[j] = c


class _Checker:
    def __init__(self, events, config):
        self.events = events
        self.on = config.get("vma_ref", "on") == "on"
        self.deferred = config.get("slab", "typesafe") == "deferred"
        self.debug = config.get("debug_vm", "on") == "on"
        # allocation tables, indexed by allocation id
        self.a_slot = []
        self.a_gen = []
        self.a_aidx = []     # alloc event index
        self.a_allocer = []  # allocating thread
        self.a_free = []     # free event index or -1
        self.a_freer = []
        self.a_reclaim = []
        self.a_fields = []   # [start, end, pgoff]
        self.a_ranges = []   # [(event index, start, end, pgoff)] every value a_fields took
        self.a_hold = []     # dict thread -> list of (event index, how)
        self.a_trees = []    # bitmask of mms whose tree holds it
        self.a_init = []     # initial spec state (None: never initialised)
        self.a_initidx = []
        self.a_preset = []   # external holders preset by setup (-1: unknown, saturated)
        self.a_ops = []
        self.a_acc = []      # dict thread index -> (event index, own clock component)
        self.a_fclk = []     # freer's clock at the free
        self.a_wait = []     # deferred: {thread index: section start} active at the free
        self.by_key = {}
        self.lastput = {}    # (aid, t) -> (result, ret index)
        self.slot_cur = {}   # slot -> current allocation
        self.slot_owner = {}  # slot -> allocation whose counter the slot holds
        self.unreclaimed = {}
        self.slot_val = {}   # slot -> last raw counter value written
        self.trees = {0: {}, 1: {}}
        self.mapping = {}    # page -> (aid, store index)
        self.opn = None      # per thread index: open rcuref op [call, slot, fn, aid, warns]
        self.final = {}

    # ------------------------------------------------------------------ descriptions
    def an(self, aid) -> str:
        return f"VMA slot {self.a_slot[aid]} gen {self.a_gen[aid]}"

    def viol(self, kind, msg, idx):
        return Violation(kind, msg, idx, self.events)

    def holders(self, aid, gets_only=False):
        """Real holders of an allocation, as human strings.  At the end of the history only tree
        membership, get references and preset holders count (a thread that still owns an allocated
        or detached VMA when it finishes has leaked it)."""
        out = []
        m = self.a_trees[aid]
        for mm in (0, 1):
            if m >> mm & 1:
                out.append(f"the tree of mm {mm}")
        for t, lst in sorted(self.a_hold[aid].items()):
            for (i, how) in lst:
                if gets_only and how != "get":
                    continue
                if how == "get":
                    out.append(f"{_tn(t)} (from its vma_get returning at event {i})")
                elif how == "detach":
                    out.append(f"{_tn(t)} (which detached it from the tree at event {i})")
                else:
                    out.append(f"{_tn(t)} (which allocated it at event {i})")
        p = self.a_preset[aid]
        if p == -1:
            out.append("the external holders preset by setup (saturated counter)")
        elif p > 0:
            out.append(f"{p} external holder{'s' if p != 1 else ''} preset by setup")
        return out

    def owned(self, aid):
        """Non-get references threads still own (allocated or detached, not yet dropped)."""
        out = []
        for t, lst in sorted(self.a_hold[aid].items()):
            for (i, how) in lst:
                if how == "detach":
                    out.append(f"{_tn(t)} detached it from the tree at event {i}")
                elif how == "alloc":
                    out.append(f"{_tn(t)} allocated it at event {i}")
        if out:
            return "; " + " and ".join(out) + " but never dropped that reference"
        return ""

    def nholders(self, aid, gets_only=False):
        m = self.a_trees[aid]
        h = (m & 1) + (m >> 1 & 1)
        for lst in self.a_hold[aid].values():
            if gets_only:
                h += sum(1 for x in lst if x[1] == "get")
            else:
                h += len(lst)
        p = self.a_preset[aid]
        return h + (p if p > 0 else 0)

    # ------------------------------------------------------------------ the single pass
    def run(self):
        events = self.events
        on = self.on
        maxt = 3
        for ev in events:
            if ev[1] > maxt:
                maxt = ev[1]
        NT = maxt + 3
        rng = range(NT)
        clocks = [[0] * NT for _ in rng]
        for j in rng:
            clocks[j][j] = 1   # epochs start at 1: another thread's initial view (0) orders nothing
        ptr = [{} for _ in rng]
        nr = [0] * NT
        npre = [0] * NT
        since = [-1] * NT
        secend = [None] * NT
        pendacq = [None] * NT
        opn = [None] * NT
        self.opn = opn
        loc = {}
        slot_val = self.slot_val
        mapclk = {}
        slabclk = {}
        lockclk = None
        wlock = 0
        dirty = True
        started = False

        a_free = self.a_free
        a_hold = self.a_hold
        a_acc = self.a_acc
        a_fields = self.a_fields
        a_ops = self.a_ops
        slot_cur = self.slot_cur
        slot_owner = self.slot_owner
        trees = self.trees
        lastput = self.lastput
        viol = self.viol

        for idx, ev in enumerate(events):
            k = ev[0]
            t = ev[1]
            ti = t + 2
            if not started and t != -1:
                started = True
                sc = clocks[1]
                for j in rng:
                    if j != 1:
                        _join(clocks[j], sc)
                if dirty and wlock == 0:
                    self.invariants(idx, "after setup")
                    dirty = False
            C = clocks[ti]

            if k in _ACCESS:
                slot = ev[2]
                aid = ptr[ti].get(slot)
                if aid is None:
                    aid = slot_cur.get(slot)
                if aid is None:
                    continue
                fi = a_free[aid]
                if fi >= 0:
                    s = since[ti]
                    if s < 0 or s > fi:
                        what = f"{k} of {ev[3]} of" if k != "use" else f"use of page {ev[3]} through"
                        raise self.uaf(aid, t, idx, what, s)
                if t >= 0:
                    a_acc[aid][ti] = (idx, C[ti])
                if k == "write":
                    f = _FIELD.get(ev[3])
                    if f is not None:
                        a_fields[aid][f] = ev[4]
                        self.a_ranges[aid].append((idx, *a_fields[aid]))
                        dirty = True
                elif k == "use":
                    self.check_use(aid, t, ev[3], idx)

            elif k in _UNJUDGED:
                continue
            elif k == "ref_call":
                opn[ti] = [idx, ev[2], ev[3], None, None]

            elif k == "ref_ret":
                cur = opn[ti]
                opn[ti] = None
                if cur is None:
                    continue
                fn = cur[2]
                slot = cur[1]
                result = ev[4]
                warns = frozenset(cur[4]) if cur[4] else _NOW
                if fn == "init":
                    if cur[3] is None and t != -1 and on:
                        aid = ptr[ti].get(slot)
                        if aid is None:
                            aid = slot_cur.get(slot)
                        if aid is not None:
                            slot_owner[slot] = aid
                            self.a_init[aid] = 1
                            self.a_initidx[aid] = idx
                    continue
                if not on:
                    self.check_off_op(t, slot, fn, result, warns, cur[0], idx, ptr[ti].get(slot))
                    continue
                aid = cur[3]
                if aid is None:
                    aid = slot_owner.get(slot)
                    if aid is None:
                        continue
                    if fn == "put":
                        self.drop_ref(aid, t)
                result = bool(result)
                a_ops[aid].append((cur[0], idx, t, fn, result, warns))
                if fn == "get":
                    if result:
                        a_hold[aid].setdefault(t, []).append((idx, "get"))
                elif fn == "put":
                    lastput[(aid, t)] = (result, idx)

            elif k == "atomic":
                slot = ev[2]
                op = ev[3]
                order = ev[4]
                aid = ptr[ti].get(slot)
                if aid is None:
                    aid = slot_cur.get(slot)
                fi = -1
                if aid is not None:
                    fi = a_free[aid]
                    if fi >= 0:
                        s = since[ti]
                        if s < 0 or s > fi:
                            raise self.uaf(aid, t, idx, f"atomic {op} on the counter of", s)
                slot_val[slot] = ev[6]
                cur = opn[ti]
                if cur is not None and cur[1] == slot:
                    fn = cur[2]
                    if fn == "init":
                        if op == "store" and t != -1 and aid is not None:
                            slot_owner[slot] = aid
                            self.a_init[aid] = 1
                            self.a_initidx[aid] = idx
                            cur[3] = aid
                    elif cur[3] is None and on:
                        if aid is not None and self.a_init[aid] is None and fi < 0 \
                                and self.a_allocer[aid] == t:
                            raise self.uninit(aid, t, idx, f"{_FN[fn]} (called at event {cur[0]}) runs on")
                        o = slot_owner.get(slot)
                        cur[3] = o
                        if fn == "put" and o is not None:
                            self.drop_ref(o, t)
                if t == -1 and op == "store" and aid is not None and on:
                    st = state_from_counter(ev[6])
                    slot_owner[slot] = aid
                    self.a_init[aid] = st
                    self.a_initidx[aid] = idx
                    self.a_preset[aid] = -1 if st == SAT else (st - 1 if st > 0 else 0)
                # happens-before on the counter location
                rel = order in _REL
                if op == "store":
                    loc[slot] = C[:] if rel else None
                else:
                    lc = loc.get(slot)
                    if lc is not None:
                        if order in _ACQ:
                            _join(C, lc)
                        else:
                            pa = pendacq[ti]
                            if pa is None:
                                pendacq[ti] = lc[:]
                            else:
                                _join(pa, lc)
                    if rel and op in _RMW:
                        if lc is None:
                            loc[slot] = C[:]
                        else:
                            _join(lc, C)
                if rel:
                    C[ti] += 1

            elif k == "op_end":
                if dirty and wlock == 0:
                    self.invariants(idx, f"after {_tn(t)}'s op {ev[2]}")
                    dirty = False

            elif k == "lock":
                if lockclk is not None:
                    _join(C, lockclk)
                if ev[2] == "write":
                    wlock += 1

            elif k == "unlock":
                if lockclk is None:
                    lockclk = C[:]
                else:
                    _join(lockclk, C)
                C[ti] += 1
                if ev[2] == "write" and wlock > 0:
                    wlock -= 1

            elif k == "rcu_lock" or k == "preempt_off":
                if since[ti] < 0:
                    since[ti] = idx
                if k == "rcu_lock":
                    nr[ti] += 1
                else:
                    npre[ti] += 1

            elif k == "rcu_unlock" or k == "preempt_on":
                if k == "rcu_unlock":
                    if nr[ti] > 0:
                        nr[ti] -= 1
                elif npre[ti] > 0:
                    npre[ti] -= 1
                if nr[ti] == 0 and npre[ti] == 0 and since[ti] >= 0:
                    since[ti] = -1
                    secend[ti] = C[:]
                    C[ti] += 1

            elif k == "mapping_store":
                page = ev[2]
                slot = ev[3]
                mapclk[page] = C[:]
                C[ti] += 1
                if slot is None or slot < 0:
                    self.mapping[page] = None
                else:
                    aid = ptr[ti].get(slot)
                    if aid is None:
                        aid = slot_cur.get(slot)
                    self.mapping[page] = (aid, idx) if aid is not None else None
                dirty = True

            elif k == "mapping_load":
                page = ev[2]
                slot = ev[3]
                mc = mapclk.get(page)
                if mc is not None:
                    _join(C, mc)
                if slot is not None and slot >= 0:
                    aid = slot_cur.get(slot)
                    if aid is not None:
                        ptr[ti][slot] = aid

            elif k == "alloc":
                self.do_alloc(t, ev[2], ev[3], idx, ptr[ti], C, slabclk)

            elif k == "lookup":
                slot = ev[3]
                aid = trees.get(ev[2], {}).get(slot)
                if aid is None:
                    aid = slot_cur.get(slot)
                if aid is not None:
                    ptr[ti][slot] = aid

            elif k == "tree_insert" or k == "tree_update":
                mm = ev[2]
                slot = ev[3]
                tr = trees.setdefault(mm, {})
                if k == "tree_update":
                    aid = tr.get(slot)
                    if aid is None:
                        aid = ptr[ti].get(slot, slot_cur.get(slot))
                else:
                    aid = ptr[ti].get(slot)
                    if aid is None:
                        aid = slot_cur.get(slot)
                if aid is None:
                    continue
                if k == "tree_insert":
                    if on and self.a_init[aid] is None:
                        raise self.uninit(aid, t, idx, f"insertion into mm {mm}'s tree publishes")
                    prev = tr.get(slot)
                    if prev is not None and prev != aid:
                        self.a_trees[prev] &= ~(1 << mm)
                    tr[slot] = aid
                    if not (self.a_trees[aid] >> mm) & 1:
                        self.a_trees[aid] |= 1 << mm
                        self.transfer_to_tree(aid, t)
                a_fields[aid][:] = (ev[4], ev[5], ev[6])
                self.a_ranges[aid].append((idx, ev[4], ev[5], ev[6]))
                dirty = True

            elif k == "free":
                self.do_free(t, ev[2], ev[3], idx, ptr[ti], C, since, slabclk)
                C[ti] += 1

            elif k == "fence":
                pa = pendacq[ti]
                if pa is not None:
                    _join(C, pa)
                    pendacq[ti] = None

            elif k == "tree_remove":
                mm = ev[2]
                tr = trees.setdefault(mm, {})
                aid = tr.pop(ev[3], None)
                if aid is not None:
                    self.a_trees[aid] &= ~(1 << mm)
                    a_hold[aid].setdefault(t, []).append((idx, "detach"))
                dirty = True

            elif k == "warn":
                what = ev[3]
                cur = opn[ti]
                if what == "vma_get_disabled":
                    if on or not self.debug:
                        why = ("CONFIG_VMA_REF=y" if on else "CONFIG_DEBUG_VM is off")
                        raise viol("unexpected-warning",
                                   f"{_tn(t)} hit the vma_get 'not allowed' warning on VMA slot {ev[2]} "
                                   f"although {why}.", idx)
                    if cur is not None:
                        if cur[4] is None:
                            cur[4] = [what]
                        else:
                            cur[4].append(what)
                elif on and cur is not None and cur[2] in ("get", "put"):
                    if cur[4] is None:
                        cur[4] = [what]
                    else:
                        cur[4].append(what)
                else:
                    where = "outside any rcuref operation" if on else "with CONFIG_VMA_REF=n"
                    raise viol("unexpected-warning",
                               f"{_tn(t)} raised warning '{what}' on VMA slot {ev[2]} {where}; "
                               "the rcuref specification predicts no warning there.", idx)

            elif k == "reclaim":
                self.do_reclaim(ev[2], ev[3], idx, since, secend, C, slabclk)
                C[ti] += 1

            elif k == "panic":
                raise viol("panic", f"the Rust core hit an internal assertion in {_tn(t)}: {ev[2]}", idx)

        # end of history
        if wlock == 0 and dirty:
            self.invariants(len(events), "at the end")
        self.wlock_end = wlock

    # ------------------------------------------------------------------ helpers of the pass
    def uaf(self, aid, t, idx, what, s):
        fi = self.a_free[aid]
        if self.a_reclaim[aid] >= 0:
            extra = f" and the grace period reclaimed it at event {self.a_reclaim[aid]}"
        else:
            extra = ""
        if s < 0:
            sec = f"{_tn(t)} is not inside any read-side section (rcu_read_lock or preemption disabled)"
        else:
            sec = f"{_tn(t)}'s read-side section only began at event {s}, after the free"
        return self.viol(
            "use-after-free",
            f"{_tn(t)}'s {what} {self.an(aid)} at event {idx} touches memory that "
            f"{_tn(self.a_freer[aid])} freed at event {fi}{extra}; {sec}.", idx)

    def uninit(self, aid, t, idx, what):
        slot = self.a_slot[aid]
        val = self.slot_val.get(slot, 0)
        prev = self.slot_owner.get(slot)
        left = f" left there by {self.an(prev)}" if prev is not None and prev != aid else ""
        return self.viol(
            "not-linearizable",
            f"{_tn(t)}'s {what} {self.an(aid)} at event {idx}, whose counter vma_rcuref_init never "
            f"initialised: it still holds {val:#010x}{left} (vm_area_alloc/vm_area_dup must "
            "initialise the reference count before the VMA is used).", idx)

    def drop_ref(self, aid, t):
        """A put by t drops t's most recent reference on aid (the op's own: the reference the munmap
        detached, the mmap error path's new VMA, the reader's get, the `put` op's latest get)."""
        lst = self.a_hold[aid].get(t)
        if lst:
            lst.pop()

    def transfer_to_tree(self, aid, t):
        lst = self.a_hold[aid].get(t)
        if lst:
            for j in range(len(lst) - 1, -1, -1):
                if lst[j][1] != "get":
                    del lst[j]
                    return
            lst.pop()

    def new_alloc(self, slot, gen, idx):
        aid = len(self.a_slot)
        self.a_slot.append(slot)
        self.a_gen.append(gen)
        self.a_aidx.append(idx)
        self.a_allocer.append(None)
        self.a_free.append(-1)
        self.a_freer.append(None)
        self.a_reclaim.append(-1)
        self.a_fields.append([None, None, None])
        self.a_ranges.append([])
        self.a_hold.append({})
        self.a_trees.append(0)
        self.a_init.append(None)
        self.a_initidx.append(-1)
        self.a_preset.append(0)
        self.a_ops.append([])
        self.a_acc.append({})
        self.a_fclk.append(None)
        self.a_wait.append(None)
        self.by_key[(slot, gen)] = aid
        return aid

    def do_alloc(self, t, slot, gen, idx, tptr, C, slabclk):
        old = self.slot_cur.get(slot)
        if old is not None:
            if self.a_free[old] < 0:
                raise self.viol(
                    "double-free",
                    f"the slab handed VMA slot {slot} to {_tn(t)} as gen {gen} while {self.an(old)} "
                    f"is still allocated (never freed): the slab free list is corrupted.", idx)
            if self.deferred and self.a_reclaim[old] < 0:
                raise self.viol(
                    "bad-reclaim",
                    f"the slab handed VMA slot {slot} to {_tn(t)} as gen {gen}, but the deferred free of "
                    f"{self.an(old)} at event {self.a_free[old]} has not been reclaimed by a grace period.",
                    idx)
        if (slot, gen) in self.by_key:
            raise self.viol("double-free",
                            f"VMA slot {slot} gen {gen} was allocated a second time (the generation did not "
                            f"advance), at event {idx}.", idx)
        aid = self.new_alloc(slot, gen, idx)
        self.slot_cur[slot] = aid
        tptr[slot] = aid
        self.a_hold[aid][t] = [(idx, "alloc")]
        self.a_allocer[aid] = t
        sc = slabclk.get(slot)
        if sc is not None:
            _join(C, sc)

    def do_free(self, t, slot, gen, idx, tptr, C, since, slabclk):
        aid = self.by_key.get((slot, gen))
        if aid is None:
            raise self.viol("double-free",
                            f"{_tn(t)} freed VMA slot {slot} gen {gen}, which was never allocated.", idx)
        an = self.an(aid)
        if self.a_free[aid] >= 0:
            raise self.viol("double-free",
                            f"{_tn(t)} freed {an} at event {idx}, but {_tn(self.a_freer[aid])} had already "
                            f"freed it at event {self.a_free[aid]}.", idx)
        if self.on:
            lp = self.lastput.pop((aid, t), None)
            if lp is None or not lp[0]:
                if lp is None:
                    why = f"{_tn(t)} never dropped a reference on it with a vma_put that returned true"
                else:
                    why = f"{_tn(t)}'s last vma_put on it (event {lp[1]}) returned false"
                    others = [tt for (a, tt), v in self.lastput.items() if a == aid and v[0]]
                    if others:
                        why += f", the last reference was released by {_tn(others[0])}"
                p = tptr.get(slot)
                if p is not None and p != aid:
                    why += f" (its pointer refers to {self.an(p)})"
                hs = self.holders(aid)
                held = ("; still held by " + ", ".join(hs)) if hs else ""
                raise self.viol("free-while-held",
                                f"{_tn(t)} freed {an} at event {idx} although {why}{held}.", idx)
        else:
            p = tptr.get(slot)
            if p != aid:
                pdesc = self.an(p) if p is not None else "no allocation of that slot"
                hs = self.holders(aid)
                held = ("; it is still held by " + ", ".join(hs)) if hs else ""
                raise self.viol("free-while-held",
                                f"{_tn(t)} freed {an} at event {idx}, but its pointer refers to {pdesc}{held}.",
                                idx)
            lst = self.a_hold[aid].get(t)
            if lst:
                self.transfer_to_tree(aid, t)  # drops an owned (non-get) reference first
            else:
                hs = self.holders(aid)
                held = ("; it is still held by " + ", ".join(hs)) if hs else ""
                raise self.viol("free-while-held",
                                f"{_tn(t)} vma_put-freed {an} at event {idx} without owning it (it neither "
                                f"allocated it nor detached it from a tree){held}.", idx)
        hs = self.holders(aid)
        if hs:
            how = "its vma_put returned true" if self.on else "CONFIG_VMA_REF=n: vma_put frees at once"
            raise self.viol("free-while-held",
                            f"{_tn(t)} freed {an} at event {idx} ({how}) while it is still held by "
                            + ", ".join(hs) + ".", idx)
        # ordering: every plain access by another thread happens-before the free
        ti = t + 2
        for uti, (eidx, stamp) in sorted(self.a_acc[aid].items(), key=lambda x: x[1][0]):
            if uti != ti and C[uti] < stamp:
                e = self.events[eidx]
                what = f"{e[0]} of {e[3]}" if e[0] != "use" else f"use of page {e[3]}"
                raise self.viol(
                    "data-race",
                    f"{_tn(uti - 2)}'s {what} of {an} at event {eidx} does not happen-before "
                    f"{_tn(t)}'s free of it at event {idx}: no release/acquire chain orders them "
                    "(data race).", idx)
        self.a_free[aid] = idx
        self.a_freer[aid] = t
        if self.deferred:
            self.a_fclk[aid] = C[:]
            self.a_wait[aid] = {j: s for j, s in enumerate(since) if s >= 0}
            self.unreclaimed[slot] = aid
        else:
            slabclk[slot] = C[:]

    def do_reclaim(self, slot, gen, idx, since, secend, C, slabclk):
        aid = self.by_key.get((slot, gen))
        name = f"VMA slot {slot} gen {gen}"
        if not self.deferred:
            raise self.viol("bad-reclaim",
                            f"the RCU callback reclaimed {name} at event {idx}, but the slab is "
                            "SLAB_TYPESAFE_BY_RCU: there are no deferred frees to reclaim.", idx)
        if aid is None or self.a_free[aid] < 0:
            raise self.viol("bad-reclaim",
                            f"the RCU callback reclaimed {name} at event {idx}, which was never freed.", idx)
        if self.a_reclaim[aid] >= 0:
            raise self.viol("bad-reclaim",
                            f"the RCU callback reclaimed {name} at event {idx} a second time "
                            f"(first at event {self.a_reclaim[aid]}).", idx)
        for j, s in sorted(self.a_wait[aid].items()):
            if since[j] == s:
                raise self.viol(
                    "bad-reclaim",
                    f"the grace period for {name} (freed by {_tn(self.a_freer[aid])} at event "
                    f"{self.a_free[aid]}) ended at event {idx} while {_tn(j - 2)} is still inside the "
                    f"read-side section it entered at event {s}.", idx)
        self.a_reclaim[aid] = idx
        fc = self.a_fclk[aid]
        if fc is not None:
            _join(C, fc)
        for j in self.a_wait[aid]:
            if secend[j] is not None:
                _join(C, secend[j])
        slabclk[slot] = C[:]
        if self.unreclaimed.get(slot) == aid:
            del self.unreclaimed[slot]

    def check_use(self, aid, t, page, idx):
        an = self.an(aid)
        if not self.a_hold[aid].get(t):
            why = "" if self.on else " (CONFIG_VMA_REF=n: vma_get can never pin a VMA)"
            other = [self.an(a) for a in range(len(self.a_slot))
                     if a != aid and self.a_slot[a] == self.a_slot[aid] and self.a_hold[a].get(t)]
            if other:
                why += f"; its reference is on {other[0]}, the slot's other occupant"
            raise self.viol("bad-use",
                            f"{_tn(t)} used folio {page} through {an} at event {idx} without holding a "
                            f"reference on it{why}.", idx)
        if self.a_free[aid] >= 0:
            raise self.viol("bad-use",
                            f"{_tn(t)} used folio {page} through {an} at event {idx}, after "
                            f"{_tn(self.a_freer[aid])} freed it at event {self.a_free[aid]}.", idx)
        # A reference pins the VMA's lifetime, not its range ("rcuref only manages the lifetime of
        # a VMA and does not track its state"): a split may shrink the VMA between the reader's
        # check and its use. What the reader must never do is use a VMA that did not map the
        # folio at any moment while it held it, i.e. one it cannot have validated.
        held_since = self.a_hold[aid][t][-1][0]
        ranges = self.a_ranges[aid]
        at_get = [r for r in ranges if r[0] <= held_since][-1:]
        since = [r for r in ranges if held_since < r[0] <= idx]
        if not any(None not in r and r[3] <= page < r[3] + (r[2] - r[1]) for r in at_get + since):
            s, e, p = self.a_fields[aid]
            raise self.viol("bad-use",
                            f"{_tn(t)} used folio {page} through {an} at event {idx}, but that VMA did not "
                            f"map page {page} at any moment since {_tn(t)} took its reference at event "
                            f"{held_since} (it covers [{s}, {e}) with vm_pgoff {p}): the reader acted on a "
                            "VMA it never validated.", idx)

    def check_off_op(self, t, slot, fn, result, warns, call, idx, aid):
        """CONFIG_VMA_REF=n: vma_get returns NULL (+ warning with DEBUG_VM), vma_put frees."""
        name = self.an(aid) if aid is not None else f"VMA slot {slot}"
        if fn == "get":
            exp_w = _W_DIS if self.debug else _NOW
            if bool(result) or warns != exp_w:
                raise self.viol("not-linearizable",
                                f"{_tn(t)}'s vma_get on {name} (events {call}..{idx}) returned "
                                f"{_res(bool(result), warns)}, but with CONFIG_VMA_REF=n vma_get returns NULL"
                                f"{' and warns' if self.debug else ''}.", idx)
        elif fn == "put":
            if warns:
                raise self.viol("unexpected-warning",
                                f"{_tn(t)}'s vma_put on {name} (events {call}..{idx}) warned "
                                f"{'+'.join(sorted(warns))} with CONFIG_VMA_REF=n.", idx)

    # ------------------------------------------------------------------ VMA invariants
    def invariants(self, idx, when):
        fields = self.a_fields
        for mm in (0, 1):
            tr = self.trees.get(mm)
            if not tr:
                continue
            ents = []
            for slot, aid in tr.items():
                s, e, p = fields[aid]
                if s is None or e is None:
                    continue
                if not s < e:
                    raise self.viol("vma-invariant",
                                    f"{when} (event {idx}), mm {mm}'s tree holds {self.an(aid)} with an empty "
                                    f"range [{s}, {e}).", idx)
                if p is not None and s != p:
                    raise self.viol("vma-invariant",
                                    f"{when} (event {idx}), mm {mm}'s tree holds {self.an(aid)} = [{s}, {e}) "
                                    f"with vm_pgoff {p}: vm_start - vm_pgoff*PAGE_SIZE is {s - p}, not 0 "
                                    "(pgoff did not move with vm_start).", idx)
                ents.append((s, e, aid))
            ents.sort()
            for j in range(1, len(ents)):
                if ents[j][0] < ents[j - 1][1]:
                    a, b = ents[j - 1], ents[j]
                    raise self.viol("vma-invariant",
                                    f"{when} (event {idx}), mm {mm}'s tree has overlapping VMAs "
                                    f"{self.an(a[2])} = [{a[0]}, {a[1]}) and {self.an(b[2])} = [{b[0]}, {b[1]}).",
                                    idx)
        tr0 = self.trees.get(0, {})
        for page, m in sorted(self.mapping.items()):
            if m is None:
                continue
            aid = m[0]
            if tr0.get(self.a_slot[aid]) != aid:
                continue
            s, e, p = fields[aid]
            if s is None or e is None:
                continue
            if not (s <= page < e):
                raise self.viol("vma-invariant",
                                f"{when} (event {idx}), folio {page}'s mapping (stored at event {m[1]}) names "
                                f"{self.an(aid)}, which is in mm 0's tree but covers [{s}, {e}): the folio was "
                                "not re-pointed.", idx)

    # ------------------------------------------------------------------ linearizability
    def linearize(self, stop):
        """Check every allocation's rcuref operations observed before `stop`.

        Returns the Violation with the smallest event index, or None.  Fills self.final."""
        if not self.on:
            return None
        # operations still open at the stop are pending
        extra = {}
        if self.opn is not None:
            for ti, cur in enumerate(self.opn):
                if cur is not None and cur[2] in ("get", "put") and cur[0] < stop:
                    aid = cur[3] if cur[3] is not None else self.slot_owner.get(cur[1])
                    if aid is not None:
                        extra.setdefault(aid, []).append((cur[0], None, ti - 2, cur[2], None, _NOW))
        best = None
        for aid in range(len(self.a_slot)):
            init = self.a_init[aid]
            ops = self.a_ops[aid]
            if aid in extra:
                ops = ops + extra[aid]
            if init is None or not ops:
                self.final[aid] = {init}
                continue
            ops.sort()
            ok, out = linearize_ops(ops, init)
            if ok:
                self.final[aid] = out
                continue
            v = self.lin_violation(aid, ops, init, out)
            if best is None or v.event_index < best.event_index:
                best = v
        return best

    def lin_violation(self, aid, ops, init, diag):
        i, state, path = diag
        op = ops[i]
        call, ret, t, fn, r, w = op
        ns, er, ew = spec_step(state, fn)
        an = self.an(aid)
        who = f"{_tn(t)}'s {_FN[fn]} on {an} (events {call}..{ret})"
        # who made it dead, in the deepest linearization
        killer = None
        for j in path:
            o = ops[j]
            if o[3] == "put" and o[4]:
                killer = o
        if state == DEAD:
            if killer is not None:
                cause = f"after {_tn(killer[2])}'s vma_put (events {killer[0]}..{killer[1]}) had released it"
            elif self.a_init[aid] == DEAD:
                cause = "although setup preset its counter DEAD"
            else:
                cause = "although it was already released"
            if fn == "get" and r:
                head = f"{who} returned {_res(r, w)} {cause} (counter was DEAD)"
            elif fn == "put" and r:
                head = f"{who} returned true {cause}: a second release of the same VMA"
            else:
                head = (f"{who} returned {_res(r, w)} {cause}; on a DEAD counter the specification "
                        f"gives {_res(er, ew)}")
        elif fn == "put" and r and not er:
            head = f"{who} returned true (last reference dropped) while the VMA still had {_sname(state)}"
        else:
            head = (f"{who} returned {_res(r, w)}, but with {_sname(state)} the rcuref specification "
                    f"gives {_res(er, ew)}")
        # list the operations near the failure
        if len(ops) <= 8:
            shown = ops
            more = ""
        else:
            lo = max(0, i - 4)
            shown = ops[lo:lo + 8]
            more = f", ... ({len(ops)} operations)"
        start = f"starting from {_sname(init)}"
        msg = (f"{head}; no linearization of [{', '.join(_opshort(o) for o in shown)}{more}] "
               f"{start} matches the rcuref specification.")
        return self.viol("not-linearizable", msg, ret if ret is not None else len(self.events))

    # ------------------------------------------------------------------ end state
    def end_state(self, final_counters):
        n_ev = len(self.events)
        for aid in range(len(self.a_slot)):
            an = self.an(aid)
            freed = self.a_free[aid] >= 0
            if freed:
                continue
            if not self.on:
                if self.nholders(aid, True) == 0:
                    raise self.viol("leak",
                                    f"{an} is in no tree and nobody holds it, yet it was never freed"
                                    f"{self.owned(aid)} (leak).", n_ev)
                continue
            finals = self.final.get(aid) or {self.a_init[aid]}
            if len(finals) > 1:
                # any linearization whose final state agrees with the end state will do
                if any(self.end_check_state(aid, s, final_counters, n_ev) is None for s in finals):
                    continue
            st = None if None in finals else min(finals)
            if st is None:
                if self.nholders(aid, True) == 0:
                    raise self.viol("leak", f"{an} was allocated, never initialised and never freed"
                                    f"{self.owned(aid)} (leak).", n_ev)
                continue
            if st == DEAD:
                rel = [o for o in self.a_ops[aid] if o[3] == "put" and o[4]]
                if rel:
                    o = rel[0]
                    how = f"{_tn(o[2])}'s vma_put (events {o[0]}..{o[1]}) released it"
                else:
                    how = "its counter is DEAD"
                raise self.viol("leak", f"{an} is dead ({how}) but was never freed (leak).", n_ev)
            v = self.end_check_state(aid, st, final_counters, n_ev)
            if v is not None:
                raise v

    def end_check_state(self, aid, st, final_counters, n_ev):
        an = self.an(aid)
        slot = self.a_slot[aid]
        v = None
        if st == DEAD:
            v = self.viol("leak", f"{an} is dead but was never freed (leak).", n_ev)
        elif final_counters is not None and slot < len(final_counters) and \
                self.slot_cur.get(slot) == aid and self.slot_owner.get(slot) == aid:
            c = final_counters[slot] & 0xFFFFFFFF
            if st == SAT:
                if not (SAT_LO <= c < RELEASED):
                    v = self.viol("counter-mismatch",
                                  f"{an} ends with raw counter {c:#010x}, but its rcuref history leaves it "
                                  f"SATURATED (expected a value in 0x80000000..0xbfffffff).", n_ev)
            elif c != st - 1:
                v = self.viol("counter-mismatch",
                              f"{an} ends with raw counter {c:#010x}, but its rcuref history leaves "
                              f"{_sname(st)} (expected {st - 1:#010x}): a lost or extra reference.", n_ev)
        if v is None and st != SAT and st != DEAD and self.a_preset[aid] != -1:
            h = self.nholders(aid, True)
            if h != st:
                hs = self.holders(aid, True)
                hd = ", ".join(hs) if hs else "nobody"
                if st > h:
                    v = self.viol("leak",
                                  f"{an} still counts {st} reference{'s' if st != 1 else ''} but only {h} "
                                  f"real holder{'s' if h != 1 else ''} remain ({hd}): "
                                  f"{st - h} reference{'s were' if st - h != 1 else ' was'} never dropped"
                                  f"{self.owned(aid)}, so it can never be freed (leak).", n_ev)
                else:
                    v = self.viol("counter-mismatch",
                                  f"{an} counts only {st} reference{'s' if st != 1 else ''} but has {h} real "
                                  f"holders ({hd}): a reference was dropped by a thread that did not hold it, "
                                  "so the VMA can be freed under a holder.", n_ev)
        return v


class DistinctHistories:
    """Checks each history once: equal histories have equal digests and get the same verdict,
    so the fuzz loop and the blind baselines skip any history they have already judged."""

    def __init__(self, config: dict, limit: int = 1 << 22):
        self.config = config
        self.limit = limit  # bounds memory on week-long campaigns; forgetting only costs re-checks
        self.seen: set[int] = set()
        self.checked = 0

    def judge(self, outcome) -> "Violation | None":
        """The outcome's violation, or None when it holds or its history was judged before."""
        if outcome.digest in self.seen:
            return None
        if len(self.seen) >= self.limit:
            self.seen.clear()
        self.seen.add(outcome.digest)
        self.checked += 1
        try:
            check(outcome.events, self.config, outcome.final_counters)
        except Violation as v:
            return v
        return None


def is_core_panic(error: BaseException) -> bool:
    """A Rust panic reaches Python as pyo3's PanicException (a BaseException): a finding."""
    return type(error).__name__ == "PanicException"


def panic_violation(error: BaseException) -> Violation:
    return Violation("panic", f"the Rust core panicked: {error}", -1, [])


def check(events: list, config: dict, final_counters: list | None = None) -> None:
    """Judge one history.  Raises Violation on the first violation found; returns None if correct."""
    ck = _Checker(events, config)
    first = None
    try:
        ck.run()
    except Violation as v:
        first = v
    stop = first.event_index if first is not None else len(events) + 1
    lv = ck.linearize(stop)
    if lv is not None and (first is None or lv.event_index <= first.event_index):
        raise lv
    if first is not None:
        raise first
    ck.end_state(final_counters)
