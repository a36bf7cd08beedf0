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

A pass of its own over the events, like the debug checks: it needs only which thread holds which
lock, the trees' members and each VMA's recorded root, all plain facts of the history.
"""

from __future__ import annotations

from .violation import Violation, thread_name

KINDS = ("rmap-lock-misuse", "unlocked-range-update", "unlocked-rmap-walk")
_RANGE = frozenset(("vm_start", "vm_end", "vm_pgoff"))


def first_rmap_lock_violation(events: list, config: dict) -> Violation | None:
    """The first violation of rule 10, or None (always None under `rmap_lock=none`)."""
    if config.get("rmap_lock", "none") != "rwsem":
        return None
    writer: dict = {}      # slot -> thread holding its rwsem for write
    readers: dict = {}     # slot -> {thread: read acquisitions held}
    root: dict = {}        # slot -> slot of its root
    in_tree: dict = {}     # slot -> number of mms whose tree holds it
    mmap_held: dict = {}   # thread -> mmap_lock acquisitions held

    def viol(kind, msg, idx):
        return Violation(kind, msg, idx, events)

    def holds(t, slot, write_only):
        r = root.get(slot, slot)
        return writer.get(r) == t or (not write_only and readers.get(r, {}).get(t, 0) > 0), r

    for idx, ev in enumerate(events):
        k = ev[0]
        t = ev[1]
        if k == "rmap_lock":
            slot, mode = ev[2], ev[3]
            if writer.get(slot) is not None or (mode == "write" and any(readers.get(slot, {}).values())):
                holder = writer.get(slot)
                held = (f"{thread_name(holder)} holds it for write" if holder is not None
                        else "readers hold it")
                raise viol("rmap-lock-misuse",
                           f"{thread_name(t)} took the rmap rwsem of VMA slot {slot} for {mode} while {held}.", idx)
            if mode == "write":
                writer[slot] = t
            else:
                r = readers.setdefault(slot, {})
                r[t] = r.get(t, 0) + 1
        elif k == "rmap_unlock":
            slot, mode = ev[2], ev[3]
            if mode == "write":
                ok = writer.get(slot) == t
                if ok:
                    writer[slot] = None
            else:
                r = readers.get(slot, {})
                ok = r.get(t, 0) > 0
                if ok:
                    r[t] -= 1
            if not ok:
                raise viol("rmap-lock-misuse",
                           f"{thread_name(t)} released the rmap rwsem of VMA slot {slot} ({mode}) without holding it.",
                           idx)
        elif k == "lock":
            mmap_held[t] = mmap_held.get(t, 0) + 1
        elif k == "unlock":
            mmap_held[t] = mmap_held.get(t, 0) - 1
        elif k == "alloc":
            root[ev[2]] = ev[2]
            in_tree[ev[2]] = 0
        elif k == "tree_insert":
            in_tree[ev[3]] = in_tree.get(ev[3], 0) + 1
        elif k == "tree_remove":
            in_tree[ev[3]] = max(0, in_tree.get(ev[3], 0) - 1)
        elif k == "write" and t >= 0:
            slot, field = ev[2], ev[3]
            if field == "vm_root":
                root[slot] = ev[4] - 1 if ev[4] else slot
            elif field in _RANGE and in_tree.get(slot, 0) > 0:
                ok, r = holds(t, slot, write_only=True)
                if not ok:
                    raise viol("unlocked-range-update",
                               f"{thread_name(t)} wrote {field} of VMA slot {slot}, which walkers can reach "
                               f"(it is in a tree), without holding the rmap rwsem of its root (slot {r}) "
                               "for write.", idx)
        elif (k == "read" and ev[3] in _RANGE or k == "use") and t >= 0 and mmap_held.get(t, 0) <= 0:
            ok, r = holds(t, ev[2], write_only=False)
            if not ok:
                what = f"read {ev[3]} of" if k == "read" else f"used folio {ev[3]} through"
                raise viol("unlocked-rmap-walk",
                           f"{thread_name(t)} {what} VMA slot {ev[2]} holding neither the mmap_lock nor "
                           f"the rmap rwsem of its root (slot {r}).", idx)
    return None
