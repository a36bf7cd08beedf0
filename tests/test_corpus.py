"""Replay the regression corpus: every '# expect:' line of every program in corpus/."""

from pathlib import Path

import pytest

from pyfuzz import _core
from pyfuzz.check import execute
from pyfuzz.corpus import expectations, program_files
from pyfuzz.program import ProgramError, load

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
KNOWN = [name for name, _, _ in _core.MUTANTS]
CASES = [(path, e) for path in program_files([str(CORPUS)]) for e in expectations(path)]


def test_the_corpus_covers_the_rcuref_race_scenarios():
    names = {p.stem for p in program_files([str(CORPUS)])}
    for scenario in ("rcuref-get-after-last-put", "rcuref-critical-states",
                     "rcuref-deconstruction-race", "rcuref-saturation"):
        assert scenario in names
    for path in program_files([str(CORPUS)]):
        assert expectations(path), f"{path.name} states no expected verdict"


@pytest.mark.parametrize("path, expectation", CASES, ids=[f"{p.stem}[{e.describe()}]" for p, e in CASES])
def test_corpus_expectation(path, expectation):
    program = expectation.apply(load(path, KNOWN))
    first = execute(program)
    got = "ok" if first.ok else first.violation.kind
    assert got == expectation.verdict, str(first.violation)
    assert execute(program).outcome.digest == first.outcome.digest


def test_malformed_expectation_is_a_one_line_error(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("# expect: slab=sometimes => ok\nthread 0\nthread 1\n")
    with pytest.raises(ProgramError, match="bad.txt:1"):
        expectations(bad)
