"""Delta-debugging minimizer: shrink a failing program to a reproducer of a handful of steps.

Deterministic (no randomness): the same program and predicate always give the same result, so a
minimized reproducer in a bug report can be regenerated. Candidates that are not valid programs
are skipped without spending budget; every candidate is tried at most once.

A candidate replaces the best program only if it still fails and is strictly smaller in this
order: threads, operations, setup VMAs, context switches, schedule slices, scheduled steps, then
the simplifications (error paths taken, mmap lengths). Ranking context switches above the
schedule's length is what makes the result read like a kernel race table: a reader follows three
switches of forty steps more easily than seven switches of twenty.

`reduce(program)` is the semantic front end the CLI and the campaign use: it keeps the violation's
signature (pyfuzz/signature.py), not only its kind, and validates the result by replaying it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Callable, Sequence, TypeVar

from .program import Op, Program, ProgramError, SetupVma, merged_slices, run_lengths

Item = TypeVar("Item")

Interleaving = Callable[[Program], Sequence[tuple[int, int]]]

# How many times `reduce` replays its result; each must give the same signature and history.
VALIDATION_RUNS = 5
# Programs of up to this many ops also get pairs of ops from two threads removed together.
PAIRS_MAX_OPS = 12


def context_switches(taken: Sequence[tuple[int, int]]) -> int:
    """How many times the running thread changes in an execution's steps (`Outcome.taken`)."""
    return sum(1 for before, after in zip(taken, taken[1:]) if before[0] != after[0])


@dataclass(frozen=True)
class Size:
    threads: int
    ops: int
    setup: int
    switches: int | None  # None when the execution is not known
    slices: int
    steps: int

    @classmethod
    def of(cls, program: Program, taken: Sequence[tuple[int, int]] | None) -> Size:
        return cls(
            len(program.threads),
            sum(map(len, program.threads)),
            len(program.setup),
            context_switches(taken) if taken is not None else None,
            len(program.schedule),
            sum(steps for _, steps in program.schedule),
        )

    def describe(self) -> str:
        switches = "?" if self.switches is None else self.switches
        return (f"{self.threads} threads, {self.ops} ops, {self.setup} setup VMAs, {self.slices} schedule "
                f"slices, {switches} context switches")


