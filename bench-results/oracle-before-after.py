"""The oracle at 858d715 (before its split into rule units) against the current one, in one
process, through `pyfuzz bench`'s harness loop on the same inputs, passes interleaved.

    .venv/bin/python bench-results/oracle-before-after.py

The old oracle is read from git (`git show 858d715:pyfuzz/model.py`), not kept in the tree.
"""

import importlib.util
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pyfuzz import _core
from pyfuzz import oracle as new
from pyfuzz.bench import MUTANT_CONFIG, WALK_DEPTH, _shaped_program, checked_loop, spell_input
from pyfuzz.program import random_input

BEFORE = "858d715"


def old_oracle():
    source = subprocess.run(["git", "show", f"{BEFORE}:pyfuzz/model.py"], check=True, capture_output=True,
                            text=True, cwd=Path(__file__).parent).stdout
    path = Path(tempfile.mkdtemp()) / "model_before.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("model_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rate(mod, engine, inputs):
    seen = set()

    def judge(outcome):
        if outcome.digest not in seen:
            seen.add(outcome.digest)
            try:
                mod.check(outcome.events, MUTANT_CONFIG, outcome.final_counters)
            except mod.Violation:
                pass
    start = time.perf_counter()
    runs = checked_loop(engine.run_bytes, lambda d, seed, steps: engine.run_bytes_with(d, "pct", seed, WALK_DEPTH, steps),
                        judge, inputs)
    return runs / (time.perf_counter() - start)


def main():
    old = old_oracle()
    engine = _core.Engine(MUTANT_CONFIG)
    rng = random.Random(2024)
    rows = {"default campaign loop": [random_input(rng) for _ in range(200)],
            "3 threads x 16 get/put/rmap ops":
                [spell_input(*_shaped_program(rng, 3, 16, ("get", "put", "rmap"))) for _ in range(30)]}
    print(f"| loop | {BEFORE} oracle, runs/s | now, runs/s | now / then |\n|---|---|---|---|")
    for name, inputs in rows.items():
        rates = {BEFORE: [], "now": []}
        for _ in range(3):
            rates[BEFORE].append(rate(old, engine, inputs))
            rates["now"].append(rate(new, engine, inputs))
        a, b = statistics.median(rates[BEFORE]), statistics.median(rates["now"])
        print(f"| {name} | {a:,.0f} | {b:,.0f} | {b / a:.2f}x |")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
