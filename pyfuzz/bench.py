"""`pyfuzz bench`: how fast bugs are found (bugs) and how fast the loop runs (speed).

Figures are measured, never asserted: the results go to JSON (machine-readable), Markdown
(for BENCHMARKS.md) and, for bugs, a PNG plot. Times are medians over seeds, with the budget
standing in for a run that found nothing (so a median above the budget reads "> budget").
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from . import _core
from .baselines import FEEDBACK, METHODS, Attempt, config_label, run_method
from .check import judge
from .harness import WALK_DEPTH
from .model import DistinctHistories
from .program import DEFAULT_CONFIG, INPUT_LEN, ProgramError, random_input

# The mutants run under the configuration the specification calls safe, so that every violation
# found is the mutant's and not the seed configuration's own (see corpus/typesafe-reinit-*).
MUTANT_CONFIG = {"vma_ref": "on", "slab": "deferred", "put": "preempt", "debug_vm": "on"}
SAFE_CONFIGS = (
    MUTANT_CONFIG,
    {"vma_ref": "off", "slab": "typesafe", "put": "preempt", "debug_vm": "on"},
    {"vma_ref": "off", "slab": "deferred", "put": "preempt", "debug_vm": "on"},
)
# Not a mutant: the seed's own configuration with no mutant, where the typesafe slab's re-init
# race is there to be found (corpus/typesafe-reinit-*). Its row is the one real bug of the table,
# and stays out of the catalog's median of medians.
SEED_ROW = "seed"
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


def _fmt(seconds: float, budget: float) -> str:
    if seconds >= budget:
        return f"> {budget:g}"
    return f"{seconds:.3f}" if seconds < 1 else f"{seconds:.1f}"


def summarize(attempts: list[Attempt], budget: float, methods: list[str]) -> dict:
    mutants = sorted({a.mutant for a in attempts if a.mutant != "none"}, key=lambda m: (m == SEED_ROW, m))
    catalog = [m for m in mutants if m != SEED_ROW]
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
                "kinds": sorted({a.kind for a in runs if a.kind}),
            }
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
        f"`{config_label(MUTANT_CONFIG)}`. Cells: median time to the first violation in seconds "
        "(worst) [runs that found it]; executions are median executions to the violation."
        + (" The last column is the fastest blind method's median over pyfuzz's (above 1: pyfuzz is faster)."
           if ratios else ""),
        "",
        "| mutant | " + " | ".join(methods) + (" | best blind / pyfuzz |" if ratios else " |"),
        "|---|" + "---|" * (len(methods) + ratios),
    ]

    def row(name: str, cells: list[str]) -> None:
        lines.append(f"| {name} | " + " | ".join(cells + [""] * (len(methods) + ratios - len(cells))) + " |")

    def result_row(mutant: str, name: str) -> None:
        cells = []
        for method in methods:
            p = summary["per"].get(f"{mutant}/{method}")
            cells.append("" if p is None else
                         f"{_fmt(p['median_s'], budget)} ({_fmt(p['worst_s'], budget)}) [{p['found']}/{p['runs']}]"
                         f"<br>{int(p['median_executions']):,} execs")
        if ratios:
            r = summary["per"].get(f"{mutant}/pyfuzz", {}).get("best_other_ratio")
            cells.append(f"{r:.2g}x" if r is not None else "")
        row(name, cells)

    for mutant in summary["mutants"]:
        if mutant != SEED_ROW:
            result_row(mutant, f"`{mutant}`")
    o = summary["overall"]
    row("**median of medians**", [f"**{_fmt(o[m]['median_of_medians_s'], budget)}**" if m in o else "" for m in methods])
    row("**ratio to pyfuzz**",
        [f"{o[m]['ratio_to_pyfuzz']:.2g}x" if m in o and o[m].get("ratio_to_pyfuzz") else "" for m in methods])
    if SEED_ROW in summary["mutants"]:
        result_row(SEED_ROW, f"the seed's own race (`{config_label(DEFAULT_CONFIG)}`, no mutant)")
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
    known = [name for name, _, _ in _core.MUTANTS if name != "none"] + [SEED_ROW]
    mutants = args.mutant or known
    methods = args.method or list(METHODS)
    for name in mutants:
        if name not in known:
            raise ProgramError(f"unknown mutant {name!r} (see 'pyfuzz mutants'; '{SEED_ROW}' is the seed's own race)")
    for name in methods:
        if name not in METHODS:
            raise ProgramError(f"unknown method {name!r} (choose from {', '.join(METHODS)})")
    # Each job is (the row it reports under, run_method's arguments).
    jobs = [(mutant, (method, DEFAULT_CONFIG, "none", args.budget, seed) if mutant == SEED_ROW else
             (method, MUTANT_CONFIG, mutant, args.budget, seed))
            for mutant in mutants for method in methods for seed in range(args.seeds)]
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


def _rate(fn, inputs, repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        for data in inputs:
            fn(data)
        rates.append(len(inputs) / (time.perf_counter() - start))
    return statistics.median(rates)


def bench_speed(args, console: Console) -> int:
    """Executions per second of the loop's layers, on one core, same inputs for every row."""
    config = MUTANT_CONFIG
    rng = random.Random(2024)
    inputs = [random_input(rng) for _ in range(args.inputs or 20_000)]
    engine = _core.Engine(config)

    def engine_only(data):
        engine.run_bytes(data)

    def check_every_execution(data):
        judge(engine.run_bytes(data), config)

    histories = DistinctHistories(config)

    def check_distinct_histories(data):
        histories.judge(engine.run_bytes(data))

    def mutated_stream():
        # What libFuzzer feeds: small mutations of earlier inputs, so many repeat a history.
        stream, r = [], random.Random(7)
        for data in inputs:
            base = bytearray(r.choice(stream) if stream and r.random() < 0.9 else data)
            if base:
                base[r.randrange(len(base))] = r.randrange(256)
            stream.append(bytes(base))
        return stream

    rows = [("engine only (decode + run, no check)", _rate(engine_only, inputs, args.repeats)),
            ("baseline: oracle on every execution", _rate(check_every_execution, inputs, args.repeats))]
    rows.append(("pyfuzz loop: oracle on distinct histories (random inputs)",
                 _rate(check_distinct_histories, inputs, 1)))
    histories = DistinctHistories(config)
    stream = mutated_stream()
    rows.append(("pyfuzz loop: oracle on distinct histories (mutated stream)",
                 _rate(check_distinct_histories, stream, 1)))
    result = {"machine": machine(), "inputs": len(inputs), "repeats": args.repeats, "config": config,
              "rows": [{"what": w, "exec_per_s": round(r)} for w, r in rows]}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "speed.json").write_text(json.dumps(result, indent=1))
    md = [f"Machine: {machine()}  ", f"{len(inputs)} inputs, median of {args.repeats} passes where repeated", "",
          "| loop | exec/s | vs baseline |", "|---|---|---|"]
    base = rows[1][1]
    for what, rate in rows:
        md.append(f"| {what} | {rate:,.0f} | {rate / base:.1f}x |")
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


