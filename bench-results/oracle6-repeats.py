"""What per-object memoization and prefix sharing could save the oracle, measured on the histories
of `pyfuzz bench speed`'s own loop (its campaign inputs and its 3 threads x 16 programs, the same
seeds): counts, not timings, so the load does not matter.

- per allocation: how often an allocation's rcuref sub-history (what linearizability judges:
  `Linearizability.with_pending` and `.ops`, calls and returns reduced to their order, the initial state,
  each operation's function, result and warnings; thread names and event indices dropped, as a
  memoized verdict could not depend on them) repeats one met earlier in the loop;
- per cluster (linearize_ops's cut at quiescent points, `cluster_end`): the same for each
  cluster without its start state, the multi-operation ones weighted by their operations (the
  one-operation clusters are a plain replay, cheaper than any lookup);
- prefixes: the share of a distinct history's events that is a prefix of an earlier distinct
  history of the same input (its own schedule and its walks), the most an incremental check
  resumed at that point could skip.

With `--callgrind` it also counts, under callgrind on the compiled build, the instructions of
`check` and of linearizability in it (`Linearizability.finish`, `.completed`), per history.

    .venv/bin/python bench-results/oracle6-repeats.py [--callgrind]
"""

from __future__ import annotations

import random
import subprocess
import sys
import tempfile

from pyfuzz import _core
from pyfuzz.bench import MUTANT_CONFIG, SPEED_OPS, SPEED_THREADS, _shaped_program, checked_loop, spell_input
from pyfuzz.harness import WALK_DEPTH
from pyfuzz.oracle import Violation
from pyfuzz.oracle.history import History
from pyfuzz.oracle.linearizability import cluster_end
from pyfuzz.program import random_input


