"""Rule 7: the VMA invariants, whenever no write lock is held (after setup, after every op that
changed a tree, a VMA's range or a folio mapping, and at the end).

Each tree is sorted and non-overlapping with start < end and start == pgoff (anonymous VMAs keep
vm_start - vm_pgoff * PAGE_SIZE == 0), and every folio whose mapping names an allocation that is
still in mm 0's tree lies inside that VMA (with `mapping=root` instead: the root of every VMA in
mm 0's tree, which its folios name, has not been freed).  A stale mapping to a freed or reused slot is legal:
munmap never clears it, and that is what the reverse-map reader races against.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .violation import thread_name

if TYPE_CHECKING:
    from .history import History


def _when(h: History, idx: int, op_end: tuple | None) -> str:
    if op_end is not None:
        return f"after {thread_name(op_end[1])}'s op {op_end[2]}"
    return "at the end" if idx == len(h.events) else "after setup"


def check_vmas(h: History, idx: int, op_end: tuple | None) -> None:
    """Checked after setup, after the op that `op_end` ends, and at the end (idx: the number of
    events).  The words that say when are built only for a violation: most checks find none."""
    allocs = h.allocs
    for mm in range(2):
        tr = h.trees[mm]
        ents = []
        for slot in range(h.nslots):
            aid = tr[slot]
            if aid < 0:
                continue
            vma = allocs[aid]
            s = vma.start
            e = vma.end
            p = vma.pgoff
            if s is None or e is None:
                continue
            if not s < e:
                raise h.viol("vma-invariant",
                             f"{_when(h, idx, op_end)} (event {idx}), mm {mm}'s tree holds {h.an(aid)} with an empty "
                             f"range [{s}, {e}).", idx)
            if p is not None and s != p:
                raise h.viol("vma-invariant",
                             f"{_when(h, idx, op_end)} (event {idx}), mm {mm}'s tree holds {h.an(aid)} = [{s}, {e}) "
                             f"with vm_pgoff {p}: vm_start - vm_pgoff*PAGE_SIZE is {s - p}, not 0 "
                             "(pgoff did not move with vm_start).", idx)
            ents.append((s, e, aid))
        if len(ents) < 2:  # no pair that could overlap: nothing to sort
            continue
        ents.sort()
        for j in range(1, len(ents)):
            if ents[j][0] < ents[j - 1][1]:
                a, b = ents[j - 1], ents[j]
                raise h.viol("vma-invariant",
                             f"{_when(h, idx, op_end)} (event {idx}), mm {mm}'s tree has overlapping VMAs "
                             f"{h.an(a[2])} = [{a[0]}, {a[1]}) and {h.an(b[2])} = [{b[0]}, {b[1]}).",
                             idx)
    if h.root_policy:
        # The folios keep naming the root: it must outlive every VMA that covers them.
        tr0 = h.trees[0]
        for slot in range(h.nslots):
            aid = tr0[slot]
            if aid < 0:
                continue
            root = allocs[aid].root
            if root is not None and allocs[root].free >= 0:
                raise h.viol("vma-invariant",
                             f"{_when(h, idx, op_end)} (event {idx}), mm 0's tree holds {h.an(aid)}, whose root "
                             f"{h.an(root)} was freed at event {allocs[root].free}: the folios they share "
                             "name freed memory.", idx)
        return
    page = _misplaced_folio(h)
    if page >= 0:
        aid = h.mapped[page]
        s = allocs[aid].start
        e = allocs[aid].end
        raise h.viol("vma-invariant",
                     f"{_when(h, idx, op_end)} (event {idx}), folio {page}'s mapping (stored at event "
                     f"{h.mapped_at[page]}) names "
                     f"{h.an(aid)}, which is in mm 0's tree but covers [{s}, {e}): the folio was "
                     "not re-pointed.", idx)


def _misplaced_folio(h: History) -> int:
    """The lowest page whose folio's mapping names a VMA in mm 0's tree (at its own slot, with its
    range set) that does not cover it, -1 for none: the only VMAs a folio's mapping can name
    wrongly.  Nothing is built: most checks find nothing."""
    allocs = h.allocs
    mapped = h.mapped
    for page in range(h.npages):
        aid = mapped[page]
        if aid < 0:
            continue
        a = allocs[aid]
        # in mm 0's tree at its own slot (the pass keeps each allocation's tree bits so)
        if not a.trees & 1:
            continue
        s = a.start
        e = a.end
        if s is not None and e is not None and not (s <= page < e):
            return page
    return -1
