"""`pyfuzz bench minimize`: how long the minimizer takes on the largest failing programs.

The inputs are the seed's race (corpus/typesafe-reinit-swallows-get.txt's three ops) buried in
random padding: every thread filled to the most ops the decoder draws (the size of a campaign's
largest programs) with random ops on the same VMAs, and a
random schedule tail after the race's own prefix. A padded program is kept only if it fails (by
whatever violation comes first), so each input is a failing program of that size that the minimizer
must take apart.
"""

from __future__ import annotations

import random
import statistics
import time
from pathlib import Path

from .program import LIMITS, Op, Program, SetupVma, run_lengths

RACE = Program(
    (SetupVma(1, 5), SetupVma(8, 12)),
    ((Op("munmap", 2), Op("mmap", 7, 1)), (Op("rmap", 1),)),
    ((1, 3), (0, 13), (1, 1)),  # corpus/typesafe-reinit-swallows-get.txt's
)
# Padded programs drawn per failing one before the generator gives up.
ATTEMPTS_PER_PROGRAM = 1000
OP_NAMES = ("mmap", "munmap", "split", "merge", "fork", "get", "put", "rmap")


def _random_op(rng: random.Random) -> Op:
    """An op on pages 8.. only, away from the race's VMA, so that it can run before the race."""
    name = rng.choice(OP_NAMES)
    if name == "mmap":
        return Op(name, rng.randrange(8, 15), 1, rng.random() < 0.2)
    if name == "put":
        return Op(name)
    return Op(name, rng.randrange(8, 12), 0, name in ("split", "fork") and rng.random() < 0.2)


def _slices(rng: random.Random, threads: int, count: int) -> tuple[tuple[int, int], ...]:
    return tuple((rng.randrange(threads), rng.randint(1, 40)) for _ in range(count))


def padded_race(rng: random.Random, threads: int, ops_per_thread: int) -> Program:
    """The race in threads 0 and 1, behind and before random ops, `threads` x `ops_per_thread`
    ops in all. The padding before the race runs first, interleaved at random (its steps are
    spelled out in the schedule), then the race's own schedule, then a random tail."""
    from .check import execute

    room = [ops_per_thread - len(RACE.threads[t]) if t < 2 else ops_per_thread for t in range(threads)]
    before = [rng.randint(0, r) if t < 2 else rng.randint(0, r) for t, r in enumerate(room)]
    prefix = [[_random_op(rng) for _ in range(n)] for n in before]
    suffix = [[_random_op(rng) for _ in range(r - n)] for r, n in zip(room, before)]
    # The padding that goes first, on its own: its steps, as taken, open the schedule. Threads 0
    # and 1 must have finished it before the race starts, threads 2.. run theirs to the end.
    head = Program(RACE.setup, tuple(map(tuple, prefix)), _slices(rng, threads, rng.randint(2, 20)))
    taken = [t for t, _ in execute(head).taken]
    race = tuple((t, n) for t, n in RACE.schedule)
    schedule = run_lengths(taken)[: LIMITS["schedule"] - 40] + race + _slices(rng, threads, rng.randint(2, 30))
    threads_ops = tuple(
        tuple(prefix[t]) + (RACE.threads[t] if t < 2 else ()) + tuple(suffix[t]) for t in range(threads)
    )
    return Program(RACE.setup, threads_ops, schedule, RACE.config, RACE.mutant)


def failing_padded_races(seed: int, count: int, threads: int, ops_per_thread: int) -> list[Program]:
    from .check import execute

    if execute(RACE).ok:
        raise RuntimeError("RACE no longer fails: align its schedule with the corpus program's")
    rng = random.Random(seed)
    found = []
    for _ in range(count * ATTEMPTS_PER_PROGRAM):
        program = padded_race(rng, threads, ops_per_thread)
        if not execute(program).ok:
            found.append(program)
            if len(found) == count:
                return found
    raise RuntimeError(f"only {len(found)} of {count} padded races failed in {count * ATTEMPTS_PER_PROGRAM} tries")


def _timing_rows(seed: int, inputs: int, console) -> list[str]:
    from .minimize import reduce

    threads, ops = LIMITS["threads"][1], LIMITS["decoded_ops"]
    rows = []
    for program in failing_padded_races(seed, inputs, threads, ops):
        started = time.monotonic()
        result = reduce(program)
        rows.append((time.monotonic() - started, result))
        console.print(f"{rows[-1][0]:6.2f} s  {result.before.describe()}  ->  {result.after.describe()}",
                      highlight=False)
    seconds = [s for s, _ in rows]
    return [
        "| inputs | ops each | threads | median s | max s | programs run (median) | after: threads / ops / switches (max) |",
        "|---:|---:|---:|---:|---:|---:|---|",
        f"| {len(rows)} | {threads * ops} | {threads} | {statistics.median(seconds):.2f} | {max(seconds):.2f} | "
        f"{statistics.median(r.tries for _, r in rows):.0f} | "
        f"{max(r.after.threads for _, r in rows)} / {max(r.after.ops for _, r in rows)} / "
        f"{max(r.after.switches for _, r in rows)} |",
    ]


def _shape(program: Program) -> str:
    """threads / ops / context switches / folded `show` rows of a program's run."""
    from .check import execute
    from .minimize import Size
    from .report import step_table

    verdict = execute(program)
    size = Size.of(program, verdict.taken)
    rows = len(step_table(program, verdict.events, verdict.violation).shown(False))
    return f"{size.threads} / {size.ops} / {size.switches} / {rows}"


def _catalog_rows(names: list[str], budget: int, seeds: int, console) -> list[str]:
    """One campaign per mutant (under slab=deferred) and `seeds` on the seed's configuration:
    the finding as libFuzzer's walk gave it beside the minimized reproducer."""
    from .bench import SCENARIOS, row_setup
    from .campaign import run_campaign
    from .files import scratch_directory
    from .signature import signature

    lines = [
        "| finding | signature | raw: threads / ops / switches / show rows | minimized | campaign s |",
        "|---|---|---|---|---:|",
    ]
    jobs = [(name, seed) for name in names for seed in (range(1, seeds + 1) if name in SCENARIOS else (1,))]
    for name, seed in jobs:
        config, mutant = row_setup(name)
        with scratch_directory("pyfuzz-bench-") as tmp:
            result = run_campaign(dict(config), mutant, budget, None, tmp, seed)
        label = f"{name} (seed {seed})"
        finding = result.finding
        if finding is None:
            lines.append(f"| {label} | none in {budget} s | | | {result.seconds:.1f} |")
        else:
            lines.append(f"| {label} | {signature(finding.verdict)} | {_shape(finding.original)} | "
                         f"{_shape(finding.program)} | {finding.seconds:.1f} |")
        console.print(lines[-1], highlight=False)
    return lines


def bench_minimize(args, console) -> int:
    """The minimizer's time on --inputs (default 10) failing programs of the largest size drawn
    with seed --seeds, and, for each --mutant (or 'seed', then --seeds campaigns), a campaign's
    finding before and after minimization."""
    lines = _timing_rows(args.seeds, args.inputs or 10, console)
    if args.mutant:
        from . import _core
        from .bench import SCENARIOS

        names = [m for m, _, _ in _core.MUTANTS if m != "none"] if args.mutant == ["all"] else args.mutant
        lines += [""] + _catalog_rows([*names, *SCENARIOS] if args.mutant == ["all"] else names,
                                      args.budget, args.seeds, console)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "minimize.md").write_text("\n".join(lines) + "\n")
    console.print("\n".join(lines), highlight=False)
    return 0
