"""The differential check at scale: the mypyc build that runs here against main's oracle at
`bench.ORACLE_MAIN` compiled by the same mypyc (`bench.compiled_oracle_at`), on the histories of
tests/test_oracle_differential.py (the corpus, every mutant under several configurations, random
programs under random configurations, histories with an rwsem event dropped or repeated, the
pure-Python executor), its random part drawn `--scale` times over from each of `--seeds` seeds.
Every history must get the same verdict (kind, event index, message) and the same damage
witness, and the same verdict again from the campaign's way of judging (`DistinctHistories.verdict`,
one History per configuration started again for each history); the first that does not is
printed and the script exits 1.

    .venv/bin/python bench-results/oracle7-differential.py [--scale 10] [--seeds 3]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    from pyfuzz import model
    from pyfuzz.bench import ORACLE_MAIN, compiled_oracle_at
    assert model.ORACLE_NAME == "compiled with mypyc", model.ORACLE_NAME
    before = compiled_oracle_at(ORACLE_MAIN)
    spec = importlib.util.spec_from_file_location("differential", HERE.parent / "tests" / "test_oracle_differential.py")
    diff = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(diff)
    kinds: Counter = Counter()
    judges: dict = {}
    start = time.time()
    for seed in range(args.seeds):
        for events, config, final_counters in diff._histories(seed=1000 + seed, scale=args.scale, corpus=seed == 0):
            now = diff._verdict(model.ORACLE, events, config, final_counters)
            old = diff._verdict(before, events, config, final_counters)
            if now != old or diff._judged_in_turn(model.ORACLE, judges, events, config, final_counters) != now[0]:
                print(f"verdicts differ on {config}:\n  main {ORACLE_MAIN}: {old}\n  now: {now}\n  events: {events}")
                return 1
            kinds[now[0][0] if now[0] else "ok"] += 1
    total = sum(kinds.values())
    print(f"{total:,} histories, the same verdict and damage witness from main {ORACLE_MAIN}'s oracle and this "
          f"one (both mypyc builds), {time.time() - start:.0f} s: "
          + ", ".join(f"{k} {n:,}" for k, n in kinds.most_common()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
