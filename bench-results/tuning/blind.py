"""The blind PCT walk alone, as `pyfuzz bench bugs`'s pct-walk method runs it, at a chosen depth:
30 seeds, 30 s budget, random programs, every distinct history checked. Prints the medians.

    python bench-results/tuning/blind.py DEPTH put_reread,put_no_preempt,seed,put_no_cmpxchg
"""

import random
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor

from pyfuzz import _core
from pyfuzz.bench import MUTANT_CONFIG
from pyfuzz.model import DistinctHistories
from pyfuzz.program import DEFAULT_CONFIG, random_input


def one(job):
    mutant, depth, seed = job
    config = dict(DEFAULT_CONFIG) if mutant == "seed" else dict(MUTANT_CONFIG)
    rng = random.Random(seed)
    engine = _core.Engine(config, "none" if mutant == "seed" else mutant)
    histories = DistinctHistories(config)
    start = time.monotonic()
    while time.monotonic() - start < 30:
        outcome = engine.run_bytes_with(random_input(rng), "pct", rng.getrandbits(64), depth)
        if histories.judge(outcome) is not None:
            return mutant, time.monotonic() - start
    return mutant, 30.0


if __name__ == "__main__":
    depth, mutants = int(sys.argv[1]), sys.argv[2].split(",")
    with ProcessPoolExecutor(2) as pool:
        runs = list(pool.map(one, [(m, depth, s) for m in mutants for s in range(30)]))
    for m in mutants:
        print(f"blind PCT depth {depth}", m, "median s", round(statistics.median(t for mm, t in runs if mm == m), 2))
