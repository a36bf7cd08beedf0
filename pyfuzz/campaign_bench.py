"""`pyfuzz bench jobs|parser|kill|soak`: campaign operations measured, never asserted.

jobs:   inputs per second of --jobs 2 beside --jobs 1, same configuration, alternating runs.
parser: the program-file reader under a million fuzzed inputs (pyfuzz/parser_fuzz.py).
kill:   campaigns killed with SIGKILL at random moments; the corpus and artifacts checked after each.
soak:   the resident memory of a campaign (its process and its workers) sampled over a long run.
Each writes bench-results/<name>.json and <name>.md for BENCHMARKS.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from rich.console import Console

from .bench import machine
from .files import scratch_directory, write_atomically
from .program import DEFAULT_CONFIG, ProgramError, load

# No mutant and the configuration the specification calls safe: nothing to find, so a campaign
# runs its whole time (jobs, soak). Without the rmap lock the lazy walker's torn range is there to
# find (the `torn-range` scenario), rarely, so the lock is on.
SAFE = dict(DEFAULT_CONFIG, slab="deferred", rmap_lock="rwsem")


def _header(command: str) -> list[str]:
    load1, load5, _ = os.getloadavg()
    return [f"Command: `{command}`  ", f"Machine: {machine()}  ",
            f"Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; load average at the start "
            f"{load1:.1f} (1 min), {load5:.1f} (5 min): the machine was shared  ", ""]


def _write(out: Path, name: str, result: dict, md: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(out / f"{name}.json", json.dumps(result, indent=1).encode())
    write_atomically(out / f"{name}.md", ("\n".join(md) + "\n").encode())


def bench_jobs(args, console: Console) -> int:
    from .campaign import run_campaign

    budget, repeats = args.budget, args.repeats
    head = _header(f"pyfuzz bench jobs --budget {budget} --repeats {repeats}")
    runs: dict[int, list[dict]] = {1: [], 2: []}
    for r in range(repeats):
        for jobs in ((1, 2) if r % 2 == 0 else (2, 1)):  # alternate, so drift in load hits both
            cpu = _children_cpu()
            with scratch_directory("pyfuzz-bench-jobs-") as tmp:
                res = run_campaign(SAFE, "none", budget, tmp / "corpus", tmp / "artifacts",
                                   seed=1000 + r, jobs=jobs)
            cpu = _children_cpu() - cpu
            row = {"repeat": r, "jobs": jobs, "inputs": res.executions, "seconds": round(res.seconds, 2),
                   "inputs_per_s": round(res.executions / res.seconds, 1), "libfuzzer_rate": res.exec_per_second,
                   "worker_cpu_s": round(cpu, 1), "inputs_per_cpu_s": round(res.executions / cpu, 1),
                   "corpus": res.corpus_entries, "load1": round(os.getloadavg()[0], 1)}
            runs[jobs].append(row)
            console.print(f"jobs {jobs}, repeat {r}: {row['inputs']:,} inputs in {row['seconds']} s "
                          f"({row['inputs_per_s']}/s, load {row['load1']})", highlight=False)
    med = {j: statistics.median(x["inputs_per_s"] for x in rows) for j, rows in runs.items()}
    per_cpu = {j: statistics.median(x["inputs_per_cpu_s"] for x in rows) for j, rows in runs.items()}
    pairs = [b["inputs_per_s"] / a["inputs_per_s"] for a, b in zip(runs[1], runs[2])]
    result = {"budget_s": budget, "repeats": repeats, "runs": runs[1] + runs[2],
              "median_inputs_per_s": med, "ratio_of_medians": round(med[2] / med[1], 2),
              "median_inputs_per_worker_cpu_s": per_cpu,
              "median_pair_ratio": round(statistics.median(pairs), 2)}
    md = head + [
        f"Campaigns of {budget} s on `{' '.join(f'{k}={v}' for k, v in SAFE.items())}` (nothing to find), "
        "fresh corpus each, `--jobs 1` and `--jobs 2` alternating. Inputs/s = all workers' inputs over "
        "the campaign's wall time (start-up included); CPU = the workers' user+system time "
        "(what the shared machine let them have).", "",
        "| repeat | jobs 1 inputs/s | jobs 2 inputs/s | ratio | jobs 1 / jobs 2 worker CPU (s) | "
        "load (1 min) after |", "|---|---|---|---|---|---|",
        *(f"| {a['repeat']} | {a['inputs_per_s']} | {b['inputs_per_s']} | {b['inputs_per_s'] / a['inputs_per_s']:.2f} | "
          f"{a['worker_cpu_s']} / {b['worker_cpu_s']} | {a['load1']} / {b['load1']} |" for a, b in zip(runs[1], runs[2])),
        f"| **median** | **{med[1]}** | **{med[2]}** | **{med[2] / med[1]:.2f}** (ratio of medians) | | |", "",
        f"Inputs per worker CPU-second (median): {per_cpu[1]} with one worker, {per_cpu[2]} with two.",
    ]
    _write(args.out, "jobs", result, md)
    console.print(f"--jobs 2 / --jobs 1: {med[2] / med[1]:.2f}x (medians {med[2]} and {med[1]} inputs/s)",
                  highlight=False)
    return 0


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bench_parser(args, console: Console) -> int:
    from .parser_fuzz import fuzz_parser

    inputs = args.inputs or 1_000_000
    corpus = Path(__file__).resolve().parents[1] / "corpus"
    seeds = [p.read_bytes() for p in sorted(corpus.glob("*.txt"))] if corpus.is_dir() else []
    head = _header(f"pyfuzz bench parser --inputs {inputs} --seeds {args.seeds}")
    started = time.monotonic()
    counts = fuzz_parser(inputs, seed=args.seeds, seeds=seeds, progress=lambda n, c: console.print(
        f"{n:,} inputs: {c['parsed']:,} programs, {c['rejected']:,} rejected with ProgramError", highlight=False)
        if n % 100_000 == 0 else None)
    seconds = time.monotonic() - started
    result = {"inputs": inputs, "seed": args.seeds, "seed_files": len(seeds), "parsed": counts["parsed"],
              "rejected": counts["rejected"], "other_exceptions": 0, "seconds": round(seconds, 1)}
    md = head + [
        f"{inputs:,} inputs (structured mutations of {len(seeds)} corpus files and 64 decoded random programs, "
        f"plus random bytes) in {seconds:.0f} s: {counts['parsed']:,} read as programs (each printed "
        f"canonically and read back equal), {counts['rejected']:,} rejected with a one-line ProgramError, "
        "no other exception (the run stops at the first)."]
    _write(args.out, "parser", result, md)
    console.print(md[-1], highlight=False)
    return 0


def _inputs(corpus: Path) -> list[Path]:
    # Not the temporary files of writes in progress (dot names), which come and go meanwhile.
    return [p for p in corpus.iterdir() if not p.name.startswith(".")] if corpus.is_dir() else []


def whole_corpus(corpus: Path) -> int:
    """Inputs in a campaign's corpus directory, each checked whole (its name is its SHA-1)."""
    files = _inputs(corpus)
    for p in files:
        if hashlib.sha1(p.read_bytes()).hexdigest() != p.name:
            raise AssertionError(f"{p}: not a whole input")
    return len(files)


