"""The pure-Python baseline executor must be the same algorithm under the same schedules as the
Rust core: on random programs of gets and puts it gives the very same history, step count and
final counter, under the program's own schedule and under a PCT walk with the same seed."""

import random

from pyfuzz import _core, pyrcuref
from pyfuzz.bench import MUTANT_CONFIG, spell_input


def test_same_history_as_the_rust_core():
    rng = random.Random(5)
    engine = _core.Engine(MUTANT_CONFIG, "none")
    for _ in range(150):
        threads = [[("get", rng.randrange(5)) if rng.random() < 0.5 else ("put", 0)
                    for _ in range(rng.choice((1, 2, 4, 8)))] for _ in range(rng.choice((2, 3, 4)))]
        schedule = [(rng.randrange(len(threads)), rng.randint(1, 32)) for _ in range(rng.randint(1, 6))]
        data = spell_input(threads, schedule)
        rust = engine.run_bytes(data)
        py = pyrcuref.run((0, 4), threads, pyrcuref.ListSchedule(schedule))
        assert (py.events, py.steps, py.final_counters) == (rust.events, rust.steps, list(rust.final_counters))
        seed = rng.getrandbits(64)
        rust = engine.run_bytes_with(data, "pct", seed, 32, rust.steps)
        py = pyrcuref.run((0, 4), threads, pyrcuref.Pct(len(threads), 32, py.steps, seed))
        assert py.events == rust.events