class _Shrinker:
    def __init__(
        self, program: Program, still_fails: Callable[[Program], bool], budget: int, interleaving: Interleaving | None
    ) -> None:
        self.still_fails = still_fails
        self.budget = budget
        self.interleaving = interleaving
        self.verdicts: dict[Program, bool] = {program: True}
        self.best = program
        self.best_cost = self.cost(program)

    def cost(self, program: Program) -> tuple:
        size = Size.of(program, self.interleaving(program) if self.interleaving else None)
        fails = sum(op.fail for ops in program.threads for op in ops)
        lengths = sum(op.b for ops in program.threads for op in ops if op.name == "mmap")
        presets = sum(vma.counter is not None for vma in program.setup)
        return (size.threads, size.ops, size.setup, size.switches or 0, size.slices, size.steps, fails, presets,
                lengths)

    def accept(self, build: Callable[[], Program]) -> bool:
        """Try the candidate `build` makes from the current best; keep it if it still fails and
        is smaller."""
        try:
            candidate = build()
        except ProgramError:
            return False
        if candidate not in self.verdicts:
            if self.budget <= 0:
                return False
            self.budget -= 1
            self.verdicts[candidate] = bool(self.still_fails(candidate))
        if not self.verdicts[candidate] or candidate == self.best:
            return False
        cost = self.cost(candidate)
        if cost >= self.best_cost:
            return False
        self.best, self.best_cost = candidate, cost
        return True

    def ddmin(self, items: Sequence[Item], rebuild: Callable[[tuple[Item, ...]], Program]) -> bool:
        """Remove chunks of `items` (halves, then quarters, ... then single items) while the
        program `rebuild` makes from what is left still fails. Returns whether anything went."""
        items = tuple(items)
        chunks = 2
        progressed = False
        while items:
            size = -(-len(items) // chunks)
            for start in range(0, len(items), size):
                rest = items[:start] + items[start + size :]
                if self.accept(lambda rest=rest: rebuild(rest)):
                    items = rest
                    progressed = True
                    chunks = max(chunks - 1, 2)
                    break
            else:
                if size == 1:
                    break
                chunks = min(chunks * 2, len(items))
        return progressed

    def lower(self, value: int, lowest: int, rebuild: Callable[[int], Program]) -> bool:
        """Lower an integer toward `lowest`: the whole distance first, then halves of it."""
        progressed = False
        distance = value - lowest
        while distance > 0:
            if self.accept(lambda v=value - distance: rebuild(v)):
                value -= distance
                progressed = True
            else:
                distance //= 2
        return progressed

    # Each pass below rebuilds from self.best at the time of the try, so passes compose.

    def drop_threads(self) -> bool:
        """ddmin over the threads: with the schedule as written, and, with the interleaving
        known, with the steps the others took (as drop_ops does for ops)."""
        # The indices ddmin juggles refer to the threads as they are now, not to later bests.
        start = self.best
        progressed = self.ddmin(range(len(start.threads)), lambda kept: _with_threads(start, kept))
        if self.interleaving is None:
            return progressed
        start = self.best
        taken = tuple(self.interleaving(start))

        def rebuild(kept: tuple[int, ...]) -> Program:
            renumbered = {old: new for new, old in enumerate(kept)}
            schedule = run_lengths(renumbered[t] for t, _ in taken if t in renumbered)
            return replace(start, threads=tuple(start.threads[t] for t in kept), schedule=schedule)

        return self.ddmin(range(len(start.threads)), rebuild) or progressed

    def drop_ops(self) -> bool:
        """ddmin over each thread's ops. With the interleaving known, the schedule is rewritten to
        the steps actually taken minus those of the dropped ops, so everyone else keeps their
        order; a step-count schedule would otherwise shift under the deletion and lose the race."""
        progressed = False
        for thread in range(len(self.best.threads)):
            base = self.best
            taken = tuple(self.interleaving(base)) if self.interleaving else None

            def rebuild(kept: tuple[int, ...], t=thread, base=base, taken=taken) -> Program:
                dropped = {(t, i) for i in range(len(base.threads[t])) if i not in kept}
                return _without_ops(base, dropped, taken)

            progressed |= self.ddmin(range(len(base.threads[thread])), rebuild)
        return progressed

    def drop_op_pairs(self) -> bool:
        """Two ops of two threads at once: a reference one thread takes and another drops, say,
        goes only as a pair. Tried once the program is small (the pairs grow as its square)."""
        if self.interleaving is None or sum(map(len, self.best.threads)) > PAIRS_MAX_OPS:
            return False
        base = self.best
        taken = tuple(self.interleaving(base))
        ops = [(t, i) for t, thread_ops in enumerate(base.threads) for i in range(len(thread_ops))]
        for a, first in enumerate(ops):
            for second in ops[a + 1 :]:
                if first[0] != second[0] and self.accept(lambda: _without_ops(base, {first, second}, taken)):
                    return True
        return False

    def drop_setup(self) -> bool:
        progressed = self.ddmin(self.best.setup, lambda setup: replace(self.best, setup=setup))
        for i, vma in enumerate(self.best.setup):
            if vma.counter is not None:
                plain = replace(vma, counter=None)
                progressed |= self.accept(lambda i=i, plain=plain: _with_setup_vma(self.best, i, plain))
        return progressed

    def fewer_switches(self) -> bool:
        """Remove one run of a thread's steps from the interleaving at a time, handing its steps
        to the thread's next run (the thread waits) or to its previous one (it runs ahead).
        Either way the other threads keep their order and the interleaving loses a switch or two."""
        if self.interleaving is None:
            return False
        progressed = False
        index = 0
        while True:
            runs = list(run_lengths_full(t for t, _ in self.interleaving(self.best)))
            if index >= len(runs):
                return progressed
            if self.accept(lambda: _explicit(self.best, _moved(runs, index, later=True))) or self.accept(
                lambda: _explicit(self.best, _moved(runs, index, later=False))
            ):
                progressed = True
            else:
                index += 1

    def shrink_schedule(self) -> bool:
        progressed = self.ddmin(self.best.schedule, lambda schedule: replace(self.best, schedule=schedule))
        progressed |= self.accept(lambda: replace(self.best, schedule=merged_slices(self.best.schedule)))
        for i in range(len(self.best.schedule)):
            thread, steps = self.best.schedule[i]
            progressed |= self.lower(
                steps, 1, lambda n, i=i, t=thread: _with_schedule_entry(self.best, i, (t, n))
            )
        return progressed

    def simplify_ops(self) -> bool:
        progressed = False
        for thread, ops in enumerate(self.best.threads):
            for i, op in enumerate(ops):
                if op.fail:
                    progressed |= self.accept(
                        lambda t=thread, i=i, op=op: _with_op(self.best, t, i, replace(op, fail=False))
                    )
                op = self.best.threads[thread][i]
                if op.name == "mmap":
                    progressed |= self.lower(
                        op.b, 1, lambda n, t=thread, i=i, op=op: _with_op(self.best, t, i, replace(op, b=n))
                    )
        return progressed


def run_lengths_full(threads: Sequence[int]) -> list[tuple[int, int]]:
    """Run-length encoding of a thread sequence, not cut to the schedule's length limit."""
    return list(merged_slices(tuple((t, 1) for t in threads)))


def _moved(runs: list[tuple[int, int]], index: int, later: bool) -> list[tuple[int, int]]:
    """The interleaving with run `index` folded into the same thread's next (or previous) run;
    with no such run it is dropped, and the thread runs those steps when its turn comes."""
    thread, steps = runs[index]
    rest = runs[:index] + runs[index + 1 :]
    others = range(index, len(rest)) if later else range(index - 1, -1, -1)
    for j in others:
        if rest[j][0] == thread:
            rest[j] = (thread, rest[j][1] + steps)
            break
    return list(merged_slices(tuple(rest)))


def _explicit(program: Program, runs: list[tuple[int, int]]) -> Program:
    # Longer than a schedule may be: Program refuses it, and accept() skips the candidate.
    return replace(program, schedule=tuple(runs))


def _without_ops(program: Program, dropped: set[tuple[int, int]], taken: Sequence[tuple[int, int]] | None) -> Program:
    """The program less the ops `dropped` ((thread, op index) pairs); with the interleaving
    `taken` known, the schedule is those steps less the dropped ops' own."""
    threads = tuple(
        tuple(op for i, op in enumerate(ops) if (t, i) not in dropped) for t, ops in enumerate(program.threads)
    )
    candidate = replace(program, threads=threads)
    if taken is None:
        return candidate
    return replace(candidate, schedule=run_lengths(t for t, i in taken if (t, i) not in dropped))


def _with_threads(program: Program, kept: tuple[int, ...]) -> Program:
    """Only the threads `kept` (indices into program.threads), renumbered 0.., schedule too."""
    renumbered = {old: new for new, old in enumerate(kept)}
    threads = tuple(program.threads[old] for old in kept)
    schedule = tuple((renumbered[t], n) for t, n in program.schedule if t in renumbered)
    return replace(program, threads=threads, schedule=schedule)


def _with_ops(program: Program, thread: int, ops: tuple[Op, ...]) -> Program:
    threads = list(program.threads)
    threads[thread] = ops
    return replace(program, threads=tuple(threads))


def _with_op(program: Program, thread: int, index: int, op: Op) -> Program:
    ops = list(program.threads[thread])
    ops[index] = op
    return _with_ops(program, thread, tuple(ops))


def _with_setup_vma(program: Program, index: int, vma: SetupVma) -> Program:
    setup = list(program.setup)
    setup[index] = vma
    return replace(program, setup=tuple(setup))


def _with_schedule_entry(program: Program, index: int, entry: tuple[int, int]) -> Program:
    schedule = list(program.schedule)
    schedule[index] = entry
    return replace(program, schedule=tuple(schedule))


def minimize(
    program: Program,
    still_fails: Callable[[Program], bool],
    budget: int = 2000,
    interleaving: Interleaving | None = None,
) -> Program:
    """The smallest program found that `still_fails`, spending at most `budget` calls of it.

    `program` is assumed to fail (it is not re-checked). `interleaving(p)`, when given, returns
    the (thread, op index) of every step p's execution took (`Outcome.taken`); it lets op
    deletion keep everyone else's order and lets the schedule passes count context switches.
    Passes run in a fixed order, from the ones that remove the most to the ones that only
    simplify, until a full round changes nothing.
    """
    shrinker = _Shrinker(program, still_fails, budget, interleaving)
    passes = (
        shrinker.drop_threads,
        shrinker.drop_ops,
        shrinker.drop_op_pairs,
        shrinker.drop_setup,
        shrinker.fewer_switches,
        shrinker.shrink_schedule,
        shrinker.simplify_ops,
    )
    while shrinker.budget > 0:
        # Every pass runs each round (a list, not a short-circuiting generator).
        if not any([run() for run in passes]):
            break
    return shrinker.best


class NotFailing(ValueError):
    """The program given to `reduce` does not fail: there is nothing to keep."""


class Unstable(RuntimeError):
    """A replay of the minimized program did not fail the same way (a pyfuzz bug)."""


@dataclass
class Reduction:
    original: Program
    program: Program
    signature: str
    before: Size
    after: Size
    tries: int  # programs executed while minimizing
    seconds: float
    verdict: object  # the minimized program's pyfuzz.check.Verdict


def reduce(program: Program, budget: int = 2000, validation_runs: int = VALIDATION_RUNS) -> Reduction:
    """Minimize a failing program keeping its violation's signature, then replay the result
    `validation_runs` times: each replay must give the same signature and the same history."""
    from .check import execute
    from .signature import signature

    started = time.monotonic()
    first = execute(program)
    if first.ok:
        raise NotFailing("the program does not fail: nothing to minimize")
    wanted = signature(first)
    runs: dict[Program, object] = {program: first}

    def run(candidate: Program):
        if candidate not in runs:
            runs[candidate] = execute(candidate)
        return runs[candidate]

    def still_fails(candidate: Program) -> bool:
        verdict = run(candidate)
        return not verdict.ok and signature(verdict) == wanted

    small = minimize(program, still_fails, budget, interleaving=lambda p: run(p).taken)
    final = run(small)
    for _ in range(validation_runs):
        again = execute(small)
        same_history = again.outcome is None or again.outcome.digest == final.outcome.digest
        if again.ok or signature(again) != wanted or not same_history:
            raise Unstable(f"the minimized program did not replay the same way ({wanted})")
    return Reduction(
        program, small, wanted, Size.of(program, first.taken), Size.of(small, final.taken),
        len(runs), time.monotonic() - started, final,
    )
