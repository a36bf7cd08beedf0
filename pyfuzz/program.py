"""The program: setup + one op list per thread + a schedule, and its canonical text form.

The text form is what the corpus stores and what people paste into code review, so it is parsed
strictly (every mistake is a one-line `ProgramError` naming the line) and printed canonically, so
that `Program.parse(p.to_text()) == p` and canonical text survives a round trip byte for byte.
A `Program` validates itself on construction: holding one means holding a runnable program.
"""

from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass, replace
from typing import Iterable, Mapping, Sequence

from . import _core
from .files import write_atomically

# The configuration keys live in the Rust core (world.rs, Config::KEYS), default value first.
CONFIG_VALUES = {key: tuple(values) for key, values in _core.CONFIG.items()}
CONFIG_KEYS = tuple(CONFIG_VALUES)
DEFAULT_CONFIG = {key: values[0] for key, values in CONFIG_VALUES.items()}
# The text form always spells out the seed's own four keys; the candidate fixes and policies
# added since appear only when they differ from the seed, so older program files stay canonical.
_SEED_KEYS = CONFIG_KEYS[:4]
LIMITS = {"threads": (2, 4), "ops": 32, "decoded_ops": 16, "pages": 16, "setup_vmas": 4, "schedule": 256}
# Lengths of the byte strings the core decodes into programs: libFuzzer's -max_len is the upper
# bound, and random inputs are drawn uniformly from the whole range.
INPUT_LEN = (8, 256)
# Steps in one schedule entry (the core's MAX_SLICE).
STEPS_MAX = 10_000
# A preset counter must leave the VMA alive: below RELEASED, the start of rcuref's dead zone.
COUNTER_PRESET_MAX = 0xBFFF_FFFF

# Ops that have an error path the program can ask for.
FAILABLE_OPS = frozenset({"mmap", "split", "fork"})
# Op name -> names of its numeric arguments, in text order.
OP_ARGS = {
    "mmap": ("ADDR", "LEN"),
    "munmap": ("ADDR",),
    "split": ("ADDR",),
    "merge": ("ADDR",),
    "fork": ("ADDR",),
    "get": ("ADDR",),
    "put": (),
    "rmap": ("PAGE",),
}

# Ops with variants: the variant's word follows the arguments and is stored in `b` (its index
# here; the first, unnamed variant is the default and is not printed).
OP_VARIANTS = {
    # __split_vma's new_below: the new VMA takes the part below ADDR, the original's vm_start
    # and vm_pgoff move up.
    "split": (None, "below"),
    # vma_merge_existing_range: the VMA at ADDR absorbs its successor; or the successor absorbs
    # it (its vm_start and vm_pgoff move down); or it absorbs the next two (vma_complete's
    # remove and remove2).
    "merge": (None, "next", "both"),
}

_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|[0-9]+")
_MUTANT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_TOKEN_SHOWN_MAX = 40
# Longer than any valid value in any notation; also keeps int() clear of its 4300-digit limit.
_NUMBER_TOKEN_MAX = 20


def random_input(rng: random.Random) -> bytes:
    """Random bytes for the core's decoder: the one program distribution that a campaign's first
    inputs, its fresh programs and the blind baselines all draw from."""
    return rng.randbytes(rng.randint(*INPUT_LEN))


class ProgramError(ValueError):
    """A program (text, tuple or file) is not valid. The message is always a single line."""


def _shown(token: str) -> str:
    """A token quoted for an error message: one line, bounded, control characters escaped."""
    if len(token) > _TOKEN_SHOWN_MAX:
        token = token[:_TOKEN_SHOWN_MAX] + "..."
    return repr(token)


def _parse_number(token: str, what: str) -> int:
    if not _NUMBER.fullmatch(token):
        raise ProgramError(f"{what}: expected a decimal or 0x hex number, got {_shown(token)}")
    if len(token) > _NUMBER_TOKEN_MAX:
        raise ProgramError(f"{what}: number too large: {_shown(token)}")
    return int(token, 0) if token[:2].lower() == "0x" else int(token, 10)


def _is_int(value: object) -> bool:
    # bool is an int subclass, but True as an address is a bug in the caller.
    return isinstance(value, int) and not isinstance(value, bool)


def _check_range(value: object, low: int, high: int, what: str) -> None:
    if not _is_int(value) or not low <= value <= high:
        raise ProgramError(f"{what} must be an integer in {low}..{high}, got {value!r}")


