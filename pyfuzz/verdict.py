"""`pyfuzz verdict`: the table a reviewer signs, one cell per meaningful configuration.

Each configuration is verified over a bound of programs (`pyfuzz.verify.verify_bound`, every
interleaving of every program up to symmetry) and then fuzzed for a short campaign
(`pyfuzz.campaign.run_campaign`). A cell is UNSAFE, with the violation's kind and signature and a
minimized reproducer that was replayed to the same signature, or SAFE UP TO A BOUND, with what
the bound and the campaign covered and what PCT's guarantee says about the campaign's walks.

Which configurations are meaningful is a rule over the keys of `_core.CONFIG`, not a list: every
key has a role below, and a key added to the core without one stops the command (and its test)
until someone decides what it means for the verdict.
"""

from __future__ import annotations

import json
import math
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from itertools import product
from pathlib import Path

from . import _core
from .files import scratch_directory
from .program import DEFAULT_CONFIG, Program, ProgramError, parse

# The candidate fixes of the get's two windows (DESIGN section 2): the slow path's store on a
# recycled object (get=) and a success on a zeroed counter (init=). The file cache needed both
# changes together, so they are crossed: every fix alone, every pair, and the seed.
CROSSED = ("get", "init")
# Fixes that stand alone: freeing after a grace period removes recycling altogether, and without
# CONFIG_VMA_REF there is no counter to race on. Each is taken with the other keys at the seed's.
ALONE = ("slab", "vma_ref")
# Readings of a patch we do not have (the folio->mapping policy, patch 09): not a fix but a
# question about the design, and every reader of a folio's mapping (rmap) depends on it, so every
# configuration above is taken under each reading.
READINGS = ("mapping",)
# Held at the seed's value, with the reason.
HELD = {
    "put": "rcuref_put_rcusafe is not a fix but a weaker put, legal only inside a read-side "
           "section; corpus/rcuref-deconstruction-race-rcusafe.txt shows it unsafe outside one",
    "debug_vm": "CONFIG_DEBUG_VM only decides whether VM_WARN_ON_ONCE fires: it changes "
                "warnings, not what the protocol does to memory or counters",
    "lockdep": "lockdep adds the kernel's debug checks as oracle rules; none of the fixes "
               "changes locking or RCU sections, so it checks the same code under every fix",
    "rmap_lock": "the reverse-map walker's rwsem is not a lifetime fix: it orders the walker's range "
                 "reads against split and merge (corpus/split-below-torn-range-read.txt, safe in every "
                 "interleaving with rmap_lock=rwsem) and changes nothing the refcount protects",
}

DEFAULT_BOUND = "threads=2,ops=1..2,setup=1,ops-set=rmap,munmap,mmap,split-below"
DEFAULT_CAMPAIGN = 10
# The seed's race needs a reader reaching the VMA through a folio (rmap) while the VMA is unmapped
# and its slot reused by mmap: the default bound has exactly those ops, and the split that moves
# the start and pgoff of the VMA a reader holds (split below), 465 programs. A safe
# configuration explores about a program a second of it on this machine, so by default each
# configuration covers a prefix of the bound in verify's fixed order, counted in programs (not
# seconds, so the table does not depend on the machine's load); the cell says which part.
DEFAULT_VERIFY_PROGRAMS = 40
CAMPAIGN_SEED = 1
FORMAT = "pyfuzz-verdict-1"


def configurations() -> list[dict[str, str]]:
    """The meaningful configurations, the seed's first, from `_core.CONFIG` and the roles above."""
    roles = set(CROSSED) | set(ALONE) | set(READINGS) | set(HELD)
    unruled = [key for key in _core.CONFIG if key not in roles]
    if unruled:
        raise ProgramError(f"verdict: configuration key {unruled[0]!r} has no rule in pyfuzz/verdict.py")
    fixes = [dict(zip(CROSSED, values)) for values in product(*(_core.CONFIG[k] for k in CROSSED))]
    fixes += [{key: value} for key in ALONE for value in _core.CONFIG[key][1:]]
    readings = [dict(zip(READINGS, values)) for values in product(*(_core.CONFIG[k] for k in READINGS))]
    out = []
    for changes, reading in product(fixes, readings):
        config = {**DEFAULT_CONFIG, **changes, **reading}
        if config not in out:
            out.append(config)
    return out


def label(config: dict[str, str]) -> str:
    """The keys that differ from the seed's, or `seed`; the mapping reading always shown."""
    words = [f"{k}={v}" for k, v in config.items() if v != DEFAULT_CONFIG[k] and k not in READINGS]
    return " ".join(words or ["seed"]) + "".join(f", {k}={config[k]}" for k in READINGS)


