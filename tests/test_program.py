import os
import random

import pytest

from pyfuzz.minimize import minimize
from pyfuzz.program import (
    CONFIG_KEYS,
    CONFIG_VALUES,
    DEFAULT_CONFIG,
    LIMITS,
    Op,
    Program,
    ProgramError,
    SetupVma,
    load,
    parse,
    parse_config_overrides,
    save,
)

CANONICAL = [
    """config vma_ref=on slab=typesafe put=preempt debug_vm=on
mutant none
vma 0-4
vma 4-8 counter=0x7fffffff
thread 0
  munmap 0
  mmap 0 4
thread 1
  rmap 1
schedule 1:3 0:12 1:20
""",
    """config vma_ref=off slab=deferred put=rcusafe debug_vm=off
mutant put_reread
thread 0
thread 1
schedule
""",
    """config vma_ref=on slab=typesafe put=preempt debug_vm=on
mutant none
vma 0-1 counter=0x00000000
vma 2-3
vma 4-6 counter=0xbfffffff
vma 8-16 counter=0xa0000000
thread 0
  mmap 0 16
  mmap 15 1 fail
  split 5 fail
  split 12
  merge 4
  fork 4 fail
  fork 0
  get 4
  put
  rmap 15
  munmap 4
thread 1
  put
thread 2
  get 0
thread 3
  rmap 0
schedule 3:1 2:10000 0:1 0:2
""",
]


@pytest.mark.parametrize("text", CANONICAL)
def test_canonical_text_round_trips_exactly(text):
    program = parse(text)
    assert program.to_text() == text
    assert parse(program.to_text()) == program
    assert Program.from_tuple(program.to_tuple(), program.config_dict, program.mutant) == program


def test_comments_hex_and_whitespace_are_tolerated():
    text = """# a reproducer
    config   slab=deferred   # the rest are defaults
vma 0x0-0x4\tcounter=3221225471
\r
thread 0x0   # first
  munmap 0x0
     mmap 0 0x4 fail
thread 1
rmap 1#no space needed before a comment
schedule 1:0x3   0:12
# trailing comment
"""
    program = parse(text)
    assert program.config_dict == {**DEFAULT_CONFIG, "slab": "deferred"}
    assert program.setup == (SetupVma(0, 4, 0xBFFFFFFF),)
    assert program.threads == ((Op("munmap", 0), Op("mmap", 0, 4, True)), (Op("rmap", 1),))
    assert program.schedule == ((1, 3), (0, 12))
    assert parse(program.to_text()) == program
    assert "vma 0-4 counter=0xbfffffff\n" in program.to_text()


def test_defaults_fill_in_missing_config_mutant_and_schedule():
    program = parse("thread 0\n  put\nthread 1\n")
    assert program.config == tuple(sorted(DEFAULT_CONFIG.items()))
    assert program.mutant == "none"
    assert program.schedule == ()
    assert program.to_text().splitlines()[0] == "config vma_ref=on slab=typesafe put=preempt debug_vm=on"
    assert program.to_text().endswith("thread 1\nschedule\n")


def test_op_text_forms():
    assert [str(op) for op in (Op("mmap", 4, 2), Op("mmap", 4, 2, True), Op("munmap", 4), Op("split", 5, fail=True),
                               Op("merge", 4), Op("fork", 4), Op("get", 4), Op("put"), Op("rmap", 5))] == [
        "mmap 4 2", "mmap 4 2 fail", "munmap 4", "split 5 fail", "merge 4", "fork 4", "get 4", "put", "rmap 5"]


def test_tuple_form_matches_design():
    program = parse(CANONICAL[0])
    assert program.to_tuple() == (
        [(0, 4, None), (4, 8, 0x7FFFFFFF)],
        [[("munmap", 0, 0, False), ("mmap", 0, 4, False)], [("rmap", 1, 0, False)]],
        [(1, 3), (0, 12), (1, 20)],
    )
    rebuilt = Program.from_tuple(program.to_tuple(), {"put": "rcusafe"}, "put_relaxed")
    assert rebuilt.config_dict["put"] == "rcusafe" and rebuilt.mutant == "put_relaxed"
    assert rebuilt == program.with_config(put="rcusafe").with_mutant("put_relaxed")


