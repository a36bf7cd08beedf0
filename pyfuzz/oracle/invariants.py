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

if TYPE_CHECKING:
    from .history import History


def check_vmas(h: History, idx: int, when: str) -> None:
    allocs = h.allocs
    for mm in (0, 1):
        tr = h.trees.get(mm)
        if not tr:
            continue
        ents = []
        for slot, aid in tr.items():
            s, e, p = allocs[aid].fields
            if s is None or e is None:
                continue
            if not s < e:
                raise h.viol("vma-invariant",
                             f"{when} (event {idx}), mm {mm}'s tree holds {h.an(aid)} with an empty "
                             f"range [{s}, {e}).", idx)
            if p is not None and s != p:
                raise h.viol("vma-invariant",
                             f"{when} (event {idx}), mm {mm}'s tree holds {h.an(aid)} = [{s}, {e}) "
                             f"with vm_pgoff {p}: vm_start - vm_pgoff*PAGE_SIZE is {s - p}, not 0 "
                             "(pgoff did not move with vm_start).", idx)
            ents.append((s, e, aid))
        ents.sort()
        for j in range(1, len(ents)):
            if ents[j][0] < ents[j - 1][1]:
                a, b = ents[j - 1], ents[j]
                raise h.viol("vma-invariant",
                             f"{when} (event {idx}), mm {mm}'s tree has overlapping VMAs "
                             f"{h.an(a[2])} = [{a[0]}, {a[1]}) and {h.an(b[2])} = [{b[0]}, {b[1]}).",
                             idx)
    if h.root_policy:
        # The folios keep naming the root: it must outlive every VMA that covers them.
        tr0 = h.trees.get(0, {})
        for slot, aid in sorted(tr0.items()):
            root = allocs[aid].root
            if root is not None and allocs[root].free >= 0:
                raise h.viol("vma-invariant",
                             f"{when} (event {idx}), mm 0's tree holds {h.an(aid)}, whose root "
                             f"{h.an(root)} was freed at event {allocs[root].free}: the folios they share "
                             "name freed memory.", idx)
        return
    # Most checks find nothing; only then is it worth sorting, to report the lowest such page.
    if _misplaced_folio(h, h.mapping.items()) is not None:
        page, m = _misplaced_folio(h, sorted(h.mapping.items()))
        aid = m[0]
        s, e, p = allocs[aid].fields
        raise h.viol("vma-invariant",
                     f"{when} (event {idx}), folio {page}'s mapping (stored at event {m[1]}) names "
                     f"{h.an(aid)}, which is in mm 0's tree but covers [{s}, {e}): the folio was "
                     "not re-pointed.", idx)


def _misplaced_folio(h, mappings):
    """The first (page, mapping) whose mapping names a VMA in mm 0's tree not covering it."""
    allocs = h.allocs
    tr0 = h.trees.get(0, {})
    for page, m in mappings:
        if m is None:
            continue
        aid = m[0]
        if tr0.get(allocs[aid].slot) != aid:
            continue
        s, e, p = allocs[aid].fields
        if s is None or e is None:
            continue
        if not (s <= page < e):
            return page, m
    return None
