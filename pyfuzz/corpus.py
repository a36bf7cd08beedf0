"""Regression programs on disk and the expectations they carry.

A corpus file is a program text. Lines of the form

    # expect: slab=deferred put=preempt => ok
    # expect: slab=typesafe => not-linearizable
    # expect: mutant=put_reread => unexpected-warning

state the verdict the program must get under the file's configuration with those keys changed:
`ok`, or the kind of violation. They are comments to the program parser, so every corpus file is
also a plain program that `pyfuzz replay` runs as is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .program import CONFIG_VALUES, Program, ProgramError, parse_config_overrides

EXPECT = re.compile(r"^#\s*expect:\s*(?P<config>.*?)\s*=>\s*(?P<verdict>[a-z-]+)\s*$")


@dataclass(frozen=True)
class Expectation:
    overrides: tuple[tuple[str, str], ...]
    mutant: str | None
    verdict: str  # "ok" or a violation kind

    def describe(self) -> str:
        words = [f"{k}={v}" for k, v in self.overrides] + ([f"mutant={self.mutant}"] if self.mutant else [])
        return f"{' '.join(words) or '(as written)'} => {self.verdict}"

    def apply(self, program: Program) -> Program:
        program = program.with_config(**dict(self.overrides))
        return program.with_mutant(self.mutant) if self.mutant else program


def expectations(path: Path) -> list[Expectation]:
    found = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.lstrip().startswith("#") or "expect:" not in line:
            continue
        m = EXPECT.match(line.strip())
        if m is None:
            raise ProgramError(f"{path}:{number}: malformed expectation, want '# expect: KEY=VALUE... => VERDICT'")
        words = m["config"].split()
        mutants = [w.split("=", 1)[1] for w in words if w.startswith("mutant=")]
        try:
            overrides = parse_config_overrides([w for w in words if not w.startswith("mutant=")])
        except ProgramError as e:
            raise ProgramError(f"{path}:{number}: {e}") from None
        for key, value in overrides.items():
            if value not in CONFIG_VALUES[key]:
                raise ProgramError(f"{path}:{number}: {key} cannot be {value}")
        found.append(Expectation(tuple(overrides.items()), mutants[-1] if mutants else None, m["verdict"]))
    return found


def program_files(paths: list[str]) -> list[Path]:
    """Expand directories into their *.txt files (sorted); every path must exist."""
    files: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            files.extend(sorted(f for f in p.rglob("*.txt") if not f.name.startswith(".")))
        elif p.exists():
            files.append(p)
        else:
            raise ProgramError(f"{raw}: no such file or directory")
    if not files:
        raise ProgramError("no program files (*.txt) found in " + ", ".join(paths))
    return files
