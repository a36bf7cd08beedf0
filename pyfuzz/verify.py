"""Exhaustive bounded verification (`pyfuzz verify`): every interleaving of a program, or of every
program within a bound, each distinct history judged by the oracle.

The Rust explorer (`rust/src/explore.rs`) enumerates the interleavings: source-set DPOR with
sleep sets (every equivalence class of executions at least once), a plain DFS (every schedule),
or iterative context bounding (every schedule with at most K preemptions, fewest first). This
module judges what it finds, picks the violation with the fewest preemptions, writes it as a
program file with its explicit schedule, and enumerates programs for `--programs SPEC`.
docs/DESIGN.md section "Exhaustive verification" states what a result guarantees.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from . import _core
from .check import judge
from .model import Violation, first_damage
from .program import OP_VARIANTS, Op, Program, ProgramError, SetupVma, run_lengths

# Exhaustive exploration grows exponentially with the thread count: at four threads even one op
# each is out of reach, so verify refuses rather than running for ever.
MAX_THREADS = 3
MODES = ("dpor", "dfs")


@dataclass
class Exploration:
    """What exploring one program found."""

    program: Program
    mode: str
    preemptions: int | None  # the bound; None: every interleaving
    schedules: int = 0
    blocked: int = 0  # DPOR runs cut short by sleep sets (their continuations are covered)
    histories: int = 0
    classes: int = 0
    seconds: float = 0.0
    complete: bool = False
    violation: Violation | None = None
    witness: Program | None = None  # the violation's program with its explicit schedule
    witness_preemptions: int | None = None
    witness_schedules: int = 0  # schedules the fewest-preemption search ran
    witness_events: list = field(default_factory=list, repr=False)
    # When the witness shows a wrong result but not yet what it does to memory: the violating
    # interleaving with the fewest preemptions (at most DAMAGE_EXTRA more) whose history shows
    # the damage, with that damage (`model.first_damage`).
    damage: Violation | None = None
    damage_witness: Program | None = None
    damage_preemptions: int | None = None

    @property
    def ok(self) -> bool:
        return self.violation is None

    def holds(self) -> str:
        if self.preemptions is None:
            return "no violation in any interleaving"
        return f"no violation in any interleaving with at most {self.preemptions} preemption(s)"

    def figures(self) -> str:
        rate = self.schedules / self.seconds if self.seconds > 0 else 0.0
        return (f"schedules {self.schedules:,}, distinct histories {self.histories:,}, "
                f"classes {self.classes:,}, {self.seconds:.2f} s, {rate:,.0f} schedules/s")


def check_supported(program: Program) -> None:
    if len(program.threads) > MAX_THREADS:
        raise ProgramError(f"verify explores programs of at most {MAX_THREADS} threads; this one has "
                           f"{len(program.threads)}")


def _judge_found(item, config: dict) -> tuple[list[int], int, int, object, Violation | None]:
    schedule, preemptions, klass, outcome, panic = item
    if outcome is None:
        return schedule, preemptions, klass, None, Violation("panic", f"the Rust core panicked: {panic}", -1, [])
    return schedule, preemptions, klass, outcome, judge(outcome, config)


# How many preemptions beyond the fewest-preemption witness the damage witness may take.
DAMAGE_EXTRA = 1


def _search(program: Program, mode: str, bound: int | None, progress: Callable[[dict], None] | None,
            wanted: Callable[[object, Violation], bool] | None = None):
    """Drive one explorer to the end (or to its first violation, or with `wanted` its first
    violation that `wanted(outcome, violation)` accepts); returns the explorer and that
    (schedule, preemptions, outcome, violation), if any."""
    config = program.config_dict
    explorer = _core.Explorer(program.to_tuple(), config, program.mutant,
                              "bounded" if bound is not None or mode == "bounded" else mode, bound)
    first = None
    judged: dict[int, Violation | None] = {}  # a class can repeat another's history
    while not explorer.done:
        for item in explorer.explore(256, 0.2):
            outcome = item[3]
            if outcome is not None and outcome.digest in judged:
                schedule, preemptions, _, _, _ = item
                violation = judged[outcome.digest]
            else:
                schedule, preemptions, _, outcome, violation = _judge_found(item, config)
                if outcome is not None:
                    judged[outcome.digest] = violation
            if violation is not None and (wanted is None or wanted(outcome, violation)):
                first = (schedule, preemptions, outcome, violation)
                break
        if progress is not None:
            progress(explorer.stats)
        if first is not None:
            break
    return explorer, first


def explore(program: Program, *, mode: str = "dpor", preemptions: int | None = None,
            progress: Callable[[dict], None] | None = None) -> Exploration:
    """Every interleaving of `program` (with `preemptions`, every one with at most that many).

    Without a bound, `mode` ("dpor" or "dfs") explores everything; on a violation, iterative
    context bounding then runs every schedule with 0, 1, ... preemptions up to the violating
    schedule's count, so the witness reported has the fewest preemptions of any violation. With a
    bound, iterative context bounding is the exploration itself (no partial-order pruning: see
    `rust/src/explore.rs`), and its first violation is the fewest-preemption one."""
    check_supported(program)
    if mode not in MODES:
        raise ProgramError(f"unknown exploration mode {mode!r} (expected one of {', '.join(MODES)})")
    result = Exploration(program, mode if preemptions is None else "bounded", preemptions)
    start = time.perf_counter()
    explorer, first = _search(program, mode, preemptions, progress)
    stats = explorer.stats
    result.schedules, result.blocked = stats["schedules"], stats["blocked"]
    result.histories, result.classes = stats["histories"], stats["classes"]
    result.complete = explorer.done and first is None
    if first is not None and preemptions is None and first[1] > 0:
        # The explorer's representative of the violating class need not have the fewest
        # preemptions: search the bounded levels below and at its count.
        bounded, fewest = _search(program, "bounded", first[1], None)
        result.witness_schedules = bounded.stats["schedules"]
        first = fewest or first
    result.seconds = time.perf_counter() - start
    if first is not None:
        schedule, count, outcome, violation = first
        result.violation = violation
        result.witness_preemptions = count
        result.witness = Program(program.setup, program.threads, run_lengths(schedule), program.config, program.mutant)
        result.witness_events = outcome.events if outcome is not None else []
        if outcome is not None and first_damage(outcome.events, program.config_dict) is None:
            _find_damage(program, result)
    return result


def _find_damage(program: Program, result: Exploration) -> None:
    """The witness's history shows a wrong result and nothing worse yet (the seed's hazard: a get
    succeeds on a counter the allocation's memset revived): look, fewest preemptions first, for a
    violating interleaving whose history shows what the wrong result does (a VMA freed while in
    the tree, a use after free), which is what a reviewer needs to see."""
    config = program.config_dict
    damage = {}

    def damaging(outcome, _violation) -> bool:
        if outcome is None:
            return False
        damage["found"] = first_damage(outcome.events, config)
        return damage["found"] is not None

    _, found = _search(program, "bounded", result.witness_preemptions + DAMAGE_EXTRA, None, damaging)
    if found is not None:
        schedule, count, _, _ = found
        result.damage = damage["found"]
        result.damage_preemptions = count
        result.damage_witness = Program(program.setup, program.threads, run_lengths(schedule), program.config,
                                        program.mutant)


def witness_path(out_dir: Path, result: Exploration) -> Path:
    digest = hashlib.sha256(result.witness.to_text().encode()).hexdigest()[:8]
    return out_dir / f"{result.violation.kind}-{digest}.txt"


def witness_header(result: Exploration, source: str) -> str:
    return (f"pyfuzz verify: {result.violation}\n"
            f"found by exhaustive exploration of {source} ({result.figures()});\n"
            f"this interleaving has {result.witness_preemptions} preemption(s), the fewest of any violating one.\n"
            f"replay: pyfuzz replay THIS_FILE")


# ---- --programs SPEC: every program within a bound ----

# Op kinds: NAME[-VARIANT][-fail], the variants of `program.OP_VARIANTS` (split below, merge
# next and both) included.
OP_KINDS = ("get", "put", "rmap", "munmap", "mmap", "mmap-fail", "split", "split-fail", "split-below",
            "split-below-fail", "merge", "merge-next", "merge-both", "fork", "fork-fail")
DEFAULT_OPS = ("get", "put", "rmap", "munmap", "mmap", "split", "merge", "fork")
SETUP_PAGES = 2  # each setup VMA spans two pages: one split point, two folios
# Counter presets a setup VMA can start with (`vma A-B counter=N`: the extra references belong to
# holders outside the program): none, one outside holder, the most rcuref allows (MAXREF, where
# the next get saturates), and a saturated counter.
PRESETS = {"none": None, "held": 1, "maxref": 0x7FFF_FFFF, "saturated": 0xA000_0000}


@dataclass(frozen=True)
class Bound:
    """A `--programs` bound: thread counts, ops per thread, setup VMAs, the ops drawn from and
    the counter presets each setup VMA takes in turn."""

    threads: tuple[int, int] = (2, 2)
    ops: tuple[int, int] = (1, 2)
    setup: tuple[int, int] = (1, 1)
    ops_set: tuple[str, ...] = DEFAULT_OPS
    presets: tuple[str, ...] = ("none",)

    def __str__(self) -> str:
        r = lambda lo_hi: f"{lo_hi[0]}" if lo_hi[0] == lo_hi[1] else f"{lo_hi[0]}..{lo_hi[1]}"
        text = f"threads={r(self.threads)},ops={r(self.ops)},setup={r(self.setup)},ops-set={','.join(self.ops_set)}"
        return text if self.presets == ("none",) else f"{text},presets={','.join(self.presets)}"


def _parse_range(key: str, text: str, low: int, high: int) -> tuple[int, int]:
    parts = text.split("..")
    try:
        if len(parts) == 1:
            lo = hi = int(parts[0])
        elif len(parts) == 2:
            lo, hi = int(parts[0]), int(parts[1])
        else:
            raise ValueError
    except ValueError:
        raise ProgramError(f"--programs: {key}={text!r} is not N or A..B") from None
    if not low <= lo <= hi <= high:
        raise ProgramError(f"--programs: {key}={text} must lie within {low}..{high} with A <= B")
    return lo, hi


def parse_bound(spec: str) -> Bound:
    """`threads=A..B,ops=A..B,setup=A..B,ops-set=NAME,NAME,...,presets=NAME,...`: every key
    optional, `N` for `N..N`; `ops-set` and `presets` take every following comma-separated item
    that has no `=`."""
    values: dict[str, list[str]] = {}
    current = None
    for item in spec.replace(" ", ",").split(","):
        if not item:
            continue
        if "=" in item:
            current, _, value = item.partition("=")
            if current in values:
                raise ProgramError(f"--programs: {current} given twice")
            if current not in ("threads", "ops", "setup", "ops-set", "presets"):
                raise ProgramError(f"--programs: unknown key {current!r} "
                                   "(expected threads, ops, setup, ops-set, presets)")
            values[current] = [value] if value else []
        elif current in ("ops-set", "presets"):
            values[current].append(item)
        else:
            raise ProgramError(f"--programs: {item!r} is not KEY=VALUE")
    bound = Bound()
    kw = {}
    if "threads" in values:
        kw["threads"] = _parse_range("threads", ",".join(values["threads"]), 2, MAX_THREADS)
    if "ops" in values:
        kw["ops"] = _parse_range("ops", ",".join(values["ops"]), 1, 4)
    if "setup" in values:
        kw["setup"] = _parse_range("setup", ",".join(values["setup"]), 1, _core.LIMITS["setup_vmas"])
    if "ops-set" in values:
        kw["ops_set"] = _names("ops-set", values["ops-set"], OP_KINDS, "op")
    if "presets" in values:
        kw["presets"] = _names("presets", values["presets"], PRESETS, "preset")
    return Bound(**{**bound.__dict__, **kw})


def _names(key: str, names: list[str], known, what: str) -> tuple[str, ...]:
    """A list-valued --programs key: every name known, at least one, duplicates dropped in order."""
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ProgramError(f"--programs: {key}: unknown {what} {unknown[0]!r} (expected {', '.join(known)})")
    if not names:
        raise ProgramError(f"--programs: {key} is empty")
    return tuple(dict.fromkeys(names))


def _instances(kind: str, vmas: int) -> list[tuple[Op, frozenset[int]]]:
    """The ops of one kind over the canonical setup, each with the setup VMAs it names (every VMA
    it can touch: a merge names the successors it may absorb). Only where an op lands relative to
    the VMAs matters, so one address per role suffices: a VMA's start, its split point, each of
    its folios, and one fresh range past the setup."""
    fresh = SETUP_PAGES * vmas
    fail = kind.endswith("-fail")
    name, _, variant = kind.removesuffix("-fail").partition("-")
    b = OP_VARIANTS[name].index(variant) if variant else 0
    out = []
    for i in range(vmas):
        start = SETUP_PAGES * i
        if name in ("get", "munmap", "fork"):
            out.append((Op(name, start, 0, fail), frozenset([i])))
        elif name == "split":
            out.append((Op(name, start + 1, b, fail), frozenset([i])))
        elif name == "merge":
            absorbed = 2 if variant == "both" else 1
            out.append((Op(name, start, b, fail), frozenset(range(i, i + absorbed + 1)) & frozenset(range(vmas))))
        elif name == "rmap":
            out.extend((Op(name, page, 0, False), frozenset([i])) for page in range(start, start + SETUP_PAGES))
    if name == "put":
        out.append((Op("put", 0, 0, False), frozenset()))
    elif name == "mmap":
        out.append((Op("mmap", fresh, 1, fail), frozenset()))
    return out


def _thread_programs(alphabet, lo: int, hi: int) -> list[tuple]:
    """Op sequences of lo..hi ops; a `put` must drop a reference an earlier `get` of the same
    thread took (otherwise it is a no-op, and the program one without it)."""
    out = []
    for n in range(lo, hi + 1):
        for seq in itertools.product(alphabet, repeat=n):
            held = 0
            for op, _ in seq:
                if op.name == "get":
                    held += 1
                elif op.name == "put":
                    held -= 1
                    if held < 0:
                        break
            else:
                out.append(seq)
    return out


@dataclass(frozen=True)
class Candidate:
    index: int
    program: Program
    copies: int  # programs it stands for (thread orders)


def enumerate_programs(bound: Bound, config: dict, mutant: str) -> Iterator[Candidate]:
    """Every program within `bound` up to symmetry, in a fixed order: thread order does not
    matter (threads are interchangeable, so one sorted choice per multiset of thread programs),
    and a setup VMA no op names can be dropped with the addresses renamed (the same program with
    fewer VMAs, enumerated too when the bound allows that many). No op touches a VMA it does not
    name, so an unnamed VMA's counter preset changes nothing: where unnamed VMAs stay, they take
    the first preset only."""
    index = 0
    for vmas in range(bound.setup[0], bound.setup[1] + 1):
        alphabet = [inst for kind in bound.ops_set for inst in _instances(kind, vmas)]
        per_thread = _thread_programs(alphabet, *bound.ops)
        for presets in itertools.product(bound.presets, repeat=vmas):
            setup = tuple(SetupVma(SETUP_PAGES * i, SETUP_PAGES * (i + 1), PRESETS[p]) for i, p in enumerate(presets))
            for threads in range(bound.threads[0], bound.threads[1] + 1):
                for combo in itertools.combinations_with_replacement(range(len(per_thread)), threads):
                    named = frozenset().union(*(vs for t in combo for _, vs in per_thread[t]))
                    if bound.setup[0] <= len(named) < vmas:
                        continue
                    if any(p != bound.presets[0] for i, p in enumerate(presets) if i not in named):
                        continue
                    ops = tuple(tuple(op for op, _ in per_thread[t]) for t in combo)
                    copies = math.factorial(threads) // math.prod(math.factorial(c) for c in Counter(combo).values())
                    yield Candidate(index, Program(setup, ops, (), config, mutant), copies)
                    index += 1


def parse_shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ProgramError(f"--shard {text!r}: expected I/N, e.g. 1/4") from None
    if not 1 <= i <= n:
        raise ProgramError(f"--shard {text}: need 1 <= I <= N")
    return i, n


@dataclass
class BoundResult:
    bound: Bound
    config: dict
    mutant: str
    preemptions: int | None
    shard: tuple[int, int] = (1, 1)
    programs_total: int = 0
    programs_done: int = 0
    copies_done: int = 0
    schedules: int = 0
    histories: int = 0
    classes: int = 0
    seconds: float = 0.0
    complete: bool = False
    interrupted: bool = False  # Ctrl-C (or SIGTERM), as opposed to the deadline
    violation: dict | None = None
    found: Exploration | None = field(default=None, repr=False)

    def to_json(self) -> dict:
        return {
            "format": "pyfuzz-verify-1",
            "bound": str(self.bound),
            "config": self.config,
            "mutant": self.mutant,
            "preemptions": self.preemptions,
            "shard": list(self.shard),
            "programs_total": self.programs_total,
            "programs_done": self.programs_done,
            "programs_covered": self.copies_done,
            "schedules": self.schedules,
            "histories": self.histories,
            "classes": self.classes,
            "seconds": round(self.seconds, 3),
            "complete": self.complete,
            "interrupted": self.interrupted,
            "violation": self.violation,
        }

    def summary(self) -> str:
        scope = "" if self.preemptions is None else f" with at most {self.preemptions} preemption(s)"
        of = f"any of {self.programs_done:,} programs" if self.complete else \
             f"the first {self.programs_done:,} of {self.programs_total:,} programs " \
             f"({'interrupted' if self.interrupted else 'out of time'})"
        shard = "" if self.shard == (1, 1) else f" [shard {self.shard[0]}/{self.shard[1]}]"
        return (f"no violation in any interleaving{scope} of {of} ({self.classes:,} classes){shard}; "
                f"{self.copies_done:,} programs counting thread orders; {self.schedules:,} schedules, "
                f"{self.histories:,} distinct histories, {self.seconds:.1f} s")


def verify_bound(bound: Bound, config: dict, mutant: str, *, preemptions: int | None = None,
                 shard: tuple[int, int] = (1, 1), mode: str = "dpor",
                 progress: Callable[[BoundResult], None] | None = None,
                 deadline: float | None = None, limit: int | None = None) -> BoundResult:
    """Explore every program of `bound` in this shard; stops at the first violation, at
    `deadline` (a `time.perf_counter()` value), after the first `limit` programs (in the fixed
    order) or on Ctrl-C, with `complete` False then."""
    i, n = shard
    mine = [c for c in enumerate_programs(bound, config, mutant) if c.index % n == i - 1]
    result = BoundResult(bound, dict(config), mutant, preemptions, shard, programs_total=len(mine))
    start = time.perf_counter()
    try:
        for number, cand in enumerate(mine):
            if deadline is not None and time.perf_counter() > deadline or limit is not None and number >= limit:
                break
            r = explore(cand.program, mode=mode, preemptions=preemptions)
            result.schedules += r.schedules
            result.histories += r.histories
            result.classes += r.classes
            result.seconds = time.perf_counter() - start
            if not r.ok:
                result.found = r
                result.violation = {"kind": r.violation.kind, "message": r.violation.message,
                                    "program_index": cand.index, "preemptions": r.witness_preemptions,
                                    "program": r.witness.to_text()}
                break
            result.programs_done += 1
            result.copies_done += cand.copies
            if progress is not None:
                progress(result)
        else:
            result.complete = True
    except KeyboardInterrupt:
        result.interrupted = True
    result.seconds = time.perf_counter() - start
    return result


def merge_results(paths) -> dict:
    """Merge the JSON results of a bound's shards (`--json`): the sums, every violation, and
    `complete` true only when every shard 1..N is there once and each finished."""
    parts = []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise ProgramError(f"{path}: not a verify result ({e})") from None
        if not isinstance(data, dict) or data.get("format") != "pyfuzz-verify-1":
            raise ProgramError(f"{path}: not a verify result")
        parts.append((path, data))
    if not parts:
        raise ProgramError("no verify results to merge")
    key = lambda d: (d["bound"], json.dumps(d["config"], sort_keys=True), d["mutant"], d["preemptions"])
    first = parts[0][1]
    for path, d in parts[1:]:
        if key(d) != key(first):
            raise ProgramError(f"{path}: a different bound, configuration, mutant or preemption bound than {parts[0][0]}")
        if d["shard"][1] != first["shard"][1]:
            raise ProgramError(f"{path}: shard {d['shard'][0]}/{d['shard'][1]} does not belong to a split into {first['shard'][1]}")
    shards = Counter(d["shard"][0] for _, d in parts)
    twice = [s for s, c in shards.items() if c > 1]
    if twice:
        raise ProgramError(f"shard {twice[0]}/{first['shard'][1]} given twice")
    total = first["shard"][1]
    merged = {k: first[k] for k in ("format", "bound", "config", "mutant", "preemptions")}
    for k in ("programs_total", "programs_done", "programs_covered", "schedules", "histories", "classes", "seconds"):
        merged[k] = sum(d[k] for _, d in parts)
    merged["shards"] = sorted(shards)
    merged["missing_shards"] = [s for s in range(1, total + 1) if s not in shards]
    merged["violations"] = [d["violation"] for _, d in parts if d["violation"] is not None]
    merged["complete"] = not merged["missing_shards"] and all(d["complete"] for _, d in parts)
    return merged


# ---- the command line ----

def _write_witness(result: Exploration, out_dir: Path, source: str) -> Path:
    from .program import save

    out_dir.mkdir(parents=True, exist_ok=True)
    path = witness_path(out_dir, result)
    save(result.witness, path, witness_header(result, source))
    return path


def _report_violation(console, result: Exploration, out_dir: Path, source: str) -> None:
    from .check import execute
    from .report import render_finding

    path = _write_witness(result, out_dir, source)
    replayed = execute(result.witness)
    same = not replayed.ok and replayed.violation.kind == result.violation.kind
    console.print(f"  fewest-preemption violating interleaving: {result.witness_preemptions} preemption(s)"
                  + (f" (context bounding ran {result.witness_schedules:,} schedules to show none has fewer)"
                     if result.witness_schedules else ""), highlight=False)
    console.print(f"  written to {path} (replay: pyfuzz replay {path}; "
                  + ("replays to the same violation" if same else "[red]does NOT replay to the same violation[/]") + ")",
                  highlight=False)
    print(render_finding(result.witness, result.witness_events, result.violation))
    if result.damage_witness is not None:
        from .program import save

        damage_path = path.with_name(f"damage-{path.name}")
        save(result.damage_witness, damage_path,
             f"pyfuzz verify: the damage of {result.violation.kind}: {result.damage}\n"
             f"found by context bounding over {source}; this interleaving has {result.damage_preemptions} "
             f"preemption(s), the fewest of any violating one whose history shows damage.\n"
             f"replay: pyfuzz replay THIS_FILE (its verdict is the first violation, {result.violation.kind})")
        console.print(f"  the witness shows the wrong result, not yet its damage; with "
                      f"{result.damage_preemptions} preemption(s) the damage shows: {result.damage.kind}: "
                      f"{result.damage.message}", highlight=False)
        console.print(f"  written to {damage_path} (its verdict is still the first violation, "
                      f"{result.violation.kind}; pyfuzz show {damage_path} prints its steps)", highlight=False)


def run_cli(args, console) -> int:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, BarColumn

    from .cli import OK, VIOLATION, _config_and_mutant, _programs
    from .program import DEFAULT_CONFIG

    if bool(args.files) == bool(args.programs):
        raise ProgramError("give program FILEs or --programs SPEC, not both and not neither")
    if args.shard is not None and not args.programs:
        raise ProgramError("--shard splits a --programs bound")
    if args.preemptions is not None and args.mode != "dpor":
        raise ProgramError("--preemptions runs iterative context bounding; it does not combine with --mode")
    if args.out.exists() and not args.out.is_dir():
        raise ProgramError(f"-o {args.out}: not a directory")
    if args.json is not None and not args.json.parent.is_dir():
        raise ProgramError(f"--json {args.json}: parent directory does not exist")
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())

    if args.programs:
        bound = parse_bound(args.programs)
        shard = parse_shard(args.shard) if args.shard else (1, 1)
        overrides, mutant = _config_and_mutant(args)
        config = {**DEFAULT_CONFIG, **overrides}
        mutant = mutant or "none"
        label = " ".join(f"{k}={v}" for k, v in config.items()) + f" mutant={mutant}"
        console.print(f"[bold]pyfuzz verify[/] --programs {bound}  ({label})", highlight=False)
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("enumerating programs", total=None)

            def progress(r: BoundResult) -> None:
                bar.update(task, total=r.programs_total, completed=r.programs_done,
                           description=f"{r.programs_done:,}/{r.programs_total:,} programs, "
                                       f"{r.schedules:,} schedules, {r.classes:,} classes")

            result = verify_bound(bound, config, mutant, preemptions=args.preemptions, shard=shard,
                                  mode=args.mode, progress=progress)
        if args.json is not None:
            args.json.write_text(json.dumps(result.to_json(), indent=2) + "\n")
        if result.found is not None:
            r = result.found
            console.print(f"[red]FAIL[/] program {result.violation['program_index']} of the bound: {r.violation}",
                          highlight=False)
            _report_violation(console, r, args.out, f"the bound {bound}")
            return VIOLATION
        console.print(("[green]PASS[/] " if result.complete else "[yellow]PARTIAL[/] ") + result.summary(),
                      highlight=False)
        return OK if result.complete else 130

    failed = 0
    results = []
    for path, program in _programs(args):
        check_supported(program)
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task(str(path), total=None)

            def progress(stats: dict) -> None:
                bar.update(task, description=f"{path}: {stats['schedules']:,} schedules, "
                                             f"{stats['histories']:,} histories, {stats['classes']:,} classes")

            result = explore(program, mode=args.mode, preemptions=args.preemptions, progress=progress)
        results.append({"file": str(path), "mode": result.mode, "preemptions": result.preemptions,
                        "schedules": result.schedules, "blocked": result.blocked, "histories": result.histories,
                        "classes": result.classes, "seconds": round(result.seconds, 3),
                        "verdict": "ok" if result.ok else result.violation.kind,
                        "witness_preemptions": result.witness_preemptions})
        if result.ok:
            console.print(f"[green]PASS[/] {path}: {result.holds()} ({result.mode}: {result.figures()})",
                          highlight=False)
            continue
        failed += 1
        console.print(f"[red]FAIL[/] {path}: {result.violation} ({result.mode}, up to the first violation: "
                      f"{result.figures()})", highlight=False)
        _report_violation(console, result, args.out, str(path))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return VIOLATION if failed else OK
