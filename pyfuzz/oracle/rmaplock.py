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

Fed by the pass's branches, a typed call for each event of `EVENTS` ahead of the other rules
that read it (`see` dispatches one by its kind for the one case the pass needs it), it needs
only which thread holds which lock, the trees' members and each VMA's recorded root, all plain
facts of the history, and keeps its first violation without stopping the pass.  The
mmap_lock's holders are a fact the pass keeps for it (`History.mmap_held`, counted at every lock
and unlock before any later event is judged), so the lock events are not fed to it one by one.
"""

from __future__ import annotations

from typing import Final, cast

from .kinds import (K_ALLOC, K_READ, K_RMAP_LOCK, K_RMAP_UNLOCK, K_TREE_INSERT, K_TREE_REMOVE, K_USE,
                    K_WRITE, SLOTS, THREAD_INDICES, bound)
from .violation import Violation, thread_name

KINDS = ("rmap-lock-misuse", "unlocked-range-update", "unlocked-rmap-walk")
# The events the rules read (the mmap_lock's holders are the pass's `History.mmap_held`).
EVENTS: Final = ("rmap_lock", "rmap_unlock", "alloc", "tree_insert", "tree_remove", "write", "read", "use")


def _is_range(field: str) -> bool:
    # literal compares: the compiled build tests the interned strings by identity, where a set
    # membership test hashes and probes
    return field == "vm_start" or field == "vm_end" or field == "vm_pgoff"


# No thread (threads are -2 and up): an int, where None would make every compare a generic one.
NOBODY: Final = -3


class _Slot:
    """What the rules know of one slot: its rwsem's holders and the VMA in it.  One record per
    slot, so that an event costs one probe, not one per fact; kept from one history to the next
    and renewed at the slot's first event (`RmapLock.slot`)."""

    __slots__ = ("writer", "readers", "root", "in_tree")

    def __init__(self, slot: int):
        self.renew(slot)

    def renew(self, slot: int) -> None:
        """Every field as a new record's (tests/test_oracle.py compares one renewed with one built)."""
        self.writer = NOBODY                   # the thread holding the rwsem for write
        self.readers: list[int] | None = None  # read acquisitions held, per thread index (thread + 2)
        self.root = slot                       # the slot of the VMA's root
        self.in_tree = 0                       # number of mms whose tree holds the VMA


