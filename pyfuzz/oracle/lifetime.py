"""Rules 2 and 5: the lifetime of an allocation, from its holders.

A holder is the tree of an mm, a thread's successful vma_get, a thread that allocated the VMA
and has not yet published it, a thread that detached it from a tree and has not yet dropped
that reference, or the external holders a setup counter preset stands for.

* free: only by the thread whose vma_put returned true (or any vma_put with CONFIG_VMA_REF=n,
  by a thread that owns the VMA), exactly once, and never while anyone else still holds it; a
  slot is handed out again only after its occupant was freed, each time as a new generation.
* use: the reverse-map reader acts only on a VMA it holds, that is not freed, and that mapped the
  folio at some moment while it held it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .kinds import K_WRITE, THREAD_INDICES
from .violation import thread_name

if TYPE_CHECKING:
    from .history import Allocation, History


def _put_key(aid: int, t: int) -> int:
    """An (allocation, thread) pair as one int: a tuple key cost a tuple and its hash per put."""
    return aid * THREAD_INDICES + t + 2


class Lifetime:
    __deletable__ = ("h",)  # History.close drops it (mypyc keeps attributes undeletable otherwise)

    def __init__(self, h: History):
        self.h = h
        # per allocation: the references threads hold on it, in the order taken: (thread, event
        # index, "get" | "alloc" | "detach"); one list, where a dictionary by thread cost a
        # dictionary and a probe per reference for the one or two threads that hold a VMA
        self.hold: list[list[tuple[int, int, str]]] = []
        # `_put_key(allocation, thread)` -> (result, return index) of its latest vma_put
        self.lastput: dict[int, tuple[bool, int]] = {}
        # per allocation: {VMA cut from it (mapping=root): event index of the pin}, None until
        # its first pin (a dictionary for every allocation, where only a root has pins)
        self.pins: list[dict[int, int] | None] = []

    def reset(self) -> None:
        """For the History's next history (`History.start`)."""
        self.hold.clear()
        self.lastput.clear()
        self.pins.clear()

    def allocated(self, a: Allocation) -> None:
        self.hold.append([(a.allocer, a.alloc_idx, "alloc")])
        self.pins.append(None)

    # ------------------------------------------------------------------ mapping=root pins
    def pinned(self, root, vma, t, idx) -> None:
        """t's latest get on `root` becomes `vma`'s reference (its split made it share the root)."""
        lst = self.hold[root]
        j = _latest(lst, t)
        if j >= 0 and lst[j][2] == "get":
            del lst[j]
            pins = self.pins[root]
            if pins is None:
                pins = self.pins[root] = {}
            pins[vma] = idx

    def unpinned(self, root, vma, t, idx) -> None:
        """`vma` is being freed by t: its pin on `root` is t's to drop."""
        pins = self.pins[root]
        if pins is not None and pins.pop(vma, None) is not None:
            self.got(root, t, idx)

    def released_by(self, aid: int, t: int) -> bool:
        last = self.lastput.get(_put_key(aid, t))
        return (last is not None and last[0]) or not self.h.on

    # ------------------------------------------------------------------ holders
    def holders(self, aid, gets_only=False):
        """Real holders of an allocation, as human strings.  At the end of the history only tree
        membership, get references and preset holders count (a thread that still owns an allocated
        or detached VMA when it finishes has leaked it)."""
        a = self.h.allocs[aid]
        out = []
        for mm in (0, 1):
            if a.trees >> mm & 1:
                out.append(f"the tree of mm {mm}")
        for t, i, how in sorted(self.hold[aid], key=_thread):
            if gets_only and how != "get":
                continue
            if how == "get":
                out.append(f"{thread_name(t)} (from its vma_get returning at event {i})")
            elif how == "detach":
                out.append(f"{thread_name(t)} (which detached it from the tree at event {i})")
            else:
                out.append(f"{thread_name(t)} (which allocated it at event {i})")
        for vma, i in sorted((self.pins[aid] or {}).items()):
            out.append(f"{self.h.an(vma)} (cut from it, pinning it as its root since event {i})")
        p = a.preset
        if p == -1:
            out.append("the external holders preset by setup (saturated counter)")
        elif p > 0:
            out.append(f"{p} external holder{'s' if p != 1 else ''} preset by setup")
        return out

    def owned(self, aid) -> str:
        """Non-get references threads still own (allocated or detached, not yet dropped)."""
        out = []
        for t, i, how in sorted(self.hold[aid], key=_thread):
            if how == "detach":
                out.append(f"{thread_name(t)} detached it from the tree at event {i}")
            elif how == "alloc":
                out.append(f"{thread_name(t)} allocated it at event {i}")
        if out:
            return "; " + " and ".join(out) + " but never dropped that reference"
        return ""

    def count(self, aid: int, gets_only: bool = False) -> int:
        a = self.h.allocs[aid]
        m = a.trees
        n = (m & 1) + (m >> 1 & 1)
        lst = self.hold[aid]
        if gets_only:
            for x in lst:
                if x[2] == "get":
                    n += 1
        else:
            n += len(lst)
        pins = self.pins[aid]
        if pins is not None:
            n += len(pins)
        return n + (a.preset if a.preset > 0 else 0)

    # ------------------------------------------------------------------ references taken and dropped
    def got(self, aid: int, t: int, idx: int) -> None:
        self._hold(aid, t, idx, "get")

    def _hold(self, aid: int, t: int, idx: int, how: str) -> None:
        """t holds a reference on aid from event idx on, taken by a get or left by a detach."""
        self.hold[aid].append((t, idx, how))

    def dropped(self, aid: int, t: int) -> None:
        """A put by t drops t's most recent reference on aid (the op's own: the reference the munmap
        detached, the mmap error path's new VMA, the reader's get, the `put` op's latest get)."""
        lst = self.hold[aid]
        j = _latest(lst, t)
        if j >= 0:
            del lst[j]

    def put_returned(self, aid: int, t: int, result: bool, idx: int) -> None:
        self.lastput[_put_key(aid, t)] = (result, idx)

    def published(self, aid: int, t: int) -> None:
        """t's own reference becomes the tree's: drop an owned (non-get) one first."""
        lst = self.hold[aid]
        latest = -1
        for j in range(len(lst) - 1, -1, -1):
            if lst[j][0] == t:
                if lst[j][2] != "get":
                    del lst[j]
                    return
                if latest < 0:
                    latest = j
        if latest >= 0:
            del lst[latest]

    def detached(self, aid: int, t: int, idx: int) -> None:
        self._hold(aid, t, idx, "detach")

    # ------------------------------------------------------------------ the slab
    def check_reuse(self, old: Allocation | None, t: int, slot: int, gen: int, idx: int) -> None:
        """The slab hands out slot again: its occupant must have been freed."""
        h = self.h
        if old is not None and old.free < 0:
            raise h.viol(
                "double-free",
                f"the slab handed VMA slot {slot} to {thread_name(t)} as gen {gen} while {h.an(old.aid)} "
                f"is still allocated (never freed): the slab free list is corrupted.", idx)

    def check_generation(self, slot: int, gen: int, idx: int) -> None:
        if self.h.find(slot, gen) is not None:
            raise self.h.viol("double-free",
                              f"VMA slot {slot} gen {gen} was allocated a second time (the generation did not "
                              f"advance), at event {idx}.", idx)

    def check_free(self, t: int, slot: int, gen: int, idx: int, p: int) -> Allocation:
        """The free rules (p: the allocation the freer's pointer to the slot refers to, -1 for
        none); returns the allocation freed."""
        h = self.h
        a = h.find(slot, gen)
        if a is None:
            raise h.viol("double-free",
                         f"{thread_name(t)} freed VMA slot {slot} gen {gen}, which was never allocated.", idx)
        aid = a.aid
        if a.free >= 0:
            raise h.viol("double-free",
                         f"{thread_name(t)} freed {h.an(aid)} at event {idx}, but {thread_name(a.freer)} had already "
                         f"freed it at event {a.free}.", idx)
        if h.on:
            lp = self.lastput.pop(_put_key(aid, t), None)
            if lp is None or not lp[0]:
                if lp is None:
                    why = f"{thread_name(t)} never dropped a reference on it with a vma_put that returned true"
                else:
                    why = f"{thread_name(t)}'s last vma_put on it (event {lp[1]}) returned false"
                    others = [key % THREAD_INDICES - 2 for key, v in self.lastput.items()
                              if key // THREAD_INDICES == aid and v[0]]
                    if others:
                        why += f", the last reference was released by {thread_name(others[0])}"
                if p >= 0 and p != aid:
                    why += f" (its pointer refers to {h.an(p)})"
                hs = self.holders(aid)
                held = ("; still held by " + ", ".join(hs)) if hs else ""
                raise h.viol("free-while-held",
                             f"{thread_name(t)} freed {h.an(aid)} at event {idx} although {why}{held}.", idx)
        else:
            if p != aid:
                pdesc = h.an(p) if p >= 0 else "no allocation of that slot"
                hs = self.holders(aid)
                held = ("; it is still held by " + ", ".join(hs)) if hs else ""
                raise h.viol("free-while-held",
                             f"{thread_name(t)} freed {h.an(aid)} at event {idx}, but its pointer refers to {pdesc}{held}.",
                             idx)
            if _latest(self.hold[aid], t) >= 0:
                self.published(aid, t)  # CONFIG_VMA_REF=n: vma_put frees; it drops t's own reference
            else:
                hs = self.holders(aid)
                held = ("; it is still held by " + ", ".join(hs)) if hs else ""
                raise h.viol("free-while-held",
                             f"{thread_name(t)} vma_put-freed {h.an(aid)} at event {idx} without owning it (it neither "
                             f"allocated it nor detached it from a tree){held}.", idx)
        if self.count(aid) or a.preset == -1:  # held: the holders, in words
            how = "its vma_put returned true" if h.on else "CONFIG_VMA_REF=n: vma_put frees at once"
            raise h.viol("free-while-held",
                         f"{thread_name(t)} freed {h.an(aid)} at event {idx} ({how}) while it is still held by "
                         + ", ".join(self.holders(aid)) + ".", idx)
        return a

    # ------------------------------------------------------------------ use
    def check_use(self, a: Allocation, t: int, page: int, idx: int) -> None:
        h = self.h
        aid = a.aid
        mine = _latest(self.hold[aid], t)
        if mine < 0:
            why = "" if h.on else " (CONFIG_VMA_REF=n: vma_get can never pin a VMA)"
            other = [h.an(b.aid) for b in h.allocs
                     if b is not a and b.slot == a.slot and _latest(self.hold[b.aid], t) >= 0]
            if other:
                why += f"; its reference is on {other[0]}, the slot's other occupant"
            raise h.viol("bad-use",
                         f"{thread_name(t)} used folio {page} through {h.an(aid)} at event {idx} without holding a "
                         f"reference on it{why}.", idx)
        if a.free >= 0:
            raise h.viol("bad-use",
                         f"{thread_name(t)} used folio {page} through {h.an(aid)} at event {idx}, after "
                         f"{thread_name(a.freer)} freed it at event {a.free}.", idx)
        # A reference pins the VMA's lifetime, not its range ("rcuref only manages the lifetime of
        # a VMA and does not track its state"): a split may shrink the VMA between the reader's
        # check and its use. What the reader must never do is use a VMA that did not map the
        # folio at any moment while it held it, i.e. one it cannot have validated.
        held_since = self.hold[aid][mine][1]
        # The ranges in event order, rebuilt from the events that set them (all before this
        # use): the one in force when the reference was taken, then every one written since.
        s: int | None = None
        e: int | None = None
        p: int | None = None
        validated = False
        judged_at_get = False
        events = h.events
        kinds = h.kinds
        for at in a.ranges:
            if at > held_since and not judged_at_get:
                judged_at_get = True
                if _maps(s, e, p, page):
                    validated = True
                    break
            ev = events[at]
            if kinds[at] == K_WRITE:
                field: str = ev[3]
                if field == "vm_start":
                    s = ev[4]
                elif field == "vm_end":
                    e = ev[4]
                else:
                    p = ev[4]
            else:  # a tree insertion or update sets all three
                s = ev[4]
                e = ev[5]
                p = ev[6]
            if judged_at_get and _maps(s, e, p, page):
                validated = True
                break
        if not judged_at_get:  # every range was set by the get: the last is the one in force
            validated = _maps(s, e, p, page)
        if not validated:
            s, e, p = a.start, a.end, a.pgoff
            raise h.viol("bad-use",
                         f"{thread_name(t)} used folio {page} through {h.an(aid)} at event {idx}, but that VMA did not "
                         f"map page {page} at any moment since {thread_name(t)} took its reference at event "
                         f"{held_since} (it covers [{s}, {e}) with vm_pgoff {p}): the reader acted on a "
                         "VMA it never validated.", idx)


def _latest(hold: list[tuple[int, int, str]], t: int) -> int:
    """The index in `hold` of t's latest reference, -1 if it holds none."""
    for j in range(len(hold) - 1, -1, -1):
        if hold[j][0] == t:
            return j
    return -1


def _thread(ref: tuple[int, int, str]) -> int:
    return ref[0]


def _maps(s: int | None, e: int | None, p: int | None, page: int) -> bool:
    """Whether the range [s, e) with vm_pgoff p (None: a field never set) maps the folio of page."""
    return s is not None and e is not None and p is not None and p <= page < p + (e - s)
