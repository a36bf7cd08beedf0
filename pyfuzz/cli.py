"""The `pyfuzz` command line: fuzz, replay, mutants (and bench, see pyfuzz/bench.py).

Exit status: 0 nothing found / everything holds, 1 a violation, 2 bad usage or bad input. Every
error is one line on stderr; no traceback reaches the user for anything they typed or supplied.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .harness import WALKS_PER_INPUT
from .program import DEFAULT_CONFIG, ProgramError, load, parse_config_overrides

OK, VIOLATION, BAD_INPUT = 0, 1, 2


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of argparse's usage block
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _non_negative_int(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


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
            help="override a configuration key: vma_ref=on|off slab=typesafe|deferred put=preempt|rcusafe debug_vm=on|off",
        )

    f = sub.add_parser("fuzz", help="run a coverage-guided campaign")
    add_config_flags(f)
    f.add_argument("--time", metavar="SECONDS", type=_positive_int, default=60, help="campaign length (default 60)")
    f.add_argument("--corpus", metavar="DIR", type=Path, help="libFuzzer input corpus to use and grow (default: a fresh empty one)")
    f.add_argument("--artifacts", metavar="DIR", type=Path, default=Path("artifacts"), help="where findings are written (default ./artifacts)")
    f.add_argument("--seed", metavar="N", type=_positive_int, help="campaign seed (default: random, printed)")

    r = sub.add_parser("replay", help="replay program files deterministically")
    add_config_flags(r)
    r.add_argument("files", metavar="FILE", nargs="+", help="program files or directories of *.txt programs")
    r.add_argument("--expect", action="store_true", help="check each file's '# expect:' lines instead of its own configuration only")
    r.add_argument("-v", "--verbose", action="store_true", help="show every event in traces")

    st = sub.add_parser("stress", help="run programs on real OS threads (same code, real atomics) and check each run")
    add_config_flags(st)
    st.add_argument("files", metavar="FILE", nargs="+", help="program files or directories of *.txt programs")
    st.add_argument("--iterations", type=_positive_int, default=10000, help="runs per program (default 10000)")

    sub.add_parser("mutants", help="list the mutants")

    b = sub.add_parser("bench", help="benchmarks")
    b.add_argument("what", choices=["bugs", "speed", "walks", "threads", "memory"],
                   help="bugs: time-to-bug per mutant and method; speed: executions per second; "
                        "walks: violations per scheduler on the same random programs; threads: get/put "
                        "pairs per second on OS threads; memory: resident size over a million runs")
    b.add_argument("--seeds", type=_positive_int, default=5, help="independent seeds per mutant and method (default 5)")
    b.add_argument("--budget", type=_positive_int, default=60, help="seconds per run (default 60)")
    b.add_argument("--mutant", action="append", default=[], metavar="NAME",
                   help="bugs, walks: only these mutants (repeatable; bugs also takes 'seed', the race in the "
                        "seed's configuration)")
    b.add_argument("--method", action="append", default=[], metavar="NAME", help="only these methods (repeatable)")
    b.add_argument("--out", type=Path, default=Path("bench-results"), help="output directory (default ./bench-results)")
    b.add_argument("--jobs", type=_positive_int, default=2, help="runs in parallel, one core each (default 2)")
    b.add_argument("--no-false-alarm-check", action="store_true", help="bugs: skip the safe-configuration runs")
    b.add_argument("--inputs", type=_positive_int, help="speed: inputs per pass (default 20000); "
                                                            "walks: random programs per cell (default 100000); "
                                                            "threads: pairs per thread (default 2000000); "
                                                            "memory: runs (default 1000000)")
    b.add_argument("--repeats", type=_positive_int, default=3, help="speed: passes, the median is reported (default 3)")
    return p


def _known_mutants() -> list[str]:
    from . import _core

    return [name for name, _, _ in _core.MUTANTS]


def _config_and_mutant(args) -> tuple[dict[str, str], str | None]:
    overrides = parse_config_overrides(args.config)
    if args.mutant is not None and args.mutant not in _known_mutants():
        raise ProgramError(f"unknown mutant {args.mutant!r} (see 'pyfuzz mutants')")
    return overrides, args.mutant


def cmd_mutants(console: Console) -> int:
    from . import _core

    table = Table(title="pyfuzz mutants", show_lines=True)
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("kernel code it corrupts")
    table.add_column("expected failure class")
    for name, kernel, expect in _core.MUTANTS:
        table.add_row(name, kernel, expect)
    console.print(table)
    return OK


def cmd_replay(args, console: Console) -> int:
    from .check import execute
    from .corpus import expectations
    from .report import render_finding

    known = _known_mutants()
    failed = 0
    for path, program in _programs(args):
        checks = expectations(path) if args.expect else []
        if not checks:
            verdict = execute(program)
            if verdict.ok:
                console.print(f"[green]PASS[/] {path}  ({len(verdict.events)} events)", highlight=False)
            else:
                failed += 1
                console.print(f"[red]FAIL[/] {path}", highlight=False)
                print(render_finding(program, verdict.events, verdict.violation, verbose=args.verbose))
            continue
        for expectation in checks:
            if expectation.mutant is not None and expectation.mutant not in known:
                raise ProgramError(f"{path}: expectation names unknown mutant {expectation.mutant!r}")
            variant = expectation.apply(program)
            verdict = execute(variant)
            got = "ok" if verdict.ok else verdict.violation.kind
            if got == expectation.verdict:
                console.print(f"[green]PASS[/] {path}: {expectation.describe()}", highlight=False)
            else:
                failed += 1
                console.print(f"[red]FAIL[/] {path}: {expectation.describe()}, got {got}", highlight=False)
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


def cmd_fuzz(args, console: Console) -> int:
    from .campaign import run_campaign
    from .report import render_finding

    overrides, mutant = _config_and_mutant(args)
    config = {**DEFAULT_CONFIG, **overrides}
    mutant = mutant or "none"
    if args.corpus is not None and args.corpus.exists() and not args.corpus.is_dir():
        raise ProgramError(f"--corpus {args.corpus}: not a directory")
    if args.corpus is not None and not args.corpus.parent.is_dir():
        raise ProgramError(f"--corpus {args.corpus}: parent directory does not exist")
    if args.artifacts.exists() and not args.artifacts.is_dir():
        raise ProgramError(f"--artifacts {args.artifacts}: not a directory")

    label = " ".join(f"{k}={v}" for k, v in config.items()) + f"  mutant={mutant}"
    console.print(f"[bold]pyfuzz[/] fuzzing for {args.time}s: {label}", highlight=False)
    with console.status("starting libFuzzer...") as status:
        def progress(r) -> None:
            status.update(
                f"{r.seconds:5.0f}s  {r.executions:>10,} inputs  {r.exec_per_second:>7,}/s  "
                f"cov {r.coverage}  ft {r.features}  corpus {r.corpus_entries}"
            )

        result = run_campaign(config, mutant, args.time, args.corpus, args.artifacts, args.seed, progress)

    table = Table(title="campaign summary", show_header=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")  # a path must survive a narrow terminal whole
    table.add_row("configuration", label)
    table.add_row("time", f"{result.seconds:.1f} s")
    runs = 1 + WALKS_PER_INPUT
    table.add_row("inputs", f"{result.executions:,} (each run {runs} times: its own schedule and {runs - 1} PCT walks)")
    table.add_row("inputs/s (libFuzzer)", f"{result.exec_per_second:,}")
    table.add_row("distinct histories checked", f"{result.checked:,}")
    table.add_row("coverage", f"cov {result.coverage}, features {result.features}, corpus {result.corpus_entries}"
                  + ("" if result.instrumented else " (Rust core not instrumented: Python coverage only)"))
    table.add_row("libFuzzer seed", str(result.seed))
    if result.finding is None:
        table.add_row("verdict", "[green]no violation found[/]")
        console.print(table)
        return OK
    f = result.finding
    table.add_row("verdict", f"[red]VIOLATION[/] {f.kind}")
    table.add_row("reproducer", f"{f.path}  (replay: pyfuzz replay {f.path})")
    console.print(table)
    print(render_finding(f.program, f.verdict.events, f.verdict.violation))
    return VIOLATION


def cmd_bench(args, console: Console) -> int:
    from .bench import run_bench

    args.raw_argv = sys.argv[3:] if len(sys.argv) > 3 else []
    return run_bench(args, console)


def main(argv: list[str] | None = None) -> int:
    console = Console(highlight=False, soft_wrap=True)

    def error(message: object) -> None:
        # Plain print: rich would wrap a long message over several lines.
        print(f"pyfuzz: error: {message}", file=sys.stderr)

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
        return cmd_bench(args, console)
    except (UsageError, ProgramError) as e:
        error(e)
        return BAD_INPUT
    except KeyboardInterrupt:
        print("pyfuzz: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a failure of pyfuzz itself, not of the user's input
        from .build import BuildError
        from .campaign import CampaignError

        if isinstance(e, (BuildError, CampaignError, OSError)):
            error(e)
            return BAD_INPUT
        raise


if __name__ == "__main__":
    sys.exit(main())
