"""The kernel's debug checks as oracle rules (pyfuzz/oracle/debugchecks.py): each rule fires on
a mutant or configuration that breaks what it checks, and stays quiet on the same program
without it."""

import pytest

from pyfuzz.check import execute
from pyfuzz.program import parse

# T1's walk pins the VMA (get at its fourth step), T0 then unmaps it, and T1's re-check finds
# the folio unmapped: the walk ends "stale" and drops its reference, which frees the VMA.
STALE_WALK = """\
config vma_ref=on slab=typesafe put=preempt debug_vm=on lockdep=on
mutant none
vma 0-4
thread 0
  munmap 0
thread 1
  rmap 1
schedule 1:4
"""

# Two adjacent VMAs; T0 merges them while T1 only looks one up.
MERGE = """\
config vma_ref=on slab=typesafe put=preempt debug_vm=on lockdep=on
mutant none
vma 0-2
vma 2-4
thread 0
  merge 0
thread 1
  get 3
  put
schedule 0:40
"""


def verdict(text, **config):
    program = parse(text)
    return execute(program.with_config(**config) if config else program)


def kind(v):
    return "ok" if v.ok else v.violation.kind


@pytest.mark.parametrize("text, mutant, expected", [
    (STALE_WALK, "rmap_leaks_rcu", "unbalanced-rcu"),
    (STALE_WALK, "put_leaks_preempt", "unbalanced-rcu"),
    (STALE_WALK, "rmap_locks_mm", "might-sleep"),
    (MERGE, "merge_put_attached", "vma-not-detached"),
])
def test_each_debug_rule_fires_on_its_mutant(text, mutant, expected):
    program = parse(text)
    assert kind(execute(program)) == "ok"
    assert kind(execute(program.with_mutant(mutant))) == expected


def test_the_lockdep_rules_need_lockdep():
    program = parse(STALE_WALK).with_config(lockdep="off")
    for mutant in ("rmap_leaks_rcu", "put_leaks_preempt", "rmap_locks_mm"):
        assert kind(execute(program.with_mutant(mutant))) == "ok"
    # vma_assert_detached needs no debug option
    assert kind(execute(parse(MERGE).with_config(lockdep="off").with_mutant("merge_put_attached"))) == \
        "vma-not-detached"


def test_rcusafe_put_outside_rcu_is_suspicious_rcu_usage():
    # munmap's vma_put runs in process context: rcuref_put_rcusafe there is what
    # __rcuref_put's RCU_LOCKDEP_WARN exists to catch.
    v = verdict(STALE_WALK, put="rcusafe")
    assert kind(v) == "suspicious-rcu-usage"
    assert v.events[v.violation.event_index][:2] == ("ref_call", 0)
    assert kind(verdict(STALE_WALK, put="rcusafe", lockdep="off")) == "ok"


def test_a_put_that_lost_its_preempt_disable_is_caught_by_the_same_check():
    assert kind(execute(parse(STALE_WALK).with_mutant("put_no_preempt"))) == "suspicious-rcu-usage"


def test_a_debug_check_at_the_first_event_after_setup_wins_when_the_setup_invariants_fail():
    """The debug checks are called from the pass's branches, and the setup invariants run before
    the first branch after setup: a debug check firing there still wins the tie."""
    from pyfuzz.model import Violation, check

    v = verdict(STALE_WALK)
    assert v.ok
    events = list(v.outcome.events)
    first = next(i for i, e in enumerate(events) if e[1] != -1)
    ins = next(i for i, e in enumerate(events) if e[0] == "tree_insert")
    events[ins] = events[ins][:6] + (events[ins][6] + 1,)  # a pgoff that no longer matches the start
    config = v.program.config_dict
    with pytest.raises(Violation) as found:
        check(events, config, v.outcome.final_counters)
    assert (found.value.kind, found.value.event_index) == ("vma-invariant", first)
    _, _, mm, slot = events[ins][:4]
    gen = next(e[3] for e in events if e[0] == "alloc" and e[2] == slot)
    events.insert(first, ("free", 0, slot, gen))  # a VMA still in mm's tree
    with pytest.raises(Violation) as found:
        check(events, config, v.outcome.final_counters)
    assert (found.value.kind, found.value.event_index) == ("vma-not-detached", first)
