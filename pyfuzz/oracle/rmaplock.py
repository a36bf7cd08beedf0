"""Rule 10, `rmap_lock=rwsem`: the reverse-map walker's lock, from the kernel's rules for it.

In the kernel, a VMA that walkers can reach (one in an mm's tree) has its `vm_start`, `vm_end`
and `vm_pgoff` changed only between `vma_prepare` and `vma_complete`, with the mmap_lock held for
write *and* the root anon_vma's rwsem held for write (mm/vma.c: the entire update must be
protected by both), and an rmap walker reads them and acts on the folio holding that rwsem for
read (`folio_lock_anon_vma_read`, `rmap_walk_anon`).  With `rmap_lock=rwsem` the lazy walker's
lock is the rwsem of the VMA the folio names, the root (under `mapping=repoint` every VMA is its
own root; under `mapping=root` a VMA cut from a root records it in `vm_root`).  So:

* `rmap-lock-misuse`: an rwsem held for write by two threads, or for write and read at once, or
  released by a thread that does not hold it in that mode;
* `unlocked-range-update`: a write of a range field of a VMA in a tree by a thread that does not
  hold the VMA's root's rwsem for write;
* `unlocked-rmap-walk`: a range read, or a use of a folio through a VMA, by a thread holding no
  mmap_lock (a walker) without the VMA's root's rwsem.

Fed by the pass like the debug checks (the events of `EVENTS`, ahead of the other rules), it
needs only which thread holds which lock, the trees' members and each VMA's recorded root, all
plain facts of the history, and keeps its first violation without stopping the pass.  The
mmap_lock's holders are a fact the pass keeps for it (`History.mmap_held`, counted at every lock
and unlock before any later event is judged), so the lock events are not fed to it one by one.
"""

from __future__ import annotations

from typing import Final

from .kinds import (K_ALLOC, K_READ, K_RMAP_LOCK, K_RMAP_UNLOCK, K_TREE_INSERT, K_TREE_REMOVE, K_USE,
                    K_WRITE, THREAD_INDICES, kind_mask)
from .violation import Violation, thread_name

KINDS = ("rmap-lock-misuse", "unlocked-range-update", "unlocked-rmap-walk")
# The events the rules read.
# The events the rules read (the mmap_lock's holders are the pass's `History.mmap_held`).
EVENTS: Final = ("rmap_lock", "rmap_unlock", "alloc", "tree_insert", "tree_remove", "write", "read", "use")
EVENT_MASK: Final = kind_mask(EVENTS)


def _is_range(field: str) -> bool:
    # literal compares: the compiled build tests the interned strings by identity, where a set
    # membership test hashes and probes
    return field == "vm_start" or field == "vm_end" or field == "vm_pgoff"


# No thread (threads are -2 and up): an int, where None would make every compare a generic one.
NOBODY: Final = -3


class _Slot:
    """What the rules know of one slot: its rwsem's holders and the VMA in it.  One record per
    slot, so that an event costs one dictionary probe, not one per fact."""

    __slots__ = ("writer", "readers", "root", "in_tree")

    def __init__(self, slot: int):
        self.writer = NOBODY                   # the thread holding the rwsem for write
        self.readers: list[int] | None = None  # read acquisitions held, per thread index (thread + 2)
        self.root = slot                       # the slot of the VMA's root
        self.in_tree = 0                       # number of mms whose tree holds the VMA