def test_config_is_sorted_and_complete():
    program = parse(CANONICAL[0]).with_config(slab="deferred")
    assert program.config == tuple(sorted({**DEFAULT_CONFIG, "slab": "deferred"}.items()))
    assert list(program.config_dict) == list(CONFIG_KEYS)
    with pytest.raises(ProgramError, match="unknown config key"):
        program.with_config(colour="blue")
    with pytest.raises(ProgramError, match="expected typesafe or deferred"):
        program.with_config(slab="eager")


def test_constants_describe_the_same_world():
    assert set(CONFIG_KEYS) == set(DEFAULT_CONFIG) == set(CONFIG_VALUES)
    assert all(CONFIG_VALUES[key][0] == DEFAULT_CONFIG[key] for key in CONFIG_KEYS)
    assert LIMITS == {"threads": (2, 4), "ops": 32, "decoded_ops": 16, "pages": 16, "setup_vmas": 4, "schedule": 256}


HEADER = "thread 0\nthread 1\n"
FULL_THREAD_OF_PUTS = "".join("  put\n" for _ in range(LIMITS["ops"]))

# (text, line the error must name, fragment of the message)
BAD_TEXTS = [
    ("", 1, "0 thread"),
    ("thread 0\n  put\n", 2, "1 thread"),
    ("thread 1\n", 1, "expected 'thread 0'"),
    ("thread 0\nthread 2\n", 2, "expected 'thread 1'"),
    ("thread 0\nthread 1\nthread 2\nthread 3\nthread 4\n", 5, "too many threads"),
    ("thread 0\nthread one\n", 2, "thread number"),
    ("thread\n", 1, "thread N"),
    ("  put\nthread 0\nthread 1\n", 1, "before the first 'thread'"),
    (HEADER + "  mmmap 0 1\n", 3, "unknown keyword or op 'mmmap'"),
    (HEADER + "  mmap 0\n", 3, "mmap ADDR LEN [fail]"),
    (HEADER + "  mmap 0 0\n", 3, "LEN"),
    (HEADER + "  mmap 12 5\n", 3, "leaves the address space"),
    (HEADER + "  mmap 16 1\n", 3, "ADDR"),
    (HEADER + "  mmap -1 2\n", 3, "number"),
    (HEADER + "  mmap 1_0 2\n", 3, "number"),
    (HEADER + "  mmap 0x 2\n", 3, "number"),
    (HEADER + "  munmap 16\n", 3, "ADDR"),
    (HEADER + "  rmap 99\n", 3, "PAGE"),
    (HEADER + "  rmap " + "9" * 5000 + "\n", 3, "number too large"),
    (HEADER + "  put 1\n", 3, "put takes 0"),
    (HEADER + "  put fail\n", 3, "no error path"),
    (HEADER + "  get 1 fail\n", 3, "no error path"),
    (HEADER + "  split 1 fail fail\n", 3, "split takes 1"),
    ("thread 0\n" + FULL_THREAD_OF_PUTS + "  put\nthread 1\n", LIMITS["ops"] + 2, f"more than {LIMITS['ops']} ops"),
    ("vma 0-4\nvma 3-5\n" + HEADER, 2, "overlaps vma 0-4"),
    ("vma 4-6\nvma 0-2\n" + HEADER, 2, "address order"),
    ("vma 0-4 counter=0xc0000000\n" + HEADER, 1, "counter"),
    ("vma 4-4\n" + HEADER, 1, "start must be below end"),
    ("vma 5-2\n" + HEADER, 1, "start must be below end"),
    ("vma 0-17\n" + HEADER, 1, "vma end"),
    ("vma 0-4 counter=0x100000000\n" + HEADER, 1, "counter"),
    ("vma 0-4 count=1\n" + HEADER, 1, "counter=VALUE"),
    ("vma 0 4\n" + HEADER, 1, "START-END"),
    ("vma 0-1\nvma 1-2\nvma 2-3\nvma 3-4\nvma 4-5\n" + HEADER, 5, "too many setup vmas"),
    ("config slab=eager\n" + HEADER, 1, "expected typesafe or deferred"),
    ("config colour=blue\n" + HEADER, 1, "unknown config key 'colour'"),
    ("config slab\n" + HEADER, 1, "KEY=VALUE"),
    ("config slab=typesafe slab=deferred\n" + HEADER, 1, "given twice"),
    ("config\nconfig\n" + HEADER, 2, "second 'config'"),
    ("mutant a\nmutant b\n" + HEADER, 2, "second 'mutant'"),
    ("mutant\n" + HEADER, 1, "mutant NAME"),
    ("mutant a/b\n" + HEADER, 1, "bad mutant name"),
    (HEADER + "vma 0-4\n", 3, "before the first thread"),
    (HEADER + "schedule 2:1\n", 3, "schedule thread"),
    (HEADER + "schedule 0:0\n", 3, "schedule steps"),
    (HEADER + "schedule 0:10001\n", 3, "schedule steps"),
    (HEADER + "schedule" + " 1:1" * 257 + "\n", 3, "at most 256"),
    (HEADER + "schedule 0-1\n", 3, "THREAD:STEPS"),
    (HEADER + "schedule 0:1:2\n", 3, "schedule steps"),
    (HEADER + "schedule\nschedule\n", 4, "nothing may follow"),
    (HEADER + "schedule\n  put\n", 4, "nothing may follow"),
    ("thread 0\nschedule\n", 2, "1 thread"),
    ("hello world\n", 1, "unknown keyword"),
]


