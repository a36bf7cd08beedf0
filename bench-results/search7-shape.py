"""Why the guidance does not beat the blind walk on the hard tier: each row's bug rate split into
P(a program has the bug's shape) x P(a walk hits the window | such a program), for the blind walk
and for the campaign (BENCHMARKS.md, "Why the guidance does not pay on the hard tier").

Every count here is of runs, not seconds, so the machine's load does not move it.

    window ROW... --walks N    the row's corpus reproducer, its program only (the schedule dropped),
                               under N of the harness's own walks (PCT depth 32, change points over
                               the steps of its own run, seeds digest ^ i as the harness draws them);
                               or the programs of the campaigns' first violations (--campaign-firsts)
                               or of the blind stream's (--blind-at N...)
    blind ROW... --programs N  the blind pct-walk stream (bench walks' programs and walk seeds):
                               which programs have the row's shape, the blind walk's own verdict on
                               those (so the violations it counts are the ones of the million-program
                               counts that the shape explains), and --extra K more walks of each of
                               the first --extra-programs of them
    campaign ROW --runs N --seed S
                               one campaign (the harness under libFuzzer, --jobs 1, the row's
                               configuration and mutant, PYFUZZ_KEEP_GOING so it runs past a finding)
                               for N runs: which runs were on programs of the shape, which violated
                               (bench-results/search7-campaigns.sh runs seeds 0-2 of each row)
    premises ROW...            two signals a harness could grant walks by, on the blind stream's
                               programs of the shape: a revival in a program's earlier walks, and
                               the program's length
    report                     the tables of BENCHMARKS.md from the files the others wrote

A row's shape is a predicate on the program alone (`SHAPES`): the ops its reproducer needs, on the
objects it needs, in the threads it needs them. Objects are resolved against the setup VMAs and
the pieces the program's splits can cut them into, since a program's own interleaving decides
the rest.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = {
    "holder_put_rcusafe": "holder-put-rcusafe-after-munmap.txt",
    "merge_remove2_put_rcusafe": "merge-remove2-put-rcusafe.txt",
    "merge_repoint_remove2_after_put": "merge-repoint-remove2-after-put.txt",
    "torn-range": "split-below-torn-range-read.txt",
    "rmap_sleep_stays_out_of_rcu": "rmap-sleep-stays-out-of-rcu.txt",
    "put_acquire_before_cmpxchg": "put-acquire-before-cmpxchg.txt",
    "merge_put_rcusafe": "merge-put-rcusafe-under-mmap-lock.txt",
}


# --- the shapes ------------------------------------------------------------------------------

def _vmas(program, cut: bool) -> list[tuple[int, int]]:
    """The ranges of the program's VMAs before its splits (`cut` False) or after all of them (each
    setup VMA cut at every address a split that does not take its error path names inside it), and
    the ranges the threads mmap that no setup VMA overlaps. Which splits have happened when a merge
    or a munmap runs is the interleaving's choice, so the shapes accept either layout."""
    setup, threads, _ = program
    cuts = {op[1] for ops in threads for op in ops if op[0] == "split" and not op[3]} if cut else set()
    pieces = []
    for start, end, _ in setup:
        points = [start, *sorted(c for c in cuts if start < c < end), end]
        pieces += list(zip(points, points[1:]))
    for ops in threads:
        for name, a, b, fail in ops:
            if name == "mmap" and not fail and not any(a < e and s < a + b for s, e, _ in setup):
                pieces.append((a, a + b))
    return sorted(set(pieces))


def _setup_vma(program, page: int):
    return next(((s, e) for s, e, _ in program[0] if s <= page < e), None)


def _walkers(program):
    """(thread, page, the setup VMA whose folio it walks) for every rmap of a folio that exists."""
    for t, ops in enumerate(program[1]):
        for name, a, _, _ in ops:
            if name == "rmap" and (v := _setup_vma(program, a)) is not None:
                yield t, a, v


def _other_ops(program, t: int, names: tuple[str, ...]):
    for u, ops in enumerate(program[1]):
        if u != t:
            for i, op in enumerate(ops):
                if op[0] in names:
                    yield u, i, op


