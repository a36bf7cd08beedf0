from pyfuzz.check import Verdict, execute
from pyfuzz.model import Violation
from pyfuzz.program import load, parse
from pyfuzz.signature import signature, slug

SEED_RACE = load("corpus/typesafe-reinit-swallows-get.txt")


def test_seed_race_names_op_call_and_the_objects_role():
    verdict = execute(SEED_RACE)
    assert signature(verdict) == (
        "not-linearizable in rmap's vma_get on a VMA found through a folio mapping, since reused by mmap")
    assert slug(verdict) == "not-linearizable.rmap.vma_get.mapping.reused-by-mmap"


def test_signature_ignores_thread_numbers_addresses_and_schedule_lengths():
    # The same race with the threads swapped, the VMA elsewhere and the mmap at another address.
    moved = parse("""vma 8-12
thread 0
  rmap 9
thread 1
  munmap 10
  mmap 3 2
schedule 0:3 1:13 0:1 1:50
""")
    verdict = execute(moved)
    assert not verdict.ok
    assert signature(verdict) == signature(execute(SEED_RACE))


def test_same_schedule_different_reuser_is_a_different_signature():
    verdict = execute(load("corpus/typesafe-reinit-merge-split.txt"))
    assert signature(verdict).endswith("reused by split")
    assert signature(verdict) != signature(execute(SEED_RACE))


def test_end_state_and_panic_verdicts_have_signatures():
    program = parse("thread 0\nthread 1\n")
    leak = Verdict(program, execute(program).outcome, Violation("leak", "VMA slot 3 gen 1 is dead", 99, []))
    assert signature(leak) == "leak at the end on a VMA made by setup"
    assert slug(leak) == "leak.end.from-setup"
    panic = Verdict(program, None, Violation("panic", "the Rust core panicked: index 7 out of range", -1, []))
    assert slug(panic) == "panic.core.index-N-out-of-range.core"


def test_a_passing_verdict_has_no_signature():
    program = parse("thread 0\nthread 1\n")
    try:
        signature(execute(program))
    except ValueError:
        return
    raise AssertionError("a passing verdict got a signature")


def test_a_step_on_no_vma_names_no_object():
    program = parse("thread 0\n  rmap 1\nthread 1\n")
    events = [("op_begin", 0, 0), ("rcu_lock", 0), ("lock", 0, "read")]
    violation = Violation("might-sleep", "T0 takes mmap_lock inside an RCU read-side section", 2, events)
    verdict = Verdict(program, _Outcome(events), violation)
    assert signature(verdict) == "might-sleep in rmap's lock"
    assert slug(verdict) == "might-sleep.rmap.lock"


class _Outcome:
    def __init__(self, events):
        self.events = events
