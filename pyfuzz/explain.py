"""The commands that turn a program into something a reviewer reads or a CI keeps: `minimize`,
`show`, `export` and `corpus add`. Each loads its input strictly, refuses to overwrite what it
was not told to, and reports bad input as a ProgramError (one line, exit 2)."""

from __future__ import annotations

import sys
from pathlib import Path

from .program import Program, ProgramError, load, save

OK, VIOLATION = 0, 1


def _load(path: str) -> Program:
    from .cli import _known_mutants

    if Path(path).is_dir():
        raise ProgramError(f"{path}: is a directory, not a program file")
    if not Path(path).is_file():
        raise ProgramError(f"{path}: no such file" if not Path(path).exists() else f"{path}: not a regular file")
    return load(path, _known_mutants())


def _writable(path: Path, force: bool, what: str) -> None:
    """Refuse a destination that would lose data or cannot be written, before any work."""
    if path.exists() and path.is_dir():
        raise ProgramError(f"{what} {path}: is a directory")
    if path.exists() and not force:
        raise ProgramError(f"{what} {path}: exists (use --force to overwrite)")
    if not path.parent.is_dir():
        raise ProgramError(f"{what} {path}: directory {path.parent} does not exist")


def cmd_minimize(args) -> int:
    from .minimize import VALIDATION_RUNS, NotFailing, reduce

    program = _load(args.file)
    if args.output is not None:
        if args.output.resolve() == Path(args.file).resolve():
            raise ProgramError(f"-o {args.output}: would overwrite the input; name another file")
        _writable(args.output, args.force, "-o")
    try:
        result = reduce(program)
    except NotFailing:
        raise ProgramError(f"{args.file}: the program does not fail, so there is nothing to minimize") from None
    print(f"signature: {result.signature}", file=sys.stderr)
    print(f"before: {result.before.describe()}", file=sys.stderr)
    print(f"after:  {result.after.describe()}", file=sys.stderr)
    print(f"{result.tries} programs run in {result.seconds:.2f} s; the result failed the same way "
          f"in all {VALIDATION_RUNS} replays", file=sys.stderr)
    header = f"minimized from {args.file}\nsignature: {result.signature}"
    if args.output is None:
        sys.stdout.write("".join(f"# {line}\n" for line in header.splitlines()) + result.program.to_text())
    else:
        save(result.program, args.output, header_comment=header)
        print(f"wrote {args.output}", file=sys.stderr)
    return VIOLATION


def cmd_show(args) -> int:
    from .check import execute
    from .cli import _config_and_mutant
    from .report import render_steps_markdown, render_steps_text, step_table
    from .signature import signature

    overrides, mutant = _config_and_mutant(args)
    program = _load(args.file)
    if mutant is not None:
        program = program.with_mutant(mutant)
    if overrides:
        program = program.with_config(**overrides)
    if args.html is not None:
        _writable(args.html, args.force, "--html")
    verdict = execute(program)
    table = step_table(program, verdict.events, verdict.violation)
    name = None if verdict.ok else signature(verdict)
    render = render_steps_markdown if args.format == "md" else render_steps_text
    sys.stdout.write(render(program, table, name, everything=args.all))
    if args.html is not None:
        from .timeline import render_timeline

        _write_text(args.html, render_timeline(program, table, name, everything=args.all))
        print(f"wrote {args.html}", file=sys.stderr)
    return OK if verdict.ok else VIOLATION


_EXPORTED_TEST = '''"""Regression test exported by `pyfuzz export` from {source}.

{signature}
Replays the program deterministically and checks every expected verdict; a mismatch prints the
`pyfuzz show` step table. Needs only `pip install pyfuzz`.
"""

import pytest

from pyfuzz.corpus import expectations_in
from pyfuzz.program import parse
from pyfuzz.pytest_plugin import check_expectation

PROGRAM = {text!r}

EXPECTATIONS = expectations_in(PROGRAM, {source!r})


@pytest.mark.parametrize("expectation", EXPECTATIONS, ids=[e.describe() for e in EXPECTATIONS])
def test_replays_as_expected(expectation):
    check_expectation(parse(PROGRAM), expectation)
'''


def cmd_export(args) -> int:
    from .check import execute
    from .corpus import expectations_in, verdict_word
    from .signature import signature

    program = _load(args.file)
    text = Path(args.file).read_text(encoding="utf-8-sig")
    _writable(args.pytest, args.force, "--pytest")
    if not args.pytest.name.endswith(".py"):
        raise ProgramError(f"--pytest {args.pytest}: a test module's name must end in .py")
    verdict = execute(program)
    if not expectations_in(text, args.file):
        # Without stated expectations the test pins the verdict the program gets today.
        text = f"# expect: => {verdict_word(verdict)}\n" + text
    name = "It holds." if verdict.ok else f"Signature as exported: {signature(verdict)}."
    _write_text(args.pytest, _EXPORTED_TEST.format(source=args.file, signature=name, text=text))
    print(f"wrote {args.pytest}", file=sys.stderr)
    return OK


def _write_text(path: Path, text: str) -> None:
    import os
    import tempfile

    # The mode a plain open() would give a new file; an overwritten one keeps its own.
    umask = os.umask(0)
    os.umask(umask)
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~umask
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def cmd_corpus_add(args) -> int:
    from .corpus import add_finding

    program = _load(args.finding)
    if not args.corpus.is_dir():
        raise ProgramError(f"--corpus {args.corpus}: no such directory")
    text = Path(args.finding).read_text(encoding="utf-8-sig")
    path, lines = add_finding(program, text, args.corpus, args.force)
    print(f"wrote {path}", file=sys.stderr)
    for line in lines:
        print(f"  {line}", file=sys.stderr)
    return OK


COMMANDS = {"minimize": cmd_minimize, "show": cmd_show, "export": cmd_export, "corpus-add": cmd_corpus_add}
