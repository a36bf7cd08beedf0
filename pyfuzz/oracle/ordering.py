"""Rule 4: ordering.  Every plain access to an allocation by another thread happens-before its
free; otherwise the free races with it (a data race on freed memory, whatever the counter says).

Happens-before is tracked with vector clocks over: program order, the mmap_lock (unlock to the
next lock), release/acquire atomics on a counter with release sequences (a relaxed RMW continues
the sequence), the acquire fence after a control dependency (smp_acquire__after_ctrl_dep, which
upgrades the relaxed loads before it), the folio mapping's release store and acquire load, the
slab (a free orders the next allocation of the slot) and grace periods (the end of every section
that was active at a deferred free orders the reclaim).  Epochs start at 1, so another thread's
initial view (0) orders nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from .kinds import SLOTS, bound
from .violation import thread_name

if TYPE_CHECKING:
    from .history import Allocation, History

_REL: Final = frozenset(("release", "acq_rel", "seq_cst"))
_ACQ: Final = frozenset(("acquire", "acq_rel", "seq_cst"))
_RMW: Final = frozenset(("add", "sub", "cas_ok"))


# A list item's `+= 1` is written out below: the compiled build runs `x[i] += 1` on a list as a
# generic in-place add on boxed ints, `x[i] = x[i] + 1` as a native one.


def join(clock: list[int], other: list[int]) -> None:
    """clock := the pointwise maximum of clock and other (vector-clock join, in place). Most
    joins find the clock already ahead, so comparing before storing is the fast path."""
    for j, c in enumerate(other):
        if c > clock[j]:
            clock[j] = c


class HappensBefore:
    __deletable__ = ("h",)  # History.close drops it (mypyc keeps attributes undeletable otherwise)

    def __init__(self, h: History, nthreads: int):
        self.h = h
        # per thread index (thread + 2); `range` written out in each loop, which the compiled
        # build turns into a C loop (a range object in a variable is iterated generically)
        zero = [0] * nthreads
        self.clocks: list[list[int]] = [zero[:] for _ in range(nthreads)]  # (a copy is cheaper than a repeat)
        for j in range(nthreads):
            self.clocks[j][j] = 1
        self.pending_acquire: list[list[int] | None] = [None] * nthreads  # relaxed loads' views, until a fence
        self.section_end: list[list[int] | None] = self.pending_acquire[:]  # view at the end of each thread's last section
        # by slot (0..SLOTS-1): the view released into its counter (release sequence), or None;
        # `reset` sets back those below `nslots`
        self.counter: list[list[int] | None] = [None] * SLOTS
        self.nslots = 0
        self.mapping: dict[int, list[int]] = {}  # page -> view released by the last mapping store
        self.slab: dict[int, list[int]] = {}     # slot -> view of the last free (typesafe) or reclaim (deferred)
        self.lock: list[int] | None = None       # view of the last mmap_lock release
        # per allocation, for each thread index u: at 2u the event index of u's latest access (-1:
        # none), at 2u + 1 u's own epoch then (a flat list: no tuple, no dictionary per access)
        self.accesses: list[list[int]] = []
        self.nthreads = nthreads
        self.unaccessed = [-1, 0] * nthreads  # an allocation's accesses before any (copied: cheaper than a repeat)
        self.free_view: list[Any] = []  # per allocation: the freer's view at the free (deferred slab)

    def reset(self) -> None:
        """For the History's next history (`History.start`): each thread's clock back to its
        first epoch, and nothing released yet."""
        n = self.nthreads
        pa = self.pending_acquire
        ends = self.section_end
        for i in range(n):
            C = self.clocks[i]
            for j in range(n):
                C[j] = 0
            C[i] = 1
            pa[i] = None
            ends[i] = None
        counter = self.counter
        for j in range(self.nslots):
            counter[j] = None
        self.nslots = 0
        self.mapping.clear()
        self.slab.clear()
        self.lock = None
        self.accesses.clear()
        self.free_view.clear()

    def allocated(self, a: Allocation) -> None:
        self.accesses.append(self.unaccessed[:])
        self.free_view.append(None)

    def accessed(self, aid: int, ti: int, idx: int) -> None:
        acc = self.accesses[aid]
        acc[2 * ti] = idx
        acc[2 * ti + 1] = self.clocks[ti][ti]

    def atomic(self, ti: int, slot: int, op: str, order: str) -> None:
        C = self.clocks[ti]
        rel = order in _REL
        if op == "store":
            self.release(slot, C[:] if rel else None)
        else:
            counter = self.counter
            lc = counter[slot] if 0 <= slot < len(counter) else None
            if lc is not None:
                if order in _ACQ:
                    join(C, lc)
                else:
                    pa = self.pending_acquire[ti]
                    if pa is None:
                        self.pending_acquire[ti] = lc[:]
                    else:
                        join(pa, lc)
            if rel and op in _RMW:
                if lc is None:
                    self.release(slot, C[:])
                else:
                    join(lc, C)
        if rel:
            C[ti] = C[ti] + 1

    def release(self, slot: int, view: list[int] | None) -> None:
        if slot >= self.nslots or slot < 0:
            bound(slot, "VMA slot")
            self.nslots = slot + 1
        self.counter[slot] = view

    def fence(self, ti: int) -> None:
        pa = self.pending_acquire[ti]
        if pa is not None:
            join(self.clocks[ti], pa)
            self.pending_acquire[ti] = None

    def locked(self, ti: int) -> None:
        if self.lock is not None:
            join(self.clocks[ti], self.lock)

    def unlocked(self, ti: int) -> None:
        C = self.clocks[ti]
        if self.lock is None:
            self.lock = C[:]
        else:
            join(self.lock, C)
        C[ti] = C[ti] + 1

    def section_ended(self, ti: int) -> None:
        C = self.clocks[ti]
        self.section_end[ti] = C[:]
        C[ti] = C[ti] + 1

    def mapping_stored(self, ti: int, page: int) -> None:
        C = self.clocks[ti]
        self.mapping[page] = C[:]
        C[ti] = C[ti] + 1

    def mapping_loaded(self, ti: int, page: int) -> None:
        mc = self.mapping.get(page)
        if mc is not None:
            join(self.clocks[ti], mc)

    def allocating(self, ti: int, slot: int) -> None:
        sc = self.slab.get(slot)
        if sc is not None:
            join(self.clocks[ti], sc)

    def check_free(self, a: Allocation, t: int, idx: int) -> None:
        ti = t + 2
        C = self.clocks[ti]
        # the earliest unordered access is reported (each thread's latest access is kept)
        first = -1
        uti = -1
        acc = self.accesses[a.aid]
        for u in range(self.nthreads):
            eidx = acc[2 * u]
            if eidx >= 0 and u != ti and C[u] < acc[2 * u + 1] and (first < 0 or eidx < first):
                first = eidx
                uti = u
        if first >= 0:
            h = self.h
            e = h.events[first]
            what = f"{e[0]} of {e[3]}" if e[0] != "use" else f"use of page {e[3]}"
            raise h.viol(
                "data-race",
                f"{thread_name(uti - 2)}'s {what} of {h.an(a.aid)} at event {first} does not happen-before "
                f"{thread_name(t)}'s free of it at event {idx}: no release/acquire chain orders them "
                "(data race).", idx)

    def freed(self, a: Allocation, ti: int) -> None:
        C = self.clocks[ti]
        if self.h.deferred:
            self.free_view[a.aid] = C[:]
        else:
            self.slab[a.slot] = C[:]
        C[ti] = C[ti] + 1

    def reclaimed(self, a: Allocation, ti: int, waited: dict[int, int]) -> None:
        C = self.clocks[ti]
        fc = self.free_view[a.aid]
        if fc is not None:
            join(C, fc)
        for j in waited:
            end = self.section_end[j]
            if end is not None:
                join(C, end)
        self.slab[a.slot] = C[:]
        C[ti] = C[ti] + 1
