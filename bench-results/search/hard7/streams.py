"""The loop of `pyfuzz bench walks --method pct-walk` (pyfuzz.bench.count_violations) on other program
streams: `python streams.py MUTANT INPUTS PROGRAM_SEED WALK_SEED`. The official command draws its
programs from Random(2024) and its walks from Random(2025); a rate counted on one stream of a
million has the spread of a Poisson count, so more streams narrow it."""
import random
import sys
import time

from pyfuzz import _core
from pyfuzz.bench import WALK_DEPTH, mutant_config, random_input
from pyfuzz.model import DistinctHistories

mutant, inputs, program_seed, walk_seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
config = mutant_config(mutant)
programs, walks = random.Random(program_seed), random.Random(walk_seed)
engine, histories = _core.Engine(config, mutant), DistinctHistories(config)
kinds, at, start = {}, [], time.time()
for i in range(inputs):
    data = random_input(programs)
    violation = histories.judge(engine.run_bytes_with(data, "pct", walks.getrandbits(64), WALK_DEPTH))
    if violation is not None:
        kinds[violation.kind] = kinds.get(violation.kind, 0) + 1
        at.append(i)
print(f"{mutant} programs=Random({program_seed}) walks=Random({walk_seed}) inputs={inputs:,}: {kinds} "
      f"at programs {at} ({time.time() - start:.0f} s)", flush=True)