def readable_artifacts(artifacts: Path) -> int:
    paths = sorted(artifacts.glob("*.txt")) if artifacts.is_dir() else []
    for path in paths:
        try:
            load(path)
        except ProgramError as e:
            raise AssertionError(f"artifact does not read back: {e}") from None
    return len(paths)


def workers_of(pid: int) -> list[int]:
    """Harness processes started by campaign `pid` (their environment names it)."""
    marker = f"PYFUZZ_PARENT={pid}\0".encode()
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            pass
    return found


def kill_args(i: int) -> list[str]:
    """Kill i's campaign, all on the safe configuration: even ones without a mutant, so the
    corpus grows all along; odd ones with a mutant found within a worker's first inputs, so that
    --keep-going replays, minimizes and saves findings all along (one file per signature);
    every second pair with --jobs 2."""
    return (["--config", "slab=deferred", "--config", "rmap_lock=rwsem"] + (["--mutant", "get_ignores_dead"] if i % 2 else [])
            + (["--jobs", "2"] if i % 4 >= 2 else []))


def kill_once(rng: random.Random, corpus: Path, artifacts: Path, scratch: Path, extra: list[str] = ()) -> dict:
    """Start a campaign (--keep-going, its TMPDIR `scratch`), SIGKILL it at a random moment once
    it has started writing, and check what it left. Raises AssertionError on a broken corpus,
    artifact, an orphaned worker, or a scratch directory left by an earlier kill."""
    cmd = [sys.executable, "-m", "pyfuzz", "fuzz", "--time", "300", "--keep-going", "--corpus", str(corpus),
           "--artifacts", str(artifacts), *extra]
    before = whole_corpus(corpus)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, TMPDIR=str(scratch)))
    try:
        # Until this campaign's workers run and it has written something: a new corpus input or,
        # with a mutant found at once, a finding.
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline and not (
                workers_of(proc.pid) and (whole_corpus(corpus) > before or readable_artifacts(artifacts))):
            time.sleep(0.1)
        delay = rng.uniform(0.0, 8.0)
        time.sleep(delay)
        workers = workers_of(proc.pid)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{w}/environ").exists() for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    orphans = [w for w in workers if Path(f"/proc/{w}/environ").exists()]
    if orphans:
        raise AssertionError(f"workers {orphans} outlived their campaign")
    # The killed campaign's own; the one an earlier kill left, this campaign removed at its start.
    abandoned = len(os.listdir(scratch))
    if abandoned > 1:
        raise AssertionError(f"{abandoned} scratch directories in {scratch}: earlier kills' were not removed")
    return {"killed_after_first_input_s": round(delay, 2), "workers": len(workers),
            "corpus": whole_corpus(corpus), "artifacts": readable_artifacts(artifacts), "abandoned": abandoned}


