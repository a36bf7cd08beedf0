"""`pyfuzz bench`: how fast bugs are found (bugs) and how fast the loop runs (speed).

Figures are measured, never asserted: the results go to JSON (machine-readable), Markdown
(for BENCHMARKS.md) and, for bugs, a PNG plot. Times are medians over seeds, with the budget
standing in for a run that found nothing (so a median above the budget reads "> budget").
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from . import _core, build
from .baselines import BLIND, FEEDBACK, METHODS, Attempt, config_label, run_method
from .harness import WALK_DEPTH, WALKS_PER_INPUT
from .model import FLOOR, ORACLE, ORACLE_NAME, DistinctHistories
from .mypyc_oracle import compile_in_place
from .program import DEFAULT_CONFIG, INPUT_LEN, Program, ProgramError, random_input

# The mutants run under the configuration the specification calls safe, so that every violation
# found is the mutant's and not the configuration's own: the deferred slab (the typesafe slab has
# the seed's re-init race, corpus/typesafe-reinit-*) and the reverse-map walker under the rmap lock
# (without it the walker reads a torn range across a split, corpus/split-below-torn-range-read.txt).
MUTANT_CONFIG = {"vma_ref": "on", "slab": "deferred", "put": "preempt", "debug_vm": "on", "rmap_lock": "rwsem"}


def mutant_config(name: str) -> dict[str, str]:
    """The configuration a mutant is benchmarked under: MUTANT_CONFIG, with the switches its catalog
    entry names as the ones its bug needs ("with lockdep=on" for the debug-check mutants, "with
    rmap_lock=none" for a mistake of the lockless walker that the rmap lock would hide)."""
    expect = next((e for n, _, e in _core.MUTANTS if n == name), "")
    config = dict(MUTANT_CONFIG)
    for word in expect.replace("(", " ").replace(")", " ").split():
        key, _, value = word.strip(",;:.").partition("=")
        if value in _core.CONFIG.get(key, ()):
            config[key] = value
    return config


SAFE_CONFIGS = (
    MUTANT_CONFIG,
    {"vma_ref": "off", "slab": "typesafe", "put": "preempt", "debug_vm": "on"},
    {"vma_ref": "off", "slab": "deferred", "put": "preempt", "debug_vm": "on"},
)
# Not mutants: the code as the seed has it, in a configuration with a bug of its own. Each is a
# row of `bench bugs` and `bench walks` beside the mutants, and stays out of the catalog's median
# of medians. "seed" is the seed's own configuration, with the typesafe slab's re-init race
# (corpus/typesafe-reinit-*); "torn-range" is MUTANT_CONFIG without the rmap lock, where the lazy
# walker's torn range across a split is rare enough for the hard tier
# (corpus/split-below-torn-range-read.txt).
SCENARIOS = {
    "seed": (DEFAULT_CONFIG, "the seed's own race"),
    "torn-range": ({**MUTANT_CONFIG, "rmap_lock": "none"}, "the lazy walker's torn range without the rmap lock"),
}


def chosen_rows(names: list[str]) -> list[str]:
    """--mutant's rows, checked: mutants (with "none", the configuration alone) and scenarios."""
    for name in names:
        if name not in SCENARIOS and name not in (n for n, _, _ in _core.MUTANTS):
            raise ProgramError(f"unknown mutant {name!r} (see 'pyfuzz mutants'; scenarios: {', '.join(SCENARIOS)})")
    return names


def row_setup(name: str) -> tuple[dict[str, str], str]:
    """The configuration and mutant a row of the bug benchmark runs: a scenario's configuration
    with no mutant, or a mutant under mutant_config()."""
    if name in SCENARIOS:
        return SCENARIOS[name][0], "none"
    return mutant_config(name), name


RCUREF_MUTANTS = ("put_reread", "put_no_preempt", "put_no_cmpxchg", "put_relaxed", "put_no_acquire",
                  "get_ignores_dead", "no_saturation")


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Linux {platform.release()}, CPython {platform.python_version()}"


def _censored(attempts: list[Attempt], budget: float) -> list[float]:
    return [a.seconds if a.found else budget for a in attempts]


def _from_first_input(attempts: list[Attempt], budget: float) -> list[float]:
    """A campaign's times without its start-up (the blind loops' process is already running when
    their clock starts, a campaign's is not): the fairness question of `bench bugs`."""
    return [a.seconds - (a.startup or 0.0) if a.found else budget for a in attempts]


def _fmt(seconds: float, budget: float) -> str:
    if seconds >= budget:
        return f"> {budget:g}"
    return f"{seconds:.3f}" if seconds < 1 else f"{seconds:.1f}"


def _runs(attempt: Attempt) -> int:
    """The schedules an attempt ran: a campaign counts its walks, a blind method one per execution."""
    return attempt.executions if attempt.runs is None else attempt.runs


def summarize(attempts: list[Attempt], budget: float, methods: list[str]) -> dict:
    mutants = sorted({a.mutant for a in attempts if a.mutant != "none"}, key=lambda m: (m in SCENARIOS, m))
    catalog = [m for m in mutants if m not in SCENARIOS]
    per: dict = {}
    for mutant in mutants:
        for method in methods:
            runs = [a for a in attempts if a.mutant == mutant and a.method == method]
            if not runs:
                continue
            times = _censored(runs, budget)
            per[f"{mutant}/{method}"] = {
                "found": sum(a.found for a in runs), "runs": len(runs),
                "median_s": statistics.median(times), "worst_s": max(times),
                "median_executions": statistics.median(a.executions for a in runs),
                # Runs (schedules executed) to the violation, or in the whole budget: the
                # load-independent measure, since a campaign's inputs get different walk counts.
                "median_runs": statistics.median(_runs(a) for a in runs),
                "kinds": sorted({a.kind for a in runs if a.kind}),
                # Runs over seconds, summed over seeds (a campaign's from its first input): how
                # fast each method runs, measured in the same benchmark as its runs to the bug.
                "runs_per_s": sum(_runs(a) for a in runs)
                / max(sum(a.seconds - (a.startup or 0.0) for a in runs), 1e-9),
            }
            if method in FEEDBACK:
                per[f"{mutant}/{method}"]["median_from_first_input_s"] = statistics.median(
                    _from_first_input(runs, budget))
    overall = {}
    for method in methods:
        medians = [per[f"{m}/{method}"]["median_s"] for m in catalog if f"{m}/{method}" in per]
        if medians:
            overall[method] = {"median_of_medians_s": statistics.median(medians),
                               "mutants_always_found": sum(per[f"{m}/{method}"]["found"] == per[f"{m}/{method}"]["runs"]
                                                           for m in catalog if f"{m}/{method}" in per)}
    if "pyfuzz" in overall:
        base = overall["pyfuzz"]["median_of_medians_s"]
        for method, o in overall.items():
            o["ratio_to_pyfuzz"] = o["median_of_medians_s"] / base if base > 0 else None
        startups = [a.startup for a in attempts if a.method == "pyfuzz" and a.startup is not None]
        if startups:
            overall["pyfuzz"]["median_startup_s"] = statistics.median(startups)
        for mutant in mutants:
            mine = per.get(f"{mutant}/pyfuzz")
            others = [per[f"{mutant}/{m}"]["median_s"] for m in methods if m not in FEEDBACK and f"{mutant}/{m}" in per]
            if mine and others:
                mine["best_other_ratio"] = min(others) / mine["median_s"]
                mine["best_other_ratio_from_first_input"] = min(others) / max(mine["median_from_first_input_s"], 1e-3)
                other_runs = [per[f"{mutant}/{m}"]["median_runs"] for m in methods
                              if m not in FEEDBACK and f"{mutant}/{m}" in per]
                mine["best_other_ratio_runs"] = min(other_runs) / max(mine["median_runs"], 1)
    false_alarms = {}
    for a in attempts:
        if a.mutant == "none":
            entry = false_alarms.setdefault(a.config, {"runs": 0, "reports": 0, "kinds": []})
            entry["runs"] += 1
            entry["reports"] += a.found
            if a.kind:
                entry["kinds"].append(a.kind)
    return {"per": per, "overall": overall, "false_alarms": false_alarms, "mutants": mutants}


def markdown(summary: dict, budget: float, methods: list[str], seeds: int, command: str) -> str:
    ratios = "pyfuzz" in methods and len(methods) > 1
    lines = [
        f"Command: `{command}`  ",
        f"Machine: {machine()}  ",
        f"Date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}  ",
        f"Budget: {budget:g} s per run, {seeds} seeds per mutant and method; mutants run under "
        f"`{config_label(MUTANT_CONFIG)}` (with the switches a mutant's catalog entry names: `lockdep=on`, `rmap_lock=none`; a scenario under its own configuration). Cells: median time to the first violation in seconds "
        "(worst) [runs that found it]; executions are median executions to the violation."
        + " A campaign's cell also gives its median inputs and runs (each input's own schedule and its walks; "
          "for a blind method a run is an execution), to the violation or in the whole budget."
        + (" The last three columns are the fastest blind method's median over pyfuzz's (above 1: pyfuzz is "
           "faster), with pyfuzz's time counted from its campaign's start and from its first input, and in runs "
           "(a median not found on most seeds is a lower bound)."
           if ratios else ""),
        "",
        "| mutant | " + " | ".join(methods) + (" | best blind / pyfuzz | from first input | in runs |"
                                              if ratios else " |"),
        "|---|" + "---|" * (len(methods) + 3 * ratios),
    ]

    def row(name: str, cells: list[str]) -> None:
        lines.append(f"| {name} | " + " | ".join(cells + [""] * (len(methods) + 3 * ratios - len(cells))) + " |")

    def result_row(mutant: str, name: str) -> None:
        cells = []
        for method in methods:
            p = summary["per"].get(f"{mutant}/{method}")
            cells.append("" if p is None else
                         f"{_fmt(p['median_s'], budget)} ({_fmt(p['worst_s'], budget)}) [{p['found']}/{p['runs']}]"
                         + (f"<br>{int(p['median_executions']):,} inputs, {int(p['median_runs']):,} runs"
                            f"<br>{_fmt(p['median_from_first_input_s'], budget)} from first input"
                            if "median_from_first_input_s" in p else f"<br>{int(p['median_executions']):,} execs"))
        if ratios:
            mine = summary["per"].get(f"{mutant}/pyfuzz", {})
            for key in ("best_other_ratio", "best_other_ratio_from_first_input", "best_other_ratio_runs"):
                cells.append(f"{mine[key]:.2g}x" if key in mine else "")
        row(name, cells)

    for mutant in summary["mutants"]:
        if mutant not in SCENARIOS:
            result_row(mutant, f"`{mutant}`")
    o = summary["overall"]
    row("**median of medians**", [f"**{_fmt(o[m]['median_of_medians_s'], budget)}**" if m in o else "" for m in methods])
    row("**ratio to pyfuzz**",
        [f"{o[m]['ratio_to_pyfuzz']:.2g}x" if m in o and o[m].get("ratio_to_pyfuzz") else "" for m in methods])
    rates = {m: [p["runs_per_s"] for k, p in summary["per"].items() if k.endswith(f"/{m}")] for m in methods}
    row("runs per second (all seeds' runs over their seconds, a campaign's from its first input; median over rows)",
        [f"{statistics.median(r):,.0f}" if r else "" for r in rates.values()])
    for name, (config, title) in SCENARIOS.items():
        if name in summary["mutants"]:
            result_row(name, f"{title} (`{name}`: `{config_label(config)}`, no mutant)")
    if "median_startup_s" in o.get("pyfuzz", {}):
        lines += ["", f"pyfuzz's times count from the start of its campaign; its start-up (the harness process, "
                      f"libFuzzer, loading the instrumented core) took a median {o['pyfuzz']['median_startup_s']:.3f} s "
                      "of them. The other methods run in the benchmark's own process, already started."]
    if summary["false_alarms"]:
        lines += ["", "False-alarm check (pyfuzz, no mutant, configurations the specification calls safe):", "",
                  "| configuration | runs | reports |", "|---|---|---|"]
        for config, fa in summary["false_alarms"].items():
            kinds = f" ({', '.join(fa['kinds'])})" if fa["kinds"] else ""
            lines.append(f"| `{config}` | {fa['runs']} | {fa['reports']}{kinds} |")
    return "\n".join(lines) + "\n"


def plot(summary: dict, attempts: list[Attempt], budget: float, methods: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mutants = summary["mutants"]
    fig, ax = plt.subplots(figsize=(max(8, 1.1 * len(mutants)), 5))
    width = 0.8 / max(1, len(methods))
    markers = {"pyfuzz": "o", "random": "s", "pct": "^", "pct-walk": "v", "hypothesis": "D"}
    for k, method in enumerate(methods):
        xs, ys, hollow_x, hollow_y = [], [], [], []
        for i, mutant in enumerate(mutants):
            for a in attempts:
                if a.mutant == mutant and a.method == method:
                    x = i + (k - (len(methods) - 1) / 2) * width
                    if a.found:
                        xs.append(x), ys.append(max(a.seconds, 1e-3))
                    else:
                        hollow_x.append(x), hollow_y.append(budget)
        line = ax.scatter(xs, ys, marker=markers.get(method, "o"), label=method, alpha=0.8)
        ax.scatter(hollow_x, hollow_y, marker=markers.get(method, "o"), facecolors="none",
                   edgecolors=line.get_facecolor(), alpha=0.8)
    ax.axhline(budget, color="grey", linestyle=":", linewidth=1)
    ax.set_yscale("log")
    ax.set_xticks(range(len(mutants)), mutants, rotation=35, ha="right")
    ax.set_ylabel("seconds to first violation (hollow: not found within budget)")
    ax.set_title("pyfuzz bench bugs: time to bug per mutant and method")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def bench_bugs(args, console: Console) -> int:
    mutants = chosen_rows(args.mutant) or [name for name, _, _ in _core.MUTANTS if name != "none"] + list(SCENARIOS)
    methods = args.method or list(METHODS)
    for name in methods:
        if name not in METHODS:
            raise ProgramError(f"unknown method {name!r} (choose from {', '.join(METHODS)})")
    # Each job is (the row it reports under, run_method's arguments).
    jobs = [(row, (method, *row_setup(row), args.budget, seed))
            for row in mutants for method in methods for seed in range(args.seeds)]
    if not args.no_false_alarm_check:
        jobs += [("none", ("pyfuzz", config, "none", args.budget, seed))
                 for config in SAFE_CONFIGS for seed in range(args.seeds)]
    args.out.mkdir(parents=True, exist_ok=True)
    attempts: list[Attempt] = []
    # Each attempt is appended as it completes, so an interrupted run keeps what it measured.
    partial = (args.out / "bugs.partial.jsonl").open("w")
    with Progress(console=console) as progress, ProcessPoolExecutor(args.jobs, max_tasks_per_child=1) as pool:
        task = progress.add_task("bench bugs", total=len(jobs))
        futures = {pool.submit(run_method, *job): (row, job) for row, job in jobs}
        for future in as_completed(futures):
            row, (method, _, _, _, seed) = futures[future]
            try:
                attempt = replace(future.result(), mutant=row)
            except Exception as e:  # one broken run must not cost the whole benchmark
                console.print(f"run failed: {method} {row} seed {seed}: {type(e).__name__}: {e}", markup=False)
                continue
            attempts.append(attempt)
            partial.write(json.dumps(attempt.as_dict()) + "\n")
            partial.flush()
            progress.advance(task)
    partial.close()
    attempts.sort(key=lambda a: (a.mutant, a.method, a.config, a.seed))
    summary = summarize(attempts, args.budget, methods)
    command = "pyfuzz bench bugs " + " ".join(args.raw_argv)
    md = markdown(summary, args.budget, methods, args.seeds, command)
    (args.out / "bugs.json").write_text(json.dumps(
        {"command": command, "machine": machine(), "budget_s": args.budget, "seeds": args.seeds,
         "mutant_config": MUTANT_CONFIG, "summary": summary, "attempts": [a.as_dict() for a in attempts]},
        indent=1))
    (args.out / "bugs.md").write_text(md)
    plot(summary, attempts, args.budget, methods, args.out / "bugs.png")
    console.print(md, markup=False)
    console.print(f"written: {args.out / 'bugs.json'}, {args.out / 'bugs.md'}, {args.out / 'bugs.png'}")
    return 0


# The core's decoder (rust/src/program.rs): which byte value picks which thread count, op count
# and op, so that `spell_input` can write a program of a chosen shape as fuzzer bytes.
_THREAD_BYTE = {2: 0, 3: 5, 4: 7}
_OPS_BYTE = {1: 0, 2: 5, 3: 9, 4: 11, 6: 12, 8: 13, 12: 14, 16: 15}
_OP_BYTE = {"rmap": 0, "get": 10, "put": 11}
SPEED_THREADS = (2, 3, 4)
SPEED_OPS = (8, 16, 32)


def spell_input(threads: list, schedule: list) -> bytes:
    """The bytes the core decodes as `threads` (lists of (op, page)) on one setup VMA [0, 4)
    under `schedule` ((thread, steps) slices of 1-32 steps)."""
    data = [_THREAD_BYTE[len(threads)], 0, 3]
    for ops in threads:
        data.append(_OPS_BYTE[len(ops)])
        for name, page in ops:
            # an address byte below 192 names a page of the setup VMA; above, page byte % 16
            data += [_OP_BYTE[name], page if page < 4 else 192 + page]
    for t, steps in schedule:
        data += [t, steps - 1]
    return bytes(data)


def _program_tuple(threads: list, schedule: list) -> tuple:
    """`spell_input`'s program as the tuple `Engine.run_program` takes, for any number of ops."""
    return [(0, 4, None)], [[(name, page, 0, False) for name, page in ops] for ops in threads], schedule


def _shaped_program(rng: random.Random, threads: int, ops: int, kinds: tuple[str, ...]):
    prog = [[(k, rng.randrange(4) if k != "put" else 0) for k in (rng.choice(kinds) for _ in range(ops))]
            for _ in range(threads)]
    return prog, [(rng.randrange(threads), rng.randint(1, 32)) for _ in range(rng.randint(1, 8))]


def _campaign_cpu_seconds(inputs: int, oracle: str, work: Path) -> tuple[float, float]:
    """CPU seconds of one harness child that libFuzzer stops after `inputs` inputs (its 64 random
    start inputs among them), with the campaign's own flags and instrumented core, and its runs.
    The walk schedule gives inputs different numbers of walks; the harness counts the runs of the
    inputs before its last stats (written every STATS_EVERY inputs), and the last few inputs are
    taken at that mean."""
    import resource

    from .campaign import _harness_args, _write_random_inputs, libfuzzer_env

    shutil.rmtree(work, ignore_errors=True)
    corpus = work / "corpus"
    corpus.mkdir(parents=True)
    _write_random_inputs(work / "random", seed=1)
    stats = work / "stats.json"
    env = dict(libfuzzer_env(build.instrumented_core(), MUTANT_CONFIG), PYFUZZ_ORACLE=oracle,
               PYFUZZ_FINDINGS=str(work), PYFUZZ_STATS=str(stats))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(_harness_args(3600, 1, [corpus, work / "random"], work, False) + [f"-runs={inputs}"],
                            env=env, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"the harness exited {result.returncode}: {result.stderr.strip().splitlines()[-1:]}")
    counted = json.loads(stats.read_text())
    done = counted["executions"] - 1  # the stats are written as an input starts
    runs = counted["runs"] + (inputs - done) * counted["runs"] / done
    return after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, runs


def campaign_rates(inputs: int, repeats: int) -> dict:
    """Runs per CPU second of the campaign itself (libFuzzer, its mutations, the instrumented core,
    the harness), with the oracle and without: the difference of a child stopped after `inputs`
    more inputs and one stopped after 100, so start-up and the random start inputs cancel."""
    rates = {}
    with tempfile.TemporaryDirectory(prefix="pyfuzz-bench-campaign-") as tmp:
        for oracle in ("on", "off"):
            samples = []
            for _ in range(repeats):
                short, short_runs = _campaign_cpu_seconds(100, oracle, Path(tmp) / "short")
                long, long_runs = _campaign_cpu_seconds(100 + inputs, oracle, Path(tmp) / "long")
                samples.append((long_runs - short_runs) / max(long - short, 1e-9))
            rates[oracle] = statistics.median(samples)
    return {"inputs": inputs, "runs_per_cpu_s": rates["on"], "runs_per_cpu_s_without_oracle": rates["off"]}


# main when the third session began: the oracle `pyfuzz bench speed` and the differential test
# compare the current one against.
ORACLE_BEFORE = "a80a357"
# main when the eighth session began: its mypyc build is the baseline of bench speed's oracle table.
ORACLE_MAIN = "3067611"


def _oracle_source_at(commit: str, where: Path) -> None:
    """Write pyfuzz/oracle/ as it was at `commit` into `where`.  Raises RuntimeError when the
    history is not there (an installed package, a shallow clone)."""
    repo = Path(__file__).resolve().parents[1]

    def git(*argv):
        r = subprocess.run(["git", *argv], cwd=repo, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"the oracle at {commit} is not in this checkout's git history: "
                               f"{r.stderr.strip() or 'git failed'}")
        return r.stdout

    where.mkdir(parents=True)
    for path in git("ls-tree", "--name-only", f"{commit}:pyfuzz/oracle/").split():
        if path.endswith(".py"):
            (where / path).write_text(git("show", f"{commit}:pyfuzz/oracle/{path}"))


def oracle_at(commit: str):
    """The oracle package as it was at `commit`, read from this checkout's git history into a
    temporary directory and imported under a name of its own (its modules import each other
    relatively, so it needs nothing of the current tree).  Raises RuntimeError when the
    history is not there."""
    name = f"pyfuzz_oracle_{commit}"
    if name in sys.modules:
        return sys.modules[name]
    where = Path(tempfile.mkdtemp(prefix=name)) / name
    _oracle_source_at(commit, where)
    spec = importlib.util.spec_from_file_location(name, where / "__init__.py", submodule_search_locations=[str(where)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def compiled_oracle_at(commit: str):
    """The oracle at `commit` compiled by this checkout's mypyc as the build is (pyfuzz/mypyc_oracle.py),
    in a temporary directory, imported as a package of its own (about 20 s).  Raises RuntimeError when
    the history is not there or mypyc fails."""
    name = f"pyfuzz_oracle_{commit}_mypyc"
    if name in sys.modules:
        return sys.modules[name]
    top = Path(tempfile.mkdtemp(prefix=name))
    _oracle_source_at(commit, top / name)
    compile_in_place(top, name, name, f"the oracle at {commit}")
    sys.path.insert(0, str(top))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(top))


def checked_loop(run_own, run_walk, judge, inputs) -> int:
    """The harness's loop (pyfuzz/harness.py) with fixed walks: each input under its own schedule,
    then under WALKS_PER_INPUT PCT walks seeded from the first run's digest, every history to
    `judge`. (The harness's walk schedule adds walks to inputs that meet new interleavings; the
    loop under libFuzzer, with the schedule, is `campaign_rates`.)"""
    runs = 0
    for x in inputs:
        first = run_own(x)
        judge(first)
        for i in range(WALKS_PER_INPUT):
            judge(run_walk(x, first.digest ^ i, first.steps))
        runs += 1 + WALKS_PER_INPUT
    return runs


def _ignore(outcome) -> None:
    pass


# `bench speed` counts this process's CPU seconds: on a shared machine a wall clock would count
# the time other processes held the core (the same figure on an idle one).
_cpu = time.process_time


# What each run's outcome goes to in `_measure`: nothing (the engine alone), the floor's two steps
# (pyfuzz/oracle/floor.py: each distinct history exported; exported and every event's kind read),
# the oracle. All but the first skip a history already seen by the same digest table.
LOOP_JUDGES = {"engine": None, "exported": FLOOR.Exported, "floor": FLOOR.KindsRead, "checked": DistinctHistories}


def _measure(run_own, run_walk, inputs, repeats: int) -> dict:
    """Median runs/s of the loop with each of LOOP_JUDGES, passes interleaved (a change of load
    falls on all of them alike), and what the oracle saw in the last pass."""
    rates: dict[str, list[float]] = {name: [] for name in LOOP_JUDGES}
    seen = {}
    for _ in range(repeats):
        for name, judges in LOOP_JUDGES.items():
            histories = judges(MUTANT_CONFIG) if judges is not None else None
            start = _cpu()
            runs = checked_loop(run_own, run_walk, histories.judge if histories is not None else _ignore, inputs)
            rates[name].append(runs / (_cpu() - start))
            if histories is not None:
                seen = {"runs": runs, "distinct": histories.checked}
    out = {f"{name}_runs_per_s": statistics.median(r) for name, r in rates.items()}
    out["runs_per_s"] = out.pop("checked_runs_per_s")
    out["engine_only_runs_per_s"] = out.pop("engine_runs_per_s")
    return {**out, "all_s": {name: [round(x) for x in r] for name, r in rates.items()}, **seen}


def _distinct(run_own, run_walk, inputs) -> list:
    """The distinct histories of the loop (by digest), in the order it meets them."""
    outcomes, digests = [], set()

    def keep(outcome):
        if outcome.digest not in digests:
            digests.add(outcome.digest)
            outcomes.append(outcome)
    checked_loop(run_own, run_walk, keep, inputs)
    return outcomes


def _oracle_seconds(mod, outcomes) -> float:
    start = _cpu()
    for o in outcomes:
        try:
            mod.check(o.events, MUTANT_CONFIG, o.final_counters)
        except mod.Violation:
            pass
    return _cpu() - start


def _oracles(main, before) -> dict:
    """The oracles `bench speed` compares: main's mypyc build before this session (the baseline),
    main's before the third session, the pure-Python source now, and the build that runs
    (`model.ORACLE`) when it is another."""
    from . import model, oracle
    mods = {f"main {ORACLE_MAIN}, mypyc": main, f"{ORACLE_BEFORE} (pure Python)": before, "now, pure Python": oracle}
    if model.ORACLE is not oracle:
        mods[f"now, {model.ORACLE_NAME}"] = model.ORACLE
    return mods


def _before_after(run_own, run_walk, inputs, repeats: int, mods: dict) -> dict:
    """The loop under each oracle, passes interleaved, medians; and each oracle alone per
    distinct history, over the loop's distinct histories with their events already built."""
    rates = {name: [] for name in mods}
    alone = {name: [] for name in mods}
    outcomes = _distinct(run_own, run_walk, inputs)
    for o in outcomes:
        o.events  # noqa: B018  (built once, outside the oracle's timing)
    for _ in range(repeats):
        for name, mod in mods.items():
            histories = mod.DistinctHistories(MUTANT_CONFIG)
            start = _cpu()
            runs = checked_loop(run_own, run_walk, histories.judge, inputs)
            rates[name].append(runs / (_cpu() - start))
            alone[name].append(_oracle_seconds(mod, outcomes) / max(len(outcomes), 1))
    return {name: {"runs_per_s": statistics.median(rates[name]), "oracle_us": statistics.median(alone[name]) * 1e6}
            for name in mods}


def _oracle_cost(run_own, run_walk, inputs) -> dict:
    """Mean events and oracle time per distinct history (a separate pass: the loop rows above
    are timed with nothing else in them)."""
    outcomes = _distinct(run_own, run_walk, inputs)
    per = _oracle_seconds(ORACLE, outcomes) / max(len(outcomes), 1)
    return {"events": statistics.mean(len(o.events) for o in outcomes), "oracle_us": per * 1e6}


def bench_speed(args, console: Console) -> int:
    """Checked runs per second on one core: the default campaign's loop, programs of 2-4
    threads x 8-32 operations, and the pure-Python baseline beside the Rust core on the same
    get/put programs under the same schedules, all in one run."""
    from . import pyrcuref

    repeats = args.repeats
    n = args.inputs or 300
    engine = _core.Engine(MUTANT_CONFIG)
    own = engine.run_bytes

    def walk(data, seed, steps):
        return engine.run_bytes_with(data, "pct", seed, WALK_DEPTH, steps)

    rows = []

    def row(what, run_own, run_walk, inputs, **extra):
        r = _measure(run_own, run_walk, inputs, repeats)
        r.update(_oracle_cost(run_own, run_walk, inputs), what=what, **extra)
        rows.append(r)
        console.print(f"{what}: {r['runs_per_s']:,.0f} checked runs/s (the floor {r['floor_runs_per_s']:,.0f})",
                      markup=False)
        return r

    rng = random.Random(2024)
    compared = {"default campaign loop": [random_input(rng) for _ in range(n)]}
    row("default campaign loop (random inputs)", own, walk, compared["default campaign loop"], shape="campaign")
    grid_n = max(n // 4, 1)

    def own_tuple(program):
        return engine.run_program(program)

    def walk_tuple(program, seed, steps):
        return engine.run_program(program, "pct", seed, WALK_DEPTH, steps)

    for threads in SPEED_THREADS:
        for ops in SPEED_OPS:
            programs = [_shaped_program(rng, threads, ops, ("get", "put", "rmap")) for _ in range(grid_n)]
            what = f"{threads} threads x {ops} get/put/rmap ops"
            if ops <= _core.LIMITS["decoded_ops"]:
                inputs = [spell_input(*p) for p in programs]
                if (threads, ops) == (3, 16):
                    compared["3 threads x 16 get/put/rmap ops"] = inputs
                row(what, own, walk, inputs, shape=f"{threads}x{ops}")
            else:  # more ops than the decoder draws: the same programs handed over as tuples
                row(what + " (as tuples)", own_tuple, walk_tuple, [_program_tuple(*p) for p in programs],
                    shape=f"{threads}x{ops}")

    # The acceleration: the same get/put programs, the same loop and oracle, two executors.
    for threads in SPEED_THREADS:
        programs = [_shaped_program(rng, threads, 8, ("get", "put")) for _ in range(grid_n)]
        rust = row(f"get/put, {threads} threads x 8 ops: Rust core", own, walk,
                   [spell_input(*p) for p in programs], shape=f"getput{threads}x8")

        def py_own(p):
            return pyrcuref.run((0, 4), p[0], pyrcuref.ListSchedule(p[1]))

        def py_walk(p, seed, steps):
            return pyrcuref.run((0, 4), p[0], pyrcuref.Pct(len(p[0]), WALK_DEPTH, steps, seed))

        py = row(f"get/put, {threads} threads x 8 ops: pure-Python executor", py_own, py_walk, programs,
                 shape=f"getput{threads}x8-python")
        rust["ratio_to_python"] = rust["runs_per_s"] / py["runs_per_s"]
        rust["engine_ratio_to_python"] = rust["engine_only_runs_per_s"] / py["engine_only_runs_per_s"]

    # The loop above without libFuzzer and with the plain core; the campaign's own costs beside it.
    campaign = campaign_rates(max(n * 4, 100), repeats)
    console.print(f"the campaign itself: {campaign['runs_per_cpu_s']:,.0f} checked runs/s, "
                  f"{campaign['runs_per_cpu_s_without_oracle']:,.0f} without the oracle", markup=False)

    # The oracles on main before this session and before the third against the current ones, same loop,
    # same inputs.
    try:
        mods = _oracles(compiled_oracle_at(ORACLE_MAIN), oracle_at(ORACLE_BEFORE))
    except RuntimeError as e:
        mods, versus = None, [{"what": name, "skipped": str(e)} for name in compared]
    if mods is not None:
        versus = []
        for name, inputs in compared.items():
            versus.append({"what": name, "oracles": _before_after(own, walk, inputs, repeats, mods)})
            console.print(f"{name}: " + ", ".join(f"{m} {r['runs_per_s']:,.0f}" for m, r in versus[-1]["oracles"].items())
                          + " checked runs/s", markup=False)

    command = "pyfuzz bench speed " + " ".join(args.raw_argv)
    result = {"machine": machine(), "command": command, "repeats": repeats, "inputs": n,
              "walks_per_input": WALKS_PER_INPUT, "walk_depth": WALK_DEPTH, "config": MUTANT_CONFIG,
              "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "rows": rows,
              "oracle": ORACLE_NAME, "oracle_main": ORACLE_MAIN, "oracle_before": ORACLE_BEFORE, "before_after": versus, "campaign": campaign}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "speed.json").write_text(json.dumps(result, indent=1))
    md = [f"Command: `{command}`  ", f"Machine: {machine()}  ", f"Date: {result['date']}  ",
          f"One core, per CPU second of this process. A run is one execution of a program; each input runs under its own schedule and "
          f"{WALKS_PER_INPUT} PCT walks (depth {WALK_DEPTH}) and every distinct history is judged by the "
          f"oracle ({ORACLE_NAME}), as in the harness. Median of {repeats} passes; `{config_label(MUTANT_CONFIG)}`; "
          f"{n} random inputs for the campaign row, {grid_n} programs per other row.", "",
          "| loop | checked runs/s | engine only, runs/s | distinct histories | events per history | "
          "oracle us per history (its export included) | Rust / pure Python |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = f"{r['ratio_to_python']:.1f}x (engine only {r['engine_ratio_to_python']:.0f}x)" \
            if "ratio_to_python" in r else ""
        md.append(f"| {r['what']} | {r['runs_per_s']:,.0f} | {r['engine_only_runs_per_s']:,.0f} | "
                  f"{r['distinct']:,} of {r['runs']:,} | {r['events']:.0f} | {r['oracle_us']:.0f} | {ratio} |")
    md += ["", "The floor, in the same passes as the row above (interleaved with them): every run, then each distinct "
           "history (the same digest table) exported as `outcome.events` (the list of event tuples the oracle reads) "
           "and dropped, then exported and every event's kind read and looked up as the oracle's pass does, "
           "dispatching to nothing (`read_kinds`, pyfuzz/oracle/floor.py, compiled by the same mypyc build as the "
           "oracle). The floor's runs/s is the ceiling of checked runs/s for any Python oracle that reads every "
           "event of every distinct history as these tuples. Costs per distinct history are by difference of "
           "the medians.", "",
           "| loop | engine only, runs/s | + export, runs/s | + kind pass: the floor, runs/s | checked runs/s | "
           "export us per history | kind pass us per history | the floor at 50,000? |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        per = r["runs"] / max(r["distinct"], 1) * 1e6
        export_us = (1 / r["exported_runs_per_s"] - 1 / r["engine_only_runs_per_s"]) * per
        kinds_us = (1 / r["floor_runs_per_s"] - 1 / r["exported_runs_per_s"]) * per
        reach = "yes" if r["floor_runs_per_s"] >= 50_000 else "**no**"
        md.append(f"| {r['what']} | {r['engine_only_runs_per_s']:,.0f} | {r['exported_runs_per_s']:,.0f} | "
                  f"{r['floor_runs_per_s']:,.0f} | {r['runs_per_s']:,.0f} | {export_us:.1f} | {kinds_us:.1f} | {reach} |")
    md += ["", f"The campaign itself (`pyfuzz fuzz`'s harness under libFuzzer with its flags, mutations and the core built "
           f"with sanitizer coverage, {campaign['inputs']:,} inputs past its start, per CPU second of the child, median of "
           f"{repeats}): {campaign['runs_per_cpu_s']:,.0f} checked runs/s; with the oracle off, "
           f"{campaign['runs_per_cpu_s_without_oracle']:,.0f} runs/s."]
    md += ["", f"Each oracle in the same loop on the same inputs (the oracle on main at {ORACLE_MAIN}, read from git and "
           f"compiled by the same mypyc, the baseline; main's at {ORACLE_BEFORE}, pure Python; the pure-Python source "
           f"now and the build that runs), passes interleaved, medians of {repeats}; the oracle alone is timed over "
           "the loop's distinct histories with their events already built.", "",
           f"| loop | oracle | checked runs/s | x main {ORACLE_MAIN} | oracle us per history | x main {ORACLE_MAIN} |",
           "|---|---|---|---|---|---|"]
    for r in versus:
        if "skipped" in r:
            md.append(f"| {r['what']} | not run: {r['skipped']} | | | | |")
            continue
        base = next(iter(r["oracles"].values()))
        for name, o in r["oracles"].items():
            md.append(f"| {r['what']} | {name} | {o['runs_per_s']:,.0f} | {o['runs_per_s'] / base['runs_per_s']:.2f}x | "
                      f"{o['oracle_us']:.0f} | {base['oracle_us'] / o['oracle_us']:.2f}x |")
    (args.out / "speed.md").write_text("\n".join(md) + "\n")
    console.print("\n".join(md), markup=False)
    return 0


# The mutants whose races need a preemption inside a window a step or two wide.
WALK_MUTANTS = ("get_ignores_dead", "put_no_cmpxchg", "put_no_preempt", "put_reread", "rmap_no_recheck")
# Every sampler behind the core's Scheduler trait (sched.rs), with its depth parameter.
WALKS = {"own schedule (slices)": None, "uniform walk": ("random", 0), "PCT depth 3": ("pct", 3),
         "PCT depth 8": ("pct", 8), "PCT depth 16": ("pct", 16),
         f"PCT depth {WALK_DEPTH} (the harness's walk)": ("pct", WALK_DEPTH), "POS": ("pos", 0),
         "SURW (weighted by remaining steps)": ("surw", 0), "delay bounding (3 delays)": ("delay", 3)}


def count_violations(mutant: str, walk: tuple[str, int] | None, inputs: int) -> dict[str, int]:
    """How many of `inputs` random programs (the same ones for every walk) end in a violation, by
    kind: a kind the mutant's catalog entry does not name is a bug of the configuration itself."""
    programs, seeds = random.Random(2024), random.Random(2025)
    config, mutant = row_setup(mutant)
    engine = _core.Engine(config, mutant)
    histories = DistinctHistories(config)
    kinds: dict[str, int] = {}
    for _ in range(inputs):
        data = random_input(programs)
        seed = seeds.getrandbits(64)
        outcome = engine.run_bytes(data) if walk is None else engine.run_bytes_with(data, walk[0], seed, walk[1])
        violation = histories.judge(outcome)
        if violation is not None:
            kinds[violation.kind] = kinds.get(violation.kind, 0) + 1
    return kinds


def bench_walks(args, console: Console) -> int:
    """Which interleavings find the narrow races: the schedule the bytes spell, a uniform walk,
    and PCT, on the same random programs, counting violating runs (no feedback, no time limit)."""
    mutants = chosen_rows(args.mutant) or list(WALK_MUTANTS)
    inputs = args.inputs or 100_000
    walks = WALKS
    if args.method:  # the blind methods of `bench bugs`, by the sampler each walks with
        unknown = [m for m in args.method if m not in BLIND]
        if unknown:
            raise ProgramError(f"unknown walk {unknown[0]!r} (choose from {', '.join(BLIND)})")
        chosen = {BLIND[m] for m in args.method}
        walks = {name: walk for name, walk in WALKS.items() if walk in chosen}
    cells = [(mutant, name) for mutant in mutants for name in walks]
    counts, kinds = {}, {}
    with Progress(console=console) as progress, ProcessPoolExecutor(args.jobs) as pool:
        task = progress.add_task("bench walks", total=len(cells))
        futures = {pool.submit(count_violations, mutant, WALKS[name], inputs): (mutant, name) for mutant, name in cells}
        for future in as_completed(futures):
            kinds[futures[future]] = future.result()
            counts[futures[future]] = sum(kinds[futures[future]].values())
            progress.advance(task)
    md = [f"Command: `pyfuzz bench walks {' '.join(args.raw_argv)}`  ", f"Machine: {machine()}  ",
          f"Violating runs among the same {inputs:,} random programs ({INPUT_LEN[0]}-{INPUT_LEN[1]} random bytes each) "
          f"per mutant, under "
          f"`{config_label(MUTANT_CONFIG)}` (with the switches a mutant's catalog entry names; a scenario under "
          "its own configuration).", "",
          "| mutant | " + " | ".join(walks) + " |", "|---|" + "---|" * len(walks)]
    for mutant in mutants:
        md.append(f"| `{mutant}` | " + " | ".join(f"{counts[mutant, name]:,}" for name in walks) + " |")
    md += ["", "Violations by kind: " + ("; ".join(
        f"`{m}` {w}: " + ", ".join(f"{k} {n:,}" for k, n in sorted(kinds[m, w].items()))
        for (m, w) in sorted(kinds) if kinds[m, w]) or "none") + "."]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "walks.json").write_text(json.dumps(
        {"machine": machine(), "inputs": inputs, "config": MUTANT_CONFIG,
         "counts": [{"mutant": m, "walk": w, "violations": c, "kinds": kinds[m, w]} for (m, w), c in sorted(counts.items())]}, indent=1))
    (args.out / "walks.md").write_text("\n".join(md) + "\n")
    console.print("\n".join(md), markup=False)
    return 0


VERIFY_PROGRAMS = {  # small enough for a plain DFS to finish
    "munmap-vs-get-put": "vma 0-2\nthread 0\n  munmap 0\nthread 1\n  get 0\n  put\n",
    "two-getters-and-munmap": "vma 0-2\nthread 0\n  get 0\nthread 1\n  get 0\nthread 2\n  munmap 0\n",
    "remap-vs-get-put": "vma 0-1\nthread 0\n  munmap 0\n  mmap 5 1\nthread 1\n  get 0\n  put\n",
    "merge-vs-get": "vma 0-2\nvma 2-4\nthread 0\n  merge 0\nthread 1\n  get 2\n  put\n",
    "munmap-vs-rmap": "vma 0-2\nthread 0\n  munmap 0\nthread 1\n  rmap 1\n",
}
VERIFY_BOUNDS = (  # growing; the benchmark stops at the first one not finished in the budget
    "threads=2,ops=1,setup=1",
    "threads=2,ops=1,setup=1..2",
    "threads=2,ops=1..2,setup=1,ops-set=get,put,rmap,munmap",
    "threads=3,ops=1,setup=1,ops-set=get,put,rmap,munmap",
    "threads=2,ops=1..2,setup=1,ops-set=get,put,rmap,munmap,mmap",
    "threads=2,ops=1..2,setup=1",
)

VERIFY_MUTANT_BOUNDS = (  # tried in order until one holds a violation
    "threads=2,ops=1..2,setup=1",
    "threads=2,ops=1..2,setup=1,ops-set=get,put,rmap,munmap,mmap-fail,split-fail,fork-fail",
    "threads=2,ops=1,setup=1,ops-set=get,put,rmap,presets=maxref,saturated",
    "threads=2,ops=1..2,setup=1,ops-set=rmap,split,merge,munmap",
)


def _explore_only(program, mode: str, cap: float) -> dict:
    """Run an explorer to the end without judging (the reduction is about schedules)."""
    explorer = _core.Explorer(program.to_tuple(), program.config_dict, program.mutant, mode)
    start = time.perf_counter()
    while not explorer.done and time.perf_counter() - start < cap:
        explorer.explore(1 << 16, 1.0)
    return {**explorer.stats, "seconds": round(time.perf_counter() - start, 3), "finished": explorer.done}


def bench_verify(args, console: Console) -> int:
    """DPOR against a plain DFS on the same programs, `verify` on every corpus program, and the
    largest `--programs` bound each configuration finishes within `--budget` seconds."""
    from .program import load, parse
    from .verify import explore, parse_bound, verify_bound

    args.out.mkdir(parents=True, exist_ok=True)
    configs = {"seed": dict(DEFAULT_CONFIG), "slab=deferred": {**DEFAULT_CONFIG, "slab": "deferred"}}
    ratio_rows = []
    for name, text in VERIFY_PROGRAMS.items():
        for label, config in configs.items():
            program = parse(text).with_config(**config)
            dpor, dfs = _explore_only(program, "dpor", 60), _explore_only(program, "dfs", 60)
            ratio_rows.append({"program": name, "config": label, "dpor": dpor, "dfs": dfs,
                               "ratio": round(dfs["schedules"] / dpor["schedules"], 1)})
            console.print(f"{name} ({label}): DPOR {dpor['schedules']:,} schedules in {dpor['seconds']} s, "
                          f"DFS {dfs['schedules']:,}{'' if dfs['finished'] else ' (cut at 60 s)'} in "
                          f"{dfs['seconds']} s", highlight=False)
    corpus_rows = []
    for path in sorted(Path("corpus").glob("*.txt")):
        for label, overrides in {"own": {}, "slab=deferred": {"slab": "deferred"},
                                 "rmap_lock=rwsem": {"rmap_lock": "rwsem"}}.items():
            program = replace(load(path), schedule=()).with_config(**overrides)
            r = explore(program)
            corpus_rows.append({"file": path.name, "config": label, "verdict": "ok" if r.ok else r.violation.kind,
                                "schedules": r.schedules, "histories": r.histories, "classes": r.classes,
                                "seconds": round(r.seconds, 3), "witness_preemptions": r.witness_preemptions,
                                "witness_schedule": " ".join(f"{t}:{n}" for t, n in r.witness.schedule) if r.witness else None})
            console.print(f"{path.name} ({label}): {corpus_rows[-1]['verdict']}, {r.figures()}", highlight=False)
    bound_rows = []
    for label, config in configs.items():
        deadline = time.perf_counter() + args.budget
        for spec in VERIFY_BOUNDS:
            r = verify_bound(parse_bound(spec), config, "none", deadline=deadline)
            if r.interrupted:
                raise KeyboardInterrupt
            row = {"config": label, "bound": spec, "complete": r.complete, "programs": r.programs_done,
                   "of": r.programs_total, "schedules": r.schedules, "classes": r.classes,
                   "seconds": round(r.seconds, 1), "schedules_per_s": round(r.schedules / r.seconds) if r.seconds else 0,
                   "violation": r.violation and {k: r.violation[k] for k in ("kind", "preemptions", "program")}}
            bound_rows.append(row)
            console.print(f"({label}) {spec}: {'violation ' + r.violation['kind'] if r.violation else ('complete' if r.complete else 'out of time')}, "
                          f"{r.programs_done}/{r.programs_total} programs, {r.schedules:,} schedules, {r.seconds:.1f} s", highlight=False)
            if not r.complete:
                break
    mutant_rows = []
    for name, _, _ in _core.MUTANTS[1:]:
        config = mutant_config(name)
        for spec in VERIFY_MUTANT_BOUNDS:
            r = verify_bound(parse_bound(spec), config, name, deadline=time.perf_counter() + 30)
            if r.interrupted:
                raise KeyboardInterrupt
            if r.violation is not None or spec == VERIFY_MUTANT_BOUNDS[-1]:
                break
        v = r.violation
        mutant_rows.append({"mutant": name, "config": config_label(config), "bound": spec, "found": v is not None, "complete": r.complete,
                            "kind": v and v["kind"], "program_index": v and v["program_index"],
                            "preemptions": v and v["preemptions"], "program": v and v["program"],
                            "programs": r.programs_done, "schedules": r.schedules, "seconds": round(r.seconds, 1)})
        console.print(f"{name}: {'found ' + v['kind'] if v else ('clean' if r.complete else 'not found in 30 s')} "
                      f"within {spec}", highlight=False)
    results = {"machine": machine(), "budget_seconds": args.budget, "reduction": ratio_rows,
               "corpus": corpus_rows, "bounds": bound_rows, "mutants": mutant_rows}
    (args.out / "verify.json").write_text(json.dumps(results, indent=1) + "\n")
    md = [f"Measured {datetime.now(timezone.utc):%Y-%m-%d} on {machine()} (`pyfuzz bench verify --budget {args.budget}`).", "",
          "DPOR (source sets + sleep sets) against a plain DFS of every schedule, exploration only (no oracle):", "",
          "| program | config | DPOR schedules | DPOR s | DFS schedules | DFS s | classes | DFS/DPOR |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in ratio_rows:
        cut = "" if r["dfs"]["finished"] else " (cut)"
        md.append(f"| {r['program']} | {r['config']} | {r['dpor']['schedules']:,} | {r['dpor']['seconds']} | "
                  f"{r['dfs']['schedules']:,}{cut} | {r['dfs']['seconds']} | {r['dpor']['classes']:,} | {r['ratio']}{'+' if cut else ''} |")
    md += ["", "`pyfuzz verify` on every corpus program under its own configuration, with `slab=deferred` "
           "and with `rmap_lock=rwsem` (schedule stripped; a violating run stops at its first "
           "violation, then context bounding finds the fewest-preemption one):", "",
           "| file | config | verdict | schedules | histories | classes | s | witness preemptions | witness schedule |",
           "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for r in corpus_rows:
        md.append(f"| {r['file']} | {r['config']} | {r['verdict']} | {r['schedules']:,} | {r['histories']:,} | "
                  f"{r['classes']:,} | {r['seconds']} | {r['witness_preemptions'] if r['witness_preemptions'] is not None else ''} | "
                  f"{r['witness_schedule'] or ''} |")
    md += ["", f"`pyfuzz verify --programs` bounds in order, {args.budget} s per configuration on this shared machine "
           "(the issue asks for 10 minutes on one core):", "",
           "| config | bound | result | programs | schedules | classes | s | schedules/s |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in bound_rows:
        res = f"violation {r['violation']['kind']}" if r["violation"] else ("complete" if r["complete"] else "out of time")
        md.append(f"| {r['config']} | `{r['bound']}` | {res} | {r['programs']:,}/{r['of']:,} | {r['schedules']:,} | "
                  f"{r['classes']:,} | {r['seconds']} | {r['schedules_per_s']:,} |")
    md += ["", f"Catalog mutants under `{config_label(MUTANT_CONFIG)}` (plus `lockdep=on` where the catalog asks for it) by `verify --programs` (first violating "
           "program of the bound, 30 s per bound; the next bound only when one finds nothing):", "",
           "| mutant | bound | result | program # | witness preemptions | schedules | s |", "|---|---|---|---:|---:|---:|---:|"]
    for r in mutant_rows:
        res = r["kind"] if r["found"] else ("no violation in the bound" if r["complete"] else "not found in 30 s")
        md.append(f"| {r['mutant']} | `{r['bound']}` | {res} | {r['program_index'] if r['found'] else ''} | "
                  f"{r['preemptions'] if r['found'] else ''} | {r['schedules']:,} | {r['seconds']} |")
    (args.out / "verify.md").write_text("\n".join(md) + "\n")
    console.print("\n".join(md), markup=False)
    return 0


ENGINE_WAYS = {"each": "`run_bytes` per input (one Python call and one outcome object per run)",
               "many": "`run_many`: decode and run of all inputs in one call, (digest, steps) per input",
               "pct": f"`run_bytes_with` per input, a PCT walk of depth {WALK_DEPTH} (as the harness's walks)"}

# The child that runs the engine for `bench engine`: the module built from this tree, or another
# build of it (`--baseline`, e.g. the session start's) loaded in its place, on the same inputs.
# `time` prints one pass of each way (runs/s) and the steps taken; `none`, `many` and `each` are
# for callgrind (`none` only makes the inputs, so that the difference is the engine's work alone).
_ENGINE_CHILD = """
import json, random, sys, time
if sys.argv[1]:
    import importlib.util, pyfuzz
    spec = importlib.util.spec_from_file_location("pyfuzz._core", sys.argv[1])
    core = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(core)
    sys.modules["pyfuzz._core"] = pyfuzz._core = core
from pyfuzz import _core
from pyfuzz.program import random_input
mode, count, config, depth = sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4]), int(sys.argv[5])
rng = random.Random(2024)
inputs = [random_input(rng) for _ in range(count)]
engine = _core.Engine(config)
if mode == "many":
    engine.run_many(inputs)
elif mode == "each":
    for data in inputs:
        engine.run_bytes(data)
elif mode == "time":
    own = [steps for _, steps in engine.run_many(inputs)]
    pct = [engine.run_bytes_with(data, "pct", i, depth, own[i]).steps for i, data in enumerate(inputs)]
    rates = {}
    start = time.perf_counter()
    for data in inputs:
        engine.run_bytes(data)
    rates["each"] = count / (time.perf_counter() - start)
    start = time.perf_counter()
    engine.run_many(inputs)
    rates["many"] = count / (time.perf_counter() - start)
    start = time.perf_counter()
    for i, data in enumerate(inputs):
        engine.run_bytes_with(data, "pct", i, depth, own[i])
    rates["pct"] = count / (time.perf_counter() - start)
    print(json.dumps({"rates": rates, "steps": own, "pct_steps": pct}))
"""


def _engine_child(module: str, mode: str, inputs: int, under: list[str] | None = None):
    import subprocess
    import sys
    done = subprocess.run([*(under or []), sys.executable, "-c", _ENGINE_CHILD, module, mode, str(inputs),
                           json.dumps(MUTANT_CONFIG), str(WALK_DEPTH)], capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise ProgramError(f"bench engine: the engine of {module or 'this tree'} failed: {last}")
    return done


def _instructions(module: str, way: str, inputs: int) -> int:
    """Instructions (callgrind) of the child doing `way` with `inputs` inputs."""
    import re
    done = _engine_child(module, way, inputs, ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"])
    return int(re.search(r"Collected : (\d+)", done.stderr).group(1))


def bench_engine(args, console: Console) -> int:
    """Scheduling steps per second of the engine alone (decode and run, no check), on one core: the
    way the previous figure was taken (one `run_bytes` call per input), all inputs in one call,
    and PCT walks; with `--baseline MODULE` another build's module (the session start's) measured
    in alternating passes beside this one, on the same inputs; then instructions per scheduling
    step under callgrind (load-independent) for both."""
    import shutil
    count = args.inputs or 20_000
    builds = {"this tree": ""}
    if args.baseline is not None:
        import importlib.machinery
        if not args.baseline.is_file():
            raise ProgramError(f"--baseline {args.baseline}: no such module file")
        if not args.baseline.name.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)):
            raise ProgramError(f"--baseline {args.baseline}: not an extension module (a _core .so file)")
        builds = {"baseline": str(args.baseline.resolve()), **builds}
    passes: dict[str, list[dict]] = {build: [] for build in builds}
    for _ in range(args.repeats):
        for build, module in builds.items():
            passes[build].append(json.loads(_engine_child(module, "time", count).stdout))
    rows = []
    for build, results in passes.items():
        first = results[0]
        # Same program, same schedule, same history: both builds must take the same steps.
        if first["steps"] != passes["this tree"][0]["steps"] or first["pct_steps"] != passes["this tree"][0]["pct_steps"]:
            raise ProgramError(f"{build} takes other steps than this tree on the same inputs: not the same engine")
        for way in ENGINE_WAYS:
            steps = sum(first["pct_steps" if way == "pct" else "steps"])
            rate = statistics.median(r["rates"][way] for r in results)
            rows.append({"build": build, "way": way, "what": ENGINE_WAYS[way], "runs_per_s": round(rate),
                         "steps_per_run": steps / count, "steps_per_s": round(rate * steps / count)})
    grind_inputs = min(5_000, count)
    grind = None
    if shutil.which("valgrind") is not None:
        grind = {}
        for build, module in builds.items():
            base = _instructions(module, "none", grind_inputs)
            grind_steps = sum(passes[build][0]["steps"][:grind_inputs])
            grind[build] = {way: round((_instructions(module, way, grind_inputs) - base) / grind_steps)
                            for way in ("many", "each")}
    result = {"machine": machine(), "inputs": count, "repeats": args.repeats, "config": MUTANT_CONFIG,
              "load": os.getloadavg()[0], "rows": rows, "instructions_per_step": grind}
    md = [f"Command: `pyfuzz bench engine {' '.join(args.raw_argv)}`  ", f"Machine: {machine()}  ",
          f"{count:,} random inputs, median of {args.repeats} passes (the builds alternating, one child "
          f"process per pass), `{config_label(MUTANT_CONFIG)}`, load average {result['load']:.2f} at the end."
          + (f" Baseline: `{args.baseline}`." if args.baseline is not None else ""), "",
          "| build | how | runs/s | steps per run | scheduling steps/s |", "|---|---|---|---|---|"]
    md += [f"| {r['build']} | {r['what']} | {r['runs_per_s']:,} | {r['steps_per_run']:.1f} | {r['steps_per_s']:,} |"
           for r in rows]
    if grind:
        md += ["", f"Instructions per scheduling step (callgrind, the first {grind_inputs:,} inputs, the Python "
                   "start-up and the inputs' making subtracted):", "",
               "| build | `run_many` | `run_bytes` per input |", "|---|---|---|"]
        md += [f"| {build} | {g['many']} | {g['each']} |" for build, g in grind.items()]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "engine.json").write_text(json.dumps(result, indent=1))
    (args.out / "engine.md").write_text("\n".join(md) + "\n")
    console.print("\n".join(md), markup=False)
    return 0


PAIR_KINDS = {"vma": "vma_get + vma_put (the protocol's code, events recorded)",
              "vma_unrecorded": "vma_get + vma_put, no events recorded",
              "fetch_add": "bare fetch_add + fetch_sub on one word (hardware limit)",
              "fetch_add_seam": "bare pair, each access behind `block_on(env.step())` (the seam alone)",
              "inc_not_zero": "compare-exchange inc-not-zero loop + fetch_sub"}


def bench_threads(args, console: Console) -> int:
    """Get/put pairs per second on real OS threads sharing one counter, against the bare atomics.
    The kinds take turns within each repeat, so that a change in the machine's load shifts every
    row of a ratio alike; each rate is taken by the wall clock and per CPU second of the slowest
    thread (which leaves out the time a loaded machine keeps a thread off its CPU)."""
    pairs = args.inputs or 2_000_000
    barrier = _core.real_thread_rcu_barrier()
    load = os.getloadavg()[0]
    rows = []
    for threads in (1, 2):
        rates = {kind: [] for kind in PAIR_KINDS}
        for _ in range(args.repeats):
            for kind in PAIR_KINDS:
                rates[kind].append(_core.refcount_pairs(kind, threads, pairs, MUTANT_CONFIG))
        rows += [{"threads": threads, "kind": kind, "what": what,
                  "pairs_per_s": round(statistics.median(wall for wall, _ in rates[kind])),
                  "pairs_per_cpu_s": round(statistics.median(cpu for _, cpu in rates[kind]))}
                 for kind, what in PAIR_KINDS.items()]
    md = [f"Command: `pyfuzz bench threads {' '.join(args.raw_argv)}`  ", f"Machine: {machine()}  ",
          f"Load average (1 min) at the start: {load:.1f}  ",
          f"{pairs:,} pairs per thread, median of {args.repeats} runs (the kinds in turn); all threads on one "
          f"VMA's counter; the RCU readers' section entries ordered by: {barrier}.", "",
          "| threads | pair | pairs/s (wall) | per CPU s | time per pair / bare pair's (wall) | (CPU) |",
          "|---|---|---|---|---|---|"]
    for r in rows:
        bare = next(b for b in rows if b["threads"] == r["threads"] and b["kind"] == "fetch_add")
        md.append(f"| {r['threads']} | {r['what']} | {r['pairs_per_s']:,} | {r['pairs_per_cpu_s']:,} | "
                  f"{bare['pairs_per_s'] / r['pairs_per_s']:.2f}x | {bare['pairs_per_cpu_s'] / r['pairs_per_cpu_s']:.2f}x |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "threads.json").write_text(json.dumps({"machine": machine(), "load": load, "pairs": pairs,
                                                       "rcu_barrier": barrier, "rows": rows}, indent=1))
    (args.out / "threads.md").write_text("\n".join(md) + "\n")
    console.print("\n".join(md), markup=False)
    return 0


def _resident_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _marks(total: int) -> list[int]:
    """Where resident size is read: 1,000 runs, each power of ten up to `total`, and `total`."""
    return sorted({mark for mark in (1000, 10_000, 100_000, total) if mark <= total} | {min(1000, total)})


def bench_memory(args, console: Console) -> int:
    """Resident size of this process after 1,000 engine runs and after a million (or --inputs),
    then after 1,000 and --stress-runs (default a hundredth of that) real-thread stress runs, each
    checked."""
    from .stress import run_stress

    total = args.inputs or 1_000_000
    rng = random.Random(2024)
    inputs = [random_input(rng) for _ in range(1000)]
    engine = _core.Engine(MUTANT_CONFIG)
    done, rows = 0, []
    for mark in _marks(total):
        while done < mark:
            outcome = engine.run_bytes(inputs[done % len(inputs)])
            outcome.events  # the history as the oracle receives it, built and then dropped
            done += 1
        rows.append({"runs": done, "resident_bytes": _resident_bytes()})
    # The real-thread runner on the same programs, in the configuration the specification calls
    # safe (so any violation is a false alarm), in batches as `pyfuzz stress` runs them.
    stress_total, per_program = args.stress_runs or max(1, total // 100), 100
    programs = [Program.from_tuple(_core.decode(data), MUTANT_CONFIG) for data in inputs[:20]]
    stress_rows, done, false_alarms = [], 0, 0
    for mark in _marks(stress_total):
        while done < mark:
            count = min(per_program, mark - done)
            false_alarms += len(run_stress(programs[done // per_program % len(programs)], count).violations)
            done += count
        stress_rows.append({"runs": done, "resident_bytes": _resident_bytes()})
    first, last = rows[0]["resident_bytes"], rows[-1]["resident_bytes"]
    md = [f"Command: `pyfuzz bench memory {' '.join(args.raw_argv)}`  ", f"Machine: {machine()}  ",
          "Engine runs of 1,000 random programs in turn, each history converted to Python and dropped; then "
          f"stress runs (real threads, checked by `pyfuzz.stress`) of 20 of them, {per_program} runs each in turn.", "",
          "| runner | runs | resident MiB | vs its first row |", "|---|---|---|---|"]
    md += [f"| engine | {r['runs']:,} | {r['resident_bytes'] / 2**20:.1f} | {r['resident_bytes'] / first - 1:+.1%} |"
           for r in rows]
    md += [f"| real threads | {r['runs']:,} | {r['resident_bytes'] / 2**20:.1f} | "
           f"{r['resident_bytes'] / stress_rows[0]['resident_bytes'] - 1:+.1%} |" for r in stress_rows]
    md += ["", f"Violations reported by the stress checker (all false alarms in this configuration): {false_alarms}"]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "memory.json").write_text(json.dumps(
        {"machine": machine(), "rows": rows, "growth": last / first - 1, "stress_rows": stress_rows,
         "stress_growth": stress_rows[-1]["resident_bytes"] / stress_rows[0]["resident_bytes"] - 1,
         "stress_false_alarms": false_alarms}, indent=1))
    (args.out / "memory.md").write_text("\n".join(md) + "\n")
    console.print("\n".join(md), markup=False)
    return 0


def run_bench(args, console: Console) -> int:
    from .bench_minimize import bench_minimize
    from .campaign_bench import bench_jobs, bench_kill, bench_parser, bench_soak

    return {"bugs": bench_bugs, "speed": bench_speed, "walks": bench_walks, "jobs": bench_jobs,
            "parser": bench_parser, "kill": bench_kill, "soak": bench_soak,
            "minimize": bench_minimize, "verify": bench_verify, "engine": bench_engine, "threads": bench_threads,
            "memory": bench_memory}[args.what](args, console)
