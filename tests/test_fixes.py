"""The candidate fixes (get=, init=), the folio->mapping policies (mapping=), the split and merge
variants (`pyfuzz verdict` is tested in test_verdict.py)."""

from pathlib import Path

import pytest

from pyfuzz import _core
from pyfuzz.check import execute
from pyfuzz.program import Op, load, parse
from pyfuzz.verify import explore

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
SEED_RACE = CORPUS / "typesafe-reinit-swallows-get.txt"


@pytest.mark.parametrize("get, init, safe", [
    ("rcuref", "memset", False),        # the seed
    ("rcuref", "keep_counter", False),  # the slow path still re-reads a recycled counter
    ("add_result", "memset", False),    # the zeroed counter is ONEREF: Jann Horn's lost increment
    ("inc_not_zero", "memset", False),
    ("add_result", "keep_counter", True),
    ("inc_not_zero", "keep_counter", True),
])
def test_every_interleaving_of_the_seed_race_under_each_fix(get, init, safe):
    result = explore(load(SEED_RACE).with_config(get=get, init=init))
    assert result.complete or not result.ok
    assert result.ok == safe, result.violation
    if not safe:
        assert result.violation.kind == "not-linearizable"
        assert not execute(result.witness).ok  # the witness replays


def test_the_fix_keys_come_from_the_core():
    assert _core.CONFIG["get"] == ("rcuref", "add_result", "inc_not_zero")
    assert _core.CONFIG["init"] == ("memset", "keep_counter")
    assert _core.CONFIG["mapping"] == ("repoint", "root")
    assert _core.CONFIG["lockdep"] == ("off", "on")


def test_the_get_algorithms_differ_in_their_accesses():
    program = parse("vma 0-4\nthread 0\n  get 1\nthread 1\n  put\n")
    ops = {}
    for get in _core.CONFIG["get"]:
        events = execute(program.with_config(get=get)).events
        ops[get] = [(e[3], e[4]) for e in events if e[0] == "atomic" and e[1] == 0]
    assert ops == {"rcuref": [("add", "relaxed")], "add_result": [("add", "seq_cst")],
                   "inc_not_zero": [("load", "relaxed"), ("cas_ok", "acquire")]}


def test_keep_counter_leaves_the_counter_out_of_the_zeroing():
    program = parse("vma 0-4\nthread 0\n  mmap 8 2\nthread 1\n")
    for init, plain_stores in (("memset", 1), ("keep_counter", 0)):
        events = execute(program.with_config(init=init)).events
        assert sum(1 for e in events if e[0] == "atomic" and e[1] == 0 and e[4] == "plain") == plain_stores


def test_saturation_under_each_get():
    # MAXREF + 1 references: rcuref saturates and warns; file_ref fails silently and leaks;
    # inc-not-zero refuses at its limit and changes nothing.
    program = parse("vma 0-4 counter=0x7fffffff\nthread 0\n  get 1\nthread 1\n")
    outcome = {}
    for get in _core.CONFIG["get"]:
        v = execute(program.with_config(get=get))
        assert v.ok, v.violation
        outcome[get] = ([e[3] for e in v.events if e[0] == "op_end"][0],
                        any(e[0] == "warn" for e in v.events), v.outcome.final_counters[0])
    assert outcome == {"rcuref": ("held", True, 0xA000_0000), "add_result": ("missed", False, 0x8000_0000),
                       "inc_not_zero": ("missed", False, 0x7FFF_FFFF)}


ROOT_SPLIT = """\
config vma_ref=on slab=typesafe put=preempt debug_vm=on mapping=root
vma 0-4
thread 0
  split 2
  munmap 0
thread 1
  rmap 3
"""


def test_mapping_root_reader_reaches_the_piece_through_the_pinned_root():
    v = execute(parse(ROOT_SPLIT))
    assert v.ok, v.violation
    uses = [e for e in v.events if e[0] == "use"]
    assert uses == [("use", 1, 1, 3)]  # folio 3 names the root (slot 0); the piece (slot 1) covers it
    # the root left the tree with munmap but its memory stays: the piece still pins it
    assert not any(e[0] == "free" and e[2] == 0 for e in v.events)
    assert sum(1 for e in v.events if e[0] == "mapping_store") == 4  # setup only: nothing re-pointed


def test_mapping_root_without_refcounts_frees_the_root_under_its_pieces():
    v = execute(parse(ROOT_SPLIT).with_config(vma_ref="off"))
    assert v.violation.kind == "vma-invariant"
    assert "whose root" in v.violation.message


def test_mapping_repoint_keeps_the_old_invariant():
    v = execute(parse(ROOT_SPLIT).with_config(mapping="repoint", vma_ref="off"))
    assert v.ok, v.violation


def test_split_and_merge_variants_round_trip_and_run():
    text = ("vma 0-2\nvma 2-4\nvma 4-6\nthread 0\n  split 1 below\n  merge 2 next\n  merge 0 both\n"
            "  split 3 below fail\nthread 1\n  rmap 1\n")
    program = parse(text)
    assert [(op.name, op.b, op.fail) for op in program.threads[0]] == \
        [("split", 1, False), ("merge", 1, False), ("merge", 2, False), ("split", 1, True)]
    assert parse(program.to_text()) == program
    v = execute(program)
    assert v.ok, v.violation
    trees = [e for e in v.events if e[0] in ("tree_update", "tree_insert") and e[1] == 0]
    assert trees[:2] == [("tree_update", 0, 0, 0, 1, 2, 1), ("tree_insert", 0, 0, 3, 0, 1, 0)]  # new below
    assert ("tree_update", 0, 0, 2, 2, 6, 2) in trees   # the successor grew down
    assert ("tree_update", 0, 0, 3, 0, 6, 0) in trees   # one VMA swallowed the next two
    assert sum(1 for e in v.events if e[0] == "tree_remove") == 3


def test_split_below_without_moving_pgoff_breaks_the_invariant():
    v = execute(parse("vma 0-4\nthread 0\n  split 2 below\nthread 1\n").with_mutant("split_no_pgoff"))
    assert v.violation.kind == "vma-invariant"


def test_bad_variant_is_a_program_error():
    from pyfuzz.program import ProgramError
    with pytest.raises(ProgramError):
        Op("merge", 1, 3)
    with pytest.raises(ProgramError, match="split takes"):
        parse("vma 0-4\nthread 0\n  split 2 sideways\nthread 1\n")


def test_the_decoder_reaches_every_variant():
    import random
    rng = random.Random(3)
    seen = set()
    for _ in range(3000):
        _, threads, _ = _core.decode(rng.randbytes(40))
        seen.update((op[0], op[2]) for ops in threads for op in ops if op[0] in ("split", "merge"))
    assert seen == {("split", 0), ("split", 1), ("merge", 0), ("merge", 1), ("merge", 2)}
