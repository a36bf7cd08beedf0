"""Fuzz target (ClusterFuzzLite/OSS-Fuzz, or run directly with libFuzzer flags): the program-file
reader. Any bytes: only ProgramError, one line; whatever parses prints canonically and reads back
the same (pyfuzz.parser_fuzz.check_one). The reader's own Python is instrumented."""

import sys

import atheris

with atheris.instrument_imports(include=["pyfuzz.program", "pyfuzz.corpus", "pyfuzz.parser_fuzz"]):
    from pyfuzz import _core
    from pyfuzz.parser_fuzz import check_one

KNOWN_MUTANTS = [name for name, _, _ in _core.MUTANTS]


def test_one_input(data: bytes) -> None:
    check_one(data, KNOWN_MUTANTS)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