def _merge_removed(program, name: str, a: int, variant: int) -> list[tuple[int, int]]:
    """The ranges a merge at `a` can remove, in order, under either layout (adjacent VMAs only:
    anonymous pgoffs are contiguous)."""
    if name != "merge":
        return []
    removed = []
    for cut in (False, True):
        pieces = _vmas(program, cut)
        i = next((k for k, (s, e) in enumerate(pieces) if s <= a < e), None)
        if i is None:
            continue
        chain = [pieces[i]]
        for s, e in pieces[i + 1:]:
            if s != chain[-1][1] or len(chain) == 3:
                break
            chain.append((s, e))
        if variant == 2:  # both: the next two, remove then remove2
            removed += chain[1:3] if len(chain) == 3 else []
        elif len(chain) >= 2:
            removed.append(chain[0] if variant == 1 else chain[1])
    return removed


def _covers(v, page: int) -> bool:
    return v[0] <= page < v[1]


def holder_shape(program) -> bool:
    """A walker of a folio of VMA V; another thread that gets V and later puts that reference; and
    a munmap of V in a thread other than the walker's (in the holder's, between its get and put)."""
    threads = program[1]
    for w, p, v in _walkers(program):
        for h, ops in enumerate(threads):
            if h == w:
                continue
            held = []  # indices of the gets whose references the thread holds, most recent last
            for i, (name, a, _, _) in enumerate(ops):
                if name == "get":
                    held.append((i, _covers(v, a)))
                elif name == "put" and held:
                    g, on_v = held.pop()
                    if on_v and any(_covers(v, op[1]) and (u != h or g < j < i)
                                    for u, j, op in _other_ops(program, w, ("munmap",))):
                        return True
    return False


def merge_put_shape(program) -> bool:
    """A merge that can remove a VMA, and a walker in another thread of a folio in what it removes."""
    return any(any(_covers(r, p) for r in _merge_removed(program, *op[:3]))
               for w, p, _ in _walkers(program) for _, _, op in _other_ops(program, w, ("merge",)))


def merge_remove2_shape(program) -> bool:
    """A three-way merge (`merge ADDR both`) over three adjacent VMAs, and a walker in another thread
    of a folio of the third (remove2)."""
    return any(op[2] == 2 and any(_covers(r, p) for r in _merge_removed(program, *op[:3])[1::2])
               for w, p, _ in _walkers(program) for _, _, op in _other_ops(program, w, ("merge",)))


def munmap_walker_shape(program) -> bool:
    """A walker of a folio of VMA V and a munmap of V in another thread."""
    return any(_covers(v, op[1]) for w, _, v in _walkers(program) for _, _, op in _other_ops(program, w, ("munmap",)))


def sleep_shape(program) -> bool:
    """A walker of folio P of VMA V; in another thread a split or merge of V (which holds V's rmap
    rwsem for write, the walker's path to its sleep) and a munmap, after it if in the same thread,
    of the piece covering P that the walker's tree look-up finds."""
    for w, p, v in _walkers(program):
        pieces = [x for cut in (False, True) for x in _vmas(program, cut) if _covers(x, p)]
        for u, i, op in _other_ops(program, w, ("split", "merge")):
            if not _covers(v, op[1]) or op[3]:
                continue
            if any(any(_covers(x, m[1]) for x in pieces) and (z != u or j > i)
                   for z, j, m in _other_ops(program, w, ("munmap",))):
                return True
    return False


def torn_range_shape(program) -> bool:
    """A walker of folio P of VMA V and, in other threads, the reproducer's two splits of V: one
    that moves P out of V (a split at A, start < A <= P, the new VMA above) and one that moves V's
    start under the walker (a split at B < A with the new VMA below), so that the range the walker
    reads, one field at a time, can mix V's layout before and after."""
    for w, p, v in _walkers(program):
        splits = [op for _, _, op in _other_ops(program, w, ("split",)) if v[0] < op[1] < v[1] and not op[3]]
        for above in (op[1] for op in splits if op[2] == 0 and op[1] <= p):
            if any(op[2] == 1 and op[1] < above for op in splits):
                return True
    return False


SHAPES = {
    "holder_put_rcusafe": holder_shape,
    "merge_remove2_put_rcusafe": merge_remove2_shape,
    "merge_repoint_remove2_after_put": merge_remove2_shape,
    "torn-range": torn_range_shape,
    "rmap_sleep_stays_out_of_rcu": sleep_shape,
    "put_acquire_before_cmpxchg": munmap_walker_shape,
    "merge_put_rcusafe": merge_put_shape,
}


# --- measurements ----------------------------------------------------------------------------

