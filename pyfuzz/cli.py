"""The `pyfuzz` command line: fuzz, replay, mutants (and bench, see pyfuzz/bench.py).

Exit status: 0 nothing found / everything holds, 1 a violation, 2 bad usage or bad input. Every
error is one line on stderr; no traceback reaches the user for anything they typed or supplied.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .harness import MAX_WALKS, WALKS_PER_INPUT
from .program import CONFIG_VALUES, DEFAULT_CONFIG, ProgramError, load, parse_config_overrides

OK, VIOLATION, BAD_INPUT = 0, 1, 2


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of argparse's usage block
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _non_negative(text: str, convert):
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    if value == float("inf") or value != value:
        raise argparse.ArgumentTypeError(f"must be a finite number: {text}")
    return value


def _non_negative_int(text: str) -> int:
    return _non_negative(text, lambda t: int(t, 0))


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser() -> Parser:
    p = Parser(prog="pyfuzz", description="Concurrency fuzzer for the Linux VMA rcuref lifetime protocol.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    def add_config_flags(q: Parser) -> None:
        q.add_argument("--mutant", metavar="NAME", help="run under this mutant (see 'pyfuzz mutants')")
        q.add_argument(
            "--config", metavar="KEY=VALUE", action="append", default=[],
            help="override a configuration key: "
            + " ".join(f"{key}={'|'.join(values)}" for key, values in CONFIG_VALUES.items()),
        )

    f = sub.add_parser("fuzz", help="run a coverage-guided campaign")
    add_config_flags(f)
    f.add_argument("--time", metavar="SECONDS", type=_positive_int, default=60, help="campaign length (default 60)")
    f.add_argument("--corpus", metavar="DIR", type=Path, help="libFuzzer input corpus to use and grow (default: a fresh empty one)")
    f.add_argument("--artifacts", metavar="DIR", type=Path, default=Path("artifacts"), help="where findings are written (default ./artifacts)")
    f.add_argument("--seed", metavar="N", type=_positive_int, help="campaign seed (default: random, printed)")
    f.add_argument("--jobs", metavar="N", type=_positive_int, default=1,
                   help="workers, one core each, sharing the corpus (default 1)")
    f.add_argument("--keep-going", action="store_true",
                   help="run the whole --time, saving each finding with a new signature (default: stop at the first)")

    r = sub.add_parser("replay", help="replay program files deterministically")
    add_config_flags(r)
    r.add_argument("files", metavar="FILE", nargs="+", help="program files or directories of *.txt programs")
    r.add_argument("--expect", action="store_true", help="check each file's '# expect:' lines instead of its own configuration only")
    r.add_argument("-v", "--verbose", action="store_true", help="show every event in traces")

    st = sub.add_parser("stress", help="run programs on real OS threads (same code, real atomics) and check each run")
    add_config_flags(st)
    st.add_argument("files", metavar="FILE", nargs="+", help="program files or directories of *.txt programs")
    st.add_argument("--iterations", type=_positive_int, default=10000, help="runs per program (default 10000)")

    v = sub.add_parser("verify", help="explore every interleaving of programs, or of every program within a bound")
    add_config_flags(v)
    v.add_argument("files", metavar="FILE", nargs="*", help="program files or directories of *.txt programs (their schedules are ignored)")
    v.add_argument("--programs", metavar="SPEC",
                   help="every program within a bound, e.g. threads=2..3,ops=1..2,setup=1..2,ops-set=get,put,rmap,munmap")
    v.add_argument("--preemptions", metavar="K", type=_non_negative_int,
                   help="only interleavings with at most K preemptions (iterative context bounding)")
    v.add_argument("--mode", choices=["dpor", "dfs"], default="dpor", help="dpor (default) or dfs: every schedule, no reduction")
    v.add_argument("--shard", metavar="I/N", help="--programs: explore part I of N disjoint parts of the bound")
    v.add_argument("--json", metavar="OUT", type=Path, help="write the result as JSON (shards merge with pyfuzz.verify.merge_results)")
    v.add_argument("-o", "--out", metavar="DIR", type=Path, default=Path("artifacts"),
                   help="where a violating interleaving is written as a program file (default ./artifacts)")

    vd = sub.add_parser("verdict", help="the verdict table: every meaningful configuration and fix, verified over a bound and fuzzed")
    vd.add_argument("--bound", metavar="SPEC", default=None,
                    help="the --programs bound of verify for each configuration (default: pyfuzz.verdict.DEFAULT_BOUND)")
    vd.add_argument("--campaign", metavar="SECONDS", type=_non_negative_int, default=None,
                    help="a campaign of this many seconds per configuration the bound finds safe (default 10; 0 skips it)")
    vd.add_argument("--verify-programs", metavar="N", type=_positive_int, default=None,
                    help="explore only the bound's first N programs per configuration (default 40; 'all' is --verify-programs 100000)")
    vd.add_argument("--jobs", metavar="N", type=_positive_int, default=1, help="configurations judged in parallel processes")
    vd.add_argument("--out", metavar="DIR", type=Path, default=Path("bench-results/verdict"),
                    help="where verdict.md and verdict.json go (default ./bench-results/verdict)")
    vd.add_argument("--corpus", metavar="DIR", type=Path, default=Path("corpus"),
                    help="where unsafe cells' reproducers are added, deduplicated by signature (default ./corpus)")

    sub.add_parser("mutants", help="list the mutants (one name a line when not on a terminal)")

    c = sub.add_parser("corpus", help="corpus care: add, merge, minimize, check")
    corpus = c.add_subparsers(dest="corpus_command", metavar="COMMAND", required=True, parser_class=Parser)
    cm = corpus.add_parser("merge", help="add to OUT the inputs of DIRs that bring new code or interleaving features")
    add_config_flags(cm)
    cm.add_argument("out", metavar="OUT", type=Path, help="corpus directory to grow (created if missing)")
    cm.add_argument("dirs", metavar="DIR", type=Path, nargs="+", help="libFuzzer corpus directories to take inputs from")
    cz = corpus.add_parser("minimize", help="keep the smallest set of a corpus's inputs with all its features")
    add_config_flags(cz)
    cz.add_argument("dir", metavar="DIR", type=Path, help="libFuzzer corpus directory (files are removed from it)")
    ck = corpus.add_parser("check", help="every program file parses and gets the verdicts of its '# expect:' lines")
    ck.add_argument("dirs", metavar="DIR", nargs="+", help="program files or directories of *.txt programs")
    ca = corpus.add_parser("add", help="add a finding with '# expect:' lines computed under every configuration")
    ca.add_argument("finding", metavar="FINDING", help="a failing program file")
    ca.add_argument("--corpus", metavar="DIR", type=Path, default=Path("corpus"), help="the corpus (default ./corpus)")
    ca.add_argument("--force", action="store_true", help="add it even if a corpus program has the same signature")

    mn = sub.add_parser("minimize", help="shrink a failing program, keeping its violation's signature")
    mn.add_argument("file", metavar="FILE", help="a failing program file")
    mn.add_argument("-o", "--output", metavar="OUT", type=Path,
                    help="write the minimized program here (default: print it)")
    mn.add_argument("--force", action="store_true", help="overwrite OUT if it exists")

    sh = sub.add_parser("show", help="a program's steps as a table (folded to what the verdict depends on)")
    add_config_flags(sh)
    sh.add_argument("file", metavar="FILE", help="a program file, passing or failing")
    sh.add_argument("--format", choices=["text", "md"], default="text", help="text (80 columns) or md (Markdown)")
    sh.add_argument("--all", action="store_true", help="every step, not only those the verdict depends on")
    sh.add_argument("--html", metavar="OUT.html", type=Path, help="also write the HTML timeline here (folded like the table unless --all)")
    sh.add_argument("--force", action="store_true", help="overwrite the --html file if it exists")

    ex = sub.add_parser("export", help="write a program as a standalone regression test")
    ex.add_argument("file", metavar="FILE", help="a program file")
    ex.add_argument("--pytest", metavar="OUT.py", type=Path, required=True, help="the pytest module to write")
    ex.add_argument("--force", action="store_true", help="overwrite OUT.py if it exists")

    b = sub.add_parser("bench", help="benchmarks")
    b.add_argument("what", choices=["bugs", "speed", "walks", "jobs", "parser", "kill", "soak", "minimize", "verify",
                                    "engine", "threads", "memory"],
                   help="bugs: time-to-bug per mutant and method; speed: executions per second; "
                        "walks: violations per scheduler on the same random programs; "
                        "jobs: inputs/s of --jobs 2 beside --jobs 1 (--budget s, --repeats pairs); "
                        "parser: the program reader under fuzzed inputs (--inputs, default 1,000,000); "
                        "kill: --repeats campaigns SIGKILLed at random moments, their files checked; "
                        "soak: resident memory of one --budget s campaign; "
                        "minimize: minimization time of failing programs of the largest size; "
                        "verify: DPOR against plain DFS, verify on the corpus, largest --programs bound in --budget s; "
                        "engine: scheduling steps per second of the engine alone; "
                        "threads: get/put pairs per second on OS threads; "
                        "memory: resident size of the engine over a million runs, and of the real-thread runner")
    b.add_argument("--seeds", type=_positive_int, default=5, help="independent seeds per mutant and method (default 5)")
    b.add_argument("--budget", type=_positive_int, default=60, help="seconds per run (default 60)")
    b.add_argument("--mutant", action="append", default=[], metavar="NAME",
                   help="bugs, walks: only these mutants (repeatable; also the scenarios 'seed', the race in the "
                        "seed's configuration, and 'torn-range', the walker's torn range without the rmap lock)")
    b.add_argument("--method", action="append", default=[], metavar="NAME", help="only these methods (repeatable; walks: the samplers of these blind methods)")
    b.add_argument("--out", type=Path, default=Path("bench-results"), help="output directory (default ./bench-results)")
    b.add_argument("--jobs", type=_positive_int, default=2, help="runs in parallel, one core each (default 2)")
    b.add_argument("--no-false-alarm-check", action="store_true", help="bugs: skip the safe-configuration runs")
    b.add_argument("--inputs", type=_positive_int, help="speed: inputs per pass (default 20000); "
                                                            "walks: random programs per cell (default 100000); "
                                                            "threads: pairs per thread (default 2000000); "
                                                            "memory: engine runs (default 1000000)")
    b.add_argument("--stress-runs", type=_positive_int, metavar="N",
                   help="memory: real-thread runs, each checked (default --inputs / 100)")
    b.add_argument("--repeats", type=_positive_int, default=3, help="speed: passes, the median is reported (default 3)")
    b.add_argument("--baseline", type=Path, metavar="MODULE",
                   help="engine: another build's _core extension module (e.g. the session start's), measured beside this one")
    return p


def _known_mutants() -> list[str]:
    from . import _core

    return [name for name, _, _ in _core.MUTANTS]


def _config_and_mutant(args) -> tuple[dict[str, str], str | None]:
    overrides = parse_config_overrides(args.config)
    if args.mutant is not None and args.mutant not in _known_mutants():
        raise ProgramError(f"unknown mutant {args.mutant!r} (see 'pyfuzz mutants')")
    return overrides, args.mutant


def cmd_replay(args, console: Console) -> int:
    from .check import execute
    from .corpus import replays, verdict_word
    from .report import render_finding

    known = _known_mutants()
    failed = 0
    for path, program in _programs(args):
        runs = replays(path, program, known) if args.expect else [(None, program, execute(program))]
        for expectation, variant, verdict in runs:
            got = verdict_word(verdict)
            want = expectation.verdict if expectation is not None else "ok"
            what = f"{path}: {expectation.describe()}" if expectation is not None else f"{path}  ({len(verdict.events)} events)"
            if got == want:
                console.print(f"[green]PASS[/] {what}", highlight=False)
                continue
            failed += 1
            console.print(f"[red]FAIL[/] {what}" + (f", got {got}" if expectation is not None else ""), highlight=False)
            if not verdict.ok:
                print(render_finding(variant, verdict.events, verdict.violation, verbose=args.verbose))
    return VIOLATION if failed else OK


def _programs(args):
    """The programs named on the command line, with --mutant/--config applied."""
    from .corpus import program_files

    overrides, mutant = _config_and_mutant(args)
    known = _known_mutants()
    for path in program_files(args.files):
        program = load(path, known)
        if mutant is not None:
            program = program.with_mutant(mutant)
        if overrides:
            program = program.with_config(**overrides)
        yield path, program


def cmd_stress(args, console: Console) -> int:
    from .stress import run_stress

    failed = 0
    for path, program in _programs(args):
        report = run_stress(program, args.iterations)
        rate = report.iterations / report.seconds if report.seconds else 0
        if not report.violations:
            console.print(f"[green]PASS[/] {path}: {report.iterations:,} real-thread runs ({rate:,.0f}/s)", highlight=False)
            continue
        failed += 1
        iteration, violation = report.violations[0]
        console.print(f"[red]FAIL[/] {path}: {len(report.violations)} of {report.iterations:,} runs; "
                      f"first at run {iteration}: {violation}", highlight=False)
    return VIOLATION if failed else OK


def _writable_dir(flag: str, path: Path) -> None:
    """A directory the campaign will write into: existing or creatable, and writable."""
    if path.exists() and not path.is_dir():
        raise ProgramError(f"{flag} {path}: not a directory")
    existing = path if path.exists() else path.parent
    if not existing.is_dir():
        raise ProgramError(f"{flag} {path}: parent directory does not exist")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ProgramError(f"{flag} {path}: not writable")


def cmd_fuzz(args, console: Console) -> int:
    from . import build
    from .campaign import run_campaign
    from .report import render_finding

    overrides, mutant = _config_and_mutant(args)
    config = {**DEFAULT_CONFIG, **overrides}
    mutant = mutant or "none"
    if args.corpus is not None:
        _writable_dir("--corpus", args.corpus)
    _writable_dir("--artifacts", args.artifacts)

    label = " ".join(f"{k}={v}" for k, v in config.items()) + f"  mutant={mutant}"
    jobs = f", {args.jobs} workers" if args.jobs > 1 else ""
    console.print(f"[bold]pyfuzz[/] fuzzing for {args.time}s{jobs}: {label}", highlight=False)
    if args.corpus is not None:
        count = sum(1 for p in args.corpus.iterdir() if p.is_file()) if args.corpus.is_dir() else 0
        console.print(f"corpus {args.corpus}: " + (f"resuming from {count:,} inputs" if count else "new, empty"),
                      highlight=False)
    from .model import ORACLE_NAME
    console.print(f"oracle: {ORACLE_NAME}", highlight=False, markup=False)
    if build.instrumented_core() is None:
        print("pyfuzz: warning: " + build.describe(None) + "; install from a wheel built by "
              "'pip install .' or run from a source checkout with cargo", file=sys.stderr)
    with console.status("starting libFuzzer...") as status:
        def progress(r) -> None:
            status.update(
                f"{r.seconds:5.0f}s  {r.executions:>10,} inputs  {r.exec_per_second:>7,}/s  "
                f"cov {r.coverage}  ft {r.features}  interleavings {r.interleavings}  "
                f"corpus {r.corpus_entries}  findings {len(r.findings)}"
            )

        result = run_campaign(config, mutant, args.time, args.corpus, args.artifacts, args.seed, progress,
                              jobs=args.jobs, keep_going=args.keep_going)

    title = "campaign summary" + (" (stopped)" if result.stopped else " (interrupted)" if result.interrupted else "")
    table = Table(title=title, show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")  # a path must survive a narrow terminal whole
    table.add_row("configuration", label)
    table.add_row("time", f"{result.seconds:.1f} s" + (f", {result.jobs} workers" if result.jobs > 1 else ""))
    table.add_row("inputs", f"{result.executions:,} (each run under its own schedule and {WALKS_PER_INPUT} to "
                            f"{MAX_WALKS} PCT walks: more while its runs meet new interleavings)")
    table.add_row("runs", f"{result.runs:,} (as the workers last reported them)")
    table.add_row("inputs/s (libFuzzer)", f"{result.exec_per_second:,}")
    table.add_row("distinct histories checked", f"{result.checked:,}")
    table.add_row("coverage source", result.coverage_source)
    table.add_row("oracle", result.oracle)
    table.add_row("coverage", f"cov {result.coverage}, features {result.features}, "
                              f"interleaving pairs {result.interleavings}")
    corpus = f"{result.corpus_entries:,} inputs"
    if result.corpus_dir is not None:
        corpus += f" in {result.corpus_dir} ({result.loaded:,} loaded at the start)"
    table.add_row("corpus", corpus)
    table.add_row("libFuzzer seed", str(result.seed))
    if result.stopped:
        table.add_row("stopped", result.stopped)
    if not result.findings:
        table.add_row("verdict", "[green]no violation found[/]")
        console.print(table)
        if result.stopped:  # the campaign could not go on: the user has to act
            print(f"pyfuzz: error: campaign stopped: {result.stopped}", file=sys.stderr)
            return BAD_INPUT
        return OK
    for f in result.findings:
        again = f", and {f.duplicates} more with its signature" if f.duplicates else ""
        table.add_row("verdict", f"[red]VIOLATION[/] {f.kind}{again}")
        table.add_row("reproducer", f"{f.path}  (replay: pyfuzz replay {f.path})")
    console.print(table)
    f = result.findings[0]
    print(render_finding(f.program, f.verdict.events, f.verdict.violation))
    if result.stopped:
        print(f"pyfuzz: error: campaign stopped: {result.stopped}", file=sys.stderr)
    return VIOLATION


def cmd_mutants(console: Console) -> int:
    from . import _core

    if not sys.stdout.isatty():  # for scripts: one name a line
        for name, _, _ in _core.MUTANTS:
            print(name)
        return OK
    table = Table(title="pyfuzz mutants", show_lines=True)
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("kernel code it corrupts")
    table.add_column("expected failure class")
    for name, kernel, expect in _core.MUTANTS:
        table.add_row(name, kernel, expect)
    console.print(table)
    return OK


def _corpus_dir(flag: str, path: Path, must_exist: bool = True) -> None:
    if not path.exists():
        if must_exist:
            raise ProgramError(f"{flag} {path}: no such directory")
        _writable_dir(flag, path)
    elif not path.is_dir():
        raise ProgramError(f"{flag} {path}: not a directory")


def cmd_corpus(args, console: Console) -> int:
    from . import corpus

    if args.corpus_command == "check":
        checked = corpus.check_corpus(args.dirs, _known_mutants())
        for c in checked:
            console.print(f"[green]PASS[/] {c.path}" if c.problem is None else f"[red]FAIL[/] {c.path}: {c.problem}",
                          highlight=False)
        bad = sum(c.problem is not None for c in checked)
        console.print(f"{len(checked) - bad} of {len(checked)} program files hold", highlight=False)
        unreadable = sum(not c.parses for c in checked)
        if unreadable:
            raise ProgramError(f"{unreadable} of {len(checked)} program files do not parse (FAIL lines above)")
        return VIOLATION if bad else OK
    overrides, mutant = _config_and_mutant(args)
    config, mutant = {**DEFAULT_CONFIG, **overrides}, mutant or "none"
    if args.corpus_command == "merge":
        _corpus_dir("OUT", args.out, must_exist=False)
        for d in args.dirs:
            _corpus_dir("DIR", d)
        if args.out.exists() and not os.access(args.out, os.W_OK):
            raise ProgramError(f"OUT {args.out}: not writable")
        r = corpus.merge(args.out, args.dirs, config, mutant)
        console.print(f"merged into {args.out}: {r.added} new inputs with {r.features} new features", highlight=False)
        return OK
    _corpus_dir("DIR", args.dir)
    if not os.access(args.dir, os.W_OK):
        raise ProgramError(f"DIR {args.dir}: not writable")
    r = corpus.minimize(args.dir, config, mutant)
    console.print(f"minimized {args.dir}: kept {r.kept} inputs ({r.features} features), removed {r.removed}",
                  highlight=False)
    return OK


def cmd_bench(args, console: Console) -> int:
    from .bench import run_bench

    args.raw_argv = sys.argv[3:] if len(sys.argv) > 3 else []
    return run_bench(args, console)


def main(argv: list[str] | None = None) -> int:
    console = Console(highlight=False, soft_wrap=True)

    def error(message: object) -> None:
        # Plain print: rich would wrap a long message over several lines.
        print(f"pyfuzz: error: {message}", file=sys.stderr)

    # `kill` and service managers stop a campaign like Ctrl-C: with its summary, corpus saved.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        args = build_parser().parse_args(argv)
        if args.command == "mutants":
            return cmd_mutants(console)
        if args.command == "replay":
            return cmd_replay(args, console)
        if args.command == "fuzz":
            return cmd_fuzz(args, console)
        if args.command == "stress":
            return cmd_stress(args, console)
        if args.command in ("minimize", "show", "export") or getattr(args, "corpus_command", None) == "add":
            from . import explain

            return explain.COMMANDS["corpus-add" if args.command == "corpus" else args.command](args)
        if args.command == "verify":
            from .verify import run_cli

            return run_cli(args, console)
        if args.command == "verdict":
            from .verdict import run_cli as run_verdict

            return run_verdict(args, console)
        if args.command == "corpus":
            return cmd_corpus(args, console)
        return cmd_bench(args, console)
    except (UsageError, ProgramError) as e:
        error(e)
        return BAD_INPUT
    except KeyboardInterrupt:
        print("pyfuzz: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `pyfuzz mutants | head -1`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK
    except Exception as e:  # a failure of pyfuzz itself, not of the user's input
        from .build import BuildError
        from .campaign import CampaignError
        from .corpus import CorpusError

        if isinstance(e, (BuildError, CampaignError, CorpusError, OSError)):
            error(e)
            return BAD_INPUT
        raise


if __name__ == "__main__":
    sys.exit(main())
