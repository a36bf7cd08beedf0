"""The libFuzzer harness, run by `pyfuzz fuzz` in a child process (`python -m pyfuzz.harness`).

Per input: the Rust core decodes the bytes into a program and runs it under the deterministic
engine: once under the schedule the bytes spell, then under PCT walks (random thread priorities
and WALK_DEPTH - 1 change points spread over the run), each seeded from the first run's digest
and its own index: WALKS_PER_INPUT of them, and more while the input's runs keep meeting
interleaving features the process has not met (`walk_indices`). The program's slices line
threads up at points the bytes choose; the walks try other alignments of the same program. Every
run feeds the same coverage, so libFuzzer keeps programs whose threads meet in new ways. Half of libFuzzer's mutations are
replaced by a fresh random program (FRESH_PROGRAMS). The Python oracle checks each history
unless an identical one (same digest) was already checked in this process. A violation is
written as JSON into the directory $PYFUZZ_FINDINGS (with the walk's parameters when a walk found
it, and its signature) and the process exits with FINDING_EXIT; the parent turns it into a
program with an explicit schedule, minimizes and reports it. With PYFUZZ_KEEP_GOING=1 (`pyfuzz
fuzz --keep-going`) the process goes on fuzzing instead, and writes a violation only if its
signature is new to it: neither written before nor one of the lines of $PYFUZZ_KNOWN (the
signatures already saved in the campaign's artifacts); repeats are counted in the stats. With
PYFUZZ_ORACLE=off (`pyfuzz corpus merge|minimize`, which run libFuzzer's -merge=1 on this
harness) the oracle is skipped: only the coverage counts. Without $PYFUZZ_FINDINGS (a plain
libFuzzer or ClusterFuzzLite run, fuzzers/) a violation is raised as an exception, which
libFuzzer reports as a crash with the input saved; configuration and mutant then default to
$PYFUZZ_CONFIG / $PYFUZZ_MUTANT or the seed's.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import random
import signal
import sys
import time

from pyfuzz.files import write_atomically
from pyfuzz.program import DEFAULT_CONFIG, parse_config_overrides, random_input

FINDING_EXIT = 3
# `pyfuzz bench walks` (BENCHMARKS.md) counts violations per walk on the same random programs.
# PCT's guarantee for a bug of depth d falls with d, but the protocol's races need a thread held
# off for a whole op and a second preemption a step wide, and many change points place both far
# more often than 3 do, and far more often than a uniformly random walk. Between 16 and 32 those
# counts are too small to choose (two samples of 100,000 programs disagreed); 30 campaigns per
# setting, and the blind walk alone, found every narrow race sooner with 32
# (bench-results/tuning). A PCT run switches threads only at its change points and when the
# running thread blocks or ends, so its steps fit in a program's schedule (LIMITS["schedule"]
# slices) and a finding replays as program text.
WALK_DEPTH = 32
# libFuzzer's work per input (mutation, coverage, the run under the bytes' own schedule) is paid
# once and shared by every walk, and the narrow races are found by walks far more often than by
# own schedules. With 30 seeds per setting (bench-results/tuning), 1 and 4 walks per input were
# slower on every race than 8; 16 found the narrow races as soon as 8 and the seed's race sooner.
WALKS_PER_INPUT = 16
# libFuzzer's mutations keep a campaign near the programs already in its corpus, but a narrow race
# needs the right ops and the right alignment together, and among random programs with walks it
# turned up about twice as often per input as among mutated ones. Replacing half of the mutations
# with fresh programs (drawn like the campaign's first inputs) keeps both; coverage from a fresh
# program still lands it in the corpus, where libFuzzer mutates it further.
FRESH_PROGRAMS = 0.5
# The walk schedule (walk_indices): an input whose runs meet interleaving features new to the
# process (feedback.rs, any family) has a shape or an alignment the campaign has not tried, and
# gets NOVELTY_WALKS more walks per such run, up to MAX_WALKS; the others keep WALKS_PER_INPUT.
# A narrow race's rate per walk differs by program by fifty times and more, so walks pay where a
# program is new. Against 16 walks for every input, in runs to the first violation over 8 seeds
# (BENCHMARKS.md, "The walk schedule"): 1.3-1.7x fewer on `rmap_put_after_unlock`, 3.4-6x on
# `merge_put_rcusafe`, 4.4x on the seed's race, 2.9x and 12x on two rcuref windows; 1.4x more on
# `merge_skips_remove2_folios`, rare in program shape alone, where walks of one program add
# nothing. 32 more per new run (cap 512) and a base of 8 walks were no better on the deep two.
NOVELTY_WALKS = 16
MAX_WALKS = 256
# Steering (PYFUZZ_WALKS=steer, `bench bugs --method pyfuzz-steer`; off by default): a walk's seed
# fixes its thread priorities (for as many threads) and change points (at the same steps when the
# run is as long), and a mutant of a kept input is mostly the same program. So the walk after
# which an input met the most interleaving features new to the process can be passed on to the
# inputs libFuzzer mutates from it, which run it before their own walks. It did not pay: over 16
# seeds per deep mutant (BENCHMARKS.md, "Steering and the entropic schedule"), median runs to the
# first violation 40,200 against 42,300 on `rmap_put_after_unlock` (the mean 43,000 against
# 77,800: it cut the two worst seeds' tails) and 18,500 against 18,100 on `merge_put_rcusafe` (the
# mean 44,500 against 26,000: three seeds 2.5-10x slower, two 3x faster); 8,300 against 7,600 on
# the seed's race over 10.
# How often the harness tells the campaign its counts: at tens to hundreds of inputs a second,
# about once a second.
STATS_EVERY = 32


def walk_indices(novel, before: int, power: bool = True):
    """The indices of an input's walks, each yielded before it runs: WALKS_PER_INPUT, and with
    `power` NOVELTY_WALKS more for every run of the input (its own included) after which
    `novel()`, the process's count of interleaving features met for the first time, has grown
    past `before` (its value when the input started), up to MAX_WALKS. The count depends only on
    what the process ran before, never on the clock, so a campaign's seed still replays it."""
    walks, i = WALKS_PER_INPUT, 0
    while True:
        met = novel()
        if power and met > before:
            walks = min(MAX_WALKS, walks + NOVELTY_WALKS)
        before = met
        if i >= walks:
            return
        yield i
        i += 1