def bench_kill(args, console: Console) -> int:
    kills = args.repeats
    head = _header(f"pyfuzz bench kill --repeats {kills} --seeds {args.seeds}")
    rng = random.Random(args.seeds)
    rows = []
    with scratch_directory("pyfuzz-bench-kill-") as tmp:
        corpus, artifacts, scratch = tmp / "corpus", tmp / "artifacts", tmp / "tmp"
        scratch.mkdir()
        for i in range(kills):
            extra = kill_args(i)
            row = dict(kill_once(rng, corpus, artifacts, scratch, extra), kill=i, args=" ".join(extra))
            rows.append(row)
            console.print(f"kill {i}: {row}", highlight=False)
    result = {"kills": kills, "rows": rows, "broken": 0}
    md = head + [
        f"{kills} campaigns (`--keep-going`, `slab=deferred`) on one corpus and artifacts directory, alternately "
        "without a mutant (the corpus grows) and with `get_ignores_dead` (findings replayed, minimized and saved "
        "all along), every second pair with `--jobs 2`; each SIGKILLed at a random moment 0-8 s after it first wrote a new input or a finding. "
        "After every kill: each corpus file is whole (its name is its SHA-1), each artifact reads back as "
        "a program, no worker outlived the campaign, and the campaigns' TMPDIR holds one scratch directory "
        "at most (the killed campaign's own: each campaign removes the one the kill before left).", "",
        "| kill | flags | killed after (s) | workers | corpus inputs | artifacts | scratch dirs left |",
        "|---|---|---|---|---|---|---|",
        *(f"| {r['kill']} | `{r['args']}` | {r['killed_after_first_input_s']} | {r['workers']} | {r['corpus']} | "
          f"{r['artifacts']} | {r['abandoned']} |" for r in rows),
        "", f"Broken files, orphaned workers or scratch directories of earlier kills: 0 of {kills} kills "
        "(the run stops at the first)."]
    _write(args.out, "kill", result, md)
    return 0


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def bench_soak(args, console: Console) -> int:
    budget, every = args.budget, 10
    head = _header(f"pyfuzz bench soak --budget {budget}")
    with scratch_directory("pyfuzz-bench-soak-") as tmp:
        cmd = [sys.executable, "-m", "pyfuzz", "fuzz", "--time", str(budget), "--corpus", f"{tmp}/corpus",
               "--artifacts", f"{tmp}/artifacts", "--config", "slab=deferred", "--seed", "1"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        started, samples = time.monotonic(), []
        while proc.poll() is None:
            time.sleep(every)
            workers = workers_of(proc.pid)
            sample = {"t": round(time.monotonic() - started), "campaign_kib": _rss_kib(proc.pid),
                      "workers_kib": sum(map(_rss_kib, workers)), "corpus": whole_corpus(tmp / "corpus"),
                      "corpus_bytes": sum(p.stat().st_size for p in _inputs(tmp / "corpus"))}
            if proc.poll() is None and workers:
                samples.append(sample)
                console.print(f"{sample}", highlight=False)
        tail = proc.stdout.read()
    first = [s for s in samples if s["t"] <= 60]
    last = [s for s in samples if s["t"] >= samples[-1]["t"] - 60]

    def median(rows, key):
        return statistics.median(key(s) for s in rows)

    parts = {"campaign process": lambda s: s["campaign_kib"], "worker": lambda s: s["workers_kib"],
             "total": lambda s: s["campaign_kib"] + s["workers_kib"]}
    result = {"budget_s": budget, "every_s": every, "samples": samples, "summary_tail": tail[-2000:],
              **{f"first_minute_median_kib_{k.split()[0]}": median(first, f) for k, f in parts.items()},
              **{f"last_minute_median_kib_{k.split()[0]}": median(last, f) for k, f in parts.items()},
              "max_kib": max(map(parts["total"], samples))}
    md = head + [
        f"One campaign of {budget} s (`--config slab=deferred --seed 1`, a corpus directory), resident memory "
        f"of the campaign process and of its worker sampled every {every} s from /proc.", "",
        "| | " + " | ".join(parts) + " |", "|---|---|---|---|",
        "| first minute, median | " + " | ".join(f"{median(first, f) / 1024:.1f} MiB" for f in parts.values()) + " |",
        "| last minute, median | " + " | ".join(f"{median(last, f) / 1024:.1f} MiB" for f in parts.values()) + " |",
        f"| maximum (total) | | | {result['max_kib'] / 1024:.1f} MiB |", "",
        f"Corpus: {first[0]['corpus']} inputs ({first[0]['corpus_bytes'] / 1024:.0f} KiB) at the first sample, "
        f"{samples[-1]['corpus']} ({samples[-1]['corpus_bytes'] / 1024:.0f} KiB) at the last."]
    _write(args.out, "soak", result, md)
    console.print("\n".join(md[-7:]), highlight=False)
    return 0