@pytest.mark.parametrize("text, line, fragment", BAD_TEXTS)
def test_every_error_names_its_line_in_one_line(text, line, fragment):
    with pytest.raises(ProgramError) as info:
        parse(text)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"line {line}")
    assert fragment in message


def test_unknown_mutant_is_rejected_only_against_a_catalog():
    text = "mutant put_sideways\n" + HEADER
    assert parse(text).mutant == "put_sideways"
    catalog = [("none", "the code"), ("put_reread", "old rcuref_put")]
    with pytest.raises(ProgramError, match=r"^line 1: unknown mutant 'put_sideways' \(known: none, put_reread\)$"):
        parse(text, known_mutants=catalog)
    assert parse("mutant put_reread\n" + HEADER, known_mutants=["none", "put_reread"]).mutant == "put_reread"


@pytest.mark.parametrize(
    "program_tuple, fragment",
    [
        (([], [[], []], []), None),
        (([], [[]], []), "1 thread"),
        (([], [[("jump", 0, 0, False)], []], []), "thread 0 op 0: unknown op"),
        (([], [[], [("put", 1, 0, False)]], []), "thread 1 op 0: put: unused argument a"),
        (([], [[], [("mmap", 1, 2)]], []), None),
        (([], [[], [("mmap", True, 2, False)]], []), "ADDR"),
        (([], [[], [("split", 1, 0, 1)]], []), "fail must be a bool"),
        (([(0, 4, None), (2, 6, None)], [[], []], []), "overlaps"),
        (([(0, 4, None, 9)], [[], []], []), "setup[0]: malformed"),
        (([], [[], []], [(0, 1, 2)]), "(thread, steps)"),
        (([], [[], []], [5]), "malformed program"),
        (([], [[], []]), "(setup, threads, schedule)"),
        ((None, [[], []], []), "must be lists"),
    ],
)
def test_from_tuple_validates(program_tuple, fragment):
    if fragment is None:
        Program.from_tuple(program_tuple)
        return
    with pytest.raises(ProgramError) as info:
        Program.from_tuple(program_tuple)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_parse_config_overrides():
    assert parse_config_overrides([]) == {}
    assert parse_config_overrides(["slab=deferred", "put=rcusafe", "slab=deferred"]) == {
        "slab": "deferred",
        "put": "rcusafe",
    }
    for items, fragment in [
        (["slab"], "KEY=VALUE"),
        (["slab=eager"], "expected typesafe or deferred"),
        (["=on"], "unknown config key"),
        (["vma_ref=on", "vma_ref=off"], "given twice"),
    ]:
        with pytest.raises(ProgramError, match=fragment):
            parse_config_overrides(items)


def _mutated_text(rng: random.Random) -> str:
    """Valid programs with a few random edits: they reach the deep parser paths."""
    lines = rng.choice(CANONICAL).split("\n")
    vocabulary = ["thread", "schedule", "vma", "config", "mutant", "fail", "put", "mmap", "0x", "-", ":", "=",
                  "#", "0", "16", "4294967296", "slab=", "counter=", "\t", "\x00", "\u2028", "\u00b2", "\r"]
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(lines))
        edit = rng.randrange(4)
        if edit == 0:
            del lines[i]
        elif edit == 1:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif edit == 2:
            words = lines[i].split(" ")
            words[rng.randrange(len(words))] = rng.choice(vocabulary)
            lines[i] = " ".join(words)
        else:
            position = rng.randint(0, len(lines[i]))
            lines[i] = lines[i][:position] + rng.choice(vocabulary) + lines[i][position:]
    return "\n".join(lines)