def pct_statement(walks: int, depth: int, threads: int, steps: int) -> str:
    """What PCT's theorem (Burckhardt et al., ASPLOS 2010) guarantees for `walks` walks of
    parameter `depth` on programs of at most `threads` threads and `steps` steps: each walk finds
    a given bug of depth <= depth with probability >= 1/(n k^(d-1)), so all of them miss it with
    probability <= (1-p)^walks."""
    if walks == 0 or steps == 0:
        return "no PCT walks ran: no probabilistic guarantee"
    log10_p = -(math.log10(threads) + (depth - 1) * math.log10(steps))
    p = 10 ** log10_p
    found = -math.expm1(walks * math.log1p(-p)) if p > 1e-300 else 0.0
    return (f"{walks:,} PCT walks of depth {depth} on programs of <= {threads} threads and <= {steps} steps: "
            f"each finds a given bug of depth <= {depth} with probability >= 1/(n k^(d-1)) = 10^{log10_p:.0f}, "
            f"so together >= {found:.1e}: no useful guarantee; the walks are search effort, the bound is the evidence")


@dataclass
class Cell:
    config: dict[str, str]
    label: str
    verdict: str = ""  # "UNSAFE" or "SAFE UP TO A BOUND"
    bound: dict = field(default_factory=dict)  # verify_bound's to_json()
    found_by: str = ""  # "verify" or "campaign" for an unsafe cell
    kind: str = ""
    signature: str = ""
    reproducer: str = ""  # the minimized program's text
    replayed: bool = False  # the reproducer, run again, gives the same signature
    corpus_file: str = ""  # where the reproducer lives in corpus/ (new, or the twin it matched)
    corpus_new: bool = False
    campaign: dict = field(default_factory=dict)
    pct: str = ""
    seconds: float = 0.0

    @classmethod
    def from_json(cls, data: dict) -> Cell:
        return cls(**data)


def _campaign_sizes(corpus: Path, config: dict[str, str]) -> tuple[int, int]:
    """The largest thread count and step count among the inputs the campaign kept."""
    from .check import decode, execute

    threads = steps = 0
    for path in sorted(corpus.iterdir()):
        program = decode(path.read_bytes(), config, "none")
        verdict = execute(program)
        threads = max(threads, len(program.threads))
        if verdict.outcome is not None:
            steps = max(steps, verdict.outcome.steps)
    return threads, steps


def _unsafe(cell: Cell, program: Program, found_by: str) -> None:
    from .check import execute
    from .minimize import reduce
    from .signature import signature

    reduction = reduce(program)
    replay = execute(reduction.program)
    cell.verdict, cell.found_by = "UNSAFE", found_by
    cell.kind = reduction.verdict.violation.kind
    cell.signature = reduction.signature
    cell.reproducer = reduction.program.to_text()
    cell.replayed = not replay.ok and signature(replay) == reduction.signature


def judge_configuration(config: dict[str, str], bound_spec: str, campaign_seconds: int,
                        verify_programs: int | None) -> Cell:
    """One cell: the bound (its first `verify_programs` programs), then, if it holds, the campaign."""
    from .campaign import run_campaign
    from .harness import WALK_DEPTH, WALKS_PER_INPUT
    from .verify import parse_bound, verify_bound

    started = time.perf_counter()
    cell = Cell(dict(config), label(config))
    result = verify_bound(parse_bound(bound_spec), config, "none", limit=verify_programs)
    cell.bound = result.to_json()
    if result.violation is not None:
        _unsafe(cell, parse(result.violation["program"]), "verify")
    elif campaign_seconds > 0:
        with scratch_directory("pyfuzz-verdict-") as tmp:
            corpus = tmp / "corpus"
            corpus.mkdir()
            r = run_campaign(config, "none", campaign_seconds, corpus, tmp / "artifacts", CAMPAIGN_SEED)
            # Every input gets at least WALKS_PER_INPUT walks; the workers' last reported count of
            # runs may trail libFuzzer's final count of inputs by a few, so take the larger.
            walks = max(r.runs - r.executions, r.executions * WALKS_PER_INPUT)
            cell.campaign = {"seconds": round(r.seconds, 1), "seed": CAMPAIGN_SEED, "inputs": r.executions,
                             "runs": r.executions + walks, "walks": walks,
                             "distinct_histories": r.checked, "walk_depth": WALK_DEPTH}
            if r.finding is not None:
                _unsafe(cell, r.finding.program, "campaign")
            else:
                threads, steps = _campaign_sizes(corpus, config)
                cell.campaign.update(max_threads=threads, max_steps=steps)
                cell.pct = pct_statement(walks, WALK_DEPTH, threads, steps)
    if not cell.verdict:
        cell.verdict = "SAFE UP TO A BOUND"
    cell.seconds = round(time.perf_counter() - started, 1)
    return cell


def file_reproducers(cells: list[Cell], corpus: Path) -> None:
    """Put each unsafe cell's reproducer into `corpus` with `# expect:` lines for every
    configuration (corpus add's logic), unless a corpus program has its signature already: then
    the cell names that one. Runs in the parent, one cell after another, so two cells with one
    signature add one file."""
    from .corpus import add_finding, twin

    for cell in cells:
        if cell.verdict != "UNSAFE":
            continue
        program = parse(cell.reproducer)
        existing = twin(corpus, program.mutant, cell.signature)
        if existing is not None:
            cell.corpus_file = str(existing)
            continue
        header = (f"# Found by pyfuzz verdict ({cell.found_by}) under {cell.label}; minimized.\n"
                  + cell.reproducer)
        path, _ = add_finding(program, header, corpus, force=False)
        cell.corpus_file, cell.corpus_new = str(path), True