class RmapLock:
    def __init__(self, config: dict, mmap_held: list[int]):
        self.events: list = []
        self.on = config.get("rmap_lock", "none") == "rwsem"  # without the rwsem there is nothing to judge
        # by slot (the slots the pass takes, 0..255: a list probe, not a dictionary's), its
        # record, None until an event of the slot; `start` sets back those below `nslots`
        self.slots: list[_Slot | None] = [None] * SLOTS
        self.nslots = 0
        # by slot, the record it had in an earlier history, kept to be renewed
        self.made: list[_Slot | None] = [None] * SLOTS
        self.mmap_held = mmap_held                    # per thread index: mmap_lock acquisitions held
        self.found: Violation | None = None           # the first violation

    def reset(self, events: list) -> None:
        """For the History's next history (`History.start`)."""
        self.events = events
        slots = self.slots
        for j in range(self.nslots):
            slots[j] = None
        self.nslots = 0
        self.found = None

    def get(self, slot: int) -> _Slot | None:
        slots = self.slots
        return slots[slot] if slot < len(slots) and slot >= 0 else None

    def slot(self, slot: int) -> _Slot:
        s = self.get(slot)
        if s is None:
            bound(slot, "VMA slot")
            s = self.made[slot]
            if s is None:
                s = self.made[slot] = _Slot(slot)
            else:
                s.renew(slot)
            self.slots[slot] = s
            if slot >= self.nslots:
                self.nslots = slot + 1
        return s

    def root(self, slot: int, s: _Slot | None) -> _Slot | None:
        """The record of the root of the VMA in `slot` (whose record is s): most VMAs are their own."""
        if s is None:
            return None
        return s if s.root == slot else self.get(s.root)

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

    def report(self, v: Violation) -> None:
        if self.found is None:
            self.found = v

    # The pass calls these at the events of `EVENTS` (before any other rule reads the event).

    def read(self, idx: int, t: int, slot: int, field: str) -> None:
        """A read of a field by program thread t, which holds no mmap_lock: a walker."""
        if _is_range(field) and not self.may_walk(t, slot):
            self.report(self.unlocked_walk(idx, t, slot, f"read {field} of"))

    def used(self, idx: int, t: int, slot: int, page: int) -> None:
        """A use of a folio through a VMA by program thread t, which holds no mmap_lock: a walker."""
        if not self.may_walk(t, slot):
            self.report(self.unlocked_walk(idx, t, slot, f"used folio {page} through"))

    def may_walk(self, t: int, slot: int) -> bool:
        return self.holds(t, self.root(slot, self.get(slot)), False)

    def unlocked_walk(self, idx: int, t: int, slot: int, how: str) -> Violation:
        s = self.get(slot)
        rs = s.root if s is not None else slot
        return Violation("unlocked-rmap-walk",
                         f"{thread_name(t)} {how} VMA slot {slot} holding neither the mmap_lock nor "
                         f"the rmap rwsem of its root (slot {rs}).", idx, self.events)

    def written(self, idx: int, t: int, slot: int, field: str, value: object) -> None:
        """A write of a field by program thread t."""
        if field == "vm_root":
            root = cast(int, value)  # (vm_root holds a slot + 1, or 0)
            self.slot(slot).root = root - 1 if root else slot
        elif _is_range(field):
            s = self.get(slot)
            if s is not None and s.in_tree > 0 and not self.holds(t, self.root(slot, s), True):
                self.report(Violation("unlocked-range-update",
                                      f"{thread_name(t)} wrote {field} of VMA slot {slot}, which walkers can reach "
                                      f"(it is in a tree), without holding the rmap rwsem of its root (slot {s.root}) "
                                      "for write.", idx, self.events))

    def locked(self, idx: int, t: int, slot: int, mode: str) -> None:
        s = self.slot(slot)
        holder = s.writer
        held_by = s.readers
        if holder != NOBODY or (mode == "write" and held_by is not None and any(held_by)):
            held = (f"{thread_name(holder)} holds it for write" if holder != NOBODY
                    else "readers hold it")
            self.report(Violation("rmap-lock-misuse",
                                  f"{thread_name(t)} took the rmap rwsem of VMA slot {slot} for {mode} while {held}.",
                                  idx, self.events))
            return
        if mode == "write":
            s.writer = t
        else:
            if held_by is None:
                held_by = s.readers = [0] * THREAD_INDICES
            # (`x[i] = x[i] + 1`: the compiled build runs `x[i] += 1` as a generic in-place add)
            held_by[t + 2] = held_by[t + 2] + 1

    def unlocked(self, idx: int, t: int, slot: int, mode: str) -> None:
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
            self.report(Violation("rmap-lock-misuse",
                                  f"{thread_name(t)} released the rmap rwsem of VMA slot {slot} ({mode}) without "
                                  "holding it.", idx, self.events))

    def allocated(self, slot: int) -> None:
        s = self.slot(slot)
        s.root = slot
        s.in_tree = 0

    def inserted(self, slot: int) -> None:
        s = self.slot(slot)
        s.in_tree = s.in_tree + 1

    def removed(self, slot: int) -> None:
        s = self.slot(slot)
        s.in_tree = max(0, s.in_tree - 1)

    def see(self, idx: int, kind: int, ev: tuple) -> None:
        """One event of `EVENTS` by its kind, as the pass's branches feed them: for the first event
        after setup, when the setup invariants fail before its branch runs (`History.run`)."""
        t: int = ev[1]
        if kind == K_READ or kind == K_USE:
            if t >= 0 and self.mmap_held[t + 2] <= 0:
                if kind == K_READ:
                    self.read(idx, t, ev[2], ev[3])
                else:
                    self.used(idx, t, ev[2], ev[3])
        elif kind == K_WRITE:
            if t >= 0:
                self.written(idx, t, ev[2], ev[3], ev[4])
        elif kind == K_RMAP_LOCK:
            self.locked(idx, t, ev[2], ev[3])
        elif kind == K_RMAP_UNLOCK:
            self.unlocked(idx, t, ev[2], ev[3])
        elif kind == K_ALLOC:
            self.allocated(ev[2])
        elif kind == K_TREE_INSERT:
            self.inserted(ev[3])
        elif kind == K_TREE_REMOVE:
            self.removed(ev[3])