def loops(inputs: int = 200):
    """`bench speed --inputs 200`'s campaign inputs and 3 x 16 programs: its generator and seed,
    drawn in its order (the grid's rows before 3 x 16 draw from the same generator)."""
    rng = random.Random(2024)
    campaign = [random_input(rng) for _ in range(inputs)]
    for threads in SPEED_THREADS:
        for ops in SPEED_OPS:
            grid = [_shaped_program(rng, threads, ops, ("get", "put", "rmap")) for _ in range(max(inputs // 4, 1))]
            if (threads, ops) == (3, 16):
                return {"default campaign loop": campaign,
                        "3 threads x 16 get/put/rmap ops": [spell_input(*p) for p in grid]}
    raise AssertionError("the bench's grid has no 3 x 16 row")


def distinct_by_input(inputs):
    """Per input, its distinct histories' events in the loop's order (one digest table for all)."""
    engine = _core.Engine(MUTANT_CONFIG)
    groups, seen = [], set()

    def own(data):
        groups.append([])
        return engine.run_bytes(data)

    def keep(outcome):
        if outcome.digest not in seen:
            seen.add(outcome.digest)
            groups[-1].append(outcome.events)
    checked_loop(own, lambda d, s, n: engine.run_bytes_with(d, "pct", s, WALK_DEPTH, n), keep, inputs)
    return groups


def order_key(ops):
    """Calls and returns replaced by their rank among the sub-history's own points."""
    points = sorted({o[0] for o in ops} | {o[1] for o in ops if o[1] is not None})
    rank = {p: i for i, p in enumerate(points)}
    return tuple((rank[o[0]], None if o[1] is None else rank[o[1]], o[3], o[4], o[5]) for o in ops)


def subhistories(events):
    h = History(events, MUTANT_CONFIG)
    stop = len(events) + 1
    try:
        h.run()
    except Violation as v:
        stop = v.event_index
    pending = h.lin.with_pending(stop)
    out = [(a.init, pending.get(a.aid, h.lin.ops[a.aid])) for a in h.allocs]
    out = [(init, ops) for init, ops in out if init is not None and ops]
    h.close()
    return out


def shared_prefix(events, earlier) -> int:
    best = 0
    for prev in earlier:
        n = min(len(prev), len(events))
        k = 0
        while k < n and prev[k] == events[k]:
            k += 1
        best = max(best, k)
    return best


def measure(groups) -> dict:
    objects, clusters = set(), set()
    r = dict.fromkeys(("histories", "events", "prefix", "subhistories", "sub_hits", "ops", "ops_in_hits",
                       "multi_ops", "multi_ops_in_hits"), 0)
    for group in groups:
        for j, events in enumerate(group):
            r["histories"] += 1
            r["events"] += len(events)
            r["prefix"] += shared_prefix(events, group[:j])
            for init, ops in subhistories(events):
                key = (init, order_key(ops))
                r["subhistories"] += 1
                r["ops"] += len(ops)
                if key in objects:
                    r["sub_hits"] += 1
                    r["ops_in_hits"] += len(ops)
                objects.add(key)
                i = 0
                while i < len(ops):
                    end = cluster_end(ops, i)
                    if end - i > 1:
                        c = order_key(ops[i:end])
                        r["multi_ops"] += end - i
                        if c in clusters:
                            r["multi_ops_in_hits"] += end - i
                        clusters.add(c)
                    i = end
    return r


_GRIND = """
import sys
sys.path.insert(0, %(here)r)
import importlib
from pyfuzz import model
from pyfuzz.bench import MUTANT_CONFIG
repeats = importlib.import_module("oracle6-repeats")
assert model.ORACLE_NAME == "compiled with mypyc", model.ORACLE_NAME
events = [e for g in repeats.distinct_by_input(repeats.loops()[%(loop)r]) for e in g][:%(n)d]
for ev in events + events[:5]:  # (the first five again: nothing is counted cold but those)
    try:
        model.check(ev, MUTANT_CONFIG)
    except model.Violation:
        pass
"""
FUNCTIONS = {"check": "CPyDef_oracle_mypyc___check",
             "Linearizability.finish": "CPyDef_linearizability___Linearizability___finish",
             "Linearizability.completed": "CPyDef_linearizability___Linearizability___completed"}


def instructions(loop: str, n: int, function: str) -> float:
    """Instructions in `function` per history over the loop's first n distinct histories."""
    here = str(__import__("pathlib").Path(__file__).resolve().parent)
    with tempfile.NamedTemporaryFile("w", suffix=".py") as script, tempfile.NamedTemporaryFile() as out:
        script.write(_GRIND % {"here": here, "loop": loop, "n": n})
        script.flush()
        r = subprocess.run(["valgrind", "--tool=callgrind", f"--toggle-collect={function}",
                            f"--callgrind-out-file={out.name}", sys.executable, script.name],
                           capture_output=True, text=True, env={"PYTHONHASHSEED": "0", "PATH": "/usr/bin:/bin"})
        line = next(x for x in r.stderr.splitlines() if "Collected" in x)
    return int(line.split(":")[-1].replace(",", "")) / (n + 5)


def main() -> None:
    for name, inputs in loops().items():
        r = measure(distinct_by_input(inputs))
        print(f"{name}: {r['histories']} distinct histories, {r['events'] / r['histories']:.0f} events each")
        print(f"  allocation sub-histories met before: {r['sub_hits']:,} of {r['subhistories']:,} "
              f"({r['sub_hits'] / r['subhistories']:.1%}), holding {r['ops_in_hits'] / r['ops']:.1%} of "
              f"{r['ops']:,} operations")
        print(f"  operations in multi-operation clusters: {r['multi_ops']:,} ({r['multi_ops'] / r['ops']:.1%}), "
              f"in a cluster met before: {r['multi_ops_in_hits'] / max(r['multi_ops'], 1):.1%}")
        print(f"  events in a prefix shared with an earlier history of the same input: "
              f"{r['prefix'] / r['events']:.1%}")
        if "--callgrind" in sys.argv:
            n = 100 if name.startswith("default") else 30
            counts = {f: instructions(name, n, sym) for f, sym in FUNCTIONS.items()}
            lin = counts["Linearizability.finish"] + counts["Linearizability.completed"]
            print(f"  callgrind, compiled, per history over the first {n}: "
                  + ", ".join(f"{f} {c:,.0f}" for f, c in counts.items())
                  + f"; linearizability {lin / counts['check']:.1%} of check")


if __name__ == "__main__":
    main()