def _load_instrumented_core(path: str):
    """Load the sanitizer-coverage build as `pyfuzz._core` (see pyfuzz/build.py).

    The module refers to libFuzzer's __sanitizer_cov_* symbols. atheris loads its copy of
    libFuzzer only inside Fuzz(); with RTLD_GLOBAL in force those symbols are visible to loads
    made after that, so the module is loaded on the first input (libFuzzer accepts coverage
    modules that register once the driver runs). By then the normal build is already imported
    (pyfuzz.program reads its CONFIG), so the engine must come from this module object itself:
    `from pyfuzz import _core` would still find the uninstrumented one, and the campaign would
    run with no Rust coverage at all.
    """
    import pyfuzz

    spec = importlib.util.spec_from_file_location("pyfuzz._core", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["pyfuzz._core"] = pyfuzz._core = module
    return module


def _make_engine(config: dict[str, str], mutant: str):
    """The engine and the core module it comes from."""
    core_path = os.environ.get("PYFUZZ_CORE", "")
    if core_path:
        core = _load_instrumented_core(core_path)
    else:
        from pyfuzz import _core as core
    # `pyfuzz bench bugs` measures the interleaving features by turning them off (baselines.py).
    core.set_interleaving_feedback(os.environ.get("PYFUZZ_FEEDBACK", "pairs"))
    return core.Engine(config, mutant), core


def _die_with_parent() -> None:
    """A campaign killed by SIGKILL cannot stop its workers, so the kernel does (Linux): a worker
    must not go on fuzzing into a directory nobody reads."""
    parent = int(os.environ.get("PYFUZZ_PARENT", "0"))
    if parent and sys.platform == "linux":
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the campaign died before the request took effect
            os._exit(0)


def _known_signatures() -> list[str]:
    path = os.environ.get("PYFUZZ_KNOWN")
    if not path:
        return []
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f if line.strip()]


