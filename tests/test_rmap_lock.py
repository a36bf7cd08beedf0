"""rmap_lock=rwsem: the reverse-map walker's lock closes the torn range read across a split, its
slow path runs, DPOR still reaches every class, and oracle rule 10 fails when the lock is missing."""

from dataclasses import replace
from pathlib import Path

import pytest

from pyfuzz import _core
from pyfuzz.check import execute, judge
from pyfuzz.model import Violation, check
from pyfuzz.program import load, parse
from pyfuzz.verify import explore

REPO = Path(__file__).resolve().parents[1]
TORN = REPO / "corpus" / "split-below-torn-range-read.txt"
LOCKED = {"rmap_lock": "rwsem"}


def unscheduled(path):
    return replace(load(path), schedule=())


def test_without_the_lock_the_torn_range_program_still_fails():
    result = explore(unscheduled(TORN))
    assert not result.ok and result.violation.kind == "bad-use"


@pytest.mark.parametrize("variant", [{}, {"mapping": "root"}, {"slab": "typesafe", "get": "add_result",
                                                              "init": "keep_counter"}])
def test_with_the_lock_every_interleaving_of_the_torn_range_program_holds(variant):
    result = explore(unscheduled(TORN).with_config(**LOCKED, **variant))
    assert result.ok and result.complete and result.classes > 10


def interleavings(program, mode, preemptions=None):
    config = program.config_dict
    explorer = _core.Explorer(program.to_tuple(), config, program.mutant, mode, preemptions)
    found = {}
    while not explorer.done:
        for _, _, klass, outcome, _ in explorer.explore(1024, 5.0):
            found.setdefault(klass, outcome)
    return found


def test_dpor_reaches_every_class_bounded_search_reaches_with_the_lock():
    # A plain DFS of a split against a walker is out of reach; context bounding without pruning
    # runs every schedule with up to two preemptions, and each of its classes must be DPOR's.
    program = parse("vma 0-2\nthread 0\n  split 1 below\nthread 1\n  rmap 1\n").with_config(**LOCKED)
    dpor = interleavings(program, "dpor")
    bounded = interleavings(program, "bounded", 2)
    assert set(bounded) <= set(dpor) and len(dpor) > len(bounded) > 1


def walker_slept(events):
    """The walker's trylock failed: it left RCU holding the pin and slept on the rwsem."""
    kinds = [e[0] for e in events if e[1] == 1]
    return any(kinds[i:i + 3] == ["rcu_unlock", "rmap_lock", "rcu_lock"] for i in range(len(kinds)))


def test_the_walker_sleeps_on_a_held_lock_and_writers_exclude_it():
    program = unscheduled(TORN).with_config(**LOCKED)
    outcomes = interleavings(program, "dpor").values()
    assert any(walker_slept(o.events) for o in outcomes)
    for o in outcomes:
        holders = {}
        for e in o.events:
            if e[0] == "rmap_lock":
                assert e[3] == "read" or not holders.get(e[2]), "a writer beside a holder"
                holders.setdefault(e[2], []).append(e[3])
            elif e[0] == "rmap_unlock":
                holders[e[2]].remove(e[3])


def locked_history(text):
    program = parse(text).with_config(**LOCKED)
    verdict = execute(program)
    assert verdict.ok
    return verdict.outcome, program.config_dict


def without(events, kind, thread):
    return [e for e in events if not (e[0] in (kind, kind.replace("lock", "unlock")) and e[1] == thread)]


SPLIT_THEN_WALK = "vma 0-4\nthread 0\n  split 2 below\nthread 1\n  rmap 3\nschedule 0:60 1:60\n"


@pytest.mark.parametrize("thread,kind", [(0, "unlocked-range-update"), (1, "unlocked-rmap-walk")],
                         ids=["split", "walker"])
def test_rule_10_catches_a_thread_that_skips_the_lock(thread, kind):
    outcome, config = locked_history(SPLIT_THEN_WALK)
    events = without(outcome.events, "rmap_lock", thread)
    with pytest.raises(Violation) as v:
        check(events, config, outcome.final_counters)
    assert v.value.kind == kind
    check(outcome.events, config, outcome.final_counters)  # the real history holds
    # Under rmap_lock=none the same unlocked history is the seed's behaviour.
    check(events, {**config, "rmap_lock": "none"}, outcome.final_counters)


def test_rule_10_catches_two_writers():
    outcome, config = locked_history(SPLIT_THEN_WALK)
    events = list(outcome.events)
    i = next(i for i, e in enumerate(events) if e[0] == "rmap_lock" and e[3] == "write")
    events.insert(i + 1, ("rmap_lock", 1, events[i][2], "write"))
    with pytest.raises(Violation) as v:
        check(events, config, outcome.final_counters)
    assert v.value.kind == "rmap-lock-misuse"


def test_the_default_leaves_every_history_as_it_was():
    program = load(TORN)
    assert program.config_dict["rmap_lock"] == "none"
    assert not any(e[0].startswith("rmap_") for e in execute(program).outcome.events)
    assert judge(execute(program).outcome, program.config_dict).kind == "bad-use"


def test_rule_10_sees_the_first_event_after_setup_when_the_setup_invariants_fail_before_it():
    """Rule 10 is called from the pass's branches, and the setup invariants run before the first
    branch after setup: a lock misuse there still wins the tie, as the rule's check comes first."""
    outcome, config = locked_history(SPLIT_THEN_WALK)
    events = list(outcome.events)
    first = next(i for i, e in enumerate(events) if e[1] != -1)
    ins = next(i for i, e in enumerate(events) if e[0] == "tree_insert")
    events[ins] = events[ins][:6] + (events[ins][6] + 1,)  # a pgoff that no longer matches the start
    with pytest.raises(Violation) as v:
        check(events, config, outcome.final_counters)
    assert (v.value.kind, v.value.event_index) == ("vma-invariant", first)
    events.insert(first, ("rmap_unlock", 0, 0, "write"))
    with pytest.raises(Violation) as v:
        check(events, config, outcome.final_counters)
    assert (v.value.kind, v.value.event_index) == ("rmap-lock-misuse", first)
