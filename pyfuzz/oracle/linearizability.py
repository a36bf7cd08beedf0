"""Rule 1: each allocation's rcuref operations are linearizable against the sequential spec.

Linearizability is local (Herlihy & Wing): a history is linearizable iff each object's
sub-history is, so every allocation is checked on its own.  Its operations are cut into clusters
at quiescent points (no operation in flight); a cluster of one operation is a plain replay, a
larger one a memoized Wing & Gong search.  Pending operations (still in flight at the stop) may
take effect or not; their result is not observed.

Also here, because they too are the spec's results: an rcuref operation on a counter that
vm_area_alloc never initialised, and the CONFIG_VMA_REF=n behaviour of vma_get/vma_put.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from .spec import DEAD, GET_SPECS, KERNEL_NAME, NO_WARNING, Spec, disabled_get, state_name
from .violation import result_text, thread_name

if TYPE_CHECKING:
    from .history import Allocation, History

RCUREF: Final = GET_SPECS["rcuref"]

# The return index of a pending operation: later than any event (and below 2**62, so that every
# return index is a short int, compared as a machine integer, in the compiled build).
_NEVER: Final = 1 << 61


# An operation is (call index, return index or None when pending, thread, fn, result, warnings).
def _opshort(op) -> str:
    call, ret, t, fn, r, w = op
    if ret is None:
        return f"T{t} {fn}@{call}..(pending)"
    return f"T{t} {fn}@{call}..{ret}->{result_text(r, w)}"


class _Search:
    """Wing & Gong search with memoization on (done set, spec state) over one cluster of
    operations (sorted by call index).  A class rather than a nested function, so that the
    compiled build recurses through native calls."""

    def __init__(self, ops: list[tuple], spec: Spec):
        n = len(ops)
        self.spec = spec
        self.n = n
        self.calls: list[int] = [op[0] for op in ops]
        self.rets: list[int] = [op[1] if op[1] is not None else _NEVER for op in ops]
        self.fns: list[str] = [op[3] for op in ops]
        self.results: list[Any] = [op[4] for op in ops]  # None: pending
        self.warns: list[frozenset[str]] = [op[5] for op in ops]
        self.pend: list[bool] = [op[1] is None for op in ops]
        need = 0
        for i in range(n):
            if not self.pend[i]:
                need |= 1 << i
        self.need = need
        self.seen: set[tuple[int, int]] = set()
        self.finals: set[int] = set()
        self.best_depth = -1
        self.best: Any = None
        self.best_ret = -1
        self.path: list[int] = []

    def dfs(self, mask: int, state: int, depth: int) -> None:
        key = (mask, state)
        if key in self.seen:
            return
        self.seen.add(key)
        need = self.need
        if mask & need == need:
            self.finals.add(state)
        calls = self.calls
        rets = self.rets
        n = self.n
        # The candidates are the operations called before the first pending return.  Calls are
        # sorted and every return follows its call, so past the first operation called after the
        # smallest return seen so far, none can be a candidate or lower that return: the scans
        # stop there (each thread has at most one operation in flight, so that is a few steps).
        lo = ((mask + 1) & ~mask).bit_length() - 1
        minret = _NEVER
        for i in range(lo, n):
            if calls[i] > minret:
                break
            if not (mask >> i) & 1 and rets[i] < minret:
                minret = rets[i]
        failed = -1
        for i in range(lo, n):
            if calls[i] > minret:
                break
            if (mask >> i) & 1:
                continue
            ns, r, w = self.spec.step(state, self.fns[i])
            # (warnings are mostly the one NO_WARNING object: identity first spares a set compare)
            if not self.pend[i] and (r != self.results[i] or (w is not self.warns[i] and w != self.warns[i])):
                if failed < 0 or rets[i] > rets[failed]:
                    failed = i
                continue
            self.path.append(i)
            self.dfs(mask | (1 << i), ns, depth + 1)
            self.path.pop()
        # report the deepest dead end; among equally deep ones, the operation that returned last
        # (its result is the one that contradicts everything completed before it)
        if failed >= 0 and (depth > self.best_depth or (depth == self.best_depth and rets[failed] > self.best_ret)):
            self.best_depth = depth
            self.best = (failed, state, list(self.path))
            self.best_ret = rets[failed]


def _search(ops: list[tuple], inits: set, spec: Spec = RCUREF) -> tuple[bool, Any]:
    """The Wing & Gong search over one cluster of operations (sorted by call index), from every
    state in `inits`.

    Returns (True, set of final states) or (False, (failing index, state, path of indices)) for
    the deepest dead end found.
    """
    search = _Search(ops, spec)
    for s in sorted(inits):
        search.dfs(0, s, 0)
    if search.finals:
        return True, search.finals
    return False, search.best


def cluster_end(ops: list[tuple], i: int) -> int:
    """The end (exclusive) of the cluster that starts at ops[i]: the operations up to the next
    quiescent point, where every operation called so far has returned (ops sorted by call)."""
    n = len(ops)
    j = i + 1
    # (the tuples' items typed as they are read: untyped, the compiled build compares them as
    # generic objects)
    r: int | None = ops[i][1]
    hi = r if r is not None else _NEVER
    while j < n:
        call: int = ops[j][0]
        if call >= hi:
            break
        r = ops[j][1]
        if r is None:
            hi = _NEVER
        elif r > hi:
            hi = r
        j += 1
    return j


def linearize_ops(ops: list[tuple], init: int, spec: Spec = RCUREF) -> tuple[bool, Any]:
    """Check one allocation's operations (sorted by call index) from spec state `init`.

    Returns (True, the final state, or the set of them when linearizations end in several) or
    (False, (failing index, state, path of indices into ops)).
    """
    # While only one spec state is possible (the common case: most clusters are one completed
    # operation), it is `one` and `states` is None: a plain replay, no sets built.
    one = init
    states: set[int] | None = None
    n = len(ops)
    i = 0
    while i < n:
        j = cluster_end(ops, i)
        op = ops[i]
        if j == i + 1 and states is None and op[1] is not None:
            ns, r, w = spec.step(one, op[3])
            result: bool = op[4]
            if r != result or (w is not op[5] and w != op[5]):
                return False, (i, one, list(range(i)))
            one = ns
            i = j
            continue
        if states is None:
            states = {one}
        if j == i + 1:
            nxt = set()
            for s in states:
                ns, r, w = spec.step(s, op[3])
                if op[1] is None:
                    nxt.add(s)
                    nxt.add(ns)
                elif r == op[4] and w == op[5]:
                    nxt.add(ns)
            if not nxt:
                return False, (i, min(states), list(range(i)))
            states = nxt
        else:
            ok, out = _search(ops[i:j], states, spec)
            if not ok:
                if out is None:
                    return False, (i, min(states), list(range(i)))
                k, s, p = out
                return False, (i + k, s, list(range(i)) + [i + x for x in p])
            states = out
        if len(states) == 1:
            one = min(states)
            states = None
        i = j
    return True, states if states is not None else one


def _call_index(op: tuple) -> int:
    return op[0]


class Linearizability:
    __deletable__ = ("h",)  # History.close drops it (mypyc keeps attributes undeletable otherwise)

    def __init__(self, h: History):
        self.h = h
        self.ops: list[list[tuple]] = []  # per allocation: its completed rcuref operations, by call
        # per allocation, filled by `finish`: the spec state its linearizations end in, or the
        # set of them when they end in several; None for only its initial state (no operations,
        # or never initialised)
        self.final: list[set[int] | int | None] = []

    def reset(self) -> None:
        """For the History's next history (`History.start`)."""
        self.ops.clear()
        self.final.clear()

    def allocated(self, a: Allocation) -> None:
        self.ops.append([])

    def completed(self, aid: int, call: int, idx: int, t: int, fn: str, result: bool, warns: frozenset[str]) -> None:
        # kept sorted by call as they return: only an operation that overlapped a later-called one
        # moves back, a step or two, where sorting each allocation's list at the end cost more
        ops = self.ops[aid]
        i = len(ops)
        while i > 0:
            before: int = ops[i - 1][0]  # (typed: compared natively)
            if before <= call:
                break
            i -= 1
        ops.insert(i, (call, idx, t, fn, result, warns))

    def uninitialised(self, a, t, idx, what):
        """An rcuref operation or a publication of an allocation whose counter was never set."""
        h = self.h
        # the raw value of the latest atomic on the slot up to here (found only for this message,
        # rather than kept at every atomic)
        val = 0
        for j in range(idx, -1, -1):
            ev = h.events[j]
            if ev[0] == "atomic" and ev[2] == a.slot:
                val = ev[6]
                break
        prev = h.owner(a.slot)
        left = f" left there by {h.an(prev)}" if prev >= 0 and prev != a.aid else ""
        return h.viol(
            "not-linearizable",
            f"{thread_name(t)}'s {what} {h.an(a.aid)} at event {idx}, whose counter vma_rcuref_init never "
            f"initialised: it still holds {val:#010x}{left} (vm_area_alloc/vm_area_dup must "
            "initialise the reference count before the VMA is used).", idx)

    def disabled_op(self, t, slot, fn, result, warns, call, idx, aid) -> None:
        """CONFIG_VMA_REF=n: vma_get returns NULL (+ warning with DEBUG_VM), vma_put frees."""
        h = self.h
        name = h.an(aid) if aid is not None else f"VMA slot {slot}"
        if fn == "get":
            exp_r, exp_w = disabled_get(h.debug)
            if bool(result) != exp_r or warns != exp_w:
                raise h.viol("not-linearizable",
                             f"{thread_name(t)}'s vma_get on {name} (events {call}..{idx}) returned "
                             f"{result_text(bool(result), warns)}, but with CONFIG_VMA_REF=n vma_get returns NULL"
                             f"{' and warns' if h.debug else ''}.", idx)
        elif fn == "put":
            if warns:
                raise h.viol("unexpected-warning",
                             f"{thread_name(t)}'s vma_put on {name} (events {call}..{idx}) warned "
                             f"{'+'.join(sorted(warns))} with CONFIG_VMA_REF=n.", idx)

    def finish(self, stop):
        """Check every allocation's rcuref operations observed before `stop`: the Violation with
        the smallest event index, or None.  Fills self.final for the end state."""
        h = self.h
        if not h.on:
            return None
        best = None
        pending = self.with_pending(stop)
        final = self.final
        for a in h.allocs:
            aid = a.aid
            ops = self.ops[aid]
            if pending:
                ops = pending.get(aid, ops)
            if a.init is None or not ops:
                final.append(None)
                continue
            ok, out = linearize_ops(ops, a.init, h.spec)
            if ok:
                final.append(out)
                continue
            final.append(None)  # (the end state is not judged after a violation)
            v = self.violation(a, ops, out)
            if best is None or v.event_index < best.event_index:
                best = v
        return best

    def with_pending(self, stop: int) -> dict[int, list[tuple]]:
        """The operations of each allocation that had one still in flight at `stop`, completed and
        pending, by call (the others' sub-histories are their `ops`): what is judged."""
        h = self.h
        pending: dict[int, list[tuple]] = {}
        for ti, cur in enumerate(h.open_op):
            if cur is not None and cur.fn in ("get", "put") and cur.call < stop:
                aid = cur.aid if cur.aid is not None else h.owner(cur.slot)
                if aid >= 0:
                    if aid not in pending:
                        pending[aid] = list(self.ops[aid])
                    pending[aid].append((cur.call, None, ti - 2, cur.fn, None, NO_WARNING))
        for ops in pending.values():
            ops.sort(key=_call_index)
        return pending

    def violation(self, a, ops, diag):
        h = self.h
        i, state, path = diag
        call, ret, t, fn, r, w = ops[i]
        ns, er, ew = h.spec.step(state, fn)
        an = h.an(a.aid)
        who = f"{thread_name(t)}'s {KERNEL_NAME[fn]} on {an} (events {call}..{ret})"
        # who made it dead, in the deepest linearization
        killer = None
        for j in path:
            o = ops[j]
            if o[3] == "put" and o[4]:
                killer = o
        if state == DEAD:
            if killer is not None:
                cause = (f"after {thread_name(killer[2])}'s vma_put (events {killer[0]}..{killer[1]}) "
                         "had released it")
            elif a.init == DEAD:
                cause = "although setup preset its counter DEAD"
            else:
                cause = "although it was already released"
            if fn == "get" and r:
                head = f"{who} returned {result_text(r, w)} {cause} (counter was DEAD)"
            elif fn == "put" and r:
                head = f"{who} returned true {cause}: a second release of the same VMA"
            else:
                head = (f"{who} returned {result_text(r, w)} {cause}; on a DEAD counter the specification "
                        f"gives {result_text(er, ew)}")
        elif fn == "put" and r and not er:
            head = f"{who} returned true (last reference dropped) while the VMA still had {state_name(state)}"
        else:
            head = (f"{who} returned {result_text(r, w)}, but with {state_name(state)} the rcuref specification "
                    f"gives {result_text(er, ew)}")
        if len(ops) <= 8:
            shown = ops
            more = ""
        else:
            lo = max(0, i - 4)
            shown = ops[lo:lo + 8]
            more = f", ... ({len(ops)} operations)"
        msg = (f"{head}; no linearization of [{', '.join(_opshort(o) for o in shown)}{more}] "
               f"starting from {state_name(a.init)} matches the rcuref specification.")
        return h.viol("not-linearizable", msg, ret if ret is not None else len(h.events))