def count_violations(mutant: str, walk: tuple[str, int] | None, inputs: int) -> int:
    """How many of `inputs` random programs (the same ones for every walk) end in a violation."""
    programs, seeds = random.Random(2024), random.Random(2025)
    engine = _core.Engine(MUTANT_CONFIG, mutant)
    histories = DistinctHistories(MUTANT_CONFIG)
    found = 0
    for _ in range(inputs):
        data = random_input(programs)
        seed = seeds.getrandbits(64)
        outcome = engine.run_bytes(data) if walk is None else engine.run_bytes_with(data, walk[0], seed, walk[1])
        found += histories.judge(outcome) is not None
    return found


def bench_walks(args, console: Console) -> int:
    """Which interleavings find the narrow races: the schedule the bytes spell, a uniform walk,
    and PCT, on the same random programs, counting violating runs (no feedback, no time limit)."""
    mutants = args.mutant or list(WALK_MUTANTS)
    inputs = args.inputs or 100_000
    cells = [(mutant, name) for mutant in mutants for name in WALKS]
    counts = {}
    with Progress(console=console) as progress, ProcessPoolExecutor(args.jobs) as pool:
        task = progress.add_task("bench walks", total=len(cells))
        futures = {pool.submit(count_violations, mutant, WALKS[name], inputs): (mutant, name) for mutant, name in cells}
        for future in as_completed(futures):
            counts[futures[future]] = future.result()
            progress.advance(task)
    md = [f"Command: `pyfuzz bench walks {' '.join(args.raw_argv)}`  ", f"Machine: {machine()}  ",
          f"Violating runs among the same {inputs:,} random programs ({INPUT_LEN[0]}-{INPUT_LEN[1]} random bytes each) "
          f"per mutant, under "
          f"`{config_label(MUTANT_CONFIG)}`.", "",
          "| mutant | " + " | ".join(WALKS) + " |", "|---|" + "---|" * len(WALKS)]
    for mutant in mutants:
        md.append(f"| `{mutant}` | " + " | ".join(f"{counts[mutant, name]:,}" for name in WALKS) + " |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "walks.json").write_text(json.dumps(
        {"machine": machine(), "inputs": inputs, "config": MUTANT_CONFIG,
         "counts": [{"mutant": m, "walk": w, "violations": c} for (m, w), c in sorted(counts.items())]}, indent=1))
    (args.out / "walks.md").write_text("\n".join(md) + "\n")
    console.print("\n".join(md), markup=False)
    return 0


