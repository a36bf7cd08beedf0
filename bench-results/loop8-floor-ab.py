"""The floor of `pyfuzz bench speed` (its second table: the engine only, + the export, + the kind
pass) for two builds of `_core` in one process, passes interleaved (build, then judge, in turn),
on the bench's own inputs (`oracle6-repeats.loops()`: the campaign inputs and the 3 x 16
programs), per CPU second of this process as `bench speed` counts; medians and the ratio of the
medians. Both builds are loaded side by side, so the load falls on both alike.

    .venv/bin/python bench-results/loop8-floor-ab.py BASELINE_MODULE [MODULE] [--repeats N] [--processes K]

MODULE defaults to this tree's build (pyfuzz/_core*.so). With `--processes K` each build runs
alone in its own child instead, K children each, the builds alternating (as `bench engine` does):
the medians are then over all the children's passes.
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from pyfuzz import _core as tree_core  # noqa: E402
from pyfuzz.bench import LOOP_JUDGES, MUTANT_CONFIG, _ignore, checked_loop  # noqa: E402
from pyfuzz.harness import WALK_DEPTH  # noqa: E402

JUDGES = ("engine", "exported", "floor")


def load(path: Path, package: str):
    """The extension module at `path`, imported as `package._core` (its init function is the
    module's own, so two builds live side by side)."""
    spec = importlib.util.spec_from_file_location(f"{package}._core", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def one_pass(core, judge: str, inputs) -> float:
    engine = core.Engine(MUTANT_CONFIG)

    def walk(data, seed, steps):
        return engine.run_bytes_with(data, "pct", seed, WALK_DEPTH, steps)
    judges = LOOP_JUDGES[judge]
    histories = judges(MUTANT_CONFIG) if judges is not None else None
    start = time.process_time()
    runs = checked_loop(engine.run_bytes, walk, histories.judge if histories is not None else _ignore, inputs)
    return runs / (time.process_time() - start)


def passes(builds: dict, repeats: int) -> dict:
    """Per loop, the runs/s of every pass of each build with each judge."""
    rates = {}
    for loop, inputs in importlib.import_module("oracle6-repeats").loops().items():
        for core in builds.values():  # warm: the event tuple tables, the interpreter
            one_pass(core, "floor", inputs)
        for _ in range(repeats):
            for b, core in builds.items():
                for j in JUDGES:
                    rates.setdefault(f"{loop}|{b}|{j}", []).append(one_pass(core, j, inputs))
    return rates


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("baseline", type=Path)
    p.add_argument("module", type=Path, nargs="?")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--processes", type=int, default=0)
    p.add_argument("--child", choices=("baseline", "this"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        path = args.baseline if args.child == "baseline" else args.module
        core = load(path, f"loop8_{args.child}") if path else tree_core
        print(json.dumps(passes({args.child: core}, args.repeats)))
        return 0
    print(f"load before: {os.getloadavg()[0]:.2f}", flush=True)
    if args.processes:
        rates: dict = {}
        for _ in range(args.processes):
            for b in ("baseline", "this"):
                argv = [sys.executable, __file__, str(args.baseline), *([str(args.module)] if args.module else []),
                        "--repeats", str(args.repeats), "--child", b]
                out = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)
                for k, v in out.items():
                    rates.setdefault(k, []).extend(v)
    else:
        rates = passes({"baseline": load(args.baseline, "loop8_baseline"),
                        "this": load(args.module, "loop8_this") if args.module else tree_core}, args.repeats)
    rows = []
    for loop in importlib.import_module("oracle6-repeats").loops():
        med = {(b, j): statistics.median(rates[f"{loop}|{b}|{j}"]) for b in ("baseline", "this") for j in JUDGES}
        for j in JUDGES:
            rows.append(f"| {loop} | {j} | {med['baseline', j]:,.0f} | {med['this', j]:,.0f} | "
                        f"{med['this', j] / med['baseline', j]:.2f}x |")
    print(f"load after: {os.getloadavg()[0]:.2f}")
    print("| loop | runs/s of | baseline | this build | ratio |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