@dataclass(frozen=True)
class Op:
    name: str
    a: int = 0
    b: int = 0
    fail: bool = False

    def __post_init__(self) -> None:
        pages = LIMITS["pages"]
        if self.name not in OP_ARGS:
            raise ProgramError(f"unknown op {_shown(str(self.name))} (known: {', '.join(OP_ARGS)})")
        if not isinstance(self.fail, bool):
            raise ProgramError(f"{self.name}: fail must be a bool, got {self.fail!r}")
        if self.fail and self.name not in FAILABLE_OPS:
            raise ProgramError(f"{self.name} has no error path ('fail' only for mmap, split, fork)")
        args = OP_ARGS[self.name]
        if len(args) < 1:
            _check_range(self.a, 0, 0, f"{self.name}: unused argument a")
        else:
            _check_range(self.a, 0, pages - 1, f"{self.name}: {args[0]}")
        if self.name in OP_VARIANTS:
            _check_range(self.b, 0, len(OP_VARIANTS[self.name]) - 1, f"{self.name}: variant")
        elif len(args) < 2:
            _check_range(self.b, 0, 0, f"{self.name}: unused argument b")
        else:
            _check_range(self.b, 1, pages, f"{self.name}: {args[1]}")
            if self.a + self.b > pages:
                raise ProgramError(
                    f"{self.name}: range {self.a}-{self.a + self.b} leaves the address space 0-{pages}"
                )

    def __str__(self) -> str:
        words = [self.name, *(str(v) for v in (self.a, self.b)[: len(OP_ARGS[self.name])])]
        if self.name in OP_VARIANTS and self.b:
            words.append(OP_VARIANTS[self.name][self.b])
        if self.fail:
            words.append("fail")
        return " ".join(words)

    @classmethod
    def parse(cls, words: Sequence[str]) -> Op:
        name, *rest = words
        if name not in OP_ARGS:
            raise ProgramError(f"unknown op {_shown(name)} (known: {', '.join(OP_ARGS)})")
        fail = bool(rest) and rest[-1] == "fail"
        if fail:
            rest = rest[:-1]
        args = OP_ARGS[name]
        variants = OP_VARIANTS.get(name, (None,))
        variant = 0
        if len(rest) > len(args) and rest[-1] in variants[1:]:
            variant = variants.index(rest[-1])
            rest = rest[:-1]
        if len(rest) != len(args):
            usage = " ".join([name, *args, *(f"[{'|'.join(variants[1:])}]" for _ in variants[1:2]),
                              *(["[fail]"] if name in FAILABLE_OPS else [])])
            raise ProgramError(f"{name} takes {len(args)} argument(s): {usage}")
        values = [_parse_number(token, f"{name} {arg}") for token, arg in zip(rest, args)]
        if name in OP_VARIANTS:
            values.append(variant)
        return cls(name, *values, fail=fail)


@dataclass(frozen=True)
class SetupVma:
    start: int
    end: int
    counter: int | None = None

    def __post_init__(self) -> None:
        pages = LIMITS["pages"]
        _check_range(self.start, 0, pages - 1, "vma start")
        _check_range(self.end, 1, pages, "vma end")
        if self.start >= self.end:
            raise ProgramError(f"vma {self.start}-{self.end}: start must be below end")
        if self.counter is not None:
            _check_range(self.counter, 0, COUNTER_PRESET_MAX, "vma counter")

    def __str__(self) -> str:
        text = f"vma {self.start}-{self.end}"
        if self.counter is not None:
            text += f" counter=0x{self.counter:08x}"
        return text

    def overlaps(self, other: SetupVma) -> bool:
        return self.start < other.end and other.start < self.end