PAIR_KINDS = {"vma": "vma_get + vma_put (the protocol's code, events recorded)",
              "fetch_add": "bare fetch_add + fetch_sub on one word (hardware limit)",
              "inc_not_zero": "compare-exchange inc-not-zero loop + fetch_sub"}


def bench_threads(args, console: Console) -> int:
    """Get/put pairs per second on real OS threads sharing one counter, against the bare atomics."""
    pairs = args.inputs or 2_000_000
    rows = []
    for threads in (1, 2):
        for kind, what in PAIR_KINDS.items():
            rates = [_core.refcount_pairs(kind, threads, pairs, MUTANT_CONFIG) for _ in range(args.repeats)]
            rows.append({"threads": threads, "kind": kind, "what": what, "pairs_per_s": round(statistics.median(rates))})
    md = [f"Command: `pyfuzz bench threads {' '.join(args.raw_argv)}`  ", f"Machine: {machine()}  ",
          f"{pairs:,} pairs per thread, median of {args.repeats} runs; all threads on one VMA's counter.", "",
          "| threads | pair | pairs/s | bare fetch_add / this |", "|---|---|---|---|"]
    for r in rows:
        bare = next(b["pairs_per_s"] for b in rows if b["threads"] == r["threads"] and b["kind"] == "fetch_add")
        md.append(f"| {r['threads']} | {r['what']} | {r['pairs_per_s']:,} | {bare / r['pairs_per_s']:.2f}x |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "threads.json").write_text(json.dumps({"machine": machine(), "pairs": pairs, "rows": rows}, indent=1))
    (args.out / "threads.md").write_text("\n".join(md) + "\n")
    console.print("\n".join(md), markup=False)
    return 0


def _resident_bytes() -> int:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def bench_memory(args, console: Console) -> int:
    """Resident size of this process after 1,000 engine runs and after a million (or --inputs)."""
    total = args.inputs or 1_000_000
    rng = random.Random(2024)
    inputs = [random_input(rng) for _ in range(1000)]
    engine = _core.Engine(MUTANT_CONFIG)
    marks, done, rows = [1000, 10_000, 100_000, total], 0, []
    for mark in sorted(set(m for m in marks if m <= total)):
        while done < mark:
            outcome = engine.run_bytes(inputs[done % len(inputs)])
            outcome.events  # the history as the oracle receives it, built and then dropped
            done += 1
        rows.append({"runs": done, "resident_bytes": _resident_bytes()})
    first, last = rows[0]["resident_bytes"], rows[-1]["resident_bytes"]
    md = [f"Command: `pyfuzz bench memory {' '.join(args.raw_argv)}`  ", f"Machine: {machine()}  ",
          "Engine runs of 1,000 random programs in turn, each history converted to Python and dropped.", "",
          "| runs | resident MiB | vs 1,000 runs |", "|---|---|---|"]
    md += [f"| {r['runs']:,} | {r['resident_bytes'] / 2**20:.1f} | {r['resident_bytes'] / first - 1:+.1%} |" for r in rows]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "memory.json").write_text(json.dumps({"machine": machine(), "rows": rows,
                                                      "growth": last / first - 1}, indent=1))
    (args.out / "memory.md").write_text("\n".join(md) + "\n")
    console.print("\n".join(md), markup=False)
    return 0


def run_bench(args, console: Console) -> int:
    return {"bugs": bench_bugs, "speed": bench_speed, "walks": bench_walks, "threads": bench_threads,
            "memory": bench_memory}[args.what](args, console)
