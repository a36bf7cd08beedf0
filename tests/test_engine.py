"""The Rust core seen from Python: determinism, the total decoder, and agreement on the facts
that both sides spell out (configuration keys, limits, mutant names)."""

import random

import pytest

from pyfuzz import _core
from pyfuzz.check import decode
from pyfuzz.program import CONFIG_VALUES, LIMITS, Program, ProgramError

SEED_CONFIG = {"vma_ref": "on", "slab": "typesafe", "put": "preempt", "debug_vm": "on"}


def random_inputs(n, seed=0):
    rng = random.Random(seed)
    return [bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 300))) for _ in range(n)]


def test_config_and_limits_agree_with_the_program_format():
    assert dict(_core.CONFIG) == CONFIG_VALUES
    for key, value in LIMITS.items():
        assert _core.LIMITS[key] == value


def test_every_byte_string_decodes_to_a_program_the_text_form_accepts():
    for data in random_inputs(300):
        program = Program.from_tuple(_core.decode(data), SEED_CONFIG)
        assert Program.parse(program.to_text()) == program


def test_the_decoder_draws_at_most_decoded_ops_and_tuples_take_up_to_the_op_limit():
    most = max(len(ops) for data in random_inputs(2000, seed=3) for ops in _core.decode(data)[1])
    assert most == LIMITS["decoded_ops"] < LIMITS["ops"]
    engine = _core.Engine(SEED_CONFIG)
    setup = [(0, 4, None)]
    assert engine.run_program((setup, [[("get", 0, 0, False)] * LIMITS["ops"]] * 2, [])).steps > 0
    with pytest.raises(ValueError, match="at most"):
        engine.run_program((setup, [[("get", 0, 0, False)] * (LIMITS["ops"] + 1)] * 2, []))


def test_a_program_run_as_bytes_or_as_a_tuple_has_one_history():
    engine = _core.Engine(SEED_CONFIG)
    for i, data in enumerate(random_inputs(100, seed=4)):
        program = _core.decode(data)
        own = engine.run_bytes(data)
        assert engine.run_program(program).events == own.events
        walk = engine.run_bytes_with(data, "pct", i, 8, own.steps)
        assert engine.run_program(program, "pct", i, 8, own.steps).events == walk.events


def test_an_outcome_exports_its_history_whenever_it_is_read():
    # A run of bytes shares its setup's tuples with the input's other runs (python.rs): read
    # first or later, or once the engine has gone on to other inputs, the history is the one the
    # program tuple gives.
    engine = _core.Engine(SEED_CONFIG)
    kept = []
    for i, data in enumerate(random_inputs(40, seed=10)):
        own = engine.run_bytes(data)
        walks = [engine.run_bytes_with(data, "pct", seed, 32, own.steps) for seed in (i, i + 1)]
        read_early = walks[1].events if i % 2 else None  # a walk's history read before its input's own
        kept.append((data, own, walks, read_early))
    for i, (data, own, walks, read_early) in enumerate(kept):
        program = _core.decode(data)
        assert own.events == engine.run_program(program).events
        expected = [engine.run_program(program, "pct", seed, 32, own.steps).events for seed in (i, i + 1)]
        assert [walk.events for walk in walks] == expected
        assert read_early in (None, expected[1])


def test_same_bytes_same_history_every_time():
    engine = _core.Engine(SEED_CONFIG)
    for data in random_inputs(50, seed=1):
        first = engine.run_bytes(data)
        for _ in range(3):
            again = engine.run_bytes(data)
            assert again.digest == first.digest
            assert again.events == first.events
            assert again.final_counters == first.final_counters


def test_program_tuple_and_bytes_paths_agree():
    engine = _core.Engine(SEED_CONFIG)
    for data in random_inputs(50, seed=2):
        via_tuple = _core.run(_core.decode(data), SEED_CONFIG, "none")
        assert via_tuple.events == engine.run_bytes(data).events


def test_digest_tells_different_histories_apart():
    digests = {}
    for data in random_inputs(300, seed=3):
        out = _core.Engine(SEED_CONFIG).run_bytes(data)
        key = tuple(out.events)
        assert digests.setdefault(out.digest, key) == key


def test_baseline_schedulers_are_deterministic_per_seed():
    engine = _core.Engine(SEED_CONFIG)
    for data in random_inputs(20, seed=4):
        for scheduler in ("random", "pct", "pos", "surw", "delay"):
            a = engine.run_bytes_with(data, scheduler, 42)
            b = engine.run_bytes_with(data, scheduler, 42)
            assert a.events == b.events


