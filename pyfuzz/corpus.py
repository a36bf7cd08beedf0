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

import contextlib
import hashlib
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from . import build
from .files import InUse, holding, scratch_directory
from .program import CONFIG_VALUES, INPUT_LEN, Program, ProgramError, decode_text, parse_config_overrides

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
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ProgramError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        text = decode_text(data)
    except ProgramError as e:
        raise ProgramError(f"{path}: {e}") from None
    return expectations_in(text, str(path))


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


def replays(path: Path, program: Program, known_mutants: list[str]):
    """(expectation or None, program run, verdict) for each '# expect:' line of a file, or for the
    file as written when it has none."""
    from .check import execute

    checks = expectations(path)
    if not checks:
        yield None, program, execute(program)
    for expectation in checks:
        if expectation.mutant is not None and expectation.mutant not in known_mutants:
            raise ProgramError(f"{path}: expectation names unknown mutant {expectation.mutant!r}")
        variant = expectation.apply(program)
        yield expectation, variant, execute(variant)


@dataclass
class CheckedFile:
    path: Path
    problem: str | None  # None: the file parses and every expectation holds
    parses: bool = True


def check_corpus(paths: list[str], known_mutants: list[str]) -> list[CheckedFile]:
    """Every program file parses and gets the verdict each of its '# expect:' lines states; one
    without expectations must replay bit for bit (two runs, the same history)."""
    from .check import execute
    from .program import load

    checked = []
    for path in program_files(paths):
        try:
            program = load(path, known_mutants)
        except ProgramError as e:
            checked.append(CheckedFile(path, str(e), parses=False))
            continue
        try:
            failures = []
            for expectation, variant, verdict in replays(path, program, known_mutants):
                got = verdict_word(verdict)
                if expectation is None:
                    again = execute(variant)
                    if [verdict.events, got] != [again.events, verdict_word(again)]:
                        failures.append("two replays gave different histories")
                elif got != expectation.verdict:
                    failures.append(f"{expectation.describe()}, got {got}")
        except ProgramError as e:  # a malformed '# expect:' line
            checked.append(CheckedFile(path, str(e), parses=False))
            continue
        checked.append(CheckedFile(path, "; ".join(failures) or None))
    return checked


# libFuzzer corpora (the --corpus directories of `pyfuzz fuzz`: raw inputs, named by their
# SHA-1) are merged and minimized by libFuzzer's own -merge=1 run on the harness, so "the same
# features" means exactly what a campaign counts: the instrumented core's code edges and its
# interleaving pairs.

MERGE_SUMMARY = re.compile(r"MERGE-OUTER: (\d+) new files with (\d+) new features added")


class CorpusError(RuntimeError):
    pass


@dataclass
class MergeResult:
    added: int
    features: int
    kept: int = 0  # minimize: inputs left in the directory
    removed: int = 0


def _inputs(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))


def _libfuzzer_merge(out: Path, dirs: list[Path], config: dict[str, str], mutant: str) -> MergeResult:
    """Run libFuzzer's -merge=1 into `out` (a staging directory the caller owns)."""
    from .campaign import harness_command, libfuzzer_env

    core = build.instrumented_core()
    if core is None:
        raise CorpusError("corpus merge needs the coverage-instrumented core: " + build.describe(None))
    with scratch_directory("pyfuzz-merge-") as tmp:
        launcher = tmp / "harness"
        launcher.write_text(f'#!/bin/sh\nexec {shlex.join(harness_command())} "$@"\n')
        launcher.chmod(0o755)
        env = dict(libfuzzer_env(core, config), PYFUZZ_ARGV0=str(launcher), PYFUZZ_ORACLE="off", PYFUZZ_MUTANT=mutant)
        cmd = harness_command("-merge=1", f"-max_len={INPUT_LEN[1]}", "-use_value_profile=0",
                              "-timeout=20", f"-artifact_prefix={tmp}{os.sep}", str(out), *map(str, dirs))
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, errors="replace")
    found = [m for line in proc.stderr.splitlines() + proc.stdout.splitlines() if (m := MERGE_SUMMARY.search(line))]
    if proc.returncode != 0 or not found:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise CorpusError(f"libFuzzer's merge failed (status {proc.returncode}): {tail}")
    return MergeResult(int(found[-1][1]), int(found[-1][2]))


@contextlib.contextmanager
def _staging(next_to: Path):
    """An empty directory beside `next_to`, on its filesystem, so that files move out of it by
    rename (in a scratch directory: one a killed merge leaves behind goes with the next merge)."""
    with scratch_directory(f".{next_to.name}.merge-", next_to.parent) as scratch:
        (scratch / "out").mkdir()
        yield scratch / "out"