def run_verdict(bound_spec: str, campaign_seconds: int, jobs: int, corpus: Path,
                verify_programs: int | None = DEFAULT_VERIFY_PROGRAMS, configs: list | None = None,
                progress=None) -> dict:
    from .verify import parse_bound

    bound = parse_bound(bound_spec)  # a bad bound fails here, before any work starts
    configs = configurations() if configs is None else configs
    started = time.perf_counter()
    cells: list[Cell | None] = [None] * len(configs)
    if jobs == 1:
        for i, config in enumerate(configs):
            cells[i] = judge_configuration(config, bound_spec, campaign_seconds, verify_programs)
            if progress is not None:
                progress(cells[i])
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(judge_configuration, c, bound_spec, campaign_seconds, verify_programs): i
                       for i, c in enumerate(configs)}
            for future in futures:
                cells[futures[future]] = future.result()
                if progress is not None:
                    progress(cells[futures[future]])
    file_reproducers(cells, corpus)
    return {"format": FORMAT, "bound": str(bound), "campaign_seconds": campaign_seconds, "jobs": jobs,
            "verify_programs": verify_programs,
            "seconds": round(time.perf_counter() - started, 1), "held": HELD,
            "cells": [asdict(c) for c in cells]}


def load_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ProgramError(f"{path}: not a verdict result ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ProgramError(f"{path}: not a verdict result")
    data["cells"] = [asdict(Cell.from_json(c)) for c in data["cells"]]
    return data


def _cell_text(cell: dict) -> str:
    if cell["verdict"] == "UNSAFE":
        where = cell["corpus_file"] + (" (new)" if cell["corpus_new"] else " (already in corpus)")
        return (f"**UNSAFE** ({cell['found_by']}): {cell['kind']}: {cell['signature']}; "
                f"reproducer `{where}`, replayed: {'yes' if cell['replayed'] else 'NO'}")
    b = cell["bound"]
    part = "all" if b["complete"] else f"the first {b['programs_done']:,} of"
    text = (f"**{cell['verdict']}**: no violation in any interleaving of {part} {b['programs_total']:,} programs "
            f"({b['programs_covered']:,} with thread orders), {b['classes']:,} classes, "
            f"{b['schedules']:,} schedules, {b['seconds']:.1f} s")
    c = cell["campaign"]
    if c:
        text += (f"; campaign {c['seconds']} s: {c['inputs']:,} inputs, {c['runs']:,} runs, "
                 f"{c['distinct_histories']:,} distinct histories")
    return text


def markdown(data: dict) -> str:
    budget = "" if data["verify_programs"] is None else f" (its first {data['verify_programs']} programs per configuration)"
    lines = [f"Bound `{data['bound']}`{budget}, campaign {data['campaign_seconds']} s per safe configuration "
             f"(seed {CAMPAIGN_SEED}), `--jobs {data['jobs']}`, {data['seconds']} s in all. "
             "Keys held at the seed's value: "
             + "; ".join(f"`{k}` ({why})" for k, why in data["held"].items()) + ".", "",
             "| configuration | verdict |", "|---|---|"]
    lines += [f"| {c['label']} | {_cell_text(c)} |" for c in data["cells"]]
    pcts = [c for c in data["cells"] if c["pct"]]
    if pcts:
        lines += ["", "PCT's guarantee for each safe cell's campaign walks:", ""]
        lines += [f"* {c['label']}: {c['pct']}" for c in pcts]
    return "\n".join(lines) + "\n"


def run_cli(args, console) -> int:
    from .cli import OK, VIOLATION

    if args.out.exists() and not args.out.is_dir():
        raise ProgramError(f"--out {args.out}: not a directory")
    if not args.corpus.is_dir():
        raise ProgramError(f"--corpus {args.corpus}: no such directory")

    def progress(cell: Cell) -> None:
        console.print(f"{cell.label}: {cell.verdict} ({cell.seconds} s)", highlight=False)

    bound = DEFAULT_BOUND if args.bound is None else args.bound
    seconds = DEFAULT_CAMPAIGN if args.campaign is None else args.campaign
    budget = DEFAULT_VERIFY_PROGRAMS if args.verify_programs is None else args.verify_programs
    data = run_verdict(bound, seconds, args.jobs, args.corpus, budget, progress=progress)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "verdict.json").write_text(json.dumps(data, indent=2) + "\n")
    (args.out / "verdict.md").write_text(markdown(data))
    console.print(f"wrote {args.out / 'verdict.md'} and {args.out / 'verdict.json'}", highlight=False)
    print(markdown(data))
    return VIOLATION if any(c["verdict"] == "UNSAFE" for c in data["cells"]) else OK