class Verdicts:
    """Each distinct history judged once by the oracle, its verdict kept for its repeats (the
    harness's DistinctHistories forgets a repeat's verdict; a rate per walk must count it)."""

    def __init__(self, config):
        from pyfuzz.model import Violation, check
        self.config, self.check, self.Violation = config, check, Violation
        self.seen: dict[int, str | None] = {}

    def kind(self, outcome) -> str | None:
        if outcome.digest not in self.seen:
            try:
                self.check(outcome.events, self.config, outcome.final_counters)
                self.seen[outcome.digest] = None
            except self.Violation as v:
                self.seen[outcome.digest] = v.kind
        return self.seen[outcome.digest]


def _walks(engine, program, verdicts, seeds):
    """Kinds of violation, by count, of the program under the harness's walks with these seeds
    (its own run's steps, as the harness passes them)."""
    from pyfuzz.harness import WALK_DEPTH
    own = engine.run_program(program)
    kinds: dict[str, int] = {}
    for i in seeds(own.digest):
        kind = verdicts.kind(engine.run_program(program, "pct", i, WALK_DEPTH, own.steps))
        if kind is not None:
            kinds[kind] = kinds.get(kind, 0) + 1
    return own, kinds


def _first_violating(row: str, out: Path) -> list[tuple[str, str]]:
    """(label, input bytes in hex) of the first violating input of each campaign of the row in `out`."""
    import gzip
    found = []
    for path in sorted(out.glob(f"campaign-{row}-*.jsonl.gz")):
        with gzip.open(path, "rt") as f:
            rec = next((r for r in map(json.loads, f) if r[2]), None)
        if rec is not None:
            found.append((path.name.split(".")[0], rec[3]))
    return found


def cmd_window(args) -> dict:
    from pyfuzz import _core
    from pyfuzz.bench import row_setup
    from pyfuzz.program import load, parse_config_overrides
    out = {}
    for row in args.rows:
        config, mutant = row_setup(row)
        config = {**config, **parse_config_overrides(args.config)}
        if args.campaign_firsts:
            programs = [(label, _core.decode(bytes.fromhex(h))) for label, h in _first_violating(row, args.out)]
        elif args.blind_at:
            from pyfuzz.program import random_input
            stream, wanted = random.Random(2024), set(args.blind_at)
            programs = [(f"blind program {n}", _core.decode(data)) for n, data in
                        ((n, random_input(stream)) for n in range(max(wanted) + 1)) if n in wanted]
        elif args.hex:
            programs = [(args.hex, _core.decode(bytes.fromhex(args.hex)))]
        else:
            name = args.file or CORPUS[row]
            programs = [(str(name), load(args.file or REPO / "corpus" / CORPUS[row]).to_tuple())]
        for label, (setup, threads, _) in programs:
            program = (setup, threads, [])
            engine, verdicts = _core.Engine(config, mutant), Verdicts(config)
            start = time.monotonic()
            own, kinds = _walks(engine, program, verdicts, lambda d: (d ^ i for i in range(args.walks)))
            out[f"{row} {label}" if len(programs) > 1 or args.campaign_firsts else row] = r = {
                "config": config, "program": label, "walks": args.walks, "violating": sum(kinds.values()),
                "kinds": kinds, "own_schedule": verdicts.kind(own), "distinct_histories": len(verdicts.seen),
                "shape": SHAPES[row](program), "ops": sum(map(len, threads)), "steps": own.steps,
                "seconds": round(time.monotonic() - start, 1)}
            print(row, json.dumps(r), flush=True)
    return out


