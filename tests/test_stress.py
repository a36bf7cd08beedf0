"""The real-thread runner (`_core.stress`) and its checker (`pyfuzz.stress`)."""

import copy
from pathlib import Path

import pytest

from pyfuzz import _core
from pyfuzz.corpus import expectations, program_files
from pyfuzz.model import Violation
from pyfuzz.program import Program, load
from pyfuzz.stress import check_run, run_stress

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
KNOWN = [name for name, _, _ in _core.MUTANTS]
ITERATIONS = 300


def schedule_free_ok(program: Program) -> bool:
    """Configurations in which the protocol is correct under every interleaving, so an `ok`
    verdict for one schedule must hold on real threads too: deferred freeing with rcuref_put
    (DESIGN.md; the corpus's typesafe and rcusafe findings need exactly what this excludes), or
    no reference counting at all."""
    config = program.config_dict
    return (config["slab"], config["put"]) == ("deferred", "preempt") or config["vma_ref"] == "off"


CORPUS_CASES = [
    (path, e)
    for path in program_files([str(CORPUS)])
    for e in expectations(path)
    if e.verdict == "ok" and e.mutant is None and schedule_free_ok(e.apply(load(path, KNOWN)))
]

# Every kind of op on three threads, setup counter preset included (the VMA at 8-12 has five
# holders outside the program), so the end-state arithmetic has something to add up.
BUSY = """\
config vma_ref=on slab=deferred put=preempt debug_vm=on
mutant none
vma 0-4
vma 4-8
vma 8-12 counter=0x5
thread 0
  split 2
  munmap 2
  mmap 2 2 fail
  merge 4
  fork 5
  munmap 0
  mmap 0 2
thread 1
  get 5
  rmap 1
  rmap 3
  get 9
  put
  rmap 6
thread 2
  rmap 5
  get 1
  fork 9 fail
  split 10
  rmap 11
  munmap 10
"""

# A get that pushes a VMA with MAXREF + 1 references into saturation: the warning is expected.
SATURATING_GET = """\
vma 0-4 counter=0x7fffffff
thread 0
  get 1
thread 1
  get 2
"""


def runs(program: Program, iterations: int = ITERATIONS) -> list[dict]:
    return _core.stress(program.to_tuple(), program.config_dict, program.mutant, iterations)


def assert_holds(program: Program) -> None:
    report = run_stress(program, ITERATIONS)
    assert report.iterations == ITERATIONS
    assert not report.violations, f"iteration {report.violations[0][0]}: {report.violations[0][1]}"


def test_every_corpus_program_has_a_schedule_free_ok_configuration():
    covered = {path for path, _ in CORPUS_CASES}
    assert covered == set(program_files([str(CORPUS)]))


@pytest.mark.parametrize("path, expectation", CORPUS_CASES, ids=[f"{p.stem}[{e.describe()}]" for p, e in CORPUS_CASES])
def test_corpus_program_holds_on_real_threads(path, expectation):
    assert_holds(expectation.apply(load(path, KNOWN)))


@pytest.mark.parametrize("config", [{}, {"vma_ref": "off"}, {"vma_ref": "off", "debug_vm": "off"}])
def test_busy_program_holds_on_real_threads(config):
    assert_holds(Program.parse(BUSY).with_config(**config))


@pytest.mark.parametrize("slab", ["typesafe", "deferred"])
def test_saturation_warning_is_allowed_on_a_preset_counter(slab):
    assert_holds(Program.parse(SATURATING_GET).with_config(slab=slab))


@pytest.mark.parametrize("text", [BUSY, (CORPUS / "rcuref-critical-states.txt").read_text()])
def test_each_thread_runs_each_of_its_ops_once_in_order(text):
    program = Program.parse(text)
    for run in runs(program):
        assert len(run["threads"]) == len(program.threads)
        for t, (events, ops) in enumerate(zip(run["threads"], program.threads)):
            assert all(e[1] == t for e in events)
            brackets = [(e[0], e[2]) for e in events if e[0] in ("op_begin", "op_end")]
            assert brackets == [(kind, i) for i in range(len(ops)) for kind in ("op_begin", "op_end")]


def test_a_lone_thread_leaves_the_deterministic_engines_history():
    # With deferred freeing, when a slot comes back depends on the OS; typesafe has no reclaims.
    program = Program.parse(BUSY.split("thread 1")[0] + "thread 1\n").with_config(slab="typesafe")
    expected = _core.run(program.to_tuple(), program.config_dict, program.mutant)
    (run,) = runs(program, 1)
    assert run["setup"] + run["threads"][0] == expected.events
    assert run["reclaims"] == []
    assert run["final_counters"] == list(expected.final_counters)


