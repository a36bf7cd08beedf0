"""Real-thread stress runs and their checker.

`_core.stress` runs a program's threads on OS threads (its schedule is ignored) and returns, per
run, each thread's own history in program order, the setup's and the RCU callback context's.
Across threads there is no total order, so the oracle of `pyfuzz.model` (linearizability,
happens-before, memory safety) does not apply. This checker judges only what needs none:

* no `panic`;
* every allocation is freed at most once (`double-free`);
* with `vma_ref=on`, every free comes right after (in its thread) a put on that slot that returned
  true: the rcuref said this thread owns the death (`free-without-release`);
* each rcuref operation's result is the specification's for a counter value it saw itself: a
  `get`'s for the value before its fetch-add or, if it took the slow path, for the value its
  re-read found less its own increment (a racing put may have moved the counter between the two,
  and the operation may linearize at either); a `put` that returns true saw ONEREF at its
  fetch-sub (`not-linearizable`);
* a reclaim returns a freed allocation, and only once (`bad-reclaim`);
* warnings: with `vma_ref=on` never `imbalanced_put`, and `saturated` only on a VMA whose
  setup counter was already at MAXREF or beyond; with `vma_ref=off` only `vma_get_disabled`, and
  only with `debug_vm=on` (`unexpected-warning`);
* every VMA a tree event records has `vm_start == vm_pgoff` (`vma-invariant`);
* the end state: the tree events of all threads add up to the final trees (`vma-invariant`), no
  freed allocation is still in a tree or held by a thread or (`mapping=root`) pinned as the root
  of a live split piece (`free-while-held`), no allocation is
  left with no holder (`leak`), and each live VMA's raw counter is its holders minus one
  (`counter-mismatch`) unless it is in the saturation zone.

`event_index` of a violation indexes the run's flattened history: setup, then each thread's
list in thread order, then the reclaims.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from . import _core
from .model import MAXREF, RELEASED, SAT_LO, Violation
from .program import Program

NOREF = 0xFFFF_FFFF

# Runs handed over per call to the core: bounds the histories alive at once.
BATCH = 500


@dataclass
class StressReport:
    iterations: int
    violations: list[tuple[int, Violation]] = field(default_factory=list)
    seconds: float = 0.0


def run_stress(program: Program, iterations: int) -> StressReport:
    """Run `program` `iterations` times on real threads and check every run."""
    report = StressReport(iterations)
    started = time.perf_counter()
    done = 0
    while done < iterations:
        count = min(BATCH, iterations - done)
        runs = _core.stress(program.to_tuple(), program.config_dict, program.mutant, count)
        for i, run in enumerate(runs):
            try:
                check_run(run, program)
            except Violation as v:
                report.violations.append((done + i, v))
        done += count
    report.seconds = time.perf_counter() - started
    return report


def check_run(run: dict, program: Program) -> None:
    """Raise `Violation` for the first problem in one stress run of `program`."""
    _Run(run, program).check()


def _in_saturation_zone(counter: int) -> bool:
    return SAT_LO <= counter < RELEASED


def _spec_get(counter: int) -> tuple[bool, bool]:
    """(result, saturated warning) of a get on a raw counter, by the sequential specification."""
    if RELEASED <= counter < NOREF:
        return False, False
    return True, MAXREF <= counter < RELEASED


def _spec_add_result(counter: int) -> tuple[bool, bool]:
    """`get=add_result`: the sign of the value after its own add, never a warning."""
    return ((counter + 1) & 0xFFFF_FFFF) <= MAXREF, False


def _spec_inc_not_zero(counter: int) -> tuple[bool, bool]:
    """`get=inc_not_zero`: the value its last access found must leave room for one more."""
    return counter < MAXREF, False


# The value a get decides on, per `get=` algorithm: rcuref's and file_ref's first access (the
# add), inc-not-zero's last (the compare-exchange that succeeded, or the load that gave up).
_GET_SPECS = {"rcuref": _spec_get, "add_result": _spec_add_result, "inc_not_zero": _spec_inc_not_zero}


def _outcome_text(outcome: tuple[bool, bool]) -> str:
    result, saturated = outcome
    return f"{result}{' with a saturated warning' if saturated else ''}"


class _Run:
    def __init__(self, run: dict, program: Program):
        self.program = program
        config = program.config_dict
        self.vma_ref = config["vma_ref"] == "on"
        self.debug_vm = config["debug_vm"] == "on"
        self.deferred = config["slab"] == "deferred"
        self.get_algo = config["get"]
        self.setup = run["setup"]
        self.threads = run["threads"]
        self.reclaims = run["reclaims"]
        self.final_counters = run["final_counters"]
        self.final_trees = run["trees"]
        # Everything but the reclaims: what built and changed the world.
        self.program_events = [*self.setup, *(e for thread in self.threads for e in thread)]
        self.events = [*self.program_events, *self.reclaims]
        # Where each thread's list starts in `events`.
        self.offsets = []
        at = len(self.setup)
        for thread in self.threads:
            self.offsets.append(at)
            at += len(thread)
        self.setup_counters = self.counters_after_setup()

    def violation(self, kind: str, message: str, index: int = -1) -> Violation:
        return Violation(kind, message, index, self.events)

    def check(self) -> None:
        for i, e in enumerate(self.events):
            if e[0] == "panic":
                raise self.violation("panic", f"thread {e[1]}: {e[2]}", i)
        if self.vma_ref:
            self.check_rcuref_ops()
        self.check_tree_events()
        freed = self.check_frees()
        self.check_reclaims(freed)
        self.check_warnings()
        self.check_end_state(freed)

    def thread_events(self):
        """(index in `events`, thread, position in its own list, event) for every thread event."""
        for t, thread in enumerate(self.threads):
            for position, e in enumerate(thread):
                yield self.offsets[t] + position, t, position, e

    def check_frees(self) -> set[tuple[int, int]]:
        freed = set()
        for index, t, position, e in self.thread_events():
            if e[0] != "free":
                continue
            allocation = (e[2], e[3])
            if allocation in freed:
                raise self.violation("double-free", f"T{t} frees VMA slot {e[2]} gen {e[3]} a second time", index)
            freed.add(allocation)
            if self.vma_ref and not self.released_just_before(self.threads[t], position, e[2]):
                raise self.violation(
                    "free-without-release",
                    f"T{t} frees VMA slot {e[2]} gen {e[3]} without a vma_put that returned true",
                    index,
                )
        return freed

    def check_rcuref_ops(self) -> None:
        for t, thread in enumerate(self.threads):
            # The counter before the open operation's first atomic, and its slow path's re-read.
            before = reread = last = None
            saturated = False
            for position, e in enumerate(thread):
                if e[0] == "atomic":
                    last = e[5]
                if e[0] == "ref_call":
                    before = reread = last = None
                    saturated = False
                elif e[0] == "atomic" and before is None:
                    before = e[5]
                elif e[0] == "atomic" and e[3] == "load":
                    reread = e[5]
                elif e[0] == "warn" and e[3] == "saturated":
                    saturated = True
                elif e[0] == "ref_ret" and e[3] != "init":
                    if self.get_algo == "inc_not_zero" and e[3] == "get":
                        before, reread = last, None
                    problem = self.rcuref_problem(e[3], before, reread, (e[4], saturated),
                                                  _GET_SPECS[self.get_algo])
                    if problem:
                        index = self.offsets[t] + position
                        raise self.violation(
                            "not-linearizable", f"T{t}'s {e[3]} on VMA slot {e[2]} {problem}", index
                        )

    @staticmethod
    def rcuref_problem(fn: str, before: int, reread: int | None, outcome: tuple[bool, bool],
                       spec_get=_spec_get) -> str | None:
        if fn == "put":
            if outcome[0] and before != 0:
                return f"returned true, but the counter was {before:#010x}, not ONEREF"
            return None
        seen = [before] if reread is None else [before, (reread - 1) & 0xFFFF_FFFF]
        if outcome in map(spec_get, seen):
            return None
        described = " or ".join(f"{v:#010x}" for v in seen)
        return f"returned {_outcome_text(outcome)}, but the counter it saw was {described}"

    def check_tree_events(self) -> None:
        for index, t, _, e in self.thread_events():
            if e[0] in ("tree_insert", "tree_update") and e[4] != e[6]:
                raise self.violation(
                    "vma-invariant",
                    f"T{t}'s {e[0]} puts VMA slot {e[3]} at {e[4]}-{e[5]} with vm_pgoff {e[6]}",
                    index,
                )

    def check_reclaims(self, freed: set[tuple[int, int]]) -> None:
        first = len(self.events) - len(self.reclaims)
        reclaimed = set()
        for index, e in enumerate(self.reclaims, start=first):
            allocation = (e[2], e[3])
            if allocation not in freed or allocation in reclaimed:
                what = "a second time" if allocation in reclaimed else "that was never freed"
                raise self.violation("bad-reclaim", f"reclaim of VMA slot {e[2]} gen {e[3]} {what}", index)
            reclaimed.add(allocation)
        # Every thread has left every read-side section by now, so no grace period may still wait.
        if self.deferred and freed - reclaimed:
            slot, gen = min(freed - reclaimed)
            raise self.violation("bad-reclaim", f"VMA slot {slot} gen {gen} was freed but its grace period never ended")

    @staticmethod
    def released_just_before(thread: list, position: int, slot: int) -> bool:
        # mapping=root: between a split piece's release and its free, vm_area_free reads its root
        # and drops (maybe frees) the root; the piece's own put comes before that read.
        for i in range(position - 1, -1, -1):
            e = thread[i]
            if e[0] == "read" and e[2] == slot and e[3] == "vm_root":
                position = i
                break
            if len(e) > 2 and e[0] != "fence" and e[2] == slot:
                break
        # rcuref_put re-enables preemption between its return and the free.
        for i in range(position - 1, -1, -1):
            e = thread[i]
            if e[0] in ("preempt_on", "preempt_off"):
                continue
            return e[0] == "ref_ret" and e[2] == slot and e[3] == "put" and e[4] is True
        return False

    def counters_after_setup(self) -> dict[int, int]:
        """Each setup VMA's raw counter once setup is done (its `init`, or the preset after it)."""
        counters = {}
        for e in self.setup:
            if e[0] == "atomic" and e[3] == "store":
                counters[e[2]] = e[6]
        return counters

    def check_warnings(self) -> None:
        preset = self.setup_counters
        for index, t, _, e in self.thread_events():
            if e[0] != "warn":
                continue
            slot, what = e[2], e[3]
            if self.vma_ref:
                allowed = what == "saturated" and preset.get(slot, 0) >= MAXREF
            else:
                allowed = what == "vma_get_disabled" and self.debug_vm
            if not allowed:
                raise self.violation("unexpected-warning", f"T{t} warns {what} on VMA slot {slot}", index)

    def tree_membership(self) -> Counter:
        """How many trees each slot is in at the end, from the tree events of every thread; they
        must add up to the final trees."""
        members = Counter()
        for e in self.program_events:
            if e[0] == "tree_insert":
                members[e[2], e[3]] += 1
            elif e[0] == "tree_remove":
                members[e[2], e[3]] -= 1
        for mm, tree in enumerate(self.final_trees):
            in_tree = sorted(slot for slot, _, _ in tree)
            from_events = sorted(slot for (m, slot), n in members.items() if m == mm for _ in range(n))
            if in_tree != from_events:
                raise self.violation(
                    "vma-invariant",
                    f"mm {mm} ends with slots {in_tree} but its tree events leave {from_events}",
                )
        return Counter({slot: n for (_, slot), n in members.items() if n})

    def held_references(self) -> Counter:
        """References the threads still hold at the end: each `get` op that ended "held" pushes
        the slot it got, each `put` op that did something pops the latest one."""
        held = Counter()
        for t, thread in enumerate(self.threads):
            ops = self.program.threads[t]
            stack = []
            got = None
            for e in thread:
                if e[0] == "ref_ret" and e[3] == "get" and e[4] is True:
                    got = e[2]
                elif e[0] == "op_end":
                    name = ops[e[2]].name
                    if name == "get" and e[3] == "held":
                        stack.append(got)
                    elif name == "put" and e[3] == "ok":
                        stack.pop()
            held.update(stack)
        return held

    def root_pins(self, latest: dict, freed: set) -> Counter:
        """mapping=root: each live split piece holds a reference on its root. A piece's root is
        written by the thread that allocated it, in the same op."""
        roots = {}
        for thread in [self.setup, *self.threads]:
            mine = {}
            for e in thread:
                if e[0] == "alloc":
                    mine[e[2]] = e[3]
                elif e[0] == "write" and e[3] == "vm_root" and e[2] in mine:
                    roots[e[2], mine[e[2]]] = e[4]
        return Counter(roots[slot, gen] - 1 for slot, gen in latest.items()
                       if roots.get((slot, gen)) and (slot, gen) not in freed)

    def check_end_state(self, freed: set[tuple[int, int]]) -> None:
        latest = {}
        for e in self.program_events:
            if e[0] == "alloc":
                latest[e[2]] = max(latest.get(e[2], 0), e[3])
        in_tree = self.tree_membership()
        held = self.held_references()
        held.update(self.root_pins(latest, freed) if self.vma_ref else Counter())
        preset = self.setup_counters
        for slot, gen in sorted(latest.items()):
            counter = self.final_counters[slot]
            holders = f"{in_tree[slot]} tree(s), {held[slot]} reference(s) held by threads"
            if (slot, gen) in freed:
                if in_tree[slot] or held[slot]:
                    raise self.violation(
                        "free-while-held", f"VMA slot {slot} gen {gen} was freed but has {holders}"
                    )
                continue
            if self.vma_ref and _in_saturation_zone(counter):
                continue
            # A preset counts holders outside the program; it belongs to setup's allocation of
            # the slot, which is always the slot's first.
            outside = preset.get(slot, 0) if gen == 1 and self.vma_ref else 0
            total = in_tree[slot] + held[slot] + outside
            if total == 0:
                raise self.violation("leak", f"VMA slot {slot} gen {gen} is neither freed nor held by anyone")
            if self.vma_ref and counter != total - 1:
                raise self.violation(
                    "counter-mismatch",
                    f"VMA slot {slot} gen {gen} ends with counter {counter:#010x}, but has {holders}"
                    + (f" and {outside} outside the program" if outside else "")
                    + f": expected {total - 1:#010x}",
                )