def _normalized_config(config: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> tuple:
    """Full, validated config as sorted (key, value) pairs, defaults filled in."""
    try:
        given = dict(config) if config is not None else {}
    except (TypeError, ValueError):
        raise ProgramError(f"config must be a mapping of key to value, got {config!r}") from None
    merged = dict(DEFAULT_CONFIG)
    for key, value in given.items():
        _check_config_item(key, value)
        merged[key] = value
    return tuple(sorted(merged.items()))


def _check_config_item(key: object, value: object) -> None:
    if key not in CONFIG_VALUES:
        raise ProgramError(f"unknown config key {_shown(str(key))} (known: {', '.join(CONFIG_KEYS)})")
    if value not in CONFIG_VALUES[key]:
        allowed = " or ".join(CONFIG_VALUES[key])
        raise ProgramError(f"config {key}: expected {allowed}, got {_shown(str(value))}")


def _check_mutant(name: object, known_mutants: Iterable | None) -> None:
    if not isinstance(name, str) or not _MUTANT_NAME.fullmatch(name):
        raise ProgramError(f"bad mutant name {_shown(str(name))}")
    if known_mutants is not None:
        # Accept both plain names and _core.MUTANTS' (name, description) pairs.
        names = [m if isinstance(m, str) else m[0] for m in known_mutants]
        if name not in names:
            raise ProgramError(f"unknown mutant {_shown(name)} (known: {', '.join(names)})")


def _check_setup_vma_against(earlier: Sequence[SetupVma], vma: SetupVma) -> None:
    if len(earlier) >= LIMITS["setup_vmas"]:
        raise ProgramError(f"too many setup vmas (at most {LIMITS['setup_vmas']})")
    if earlier and vma.overlaps(earlier[-1]):
        raise ProgramError(f"{vma} overlaps vma {earlier[-1].start}-{earlier[-1].end}")
    # Setup allocates slots in text order; address order makes slot order match the tree's.
    if earlier and vma.start < earlier[-1].end:
        raise ProgramError(f"{vma} must come after vma {earlier[-1].start}-{earlier[-1].end} (address order)")


def _check_thread_count(count: int) -> None:
    low, high = LIMITS["threads"]
    if not low <= count <= high:
        raise ProgramError(f"program has {count} thread(s), needs {low}..{high}")


def _check_schedule_entry(thread: object, steps: object, thread_count: int) -> None:
    _check_range(thread, 0, thread_count - 1, "schedule thread")
    _check_range(steps, 1, STEPS_MAX, "schedule steps")


def run_lengths(steps: Iterable[int]) -> tuple[tuple[int, int], ...]:
    """A step-by-step thread sequence as a schedule, cut to the longest schedule allowed (the
    threads then run to completion in index order)."""
    return merged_slices(tuple((t, 1) for t in steps))[: LIMITS["schedule"]]


def merged_slices(schedule: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    """Adjacent entries for the same thread as one entry (T:a T:b -> T:a+b)."""
    merged: list[tuple[int, int]] = []
    for thread, steps in schedule:
        if merged and merged[-1][0] == thread:
            merged[-1] = (thread, merged[-1][1] + steps)
        else:
            merged.append((thread, steps))
    return tuple(merged)


@dataclass(frozen=True)
class Program:
    """`config` may be given as any mapping or (key, value) pairs, complete or not; it is stored
    as the full set of keys, defaults filled in, sorted by key, so equal programs compare equal."""

    setup: tuple[SetupVma, ...]
    threads: tuple[tuple[Op, ...], ...]
    schedule: tuple[tuple[int, int], ...]
    config: tuple[tuple[str, str], ...] = tuple(sorted(DEFAULT_CONFIG.items()))
    mutant: str = "none"

    def __post_init__(self) -> None:
        # Normalise containers so that equality and hashing do not depend on list vs tuple.
        try:
            normalized = {
                "setup": tuple(self.setup),
                "threads": tuple(tuple(ops) for ops in self.threads),
                "schedule": tuple(tuple(entry) for entry in self.schedule),
            }
        except TypeError as e:
            raise ProgramError(f"malformed program: {e}") from None
        normalized["config"] = _normalized_config(self.config)
        for name, value in normalized.items():
            object.__setattr__(self, name, value)
        _check_mutant(self.mutant, None)
        for i, vma in enumerate(self.setup):
            if not isinstance(vma, SetupVma):
                raise ProgramError(f"setup[{i}] is not a SetupVma: {vma!r}")
            _check_setup_vma_against(self.setup[:i], vma)
        _check_thread_count(len(self.threads))
        for t, ops in enumerate(self.threads):
            if len(ops) > LIMITS["ops"]:
                raise ProgramError(f"thread {t} has {len(ops)} ops (at most {LIMITS['ops']})")
            for i, op in enumerate(ops):
                if not isinstance(op, Op):
                    raise ProgramError(f"thread {t} op {i} is not an Op: {op!r}")
        if len(self.schedule) > LIMITS["schedule"]:
            raise ProgramError(f"schedule has {len(self.schedule)} entries (at most {LIMITS['schedule']})")
        for i, entry in enumerate(self.schedule):
            if len(entry) != 2:
                raise ProgramError(f"schedule[{i}] must be (thread, steps), got {entry!r}")
            _check_schedule_entry(*entry, len(self.threads))

    @property
    def config_dict(self) -> dict[str, str]:
        """The config in CONFIG_KEYS order, as `_core.run` takes it."""
        values = dict(self.config)
        return {key: values[key] for key in CONFIG_KEYS}

    def with_config(self, **overrides: str) -> Program:
        return replace(self, config={**self.config_dict, **overrides})

    def with_mutant(self, name: str) -> Program:
        return replace(self, mutant=name)

    def to_text(self) -> str:
        config = self.config_dict
        shown = [key for key in CONFIG_KEYS if key in _SEED_KEYS or config[key] != DEFAULT_CONFIG[key]]
        lines = ["config " + " ".join(f"{key}={config[key]}" for key in shown)]
        lines.append(f"mutant {self.mutant}")
        lines.extend(str(vma) for vma in self.setup)
        for t, ops in enumerate(self.threads):
            lines.append(f"thread {t}")
            lines.extend(f"  {op}" for op in ops)
        lines.append(" ".join(["schedule", *(f"{t}:{n}" for t, n in self.schedule)]))
        return "\n".join(lines) + "\n"

    def to_tuple(self) -> tuple:
        """The program tuple of DESIGN.md section 6, in the list shapes it spells out."""
        setup = [(v.start, v.end, v.counter) for v in self.setup]
        threads = [[(op.name, op.a, op.b, op.fail) for op in ops] for ops in self.threads]
        return (setup, threads, [tuple(entry) for entry in self.schedule])

    @classmethod
    def from_tuple(
        cls, program_tuple: Sequence, config: Mapping[str, str] | None = None, mutant: str = "none"
    ) -> Program:
        try:
            setup_items, thread_items, schedule_items = program_tuple
        except (TypeError, ValueError):
            raise ProgramError("program tuple must be (setup, threads, schedule)") from None
        try:
            setup = [_from_item(SetupVma, item, f"setup[{i}]") for i, item in enumerate(setup_items)]
            threads = [
                [_from_item(Op, item, f"thread {t} op {i}") for i, item in enumerate(ops)]
                for t, ops in enumerate(thread_items)
            ]
        except TypeError:
            raise ProgramError("program tuple: setup and threads must be lists") from None
        return cls(setup, threads, schedule_items, config or {}, mutant)

    @classmethod
    def parse(cls, text: str, known_mutants: Iterable | None = None) -> Program:
        return _Parser(known_mutants).parse(text)


def _from_item(kind: type, item: Sequence, where: str):
    try:
        return kind(*item)
    except ProgramError as e:
        raise ProgramError(f"{where}: {e}") from None
    except TypeError:
        raise ProgramError(f"{where}: malformed {kind.__name__} {item!r}") from None


class _Parser:
    """Line-oriented parser. Sections must come in canonical order: header lines (config, mutant,
    vma), then threads 0..n-1, then at most one schedule line, which ends the program."""

    def __init__(self, known_mutants: Iterable | None) -> None:
        self.known_mutants = list(known_mutants) if known_mutants is not None else None
        self.config: dict[str, str] | None = None
        self.mutant: str | None = None
        self.setup: list[SetupVma] = []
        self.threads: list[list[Op]] = []
        self.schedule: tuple[tuple[int, int], ...] | None = None

    def parse(self, text: str) -> Program:
        if not isinstance(text, str):
            raise ProgramError(f"program text must be str, got {type(text).__name__}")
        lines = text.split("\n")
        # A final newline ends the last line; it does not start another one.
        last_line = max(1, len(lines) - (lines[-1] == ""))
        for number, line in enumerate(lines, start=1):
            words = line.split("#", 1)[0].split()
            if words:
                try:
                    self._line(words)
                except ProgramError as e:
                    raise ProgramError(f"line {number}: {e}") from None
        try:
            _check_thread_count(len(self.threads))
            return Program(
                tuple(self.setup),
                tuple(tuple(ops) for ops in self.threads),
                self.schedule or (),
                self.config or {},
                self.mutant or "none",
            )
        except ProgramError as e:
            raise ProgramError(f"line {last_line} (end of input): {e}") from None

    def _line(self, words: list[str]) -> None:
        keyword = words[0]
        if self.schedule is not None:
            raise ProgramError(f"nothing may follow the schedule line, got {_shown(keyword)}")
        if keyword == "thread":
            self._thread(words)
        elif keyword == "schedule":
            self._schedule(words[1:])
        elif keyword in ("config", "mutant", "vma"):
            if self.threads:
                raise ProgramError(f"'{keyword}' must come before the first thread")
            getattr(self, "_" + keyword)(words[1:])
        elif keyword in OP_ARGS:
            if not self.threads:
                raise ProgramError(f"op {_shown(keyword)} before the first 'thread' line")
            ops = self.threads[-1]
            if len(ops) >= LIMITS["ops"]:
                raise ProgramError(f"thread {len(self.threads) - 1} has more than {LIMITS['ops']} ops")
            ops.append(Op.parse(words))
        else:
            raise ProgramError(f"unknown keyword or op {_shown(keyword)}")

    def _config(self, items: list[str]) -> None:
        if self.config is not None:
            raise ProgramError("second 'config' line")
        self.config = _parse_config_items(items, what="config item")

    def _mutant(self, words: list[str]) -> None:
        if self.mutant is not None:
            raise ProgramError("second 'mutant' line")
        if len(words) != 1:
            raise ProgramError("expected: mutant NAME")
        _check_mutant(words[0], self.known_mutants)
        self.mutant = words[0]

    def _vma(self, words: list[str]) -> None:
        if not 1 <= len(words) <= 2 or words[0].count("-") != 1:
            raise ProgramError("expected: vma START-END [counter=VALUE]")
        start_token, end_token = words[0].split("-")
        start = _parse_number(start_token, "vma START")
        end = _parse_number(end_token, "vma END")
        counter = None
        if len(words) == 2:
            key, equals, value = words[1].partition("=")
            if key != "counter" or not equals:
                raise ProgramError(f"expected counter=VALUE, got {_shown(words[1])}")
            counter = _parse_number(value, "vma counter")
        vma = SetupVma(start, end, counter)
        _check_setup_vma_against(self.setup, vma)
        self.setup.append(vma)

    def _thread(self, words: list[str]) -> None:
        if len(words) != 2:
            raise ProgramError("expected: thread N")
        expected = len(self.threads)
        number = _parse_number(words[1], "thread number")
        if number != expected:
            raise ProgramError(f"expected 'thread {expected}' (threads are numbered 0..n-1 in order)")
        if expected >= LIMITS["threads"][1]:
            raise ProgramError(f"too many threads (at most {LIMITS['threads'][1]})")
        self.threads.append([])

    def _schedule(self, entries: list[str]) -> None:
        _check_thread_count(len(self.threads))
        if len(entries) > LIMITS["schedule"]:
            raise ProgramError(f"schedule has {len(entries)} entries (at most {LIMITS['schedule']})")
        schedule = []
        for entry in entries:
            thread_token, colon, steps_token = entry.partition(":")
            if not colon:
                raise ProgramError(f"schedule entry must be THREAD:STEPS, got {_shown(entry)}")
            thread = _parse_number(thread_token, "schedule thread")
            steps = _parse_number(steps_token, "schedule steps")
            _check_schedule_entry(thread, steps, len(self.threads))
            schedule.append((thread, steps))
        self.schedule = tuple(schedule)


def _parse_config_items(items: Iterable[str], what: str) -> dict[str, str]:
    config: dict[str, str] = {}
    for item in items:
        key, equals, value = item.partition("=")
        if not equals:
            raise ProgramError(f"{what} must be KEY=VALUE, got {_shown(item)}")
        _check_config_item(key, value)
        if key in config and config[key] != value:
            raise ProgramError(f"config {key} given twice ({config[key]} and {value})")
        config[key] = value
    return config


def parse(text: str, known_mutants: Iterable | None = None) -> Program:
    return Program.parse(text, known_mutants)


def parse_config_overrides(items: Iterable[str]) -> dict[str, str]:
    """`--config KEY=VALUE` items from the command line -> {key: value} (only the given keys)."""
    return _parse_config_items(items, what="--config")


def load(path: str | os.PathLike, known_mutants: Iterable | None = None) -> Program:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ProgramError(f"{path}: cannot read: {e.strerror or e}") from None
    return parse_bytes(data, known_mutants, str(path))


def parse_bytes(data: bytes, known_mutants: Iterable | None = None, name: str = "<input>") -> Program:
    """A program file's bytes: UTF-8 text (a byte-order mark allowed), never binary."""
    try:
        return Program.parse(decode_text(data), known_mutants)
    except ProgramError as e:
        raise ProgramError(f"{name}: {e}") from None


def decode_text(data: bytes) -> str:
    if b"\0" in data:
        raise ProgramError("binary file (NUL byte), not a program text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ProgramError(f"not UTF-8 (bad byte at offset {e.start})") from None


def save(program: Program, path: str | os.PathLike, header_comment: str | None = None) -> None:
    """Write the program's text atomically: readers see the old file or the new one, never half."""
    text = program.to_text()
    if header_comment is not None:
        header = "".join(f"# {line}".rstrip() + "\n" for line in header_comment.splitlines())
        text = header + text
    write_atomically(path, text.encode("utf-8"))
