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
    return expectations_in(path.read_text(encoding="utf-8"), str(path))


def expectations_in(text: str, path: str) -> list[Expectation]:
    """The `# expect:` lines of a program text; `path` names it in error messages."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
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


def verdict_word(verdict) -> str:
    """What an expectation compares: "ok" or the violation's kind."""
    return "ok" if verdict.ok else verdict.violation.kind


def looks_like_program(text: str) -> bool:
    """A text with a `config KEY=VALUE...` line (comments aside) is meant to be a program: the
    pytest plugin collects it, and a mistake in it is an error, not a reason to skip it."""
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if words[:1] == ["config"] and all("=" in word for word in words[1:]):
            return True
    return False


# Configurations `corpus add` replays a finding under before it narrows the keys down; past this
# it varies one key at a time (every key still gets looked at).
CROSS_PRODUCT_MAX = 4096


def _configurations(base: dict[str, str]) -> list[dict[str, str]]:
    from itertools import product

    from . import _core

    keys = list(_core.CONFIG)
    size = 1
    for key in keys:
        size *= len(_core.CONFIG[key])
    if size <= CROSS_PRODUCT_MAX:
        return [dict(zip(keys, values)) for values in product(*(_core.CONFIG[k] for k in keys))]
    return [base] + [{**base, key: value} for key in keys for value in _core.CONFIG[key] if value != base[key]]


def expectation_lines(program: Program) -> list[str]:
    """`# expect:` lines for `program`: its verdict under every configuration, written over the
    keys that change it (a key matters if flipping it alone changes some verdict), one line per
    combination of those keys' values, with the program's own values for the rest."""
    from itertools import product

    from . import _core
    from .check import execute

    base = program.config_dict
    verdicts = {}
    for config in _configurations(base):
        verdicts[tuple(sorted(config.items()))] = verdict_word(execute(program.with_config(**config)))
    matters = []
    for key in _core.CONFIG:
        for config, got in verdicts.items():
            values = dict(config)
            flipped = [verdicts.get(tuple(sorted({**values, key: v}.items()))) for v in _core.CONFIG[key]]
            if any(f is not None and f != got for f in flipped):
                matters.append(key)
                break
    lines = []
    for values in product(*(_core.CONFIG[k] for k in matters)):
        config = {**base, **dict(zip(matters, values))}
        got = verdicts.get(tuple(sorted(config.items())))
        if got is None:
            got = verdict_word(execute(program.with_config(**config)))
        overrides = " ".join(f"{k}={v}" for k, v in config.items() if v != base.get(k))
        lines.append(f"# expect: {overrides} => {got}".replace(":  =>", ": =>"))
    return lines


def add_finding(program: Program, text: str, corpus: Path, force: bool) -> tuple[Path, list[str]]:
    """Write a finding into `corpus` with computed expectations; refuse one whose signature (and
    mutant) a corpus program already has, unless `force`. Returns the new file and its lines."""
    from .check import execute
    from .program import load, save
    from .signature import signature, slug

    verdict = execute(program)
    if verdict.ok:
        raise ProgramError("the finding does not fail under its own configuration: nothing to add")
    wanted = signature(verdict)
    if not force:
        for path in sorted(corpus.rglob("*.txt")):
            try:
                other = load(path)
            except ProgramError:
                continue
            if other.mutant != program.mutant:
                continue
            seen = execute(other)
            if not seen.ok and signature(seen) == wanted:
                raise ProgramError(f"{path} already reproduces '{wanted}' (use --force to add it anyway)")
    lines = expectation_lines(program)
    # Comments before the program are the finding's own explanation: they travel with it.
    head = []
    for line in text.splitlines():
        if not line.lstrip().startswith("#") and line.strip():
            break
        if "expect:" not in line:
            comment = line.lstrip()[1:].rstrip()
            head.append(comment[1:] if comment.startswith(" ") else comment)
    name = slug(verdict) + ("" if program.mutant == "none" else f".{program.mutant}")
    path = corpus / f"{name}.txt"
    number = 2
    while path.exists():
        path = corpus / f"{name}-{number}.txt"
        number += 1
    header = "\n".join([f"signature: {wanted}", *head, *(line[2:] for line in lines)])
    save(program, path, header_comment=header)
    return path, lines