def cmd_blind(args) -> dict:
    """The blind pct-walk stream of `bench walks` (count_violations): programs Random(2024), walk
    seeds Random(2025), one per program, drawn for every program whether it is run or not."""
    from pyfuzz import _core
    from pyfuzz.bench import row_setup
    from pyfuzz.harness import WALK_DEPTH
    from pyfuzz.program import random_input
    rows = args.rows
    engines = {row: (_core.Engine(*row_setup(row)), Verdicts(row_setup(row)[0])) for row in rows}
    out = {row: {"programs": args.programs, "shaped": 0, "blind_violating": 0, "blind_kinds": {},
                 "extra_walks": 0, "extra_violating": 0, "extra_kinds": {}, "violating_programs": 0}
           for row in rows}
    programs, seeds = random.Random(2024), random.Random(2025)
    extra = random.Random(7)
    start = time.monotonic()
    for n in range(args.programs):
        data = random_input(programs)
        seed = seeds.getrandbits(64)
        program = _core.decode(data)
        for row in rows:
            if not SHAPES[row](program):
                continue
            engine, verdicts = engines[row]
            o = out[row]
            o["shaped"] += 1
            kind = verdicts.kind(engine.run_bytes_with(data, "pct", seed, WALK_DEPTH))
            if kind is not None:
                o["blind_violating"] += 1
                o["blind_kinds"][kind] = o["blind_kinds"].get(kind, 0) + 1
                o.setdefault("blind_at", []).append(n)
            if args.extra and o["extra_walks"] < args.extra * args.extra_programs:
                base = extra.getrandbits(64)
                _, kinds = _walks(engine, program, verdicts, lambda d: (base ^ i for i in range(args.extra)))
                o["extra_walks"] += args.extra
                o["extra_violating"] += sum(kinds.values())
                o["violating_programs"] += bool(kinds)
                for k, c in kinds.items():
                    o["extra_kinds"][k] = o["extra_kinds"].get(k, 0) + c
        if (n + 1) % 100_000 == 0:
            print(n + 1, round(time.monotonic() - start), json.dumps(out), flush=True)
    for row in rows:
        print(row, json.dumps(out[row]), flush=True)
    return out


def cmd_samplers(args) -> dict:
    """Every sampler of `bench walks` (its columns, in its order) on the same stream as its
    count_violations, each program's walk seed shared by all samplers as there, but run only on
    the programs of the row's shape: the shape depends on the program alone, and it held every
    blind violation of pct-walk's million-program counts, so each cell's count is the sampler's
    violating runs among all N programs, at the cost of the shaped share of them. As in
    count_violations, a history counts once per cell (a repeat of a violating one does not)."""
    from pyfuzz import _core
    from pyfuzz.bench import WALKS, row_setup
    from pyfuzz.program import random_input
    engines = {row: (_core.Engine(*row_setup(row)), Verdicts(row_setup(row)[0])) for row in args.rows}
    cells = {(row, name): [set(), 0, {}] for row in args.rows for name in WALKS}  # seen, violating, kinds
    shaped = dict.fromkeys(args.rows, 0)
    programs, seeds = random.Random(2024), random.Random(2025)
    start = time.monotonic()
    for n in range(args.programs):
        data = random_input(programs)
        seed = seeds.getrandbits(64)
        program = _core.decode(data)
        for row in args.rows:
            if not SHAPES[row](program):
                continue
            shaped[row] += 1
            engine, verdicts = engines[row]
            for name, walk in WALKS.items():
                outcome = engine.run_bytes(data) if walk is None else engine.run_bytes_with(data, walk[0], seed, walk[1])
                cell = cells[row, name]
                if outcome.digest in cell[0]:
                    continue
                cell[0].add(outcome.digest)
                kind = verdicts.kind(outcome)
                if kind is not None:
                    cell[1] += 1
                    cell[2][kind] = cell[2].get(kind, 0) + 1
        if (n + 1) % 100_000 == 0:
            print(n + 1, round(time.monotonic() - start), json.dumps({f"{r} {w}": c[1] for (r, w), c in cells.items() if c[1]}),
                  flush=True)
    out = {row: {"programs": args.programs, "shaped": shaped[row],
                 "violating": {name: cells[row, name][1] for name in WALKS},
                 "kinds": {name: cells[row, name][2] for name in WALKS}} for row in args.rows}
    for row in args.rows:
        print(row, json.dumps(out[row]), flush=True)
    return out


NOREF = 0xFFFF_FFFF  # rcuref's counter with no reference left: a get's add from it revives the object