def test_a_harness_walk_replays_as_a_program_schedule():
    # The harness reports a walk's finding by its parameters; the campaign spells the walk out as
    # the program's schedule, which must fit the program format and give the same history.
    from pyfuzz.harness import WALK_DEPTH

    engine = _core.Engine(SEED_CONFIG)
    for seed, data in enumerate(random_inputs(200, seed=5)):
        walk = {"scheduler": "pct", "seed": seed, "depth": WALK_DEPTH, "steps": engine.run_bytes(data).steps}
        program = decode(data, SEED_CONFIG, "none", walk)
        history = engine.run_bytes_with(data, **walk).events
        assert _core.run(program.to_tuple(), SEED_CONFIG, "none").events == history
        # The harness passes the step count it just measured; without it the core measures the same.
        del walk["steps"]
        assert engine.run_bytes_with(data, **walk).events == history


def test_the_walk_schedule_gives_more_walks_to_runs_that_meet_something_new():
    from pyfuzz.harness import MAX_WALKS, NOVELTY_WALKS, WALKS_PER_INPUT, walk_indices

    def counter(values):
        it = iter(values)
        return lambda: next(it)

    # Nothing new after any run: the fixed count, and the same with the schedule off.
    assert list(walk_indices(lambda: 7, 7)) == list(range(WALKS_PER_INPUT))
    # The input's own run met something, its walks nothing.
    assert len(list(walk_indices(counter([8] * 100), 7))) == WALKS_PER_INPUT + NOVELTY_WALKS
    # The third walk met something: counted when the fourth is decided.
    met = [7, 7, 7, 9] + [9] * 100
    assert len(list(walk_indices(counter(met), 7))) == WALKS_PER_INPUT + NOVELTY_WALKS
    # Every run new: capped; without the schedule, the fixed count whatever is met.
    growing = iter(range(1, 10**6))
    assert len(list(walk_indices(lambda: next(growing), 0))) == MAX_WALKS
    assert len(list(walk_indices(lambda: next(growing), 0, power=False))) == WALKS_PER_INPUT


def test_every_sampler_walk_replays_as_a_program_schedule():
    # A blind baseline's finding is reported the same way, whichever sampler found it.
    from pyfuzz.program import LIMITS, merged_slices

    engine = _core.Engine(SEED_CONFIG)
    for scheduler in ("random", "pos", "surw", "delay"):
        replayed = 0
        for seed, data in enumerate(random_inputs(40, seed=6)):
            walk = {"scheduler": scheduler, "seed": seed, "depth": 3}
            if len(merged_slices(tuple((t, 1) for t in engine.walk_steps(data, **walk)))) > LIMITS["schedule"]:
                continue
            program = decode(data, SEED_CONFIG, "none", walk)
            assert _core.run(program.to_tuple(), SEED_CONFIG, "none").events == engine.run_bytes_with(data, **walk).events
            replayed += 1
        assert replayed > 30, scheduler


@pytest.mark.parametrize(
    "program, message",
    [
        (([], [[]], []), "threads"),
        (([(0, 4, None)], [[("mmap", 15, 4, False)], []], []), "does not fit"),
        (([(0, 4, None)], [[("munmap", 0, 0, True)], []], []), "no error path"),
        (([(0, 4, None)], [[("bogus", 0, 0, False)], []], []), "unknown operation"),
        (([(0, 4, 0xE0000000)], [[], []], []), "dead zone"),
        (([], [[], []], [(5, 1)]), "schedule"),
    ],
)
def test_run_rejects_invalid_programs_with_one_line_errors(program, message):
    with pytest.raises(ValueError, match=message) as e:
        _core.run(program, SEED_CONFIG, "none")
    assert "\n" not in str(e.value)


def test_unknown_mutant_and_config_are_rejected():
    with pytest.raises(ValueError, match="unknown mutant"):
        _core.Engine(SEED_CONFIG, "no_such_mutant")
    with pytest.raises(ValueError, match="slab"):
        _core.Engine({"slab": "sometimes"})
    with pytest.raises(ProgramError):
        Program.from_tuple(([], [[]], []), SEED_CONFIG)


def test_a_rust_panic_is_a_finding_not_a_crash(monkeypatch):
    from pyfuzz import check

    class PanicException(BaseException):  # what pyo3 raises for a Rust panic
        pass

    def panicking_run(*args):
        raise PanicException("index out of bounds")

    monkeypatch.setattr(check._core, "run", panicking_run)
    program = Program.from_tuple(([(0, 4, None)], [[("munmap", 0, 0, False)], []], []), SEED_CONFIG)
    verdict = check.execute(program)
    assert verdict.violation.kind == "panic" and "index out of bounds" in verdict.violation.message
    assert verdict.events == [] and verdict.taken == []
