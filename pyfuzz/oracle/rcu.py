"""Rule 3: memory safety under RCU.

An access to an allocation after its free is legal only from inside a read-side section
(rcu_read_lock, or preemption disabled) that began before the free and has not ended since: that
section is what keeps the memory from being reused (SLAB_TYPESAFE_BY_RCU keeps the slab page,
the deferred free keeps the object itself).  With the deferred slab, the grace period may end
(`reclaim`) only after every section active at the free has ended, and the slab may hand the slot
out again only after that.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .violation import thread_name

if TYPE_CHECKING:
    from .history import Allocation, History


class ReadSideSections:
    __deletable__ = ("h",)  # History.close drops it (mypyc keeps attributes undeletable otherwise)

    def __init__(self, h: History, nthreads: int):
        self.h = h
        self.since = [-1] * nthreads  # per thread index: where its outermost section began, or -1
        self.nrcu = [0] * nthreads
        self.npreempt = self.nrcu[:]  # (a copy is cheaper than a repeat)
        self.wait: list[dict[int, int] | None] = []  # per allocation: {thread index: section start} at its free

    def reset(self) -> None:
        """For the History's next history (`History.start`)."""
        since = self.since
        nrcu = self.nrcu
        npreempt = self.npreempt
        for j in range(len(since)):
            since[j] = -1
            nrcu[j] = 0
            npreempt[j] = 0
        self.wait.clear()

    def allocated(self, a: Allocation) -> None:
        self.wait.append(None)

    def enter(self, ti: int, idx: int, rcu: bool) -> None:
        if self.since[ti] < 0:
            self.since[ti] = idx
        # (`x[i] = x[i] + 1`: the compiled build runs `x[i] += 1` as a generic in-place add)
        if rcu:
            self.nrcu[ti] = self.nrcu[ti] + 1
        else:
            self.npreempt[ti] = self.npreempt[ti] + 1

    def leave(self, ti: int, rcu: bool) -> bool:
        """True when this ends the thread's outermost section."""
        if rcu:
            if self.nrcu[ti] > 0:
                self.nrcu[ti] = self.nrcu[ti] - 1
        elif self.npreempt[ti] > 0:
            self.npreempt[ti] = self.npreempt[ti] - 1
        if self.nrcu[ti] == 0 and self.npreempt[ti] == 0 and self.since[ti] >= 0:
            self.since[ti] = -1
            return True
        return False

    def check_access(self, a: Allocation, t: int, ti: int, idx: int, what: str) -> None:
        """Called for an access to an allocation that was freed."""
        s = self.since[ti]
        if s < 0 or s > a.free:
            h = self.h
            extra = f" and the grace period reclaimed it at event {a.reclaim}" if a.reclaim >= 0 else ""
            if s < 0:
                sec = f"{thread_name(t)} is not inside any read-side section (rcu_read_lock or preemption disabled)"
            else:
                sec = f"{thread_name(t)}'s read-side section only began at event {s}, after the free"
            raise h.viol(
                "use-after-free",
                f"{thread_name(t)}'s {what} {h.an(a.aid)} at event {idx} touches memory that "
                f"{thread_name(a.freer)} freed at event {a.free}{extra}; {sec}.", idx)

    def check_reuse(self, old: Allocation | None, t: int, slot: int, gen: int, idx: int) -> None:
        if old is not None and self.h.deferred and old.reclaim < 0:
            raise self.h.viol(
                "bad-reclaim",
                f"the slab handed VMA slot {slot} to {thread_name(t)} as gen {gen}, but the deferred free of "
                f"{self.h.an(old.aid)} at event {old.free} has not been reclaimed by a grace period.",
                idx)

    def freed(self, a: Allocation) -> None:
        if self.h.deferred:
            self.wait[a.aid] = {j: s for j, s in enumerate(self.since) if s >= 0}

    def waited(self, aid: int) -> dict[int, int]:
        """The sections a deferred free of aid waits for (typed, so that the compiled build
        iterates it natively)."""
        w = self.wait[aid]
        assert w is not None, "a deferred free records the sections it waits for"
        return w

    def check_reclaim(self, slot: int, gen: int, idx: int) -> Allocation:
        """The grace-period rules; returns the allocation reclaimed."""
        h = self.h
        a = h.find(slot, gen)
        if not h.deferred:
            raise h.viol("bad-reclaim",
                         f"the RCU callback reclaimed VMA slot {slot} gen {gen} at event {idx}, but the slab is "
                         "SLAB_TYPESAFE_BY_RCU: there are no deferred frees to reclaim.", idx)
        if a is None or a.free < 0:
            raise h.viol("bad-reclaim",
                         f"the RCU callback reclaimed VMA slot {slot} gen {gen} at event {idx}, which was never freed.", idx)
        if a.reclaim >= 0:
            raise h.viol("bad-reclaim",
                         f"the RCU callback reclaimed VMA slot {slot} gen {gen} at event {idx} a second time "
                         f"(first at event {a.reclaim}).", idx)
        # (`freed` filled it by thread index: in order)
        for j, s in self.waited(a.aid).items():
            if self.since[j] == s:
                raise h.viol(
                    "bad-reclaim",
                    f"the grace period for VMA slot {slot} gen {gen} (freed by {thread_name(a.freer)} at event "
                    f"{a.free}) ended at event {idx} while {thread_name(j - 2)} is still inside the "
                    f"read-side section it entered at event {s}.", idx)
        return a
