"""The harness-tuning runs of BENCHMARKS.md ("Tuning the harness"): pyfuzz campaigns from an
empty corpus, 30 s budget, campaign seeds 1..N (as `pyfuzz bench bugs` uses them), two at a
time. Each setting was run by editing the harness's constants, then:

    python bench-results/tuning/run.py LABEL put_reread,put_no_preempt,put_no_cmpxchg,seed 30

`seed` is the seed configuration's own race (no mutant); mutants run under bench's
MUTANT_CONFIG. Writes LABEL.json (one record per run) and prints the medians.
"""

import json
import statistics
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from pyfuzz import campaign
from pyfuzz.bench import MUTANT_CONFIG
from pyfuzz.program import DEFAULT_CONFIG


def one(job):
    mutant, seed = job
    found_by_walk = {}
    finalize = campaign._finalize

    def remember_walk(raw, *args, **kwargs):
        found_by_walk["walk"] = raw["walk"] is not None
        return finalize(raw, *args, **kwargs)

    campaign._finalize = remember_walk
    config = dict(DEFAULT_CONFIG) if mutant == "seed" else dict(MUTANT_CONFIG)
    with tempfile.TemporaryDirectory() as tmp:
        r = campaign.run_campaign(config, "none" if mutant == "seed" else mutant, 30, None, Path(tmp), seed + 1,
                                  minimize_finding=False)
    f = r.finding
    return dict(mutant=mutant, seed=seed, found=f is not None, seconds=f.seconds if f else None,
                execs=f.executions if f else r.executions, walk=found_by_walk.get("walk"), eps=r.exec_per_second)


if __name__ == "__main__":
    label, mutants, seeds = sys.argv[1], sys.argv[2].split(","), range(int(sys.argv[3]))
    with ProcessPoolExecutor(2) as pool:
        runs = list(pool.map(one, [(m, s) for m in mutants for s in seeds]))
    Path(f"{label}.json").write_text(json.dumps(runs))
    for m in mutants:
        rs = [r for r in runs if r["mutant"] == m]
        print(label, m, "median s", round(statistics.median(r["seconds"] if r["found"] else 30 for r in rs), 2),
              "found", sum(r["found"] for r in rs), "/", len(rs))
