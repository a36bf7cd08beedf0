"""Rule 6: the end state.  Every allocation that is Dead was freed; every live one's raw counter
equals its spec count minus one (somewhere in the saturation zone if Saturated), and its spec
count equals its real holders (tree membership, references threads still hold from vma_get, and
preset holders).  With CONFIG_VMA_REF=n, a VMA nobody holds must have been freed.

When the operations' overlaps leave several final spec states possible, any one that agrees with
the end state will do (each is a linearization of the same history).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .spec import DEAD, MAXREF, RELEASED, SAT, SAT_LO, state_name
from .violation import Violation, thread_name

if TYPE_CHECKING:
    from .history import Allocation, History
    from .lifetime import Lifetime
    from .linearizability import Linearizability


def check_end(h: History, lin: Linearizability, life: Lifetime, final_counters: list | None) -> None:
    n_ev = len(h.events)
    for a in h.allocs:
        aid = a.aid
        if a.free >= 0:
            continue
        if not h.on:
            if life.count(aid, True) == 0:
                raise h.viol("leak",
                             f"{h.an(aid)} is in no tree and nobody holds it, yet it was never freed"
                             f"{life.owned(aid)} (leak).", n_ev)
            continue
        final = lin.final[aid]
        if isinstance(final, set):  # several final states possible
            if any(_state_holds(h, life, a, s, final_counters, n_ev) is None for s in final):
                continue
            st: int | None = min(final)
        else:
            st = final if final is not None else a.init
        if st is None:
            if life.count(aid, True) == 0:
                raise h.viol("leak", f"{h.an(aid)} was allocated, never initialised and never freed"
                             f"{life.owned(aid)} (leak).", n_ev)
            continue
        if st == DEAD:
            rel = [o for o in lin.ops[aid] if o[3] == "put" and o[4]]
            if rel:
                o = rel[0]
                how = f"{thread_name(o[2])}'s vma_put (events {o[0]}..{o[1]}) released it"
            else:
                how = "its counter is DEAD"
            raise h.viol("leak", f"{h.an(aid)} is dead ({how}) but was never freed (leak).", n_ev)
        v = _state_holds(h, life, a, st, final_counters, n_ev)
        if v is not None:
            raise v


def _state_holds(h: History, life: Lifetime, a: Allocation, st: int, final_counters: list | None,
                 n_ev: int) -> Violation | None:
    """The violation if the allocation cannot end in spec state st, else None."""
    aid = a.aid
    slot = a.slot
    v = None
    if st == DEAD:
        v = h.viol("leak", f"{h.an(aid)} is dead but was never freed (leak).", n_ev)
    elif final_counters is not None and slot < len(final_counters) and \
            h.cur(slot) == aid and h.owner(slot) == aid:
        raw: int = final_counters[slot]  # (typed, and -1 for no allocation: compared natively)
        c = raw & 0xFFFFFFFF
        if st == SAT:
            # file_ref's failed gets are never undone, so puts can walk a counter that a failed
            # get pushed past MAXREF back into the valid zone; the object leaks all the same.
            puts = sum(1 for o in h.lin.ops[aid] if o[3] == "put")
            low = MAXREF + 1 - puts if h.get_algo == "add_result" else SAT_LO
            if not (low <= c < RELEASED):
                v = h.viol("counter-mismatch",
                           f"{h.an(aid)} ends with raw counter {c:#010x}, but its rcuref history leaves it "
                           f"SATURATED (expected a value in 0x80000000..0xbfffffff).", n_ev)
        elif c != st - 1:
            v = h.viol("counter-mismatch",
                       f"{h.an(aid)} ends with raw counter {c:#010x}, but its rcuref history leaves "
                       f"{state_name(st)} (expected {st - 1:#010x}): a lost or extra reference.", n_ev)
    if v is None and st != SAT and st != DEAD and a.preset != -1:
        n = life.count(aid, True)
        if n != st:
            hs = life.holders(aid, True)
            hd = ", ".join(hs) if hs else "nobody"
            if st > n:
                v = h.viol("leak",
                           f"{h.an(aid)} still counts {st} reference{'s' if st != 1 else ''} but only {n} "
                           f"real holder{'s' if n != 1 else ''} remain ({hd}): "
                           f"{st - n} reference{'s were' if st - n != 1 else ' was'} never dropped"
                           f"{life.owned(aid)}, so it can never be freed (leak).", n_ev)
            else:
                v = h.viol("counter-mismatch",
                           f"{h.an(aid)} counts only {st} reference{'s' if st != 1 else ''} but has {n} real "
                           f"holders ({hd}): a reference was dropped by a thread that did not hold it, "
                           "so the VMA can be freed under a holder.", n_ev)
    return v