def main(argv: list[str]) -> None:
    _die_with_parent()
    sys.setdlopenflags(os.RTLD_NOW | os.RTLD_GLOBAL)
    import atheris

    # The oracle is not instrumented: Python coverage would slow every check several-fold, and
    # the Rust core's branches already tell libFuzzer when a run took a new path.
    from pyfuzz import model
    from pyfuzz.check import Verdict
    from pyfuzz.model import is_core_panic, panic_violation
    from pyfuzz.program import Program
    from pyfuzz.signature import signature

    overrides = os.environ.get("PYFUZZ_CONFIG", "")
    config = {**DEFAULT_CONFIG, **parse_config_overrides(overrides.split(",") if overrides else [])}
    mutant = os.environ.get("PYFUZZ_MUTANT", "none")
    findings_dir = os.environ.get("PYFUZZ_FINDINGS")
    keep_going = os.environ.get("PYFUZZ_KEEP_GOING") == "1"
    oracle = os.environ.get("PYFUZZ_ORACLE", "on") != "off"
    stats_path = os.environ.get("PYFUZZ_STATS")
    histories = model.DistinctHistories(config)
    # Signature -> later violations with it that were not written (repeats).
    duplicates: dict[str, int] = dict.fromkeys(_known_signatures(), 0)
    written = 0
    # `pyfuzz bench bugs` measures the walk schedule against WALKS_PER_INPUT walks for every input
    # (PYFUZZ_WALKS=fixed) and steering beside it (PYFUZZ_WALKS=steer; a finding's walk,
    # inherited or not, is a seed like any other, so it still replays as text). libFuzzer's
    # -merge=1 (the oracle off) wants each input's coverage to depend on the input alone, not on
    # what the process met before it: fixed walks there too, and no steering.
    walks_mode = os.environ.get("PYFUZZ_WALKS", "power")
    power = oracle and walks_mode != "fixed"
    # Steering (PYFUZZ_WALKS=steer, the note above the constants): the seed of an input's most
    # novel walk, by input, passed on to its mutants (`mutate`), which run it first:
    # `inherited` is the last mutant's (bytes, seed); `last_steered` the last input that ran an
    # inherited seed and met nothing new, which libFuzzer's next mutation of the same unit (up to
    # -mutate_depth in a row) still inherits.
    steer = oracle and walks_mode == "steer"
    novel_seed: dict[bytes, int] = {}
    inherited: list = [None, None]
    last_steered: list = [None, None]
    stats = {"executions": 0, "runs": 0, "checked": 0, "started": time.time(), "duplicates": duplicates}

    def write_stats() -> None:
        if stats_path:
            # Read here, at inputs the count fixes, not on every input: the call runs instrumented
            # Rust, so its moments must not depend on the clock, and a copy of every counter per
            # input is work the runs of an input need not pay for.
            seen = core.interleavings_seen() if core is not None else b""
            met = [pair for pair, flag in enumerate(seen) if flag]
            write_atomically(stats_path, json.dumps(dict(stats, interleavings=met)).encode())

    def report(data: bytes, walk: dict | None, outcome, violation, digest: int) -> None:
        """Write a violation for the campaign (a new signature only, with keep_going)."""
        nonlocal written
        assert findings_dir is not None
        setup, threads, schedule = core.decode(data)
        program = Program.from_tuple((setup, threads, schedule), config, mutant)
        sig = signature(Verdict(program, outcome, violation))
        if keep_going and sig in duplicates:
            duplicates[sig] += 1
            return
        duplicates[sig] = 0
        finding = {"data": data.hex(), "walk": walk, "kind": violation.kind, "message": violation.message,
                   "digest": digest, "signature": sig, "found_at": time.time(),
                   "first_input_at": stats["first_input_at"], "executions": stats["executions"],
                   "runs": stats["runs"]}
        write_atomically(os.path.join(findings_dir, f"{written:06d}.json"), json.dumps(finding).encode())
        written += 1
        if not keep_going:
            write_stats()
            sys.stdout.flush()
            os._exit(FINDING_EXIT)

    def judge(outcome, data: bytes, walk: dict | None) -> None:
        if not oracle or outcome is None:
            return
        violation = histories.judge(outcome)
        stats["checked"] = histories.checked
        if violation is not None:
            if findings_dir is None:
                raise violation
            report(data, walk, outcome, violation, outcome.digest)

    engine = core = None

    def run(data: bytes, walk: dict | None):
        """The run's outcome, or None when the core panicked (and the campaign goes on)."""
        nonlocal engine
        try:
            return engine.run_bytes(data) if walk is None else engine.run_bytes_with(data, **walk)
        except BaseException as e:
            if not is_core_panic(e) or findings_dir is None:
                raise  # a crash to libFuzzer
            report(data, walk, None, panic_violation(e), 0)
            # Whatever state the panic left the engine in, the next run starts from a new one.
            engine = core.Engine(config, mutant)
            return None

    def test_one_input(data: bytes) -> None:
        nonlocal engine, core
        if engine is None:
            engine, core = _make_engine(config, mutant)
            stats["core"] = core.__file__
            stats["first_input_at"] = time.time()
        stats["executions"] += 1
        # Every STATS_EVERY inputs, not on a clock: writing the stats at wall-clock moments made
        # two campaigns with the same seed find different things (907, 913 or 1942 inputs to the
        # first finding over three runs; with no writes, or with these, 907 every time).
        if stats["executions"] % STATS_EVERY == 0:
            write_stats()
        before = core.novel_interleavings()
        parent_seed = inherited[1] if inherited[0] == data else None
        inherited[0] = inherited[1] = None
        stats["runs"] += 1
        outcome = run(data, None)
        judge(outcome, data, None)
        if outcome is None:
            return
        seeds = (outcome.digest ^ i for i in walk_indices(core.novel_interleavings, before, power))
        if parent_seed is not None:
            seeds = itertools.chain([parent_seed], seeds)
        best_gain, best_seed, mark = 0, None, core.novel_interleavings() if steer else 0
        for seed in seeds:
            walk = {"scheduler": "pct", "seed": seed, "depth": WALK_DEPTH, "steps": outcome.steps}
            stats["runs"] += 1
            judge(run(data, walk), data, walk)
            if steer:
                met = core.novel_interleavings()
                if met - mark > best_gain:
                    best_gain, best_seed = met - mark, seed
                mark = met
        if best_seed is not None:
            novel_seed[data] = best_seed  # at most one input per feature: bounded
        elif parent_seed is not None:
            last_steered[0], last_steered[1] = data, parent_seed  # libFuzzer mutates it again next

    def mutate(data: bytes, max_size: int, seed: int) -> bytes:
        rng = random.Random(seed)
        if rng.random() < FRESH_PROGRAMS:
            return random_input(rng)[:max_size]
        child = atheris.Mutate(data, max_size)
        if steer:
            inherited[0] = child
            inherited[1] = last_steered[1] if last_steered[0] == data else novel_seed.get(data)
        return child

    # libFuzzer's -merge=1 re-runs its own command line in child processes: argv[0] must then be
    # something a shell can execute (pyfuzz/corpus.py writes a launcher), not harness.py.
    argv = [os.environ.get("PYFUZZ_ARGV0", argv[0]), *argv[1:]]
    atheris.Setup(argv, test_one_input, custom_mutator=mutate)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
