"""Fuzzing the program-file reader itself: whatever bytes a user hands `pyfuzz replay` or
`corpus check`, the only exception is ProgramError, with a one-line message; whatever it accepts
prints canonically and reads back as the same program.

Inputs are structured mutations of program texts (lines deleted, duplicated, swapped and cut;
tokens replaced by the grammar's words, extreme numbers and junk; `# expect:` lines; bytes
flipped, control and non-UTF-8 bytes inserted) and plain random bytes. The starting texts are
the given files (the corpus) plus programs the core decodes from random bytes, so every op,
setup and schedule shape is in the mix without depending on a checkout.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import Callable, Iterable

from .corpus import expectations_in
from .program import CONFIG_VALUES, OP_ARGS, Program, ProgramError, parse, parse_bytes

# Words the grammar knows, and near misses of them.
_WORDS = [
    "config", "mutant", "vma", "thread", "schedule", "fail", "counter=", "counter=0x", "#", "# expect:",
    "=>", ":", "-", "=", "0", "1", "15", "16", "17", "255", "256", "-1", "0x", "0xBFFFFFFF", "0xC0000000",
    "0xffffffff", "9" * 25, "1" * 4400, "0b101", "1e3", "１２", "\u0663", "none", "put_reread", "no_such_mutant",
    "ok", "not-linearizable", "\t", "\r", "\x0b", "\x1b[31m", "\u2028", "\ufeff", "thread0", "0:0", "1:10001",
    *OP_ARGS, *(f"{k}={v}" for k, vs in CONFIG_VALUES.items() for v in vs), "slab=sometimes", "nokey=on",
]


def _decoded_programs(rng: random.Random, count: int) -> list[bytes]:
    from . import _core
    from .program import random_input

    texts = []
    for _ in range(count):
        setup, threads, schedule = _core.decode(random_input(rng))
        texts.append(Program.from_tuple((setup, threads, schedule)).to_text().encode())
    return texts


def _mutate(rng: random.Random, seed: bytes) -> bytes:
    if rng.random() < 0.1:
        return rng.randbytes(rng.randint(0, 512))
    lines = seed.split(b"\n")
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(lines)) if lines else 0
        choice = rng.randrange(9)
        if choice == 0 and lines:
            del lines[i]
        elif choice == 1 and lines:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif choice == 2 and len(lines) > 1:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif choice in (3, 4) and lines:
            words = lines[i].split(b" ")
            k = rng.randrange(len(words))
            words[k] = rng.choice(_WORDS).encode()
            lines[i] = b" ".join(words)
        elif choice == 5:
            config = " ".join(f"{k}={rng.choice(v)}" for k, v in CONFIG_VALUES.items() if rng.random() < 0.5)
            lines.insert(i, f"# expect: {config} => {rng.choice(['ok', 'not-linearizable', 'x', ''])}".encode())
        elif choice == 6:
            lines.insert(i, b" ".join(rng.choice(_WORDS).encode() for _ in range(rng.randint(1, 5))))
        elif choice == 7 and lines:
            line = bytearray(lines[i] or b" ")
            line[rng.randrange(len(line))] = rng.randrange(256)
            lines[i] = bytes(line)
        else:
            lines.insert(i, rng.randbytes(rng.randint(1, 8)))
    data = b"\n".join(lines)
    if rng.random() < 0.1:
        data = data[: rng.randint(0, len(data))]  # a truncated file
    return data


def check_one(data: bytes, known_mutants: list[str]) -> bool:
    """Read `data` as a program file; True if it is a program. Raises AssertionError when the
    reader breaks its contract, and lets any exception other than ProgramError through."""
    try:
        program = parse_bytes(data, known_mutants)
        text = data.decode("utf-8-sig")
    except ProgramError as e:
        assert "\n" not in str(e) and str(e), f"ProgramError message not one line: {str(e)!r}"
        return False
    try:
        expectations_in(text, "<input>")
    except ProgramError as e:
        assert "\n" not in str(e), f"ProgramError message not one line: {str(e)!r}"
    canonical = program.to_text()
    again = parse(canonical, known_mutants)
    assert again == program, f"canonical text reads back as another program: {canonical!r}"
    assert again.to_text() == canonical, f"canonical text is not stable: {canonical!r}"
    return True


def fuzz_parser(inputs: int, seed: int, seeds: Iterable[bytes] = (),
                progress: Callable[[int, Counter], None] | None = None) -> Counter:
    """Check `inputs` inputs; returns counts of 'parsed' and 'rejected'. Stops at the first
    broken contract with the offending input in the exception's notes."""
    from . import _core

    rng = random.Random(seed)
    known = [name for name, _, _ in _core.MUTANTS]
    pool = list(seeds) + _decoded_programs(rng, 64)
    counts: Counter = Counter()
    for i in range(inputs):
        data = _mutate(rng, rng.choice(pool))
        try:
            parsed = check_one(data, known)
        except BaseException as e:
            e.add_note(f"input {i} of seed {seed}: {data!r}")
            raise
        counts["parsed" if parsed else "rejected"] += 1
        if parsed and len(pool) < 1000:
            pool.append(data)  # accepted variants are seeds for further mutation
        if progress is not None and (i + 1) % 10_000 == 0:
            progress(i + 1, counts)
    return counts
