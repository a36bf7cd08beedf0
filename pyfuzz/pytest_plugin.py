"""pytest plugin (entry point `pytest11`): program files are tests, so a CI runs `pytest corpus/`.

A `*.txt` file with a `config` line is collected as a program; every `# expect:` line in it is
one test item (a program without any is expected to hold, `ok`). Other `.txt` files are left
alone. A failing item prints the `pyfuzz show` step table of the run that disagreed.
"""

from __future__ import annotations

import pytest


def pytest_collect_file(file_path, parent):
    if file_path.suffix != ".txt" or file_path.name.startswith("."):
        return None
    from .corpus import looks_like_program

    try:
        text = file_path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None  # not a text a person wrote as a program
    if not looks_like_program(text):
        return None
    return ProgramFile.from_parent(parent, path=file_path)


class ExpectationMismatch(AssertionError):
    def __init__(self, description: str, report: str) -> None:
        super().__init__(f"{description}\n\n{report}")
        self.description = description
        self.report = report


class ProgramFile(pytest.File):
    def collect(self):
        from .cli import _known_mutants
        from .corpus import Expectation, expectations_in
        from .program import ProgramError, parse

        text = self.path.read_text(encoding="utf-8-sig")
        try:
            program = parse(text, _known_mutants())
            checks = expectations_in(text, str(self.path)) or [Expectation((), None, "ok")]
            for check in checks:
                if check.mutant is not None and check.mutant not in _known_mutants():
                    raise ProgramError(f"{self.path}: expectation names unknown mutant {check.mutant!r}")
        except ProgramError as e:
            raise self.CollectError(str(e)) from None
        for check in checks:
            yield ProgramItem.from_parent(self, name=check.describe(), program=program, expectation=check)


class ProgramItem(pytest.Item):
    def __init__(self, *, program, expectation, **kwargs) -> None:
        super().__init__(**kwargs)
        self.program = program
        self.expectation = expectation

    def runtest(self) -> None:
        check_expectation(self.program, self.expectation)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, ExpectationMismatch):
            return f"{excinfo.value.description}\n\n{excinfo.value.report}"
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, None, f"{self.path.name}: {self.name}"


def check_expectation(program, expectation) -> None:
    """Replay `program` as `expectation` changes it; raise ExpectationMismatch with the step table
    when the verdict differs. The exported regression tests call this too."""
    from .check import execute
    from .corpus import verdict_word
    from .report import render_steps_text, step_table
    from .signature import signature

    variant = expectation.apply(program)
    verdict = execute(variant)
    got = verdict_word(verdict)
    if got != expectation.verdict:
        table = step_table(variant, verdict.events, verdict.violation)
        name = None if verdict.ok else signature(verdict)
        raise ExpectationMismatch(
            f"expected {expectation.describe()}, got {got}", render_steps_text(variant, table, name)
        )
