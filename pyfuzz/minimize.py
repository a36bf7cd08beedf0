"""Delta-debugging minimizer: shrink a failing program to a reproducer of a handful of steps.

Deterministic (no randomness): the same program and predicate always give the same result, so a
minimized reproducer in a bug report can be regenerated. Candidates that are not valid programs
are skipped without spending budget; every candidate is tried at most once.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Sequence, TypeVar

from .program import Op, Program, ProgramError, SetupVma, merged_slices, run_lengths

Item = TypeVar("Item")


Interleaving = Callable[[Program], Sequence[tuple[int, int]]]


class _Shrinker:
    def __init__(
        self, program: Program, still_fails: Callable[[Program], bool], budget: int, interleaving: Interleaving | None
    ) -> None:
        self.best = program
        self.still_fails = still_fails
        self.budget = budget
        self.interleaving = interleaving
        self.verdicts: dict[Program, bool] = {program: True}

    def accept(self, build: Callable[[], Program]) -> bool:
        """Try the candidate `build` makes from the current best; keep it if it still fails."""
        try:
            candidate = build()
        except ProgramError:
            return False
        if candidate not in self.verdicts:
            if self.budget <= 0:
                return False
            self.budget -= 1
            self.verdicts[candidate] = bool(self.still_fails(candidate))
        if self.verdicts[candidate] and candidate != self.best:
            self.best = candidate
            return True
        return False

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
        # The indices ddmin juggles refer to the threads as they are now, not to later bests.
        start = self.best
        return self.ddmin(range(len(start.threads)), lambda kept: _with_threads(start, kept))

    def drop_ops(self) -> bool:
        """ddmin over each thread's ops. With the interleaving known, the schedule is rewritten to
        the steps actually taken minus those of the dropped ops, so everyone else keeps their
        order; a step-count schedule would otherwise shift under the deletion and lose the race."""
        progressed = False
        for thread in range(len(self.best.threads)):
            base = self.best
            taken = tuple(self.interleaving(base)) if self.interleaving else None

            def rebuild(kept: tuple[int, ...], t=thread, base=base, taken=taken) -> Program:
                candidate = _with_ops(base, t, tuple(base.threads[t][i] for i in kept))
                if taken is None:
                    return candidate
                keep = set(kept)
                steps = [th for th, op in taken if th != t or op in keep]
                return replace(candidate, schedule=run_lengths(steps))

            progressed |= self.ddmin(range(len(base.threads[thread])), rebuild)
        return progressed

    def drop_setup(self) -> bool:
        progressed = self.ddmin(self.best.setup, lambda setup: replace(self.best, setup=setup))
        for i, vma in enumerate(self.best.setup):
            if vma.counter is not None:
                plain = replace(vma, counter=None)
                progressed |= self.accept(lambda i=i, plain=plain: _with_setup_vma(self.best, i, plain))
        return progressed

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
    the (thread, op index) of every step p's execution took (`Outcome.taken`). Passes run in a
    fixed order, from the ones that remove the most to the ones that only simplify, until a full
    round changes nothing.
    """
    shrinker = _Shrinker(program, still_fails, budget, interleaving)
    passes = (
        shrinker.drop_threads,
        shrinker.drop_ops,
        shrinker.drop_setup,
        shrinker.shrink_schedule,
        shrinker.simplify_ops,
    )
    while shrinker.budget > 0:
        # Every pass runs each round (a list, not a short-circuiting generator).
        if not any([run() for run in passes]):
            break
    return shrinker.best