# Planted bugs that show in every run, race or not: each is a single thread's own mistake.
CAUGHT_WITHOUT_A_RACE = [
    ("dup_no_reinit", "vma 0-4\nvma 8-12\nthread 0\n  munmap 8\n  split 2\nthread 1\n  rmap 14\n", "counter-mismatch"),
    ("remove_double_put", "vma 0-4\nthread 0\n  munmap 0\nthread 1\n  rmap 9\n", "unexpected-warning"),
    ("error_direct_free", "vma 0-4\nthread 0\n  mmap 8 4 fail\nthread 1\n  rmap 1\n", "free-without-release"),
    ("split_no_pgoff", "vma 0-4\nthread 0\n  split 2\nthread 1\n  rmap 9\n", "vma-invariant"),
    ("no_saturation", SATURATING_GET, "not-linearizable"),
]


@pytest.mark.parametrize("mutant, text, kind", CAUGHT_WITHOUT_A_RACE, ids=[m for m, _, _ in CAUGHT_WITHOUT_A_RACE])
def test_stress_checker_catches_planted_bug(mutant, text, kind):
    program = Program.parse(text)
    assert_holds(program)
    report = run_stress(program.with_mutant(mutant), 50)
    assert len(report.violations) == 50
    assert {v.kind for _, v in report.violations} == {kind}


# ---- each check, on a clean run with one thing changed


def clean_run() -> tuple[dict, Program]:
    program = load(CORPUS / "rcuref-critical-states.txt", KNOWN).with_config(slab="deferred")
    (run,) = runs(program, 1)
    check_run(run, program)
    return run, program


def index_of(events: list, kind: str) -> int:
    return next(i for i, e in enumerate(events) if e[0] == kind)


def tampered_kind(change) -> str:
    run, program = clean_run()
    run = copy.deepcopy(run)
    change(run)
    with pytest.raises(Violation) as caught:
        check_run(run, program)
    return caught.value.kind


def freeing_thread(run: dict) -> list:
    return next(t for t in run["threads"] if any(e[0] == "free" for e in t))


def test_check_panic():
    assert tampered_kind(lambda run: run["threads"][1].append(("panic", 1, "boom"))) == "panic"


def test_check_double_free():
    def free_again(run):
        thread = freeing_thread(run)
        thread.append(thread[index_of(thread, "free")])
    assert tampered_kind(free_again) == "double-free"


def test_check_free_without_release():
    def forget_the_put(run):
        thread = freeing_thread(run)
        i = max(j for j in range(index_of(thread, "free")) if thread[j][0] == "ref_ret")
        thread[i] = thread[i][:4] + (False,)
    assert tampered_kind(forget_the_put) == "free-without-release"


def test_check_reclaim():
    assert tampered_kind(lambda run: run["reclaims"].append(run["reclaims"][0])) == "bad-reclaim"
    assert tampered_kind(lambda run: run["reclaims"].pop()) == "bad-reclaim"


def test_check_warning():
    assert tampered_kind(lambda run: run["threads"][0].append(("warn", 0, 0, "imbalanced_put"))) == "unexpected-warning"
    assert tampered_kind(lambda run: run["threads"][0].append(("warn", 0, 0, "saturated"))) == "unexpected-warning"


def test_check_rcuref_result():
    def get_succeeds_on_dead(run):
        thread = [("ref_call", 0, 0, "get"), ("atomic", 0, 0, "add", "relaxed", 0xE0000000, 0xE0000001),
                  ("ref_ret", 0, 0, "get", True)]
        run["threads"][0][1:1] = thread
    assert tampered_kind(get_succeeds_on_dead) == "not-linearizable"


def test_check_tree_membership():
    def keep_in_tree(run):
        thread = run["threads"][0]
        del thread[index_of(thread, "tree_remove")]
    assert tampered_kind(keep_in_tree) == "vma-invariant"


def test_check_counter():
    def one_reference_too_many(run):
        run["final_counters"][1] = 1
        run["setup"].append(("alloc", -1, 1, 1))
        run["setup"].append(("tree_insert", -1, 0, 1, 8, 12, 8))
        run["trees"][0].append((1, 8, 12))
    assert tampered_kind(one_reference_too_many) == "counter-mismatch"


def test_check_leak():
    assert tampered_kind(lambda run: run["setup"].append(("alloc", -1, 1, 1))) == "leak"