def merge(out: Path, dirs: list[Path], config: dict[str, str], mutant: str) -> MergeResult:
    """Add to `out` each input of `dirs` that brings a feature `out` lacks. `out`'s own files are
    never changed; the new ones arrive by rename, only once libFuzzer's merge has succeeded."""
    out.mkdir(exist_ok=True)
    with _staging(out) as staging:
        existing = {p.name for p in _inputs(out)}
        for p in _inputs(out):  # libFuzzer starts from the features of what is in its output
            try:
                os.link(p, staging / p.name)
            except OSError:
                shutil.copy2(p, staging / p.name)
        result = _libfuzzer_merge(staging, dirs, config, mutant)
        for p in _inputs(staging):
            if p.name not in existing:
                os.replace(p, out / p.name)
        return result


def minimize(directory: Path, config: dict[str, str], mutant: str) -> MergeResult:
    """Reduce a corpus directory to libFuzzer's smallest set of its inputs with all its features:
    a file stays (under its own name) if its bytes are in that set, the rest are removed. Not
    while a campaign runs on the directory (it holds the directory's lock)."""
    try:
        with holding(directory):
            return _minimize(directory, config, mutant)
    except InUse:
        raise CorpusError(f"DIR {directory}: in use by a running pyfuzz campaign; minimize it afterwards") from None


def _minimize(directory: Path, config: dict[str, str], mutant: str) -> MergeResult:
    with _staging(directory) as staging:
        result = _libfuzzer_merge(staging, [directory], config, mutant)
        keep = {p.name for p in _inputs(staging)}
    for p in _inputs(directory):
        digest = hashlib.sha1(p.read_bytes()).hexdigest()
        if digest in keep:
            keep.discard(digest)  # a second file with the same bytes goes
            result.kept += 1
        else:
            p.unlink()
            result.removed += 1
    return result


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
# More `# expect:` lines than this and a file stops being read: see expectation_lines.
EXPECT_LINES_MAX = 16


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
    """`# expect:` lines for `program`, from its verdict under every configuration. Only keys
    that change some verdict are written (a key matters if flipping it alone changes one), over
    the program's own values for the rest. Up to EXPECT_LINES_MAX lines that is every
    combination of the keys that matter; past it, the program as written, every single key
    changed, and the pairs of changes whose verdict neither change gives alone (an interaction,
    such as rcusafe put only being wrong once lockdep looks)."""
    from itertools import combinations, product

    from . import _core
    from .check import execute

    base = program.config_dict
    verdicts = {}
    for config in _configurations(base):
        verdicts[tuple(sorted(config.items()))] = verdict_word(execute(program.with_config(**config)))

    def verdict(changes: dict[str, str]) -> str:
        config = {**base, **changes}
        key = tuple(sorted(config.items()))
        if key not in verdicts:
            verdicts[key] = verdict_word(execute(program.with_config(**config)))
        return verdicts[key]

    matters = []
    for key in _core.CONFIG:
        for config, got in list(verdicts.items()):
            values = dict(config)
            flipped = [verdicts.get(tuple(sorted({**values, key: v}.items()))) for v in _core.CONFIG[key]]
            if any(f is not None and f != got for f in flipped):
                matters.append(key)
                break
    combinations_count = 1
    for key in matters:
        combinations_count *= len(_core.CONFIG[key])
    if combinations_count <= EXPECT_LINES_MAX:
        chosen = [dict(zip(matters, values)) for values in product(*(_core.CONFIG[k] for k in matters))]
    else:
        singles = [{key: value} for key in matters for value in _core.CONFIG[key] if value != base[key]]
        pairs = [{**a, **b} for a, b in combinations(singles, 2) if a.keys() != b.keys()
                 and verdict({**a, **b}) not in (verdict(a), verdict(b))]
        chosen = [{}] + singles + pairs
    lines = []
    for changes in chosen:
        overrides = " ".join(f"{k}={v}" for k, v in {**base, **changes}.items() if v != base[k])
        lines.append(f"# expect: {overrides} => {verdict(changes)}".replace(":  =>", ": =>"))
    return lines


def twin(corpus: Path, mutant: str, wanted: str) -> Path | None:
    """The first corpus program (same mutant) whose own verdict has signature `wanted`."""
    from .check import execute
    from .program import load
    from .signature import signature

    for path in sorted(corpus.rglob("*.txt")):
        try:
            other = load(path)
        except ProgramError:
            continue
        if other.mutant != mutant:
            continue
        seen = execute(other)
        if not seen.ok and signature(seen) == wanted:
            return path
    return None


def add_finding(program: Program, text: str, corpus: Path, force: bool) -> tuple[Path, list[str]]:
    """Write a finding into `corpus` with computed expectations; refuse one whose signature (and
    mutant) a corpus program already has, unless `force`. Returns the new file and its lines."""
    from .check import execute
    from .program import save
    from .signature import signature, slug

    verdict = execute(program)
    if verdict.ok:
        raise ProgramError("the finding does not fail under its own configuration: nothing to add")
    wanted = signature(verdict)
    if not force:
        path = twin(corpus, program.mutant, wanted)
        if path is not None:
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
