"""`pyfuzz verdict`: the verdict table over every meaningful configuration and candidate fix
(issue 8, item 5).

Each cell is one configuration. `verify_bound` explores every interleaving of every program
within the bound (for at most `cell_seconds`); an optional campaign then runs PCT walks over
random programs for the cells still safe. A cell is UNSAFE with the violation's class and a
minimized reproducer (written into the corpus with an `# expect:` line for every cell's
configuration), or SAFE UP TO A BOUND with the bound's and the campaign's figures and PCT's
probabilistic guarantee for the walks run. A cell whose exploration hit its time limit says
only that nothing was found in the part it completed.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path

from . import _core
from .check import decode, execute
from .model import DistinctHistories
from .program import DEFAULT_CONFIG, Program, ProgramError, random_input, save
from .verify import parse_bound, verify_bound

# The configurations a reviewer asks about: the seed, each candidate fix alone and the fixes
# together, the freeing and put disciplines, and no refcount at all; each under both readings of
# the folio->mapping policy.
FIXES = (
    ("seed", {}),
    ("get=add_result", {"get": "add_result"}),
    ("get=inc_not_zero", {"get": "inc_not_zero"}),
    ("init=keep_counter", {"init": "keep_counter"}),
    ("get=add_result init=keep_counter", {"get": "add_result", "init": "keep_counter"}),
    ("get=inc_not_zero init=keep_counter", {"get": "inc_not_zero", "init": "keep_counter"}),
    ("slab=deferred", {"slab": "deferred"}),
    ("put=rcusafe", {"put": "rcusafe"}),
    ("slab=deferred put=rcusafe", {"slab": "deferred", "put": "rcusafe"}),
    ("vma_ref=off", {"vma_ref": "off"}),
)
MAPPINGS = _core.CONFIG["mapping"]
DEFAULT_BOUND = "threads=2,ops=1..2,setup=1,ops-set=rmap,munmap,mmap"
# PCT walk depth of the campaign (the harness's), and the bug depths the guarantee is stated for.
WALK_DEPTH = 32
BUG_DEPTHS = (2, 3)


@dataclass
class Cell:
    label: str
    mapping: str
    config: dict
    verdict: str = "SAFE UP TO A BOUND"
    kind: str | None = None
    message: str | None = None
    found_by: str | None = None
    reproducer: str | None = None     # path in the corpus
    reproducer_text: str | None = None
    replays: bool | None = None
    bound: dict = field(default_factory=dict)
    campaign: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return dict(self.__dict__)


def cells() -> list[Cell]:
    return [Cell(label, mapping, {**DEFAULT_CONFIG, **fix, "mapping": mapping})
            for mapping in MAPPINGS for label, fix in FIXES]


def pct_guarantee(threads: int, steps: int, depth: int) -> float:
    """PCT (Burckhardt et al., ASPLOS 2010): one walk with d-1 change points over k steps of n
    threads hits a given bug of depth d with probability at least 1 / (n k^(d-1))."""
    return 1.0 / (threads * steps ** (depth - 1))


def _campaign(config: dict, seconds: float, seed: int) -> dict:
    """PCT walks of depth WALK_DEPTH over random programs; the first violation, if any."""
    rng = random.Random(seed)
    engine = _core.Engine(config, "none")
    histories = DistinctHistories(config)
    walks = max_threads = max_steps = 0
    start = time.monotonic()
    found = None
    while time.monotonic() - start < seconds:
        data = random_input(rng)
        walk = {"scheduler": "pct", "seed": rng.getrandbits(64), "depth": WALK_DEPTH}
        try:
            outcome = engine.run_bytes_with(data, **walk)
        except BaseException as e:  # a core panic is a finding like any other
            found = (data, walk, f"panic: {e}")
            break
        walks += 1
        max_steps = max(max_steps, outcome.steps)
        max_threads = max(max_threads, len(_core.decode(data)[1]))
        violation = histories.judge(outcome)
        if violation is not None:
            found = (data, walk, violation.kind)
            break
    figures = {"seconds": round(time.monotonic() - start, 2), "walks": walks,
               "distinct_histories": histories.checked, "depth": WALK_DEPTH,
               "max_threads": max_threads, "max_steps": max_steps}
    if walks and max_steps:
        figures["per_walk_guarantee"] = {f"depth {d}": pct_guarantee(max_threads, max_steps, d) for d in BUG_DEPTHS}
    if found is not None:
        data, walk, kind = found
        figures["found"] = kind
        figures["program"] = decode(data, config, "none", walk).to_text()
    return figures


def _judge_cell(job) -> Cell:
    cell, bound_spec, cell_seconds, campaign_seconds, seed = job
    bound = parse_bound(bound_spec)
    result = verify_bound(bound, cell.config, "none", deadline=time.perf_counter() + cell_seconds)
    cell.bound = {k: v for k, v in result.to_json().items() if k not in ("format", "config", "violation")}
    if not result.complete:
        # an unfinished bound proves nothing about the programs it did not reach
        cell.verdict = "NO VIOLATION FOUND (bound not completed)"
    if result.found is not None:
        cell.verdict, cell.kind = "UNSAFE", result.found.violation.kind
        cell.message = result.found.violation.message
        cell.found_by = f"verify (fewest preemptions: {result.found.witness_preemptions})"
        cell.reproducer_text = result.found.witness.to_text()
        return cell
    if campaign_seconds > 0:
        cell.campaign = _campaign(cell.config, campaign_seconds, seed)
        if "found" in cell.campaign:
            cell.verdict, cell.kind = "UNSAFE", cell.campaign["found"].split(":")[0]
            cell.found_by = f"campaign (PCT depth {WALK_DEPTH})"
            cell.reproducer_text = cell.campaign.pop("program")
    return cell


def _expect_lines(program: Program, all_cells: list[Cell]) -> list[str]:
    lines = []
    for c in all_cells:
        v = execute(program.with_config(**c.config))
        diff = " ".join(f"{k}={v2}" for k, v2 in c.config.items() if program.config_dict[k] != v2)
        lines.append(f"expect: {diff} => {'ok' if v.ok else v.violation.kind}".replace(":  =>", ": =>"))
    return lines


def _keep_reproducer(cell: Cell, all_cells: list[Cell], corpus: Path) -> None:
    """Minimize the cell's witness, check it replays, and add it to the corpus (never over an
    existing file)."""
    from .minimize import reduce
    from .program import parse

    program = parse(cell.reproducer_text)
    try:
        program = reduce(program).program
    except Exception:  # a witness the minimizer cannot shrink is kept as found
        pass
    replay = execute(program)
    cell.replays = not replay.ok and replay.violation.kind == cell.kind
    if not cell.replays:
        return
    cell.message = replay.violation.message
    from .signature import slug

    path = corpus / f"verdict-{slug(replay)}.txt"
    cell.reproducer = str(path)
    cell.reproducer_text = program.to_text()
    if path.exists():
        return
    header = [f"Found by `pyfuzz verdict` in the cell {cell.label} (mapping={cell.mapping}), by {cell.found_by}.",
              f"{cell.kind}: {cell.message or ''}".strip(), *_expect_lines(program, all_cells)]
    save(program, path, "\n".join(header))


def markdown(table: list[Cell], bound_spec: str, campaign_seconds: float) -> str:
    out = [f"Bound: `{bound_spec}`" + (f"; campaign: {campaign_seconds:g} s of PCT walks (depth {WALK_DEPTH}) "
                                         "per safe cell" if campaign_seconds else ""), ""]
    out.append("| configuration | mapping | verdict | class / bound | reproducer or figures |")
    out.append("|---|---|---|---|---|")
    for c in table:
        if c.verdict == "UNSAFE":
            repro = f"`{c.reproducer}`" if c.reproducer else "(did not replay)" if c.replays is False else ""
            out.append(f"| {c.label} | {c.mapping} | **UNSAFE** | {c.kind} ({c.found_by}) | {repro} |")
            continue
        b = c.bound
        scope = (f"all {b['programs_done']:,} programs" if b.get("complete")
                 else f"{b.get('programs_done', 0):,} of {b.get('programs_total', 0):,} programs (time limit)")
        figures = f"{scope}, {b.get('classes', 0):,} classes, {b.get('schedules', 0):,} schedules, {b.get('seconds', 0):.1f} s"
        if c.campaign:
            g = c.campaign.get("per_walk_guarantee", {})
            figures += (f"; campaign {c.campaign['walks']:,} walks, {c.campaign['distinct_histories']:,} distinct "
                        f"histories, {c.campaign['seconds']:.0f} s, programs up to {c.campaign['max_threads']} threads "
                        f"and {c.campaign['max_steps']} steps: each walk hits a given bug of depth 2 with p >= "
                        f"{g.get('depth 2', 0):.1e}, depth 3 with p >= {g.get('depth 3', 0):.1e}")
        out.append(f"| {c.label} | {c.mapping} | {c.verdict} | {bound_spec} | {figures} |")
    return "\n".join(out) + "\n"


def run(bound_spec: str, cell_seconds: float, campaign_seconds: float, jobs: int, corpus: Path,
        seed: int = 1) -> list[Cell]:
    parse_bound(bound_spec)  # bad input fails here, before any work
    table = cells()
    work = [(c, bound_spec, cell_seconds, campaign_seconds, seed) for c in table]
    if jobs > 1:
        pool = Pool(jobs)
        table = pool.map(_judge_cell, work)
        pool.close()
        pool.join()
    else:
        table = [_judge_cell(w) for w in work]
    corpus.mkdir(parents=True, exist_ok=True)
    for c in table:
        if c.verdict == "UNSAFE" and c.reproducer_text:
            _keep_reproducer(c, table, corpus)
    return table


def run_cli(args, console) -> int:
    if args.jobs < 1:
        raise ProgramError(f"--jobs {args.jobs}: need at least 1")
    table = run(args.bound, args.cell_time, args.campaign, args.jobs, args.corpus)
    text = markdown(table, args.bound, args.campaign)
    if args.markdown:
        args.markdown.write_text(text)
    if args.json:
        args.json.write_text(json.dumps({"format": "pyfuzz-verdict-1", "bound": args.bound,
                                         "campaign_seconds": args.campaign,
                                         "cells": [c.to_json() for c in table]}, indent=1) + "\n")
    print(text, end="")
    return 1 if any(c.verdict == "UNSAFE" for c in table) else 0