def _random_text(rng: random.Random) -> str:
    kind = rng.randrange(3)
    if kind == 0:
        return rng.randbytes(rng.randint(0, 200)).decode("utf-8", errors="replace")
    if kind == 1:
        return "".join(chr(rng.randrange(0x110000) if rng.random() < 0.1 else rng.randrange(128))
                       for _ in range(rng.randint(0, 200))).encode("utf-8", "surrogatepass").decode(
            "utf-8", "replace")
    return _mutated_text(rng)


def test_random_text_raises_only_program_error():
    rng = random.Random(20250601)
    parsed = 0
    for _ in range(20000):
        text = _random_text(rng)
        try:
            program = parse(text)
        except ProgramError as e:
            assert "\n" not in str(e) and str(e).startswith("line ")
            continue
        parsed += 1
        assert parse(program.to_text()) == program
    # The mutations must leave some programs valid, or the round trip above never ran.
    assert parsed > 100


def test_load_and_save_round_trip_with_header(tmp_path):
    program = parse(CANONICAL[2])
    path = tmp_path / "finding.txt"
    save(program, path, header_comment="found by campaign 7\n\nkind: use-after-free")
    text = path.read_text()
    assert text.startswith("# found by campaign 7\n#\n# kind: use-after-free\nconfig ")
    assert load(path) == program
    assert os.listdir(tmp_path) == ["finding.txt"]


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "corpus.txt"
    save(parse(CANONICAL[0]), path)
    before = path.read_bytes()

    def crash(*args):
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        save(parse(CANONICAL[1]), path, header_comment="new")
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["corpus.txt"]


@pytest.mark.parametrize(
    "content, fragment",
    [
        (b"thread 0\n\xff\xfe\n", "not UTF-8"),
        (b"thread 0\x00\n", "binary"),
        (b"thread 0\n  put 1\nthread 1\n", "line 2: put takes 0"),
    ],
)
def test_load_errors_name_the_file(tmp_path, content, fragment):
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(ProgramError) as info:
        load(path)
    assert str(info.value).startswith(str(path)) and fragment in str(info.value)


def test_load_missing_or_directory(tmp_path):
    for path in (tmp_path / "missing.txt", tmp_path):
        with pytest.raises(ProgramError, match="cannot read") as info:
            load(path)
        assert str(path) in str(info.value)


def test_load_accepts_a_byte_order_mark(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbf" + CANONICAL[1].encode())
    assert load(path) == parse(CANONICAL[1])


BLOATED = parse("""vma 0-4 counter=5
vma 4-8
vma 10-12
thread 0
  get 4
  mmap 12 4 fail
  munmap 0
  put
  split 2
thread 1
  rmap 3
  rmap 1
  merge 0
  rmap 1
thread 2
  fork 0 fail
  munmap 0
thread 3
  rmap 1
  munmap 0
schedule 1:3 0:12 1:20 2:5 3:7 0:1
""")


def test_minimizer_keeps_exactly_the_ops_that_matter():
    calls = []

    def still_fails(program):
        calls.append(program)
        return Op("munmap", 0) in program.threads[0] and Op("rmap", 1) in program.threads[1]

    result = minimize(BLOATED, still_fails)
    assert result == Program((), ((Op("munmap", 0),), (Op("rmap", 1),)), (), BLOATED.config, BLOATED.mutant)
    assert len(calls) == len(set(calls)), "a candidate was run twice"
    assert minimize(BLOATED, still_fails) == result, "minimizer is not deterministic"


def test_minimizer_simplifies_schedule_and_arguments():
    def still_fails(program):
        steps_of_thread_1 = sum(steps for thread, steps in program.schedule if thread == 1)
        long_mmap = any(op.name == "mmap" and op.b >= 3 for op in program.threads[0])
        return steps_of_thread_1 >= 7 and long_mmap and len(program.threads) == 2

    result = minimize(BLOATED, still_fails)
    assert result.threads == ((Op("mmap", 12, 3),), ())
    assert result.schedule == ((1, 7),)
    assert result.setup == ()


def test_minimizer_respects_its_budget():
    calls = []

    def still_fails(program):
        calls.append(program)
        return True

    result = minimize(BLOATED, still_fails, budget=5)
    assert len(calls) == 5
    assert still_fails(result)
