"""The floor of a checked run (pyfuzz/oracle/floor.py), in the source and in the compiled build
that `pyfuzz bench speed` times: it reads every event of every distinct history once, with its
kind's code."""

import importlib

import pytest

from pyfuzz import _core, mypyc_oracle
from pyfuzz.bench import MUTANT_CONFIG
from pyfuzz.oracle.kinds import K_ALLOC, K_ATOMIC, K_FREE, NO_KIND, kind_codes

BUILDS = ["pyfuzz.oracle"] + (["pyfuzz.oracle_mypyc"] if mypyc_oracle._compiled()[0] is not None else [])


@pytest.fixture(params=BUILDS)
def floor(request):
    return importlib.import_module(request.param + ".floor")


def test_read_kinds_is_the_set_of_kinds_with_one_bit_for_the_unread_and_the_threads(floor):
    events = [("alloc", -1, 0, 1), ("op_begin", 0, 0), ("atomic", 0, 0, "add", "relaxed", 0, 1), ("free", 0, 0, 1),
              ("folio_map", 0, 1, True)]
    threads = (1 << (NO_KIND + 1 + 1)) | (1 << (NO_KIND + 1 + 2))  # setup and T0
    kinds = (1 << K_ALLOC) | (1 << K_ATOMIC) | (1 << K_FREE) | (1 << NO_KIND)
    assert floor.read_kinds(events, kind_codes(events)) == kinds | threads
    assert floor.read_kinds([], b"") == 0


def test_each_distinct_history_is_read_once(floor):
    engine = _core.Engine(MUTANT_CONFIG)
    first, again, other = (engine.run_bytes(b) for b in (b"\x00\x01\x02\x03", b"\x00\x01\x02\x03", b"\x05\x09\x01\x07"))
    assert first.digest == again.digest != other.digest
    exported, read = floor.Exported(MUTANT_CONFIG), floor.KindsRead(MUTANT_CONFIG)
    for outcome in (first, again, other):
        assert exported.judge(outcome) is None and read.judge(outcome) is None
    assert exported.checked == read.checked == 2
    assert exported.events == len(first.events) + len(other.events)
    assert read.kinds == floor.read_kinds(first.events, first.kinds) | floor.read_kinds(other.events, other.kinds) != 0
