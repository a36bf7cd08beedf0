"""One hash over everything Python reads of an outcome (`events` as tuples, `digest`, `steps`,
`taken`, `final_counters`, `panicked`) for random inputs under every configuration value and every
mutant (both slabs), each under its own schedule and under PCT, POS and random walks, with one
event-tuple table across all of them as in a campaign. A change to the engine or the export that
claims to change no history prints the same hash for the module before and after.

    .venv/bin/python bench-results/loop8-export-fingerprint.py [MODULE]

MODULE: another build's `_core` extension module (e.g. the session start's), loaded in place of
this tree's.
"""

from __future__ import annotations

import hashlib
import random
import sys

if len(sys.argv) > 1:
    import importlib.util

    import pyfuzz
    spec = importlib.util.spec_from_file_location("pyfuzz._core", sys.argv[1])
    core = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(core)
    sys.modules["pyfuzz._core"] = pyfuzz._core = core

from pyfuzz import _core  # noqa: E402
from pyfuzz.program import random_input  # noqa: E402

INPUTS = 60


def configs():
    yield {}, "none"
    for key, values in _core.CONFIG.items():
        for value in values[1:]:
            yield {key: value}, "none"
    for name, _, _ in _core.MUTANTS[1:]:
        for slab in ("typesafe", "deferred"):
            yield {"slab": slab}, name


def main() -> int:
    h = hashlib.sha256()
    rng = random.Random(77)
    inputs = [random_input(rng) for _ in range(INPUTS)]
    runs = events = 0
    for config, mutant in configs():
        engine = _core.Engine(config, mutant)
        for i, data in enumerate(inputs):
            first = engine.run_bytes(data)
            outcomes = [first] + [engine.run_bytes_with(data, s, first.digest ^ i, 32, first.steps)
                                  for s in ("pct", "pct", "pos", "random")]
            for o in outcomes:
                evs = o.events
                assert o.events is evs  # built once
                h.update(repr((evs, o.digest, o.steps, o.taken, o.final_counters, o.panicked)).encode())
                runs += 1
                events += len(evs)
    print(f"export fingerprint {h.hexdigest()[:16]} over {runs} runs, {events} events")
    return 0


if __name__ == "__main__":
    sys.exit(main())