def cmd_premises(args) -> dict:
    """Two signals a harness could give more walks by, tested on the blind stream's programs of
    the row's shape (at most --per-bucket per length bucket, 2K walks each): whether a program
    whose first K walks include a revival (a get's fetch-add from NOREF: half of the put-window
    rows' window) violates more often in its next K walks; and how the window and the per-run
    bug rate (P(shape) x window) move with the program's length in steps."""
    from pyfuzz import _core
    from pyfuzz.bench import row_setup
    from pyfuzz.harness import WALK_DEPTH
    from pyfuzz.program import random_input
    out = {}
    for row in args.rows:
        config, mutant = row_setup(row)
        engine, verdicts = _core.Engine(config, mutant), Verdicts(config)
        stream, extra, k = random.Random(2024), random.Random(9), args.walks
        programs, shaped, walked = {}, {}, {}
        revival = {True: [0, 0, 0], False: [0, 0, 0]}  # programs, second-half walks, their violations
        for _ in range(args.programs):
            data = random_input(stream)
            own = engine.run_bytes(data)
            b = min(own.steps // 50, 6) * 50
            programs[b] = programs.get(b, 0) + 1
            if not SHAPES[row](_core.decode(data)):
                continue
            shaped[b] = shaped.get(b, 0) + 1
            w = walked.setdefault(b, [0, 0, 0])  # programs, walks, violations
            if w[0] >= args.per_bucket:
                continue
            base = extra.getrandbits(64)
            revived, bad = False, [0, 0]
            for i in range(2 * k):
                outcome = engine.run_bytes_with(data, "pct", base ^ i, WALK_DEPTH, own.steps)
                revived |= i < k and any(e[0] == "atomic" and e[3] == "add" and e[5] == NOREF for e in outcome.events)
                bad[i >= k] += verdicts.kind(outcome) is not None
            w[0] += 1
            w[1] += 2 * k
            w[2] += sum(bad)
            r = revival[revived]
            r[0] += 1
            r[1] += k
            r[2] += bad[1]
        by_length = {b: {"programs": programs[b], "shaped": shaped.get(b, 0), "walked": walked.get(b, [0])[0],
                         "walks": walked.get(b, [0, 0])[1], "violating": walked.get(b, [0, 0, 0])[2]}
                     for b in sorted(programs)}
        for v in by_length.values():
            v["window"] = v["violating"] / v["walks"] if v["walks"] else None
            v["rate_per_run"] = v["shaped"] / v["programs"] * (v["window"] or 0)
        out[row] = {"programs": args.programs, "walks_per_half": k, "by_length_in_steps": by_length,
                    "revival_in_first_half": {str(key): v for key, v in revival.items()}}
        print(row, json.dumps(out[row]), flush=True)
    return out


# --- the campaign, observed -------------------------------------------------------------------

def harness_main(argv: list[str]) -> None:
    """The harness of `pyfuzz fuzz` unchanged, observed: every run's program shape and verdict
    are logged (one line per input: its shape, its runs, which of them violated), and the process
    ends after $SEARCH7_RUNS runs. The oracle's verdicts are the harness's own: DistinctHistories
    is wrapped to remember each violating digest, so a repeat of a violating history counts as a
    violating run as well."""
    from pyfuzz import _core, harness, model
    # The plain build's decoder: the instrumented one would add to the coverage counters, and the
    # campaign would no longer be the one the harness alone runs from its seed.
    decode = _core.decode
    row, limit, log_path = os.environ["SEARCH7_ROW"], int(os.environ["SEARCH7_RUNS"]), os.environ["SEARCH7_LOG"]
    shape = SHAPES[row]
    log = open(log_path, "w", buffering=1 << 16)
    state = {"runs": 0, "input": None}
    base = model.DistinctHistories

    class Observed:  # the compiled class cannot be subclassed
        def __init__(self, config):
            self.inner, self.config, self.bad = base(config), config, {}

        @property
        def checked(self) -> int:
            return self.inner.checked

        def judge(self, outcome):
            fresh = self.inner.fresh(outcome)
            violation = None
            if fresh:
                try:
                    model.check(outcome.events, self.config, outcome.final_counters)
                except model.Violation as v:
                    violation = self.bad[outcome.digest] = v
            kind = (violation or self.bad.get(outcome.digest))
            rec = state["input"]
            rec[1] += 1
            if kind is not None:
                rec[2].append(kind.kind)
            state["runs"] += 1
            return violation

    model.DistinctHistories = Observed
    make_engine = harness._make_engine

    def flush() -> None:
        rec = state["input"]
        if rec is not None:  # the bytes of violating inputs only, to measure their windows
            log.write(json.dumps(rec[:3] + [rec[3].hex()] * bool(rec[2])) + "\n")

    def observed_make_engine(config, mutant):
        engine, core = make_engine(config, mutant)

        class Engine:  # the harness calls these two; each input starts with run_bytes
            def run_bytes(self, data):
                flush()
                if state["runs"] >= limit:
                    log.close()
                    os._exit(0)
                state["input"] = [int(shape(decode(data))), 0, [], data]
                return engine.run_bytes(data)

            def run_bytes_with(self, data, **walk):
                return engine.run_bytes_with(data, **walk)
        return Engine(), core

    harness._make_engine = observed_make_engine
    harness.main(argv)


def cmd_campaign(args) -> dict:
    import subprocess
    import tempfile
    from pyfuzz import build
    from pyfuzz.bench import row_setup
    from pyfuzz.campaign import _harness_args, _write_random_inputs, libfuzzer_env
    config, mutant = row_setup(args.row)
    core = build.instrumented_core()
    with tempfile.TemporaryDirectory(prefix="search7-") as tmp:
        work = Path(tmp)
        (work / "out").mkdir()
        (work / "findings").mkdir()
        (work / "corpus").mkdir()
        # the campaign's seed convention: bench bugs' seed s runs the campaign with seed s + 1
        _write_random_inputs(work / "random-inputs", args.seed + 1)
        cmd = _harness_args(args.seconds, args.seed + 1, [work / "out", work / "corpus", work / "random-inputs"],
                            work, reload=False)
        cmd[2:4] = [str(Path(__file__).resolve()), "harness"]  # ours in place of -m pyfuzz.harness
        log = args.out / f"campaign-{args.row}-{args.seed}.jsonl"
        env = dict(libfuzzer_env(core, config), PYFUZZ_MUTANT=mutant, PYFUZZ_KEEP_GOING="1",
                   PYFUZZ_FINDINGS=str(work / "findings"), SEARCH7_ROW=args.row, SEARCH7_RUNS=str(args.runs),
                   SEARCH7_LOG=str(log), PYFUZZ_WALKS=args.walks)
        env["PYFUZZ_STATS"] = str(work / "stats.json")  # its reads run instrumented code: keep them
        start = time.monotonic()
        with open(log.with_suffix(".out"), "w") as output:  # libFuzzer's own lines
            subprocess.run(cmd, env=env, stdout=output, stderr=subprocess.STDOUT, check=False)
        seconds = time.monotonic() - start
    return summarize_campaign(log, args.row, args.seed, seconds)


def summarize_campaign(log: Path, row: str, seed: int, seconds: float) -> dict:
    """The campaign's runs by shape, up to and including the input of its first violation (what
    `bench bugs` measures), and over all its runs (past the first, the violating input may be in
    libFuzzer's corpus and draw its mutations towards the bug, so the rates there are not blind
    to it)."""
    def count(records):
        c = {"inputs": 0, "runs": 0, "shaped_inputs": 0, "shaped_runs": 0, "violating": 0, "shaped_violating": 0}
        for shaped, n, kinds in records:
            c["inputs"] += 1
            c["runs"] += n
            c["shaped_inputs"] += shaped
            c["shaped_runs"] += shaped * n
            c["violating"] += len(kinds)
            c["shaped_violating"] += shaped * len(kinds)
        return c
    records = [json.loads(line)[:3] for line in log.read_text().splitlines()]
    first = next((i for i, r in enumerate(records) if r[2]), None)
    s = {"row": row, "seed": seed, "seconds": round(seconds, 1), "found": first is not None,
         "to_first": count(records[:len(records) if first is None else first + 1]), "all": count(records)}
    print(json.dumps(s), flush=True)
    return s


# The blind pct-walk's violating runs in 1,000,000 programs of this stream under the benchmark
# configuration (BENCHMARKS.md: "The hard tier under the rmap lock", the sixth round; torn-range
# under rmap_lock=none, the fourth session): what the shape must explain.
BLIND_1M = {"holder_put_rcusafe": 1, "merge_remove2_put_rcusafe": 0, "merge_repoint_remove2_after_put": 1,
            "torn-range": 0, "rmap_sleep_stays_out_of_rcu": 3, "put_acquire_before_cmpxchg": 8, "merge_put_rcusafe": 11}


def _load(out: Path, pattern: str) -> list:
    """The results of the files, oldest first: a later measurement of a row replaces an earlier one."""
    return [json.loads(path.read_text())["result"] for path in sorted(out.glob(pattern), key=lambda p: p.stat().st_mtime)]


def _rate(n: int, d: int) -> str:
    return f"{n / d:.1e} ({n:,} in {d:,})" if d else "-"


def cmd_report(args) -> dict:
    """The two tables of BENCHMARKS.md from the files the other commands wrote in --out."""
    blind = {}
    for result in _load(args.out, "blind-*.json"):
        blind.update(result)
    windows: dict[str, dict] = {row: {"reproducer": None, "blind": [], "campaign": []} for row in CORPUS}
    for result in _load(args.out, "window-*.json"):
        for key, w in result.items():
            row = key.split(" ")[0]
            if w["config"] != row_config(row):
                continue
            if w["program"] == CORPUS[row]:
                windows[row]["reproducer"] = w
            elif w["program"].startswith("blind program"):
                windows[row]["blind"].append(w)
            elif w["program"].startswith("campaign-"):
                windows[row]["campaign"].append(w)
    camps: dict[str, list] = {}
    for c in _load(args.campaigns or args.out, "campaign-*.json"):
        camps.setdefault(c["row"], []).append(c)

    def ws(found):
        return ", ".join(f"{w['violating'] / w['walks']:.1e}" for w in sorted(found, key=lambda w: w["violating"])) or "-"

    one = ["| row | blind: violating runs in 1,000,000 | reproducer's window (violating walks) | P(shape) = blind rate / "
           "reproducer's window | windows of the programs blind found it on | windows of the programs the campaigns "
           "first found it on |", "|---|---|---|---|---|---|"]
    two = ["| row | blind: P(shape) | blind: window given shape | blind violations the shape holds | campaign: P(shape), "
           "to first violation; all runs | campaign: window given shape, all runs | runs per input, shaped / other | "
           "campaign / blind: P(shape), window, product | campaign runs to first violation, by seed |",
           "|---|---|---|---|---|---|---|---|---|"]
    table = {}
    for row in CORPUS:
        b, w, cs = blind.get(row), windows[row], sorted(camps.get(row, []), key=lambda c: c["seed"])
        rep = w["reproducer"]
        rate = BLIND_1M[row] / 1_000_000
        if not rate and b:  # none in the million: the rate the shape's two factors give (table two)
            rate = b["shaped"] / b["programs"] * (b["blind_violating"] + b["extra_violating"]) / (b["shaped"] + b["extra_walks"])
        rw = rep["violating"] / rep["walks"] if rep else 0
        implied = (f"{rate / rw:.1e}" + " (from the factors)" * (not BLIND_1M[row])) if rw and rate else "-"
        one.append(f"| `{row}` | {BLIND_1M[row]} | {_rate(rep['violating'], rep['walks']) if rep else '-'} | {implied} | "
                   f"{ws(w['blind'])} | {ws(w['campaign'])} |")
        if not b or not cs:
            continue
        tot = {part: {k: sum(c[part][k] for c in cs) for k in cs[0][part]} for part in ("to_first", "all")}
        a, f = tot["all"], tot["to_first"]
        fb = b["shaped"] / b["programs"]
        wb_n, wb_d = b["blind_violating"] + b["extra_violating"], b["shaped"] + b["extra_walks"]
        fc, wc = a["shaped_runs"] / a["runs"], a["shaped_violating"] / max(a["shaped_runs"], 1)
        wb = wb_n / wb_d
        per_shaped = a["shaped_runs"] / max(a["shaped_inputs"], 1)
        per_other = (a["runs"] - a["shaped_runs"]) / max(a["inputs"] - a["shaped_inputs"], 1)
        firsts = ", ".join(f"{c['to_first']['runs']:,}" if c["found"] else f"not in {c['all']['runs']:,}" for c in cs)
        gains = f"{fc / fb:.1f}x, " + (f"{wc / wb:.1f}x, {fc * wc / (fb * wb):.1f}x" if wb and wc else "-, -")
        two.append(f"| `{row}` | {fb:.2%} ({b['shaped']:,}) | {_rate(wb_n, wb_d)} | {b['blind_violating']} of {BLIND_1M[row]} | "
                   f"{f['shaped_runs'] / f['runs']:.2%}; {fc:.2%} | {_rate(a['shaped_violating'], a['shaped_runs'])}, "
                   f"{a['violating']} violating runs in all | {per_shaped:.1f} / {per_other:.1f} | {gains} | {firsts} |")
        table[row] = {"blind": b, "campaign": tot, "windows": w}
    text = "\n".join(one) + "\n\n" + "\n".join(two) + "\n"
    samplers = {}
    for result in _load(args.out, "samplers-*.json"):
        samplers.update(result)
    if samplers:
        names = list(next(iter(samplers.values()))["violating"])
        blind_names = names[1:]  # the first column is the program's own schedule, not a sampler
        three = ["| row | " + " | ".join(names) + " | best blind sampler: median runs (ln 2 / rate) | pyfuzz: median "
                 "runs to first violation (campaigns) | best blind / pyfuzz |", "|---|" + "---|" * (len(names) + 3)]
        for row, m in samplers.items():
            counts = m["violating"]
            best = max(blind_names, key=lambda n: counts[n])
            best_median = math.log(2) * m["programs"] / counts[best] if counts[best] else None
            blind_cell = f"{best}: {best_median:,.0f}" if best_median else f"none: more than {m['programs']:,}"
            runs = sorted(c["to_first"]["runs"] if c["found"] else math.inf for c in camps.get(row, []))
            found = [r for r in runs if r != math.inf]
            median = (runs[(len(runs) - 1) // 2] + runs[len(runs) // 2]) / 2 if runs else math.nan
            if median == math.inf:  # the median lies past the last campaign found below it
                low = runs[(len(runs) - 1) // 2]
                low = low if low != math.inf else max(c["all"]["runs"] for c in camps[row])
                pyfuzz_cell, ratio = f"more than {low:,}", f"under {best_median / low:.1f}x" if best_median else "-"
            else:
                pyfuzz_cell, ratio = f"{median:,.0f}", f"{best_median / median:.1f}x" if best_median else "-"
            three.append(f"| `{row}` | " + " | ".join(f"{counts[n]:,}" for n in names) +
                         f" | {blind_cell} | {pyfuzz_cell} ({len(found)} of {len(runs)} found) | {ratio} |")
        text += "\n" + "\n".join(three) + "\n"
    print(text)
    (args.campaigns or args.out).joinpath("report.md").write_text(text)
    return table


def row_config(row: str) -> dict:
    from pyfuzz.bench import row_setup
    return row_setup(row)[0]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "harness":
        harness_main([sys.argv[0], *sys.argv[2:]])
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("window")
    w.add_argument("rows", nargs="+", choices=list(CORPUS))
    w.add_argument("--walks", type=int, default=10_000)
    w.add_argument("--config", action="append", default=[], help="KEY=VALUE over the row's configuration")
    w.add_argument("--file", type=Path, help="this program file's program in place of the row's reproducer")
    w.add_argument("--hex", help="the program these input bytes decode to, in place of the row's reproducer")
    w.add_argument("--campaign-firsts", action="store_true",
                   help="the programs of the first violating inputs of the row's campaigns in --out")
    w.add_argument("--blind-at", type=int, nargs="+", help="these programs of the blind stream (bench walks' order)")
    b = sub.add_parser("blind")
    b.add_argument("rows", nargs="+", choices=list(CORPUS))
    b.add_argument("--programs", type=int, default=100_000)
    b.add_argument("--extra", type=int, default=0, help="more walks of each program of the shape")
    b.add_argument("--extra-programs", type=int, default=2000, help="of the first this many programs of the shape")
    c = sub.add_parser("campaign")
    c.add_argument("row", choices=list(CORPUS))
    c.add_argument("--runs", type=int, default=100_000)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--seconds", type=int, default=3600)
    c.add_argument("--walks", default="power", choices=("power", "fixed"))
    q = sub.add_parser("premises")
    q.add_argument("rows", nargs="+", choices=list(CORPUS))
    q.add_argument("--programs", type=int, default=200_000)
    q.add_argument("--walks", type=int, default=25, help="walks per half")
    q.add_argument("--per-bucket", type=int, default=1500)
    m = sub.add_parser("samplers")
    m.add_argument("rows", nargs="+", choices=list(CORPUS))
    m.add_argument("--programs", type=int, default=1_000_000)
    r = sub.add_parser("report")
    r.add_argument("--campaigns", type=Path, help="the campaigns' files from here (default: --out)")
    for p in (w, b, c, q, m, r):
        p.add_argument("--out", type=Path, default=REPO / "bench-results" / "search7")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    result = {"window": cmd_window, "blind": cmd_blind, "campaign": cmd_campaign, "premises": cmd_premises, "samplers": cmd_samplers,
              "report": cmd_report}[args.cmd](args)
    if args.cmd == "report":
        return
    name = f"{args.cmd}-{args.row}-{args.seed}" if args.cmd == "campaign" else f"{args.cmd}-{'+'.join(args.rows)}"
    name += "-campaign-firsts" * bool(getattr(args, "campaign_firsts", False))
    name += "-blind-programs" * bool(getattr(args, "blind_at", None))
    (args.out / f"{name}.json").write_text(json.dumps({"argv": sys.argv[1:], "result": result}, indent=1) + "\n")


if __name__ == "__main__":
    main()