class RmapLock:
    def __init__(self, config: dict, mmap_held: list[int]):
        self.events: list = []
        self.on = config.get("rmap_lock", "none") == "rwsem"  # without the rwsem there is nothing to judge
        self.slots: dict[int, _Slot] = {}
        self.mmap_held = mmap_held                    # per thread index: mmap_lock acquisitions held
        self.found: Violation | None = None           # the first violation

    def reset(self, events: list) -> None:
        """For the History's next history (`History.start`)."""
        self.events = events
        self.slots.clear()
        self.found = None

    def see(self, idx: int, kind: int, ev: tuple) -> None:
        """Judge one event of `EVENTS` (`kind`: its kinds.KIND); the first violation is kept in `found`."""
        if self.found is None:
            self.found = self.judge(idx, kind, ev)

    def slot(self, slot: int) -> _Slot:
        s = self.slots.get(slot)
        if s is None:
            s = self.slots[slot] = _Slot(slot)
        return s

    def root(self, slot: int, s: _Slot | None) -> _Slot | None:
        """The record of the root of the VMA in `slot` (whose record is s): most VMAs are their own."""
        if s is None:
            return None
        return s if s.root == slot else self.slots.get(s.root)

    def holds(self, t: int, s: _Slot | None, write_only: bool) -> bool:
        """Whether t holds the rwsem whose record is s (for write, or in either mode)."""
        if s is None:
            return False
        if s.writer == t:
            return True
        if write_only:
            return False
        held = s.readers
        return held is not None and held[t + 2] > 0

    def judge(self, idx: int, kind: int, ev: tuple) -> Violation | None:
        t: int = ev[1]
        if kind == K_READ or kind == K_USE:
            # a thread holding the mmap_lock (or setup) is no walker: most reads end here
            if t < 0 or self.mmap_held[t + 2] > 0:
                return None
            slot: int = ev[2]
            if kind == K_READ:
                field: str = ev[3]
                if not _is_range(field):
                    return None
            s = self.slots.get(slot)
            rs = s.root if s is not None else slot
            if not self.holds(t, self.root(slot, s), False):
                what = f"read {ev[3]} of" if kind == K_READ else f"used folio {ev[3]} through"
                return Violation("unlocked-rmap-walk",
                                 f"{thread_name(t)} {what} VMA slot {slot} holding neither the mmap_lock nor "
                                 f"the rmap rwsem of its root (slot {rs}).", idx, self.events)
        elif kind == K_WRITE:
            if t < 0:
                return None
            slot = ev[2]
            field = ev[3]
            if field == "vm_root":
                value: int = ev[4]
                self.slot(slot).root = value - 1 if value else slot
            elif _is_range(field):
                s = self.slots.get(slot)
                if s is not None and s.in_tree > 0 and not self.holds(t, self.root(slot, s), True):
                    return Violation("unlocked-range-update",
                                     f"{thread_name(t)} wrote {field} of VMA slot {slot}, which walkers can reach "
                                     f"(it is in a tree), without holding the rmap rwsem of its root (slot {s.root}) "
                                     "for write.", idx, self.events)
        elif kind == K_RMAP_LOCK:
            slot = ev[2]
            mode: str = ev[3]
            s = self.slot(slot)
            holder = s.writer
            held_by = s.readers
            if holder != NOBODY or (mode == "write" and held_by is not None and any(held_by)):
                held = (f"{thread_name(holder)} holds it for write" if holder != NOBODY
                        else "readers hold it")
                return Violation("rmap-lock-misuse",
                                 f"{thread_name(t)} took the rmap rwsem of VMA slot {slot} for {mode} while {held}.",
                                 idx, self.events)
            if mode == "write":
                s.writer = t
            else:
                if held_by is None:
                    held_by = s.readers = [0] * THREAD_INDICES
                # (`x[i] = x[i] + 1`: the compiled build runs `x[i] += 1` as a generic in-place add)
                held_by[t + 2] = held_by[t + 2] + 1
        elif kind == K_RMAP_UNLOCK:
            slot = ev[2]
            mode = ev[3]
            s = self.slot(slot)
            if mode == "write":
                ok = s.writer == t
                if ok:
                    s.writer = NOBODY
            else:
                r = s.readers
                ok = r is not None and r[t + 2] > 0
                if ok and r is not None:
                    r[t + 2] = r[t + 2] - 1
            if not ok:
                return Violation("rmap-lock-misuse",
                                 f"{thread_name(t)} released the rmap rwsem of VMA slot {slot} ({mode}) without "
                                 "holding it.", idx, self.events)
        elif kind == K_ALLOC:
            slot = ev[2]
            s = self.slot(slot)
            s.root = slot
            s.in_tree = 0
        elif kind == K_TREE_INSERT:
            self.slot(ev[3]).in_tree += 1
        elif kind == K_TREE_REMOVE:
            s = self.slot(ev[3])
            s.in_tree = max(0, s.in_tree - 1)
        return None
