"""Instructions per run of `pyfuzz bench speed`'s loop outside the oracle, for this tree's `_core`
and for another build of it (`--baseline MODULE`, e.g. the session start's), on the bench's own
inputs (`oracle6-repeats.loops()`: the campaign inputs and the 3 x 16 programs). Counts, not
timings: the load does not change them.

Each child runs `checked_loop` with one of the floor's judges (`bench.LOOP_JUDGES`: `engine`,
`exported`, `floor`) for two passes, a fresh digest table each, as `bench speed` does, and only the
second is counted (callgrind's `--toggle-collect` on the C function that runs it, `functools.reduce`):
the event tuple table and the interpreter are warm.

    .venv/bin/python bench-results/loop8-callgrind.py [--baseline MODULE] [--module MODULE] [--profile DIR]

With `--profile DIR` it keeps each callgrind output in DIR for `callgrind_annotate`.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LOOPS = ("default campaign loop", "3 threads x 16 get/put/rmap ops")
JUDGES = ("engine", "exported", "floor")

_CHILD = """
import functools, importlib, json, sys
sys.path.insert(0, %(here)r)
if %(module)r:
    import importlib.util, pyfuzz
    spec = importlib.util.spec_from_file_location("pyfuzz._core", %(module)r)
    core = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(core)
    sys.modules["pyfuzz._core"] = pyfuzz._core = core
from pyfuzz import _core
from pyfuzz.bench import LOOP_JUDGES, MUTANT_CONFIG, checked_loop, _ignore
from pyfuzz.harness import WALK_DEPTH
inputs = importlib.import_module("oracle6-repeats").loops()[%(loop)r]
engine = _core.Engine(MUTANT_CONFIG)
def walk(data, seed, steps):
    return engine.run_bytes_with(data, "pct", seed, WALK_DEPTH, steps)
judges = LOOP_JUDGES[%(judge)r]
def one_pass(*_):
    histories = judges(MUTANT_CONFIG) if judges is not None else None
    runs = checked_loop(engine.run_bytes, walk, histories.judge if histories is not None else _ignore, inputs)
    return {"runs": runs, "distinct": histories.checked if histories is not None else 0}
one_pass()
print(json.dumps(functools.reduce(one_pass, [0], 0)))
"""


def per_run(module: str, loop: str, judge: str, profile: Path | None, tag: str) -> tuple[float, dict]:
    """Instructions per run of the counted pass, and its runs and distinct histories."""
    script = _CHILD % {"here": str(HERE), "module": module, "loop": loop, "judge": judge}
    out = str(profile / f"{tag}-{loop.split()[0]}-{judge}.out") if profile is not None else "/dev/null"
    r = subprocess.run(["valgrind", "--tool=callgrind", "--toggle-collect=functools_reduce",
                        f"--callgrind-out-file={out}", sys.executable, "-c", script],
                       capture_output=True, text=True, cwd=REPO, env={"PYTHONHASHSEED": "0", "PATH": "/usr/bin:/bin"})
    if r.returncode != 0:
        raise SystemExit(f"the child failed: {r.stderr.strip().splitlines()[-1:]}")
    seen = json.loads(r.stdout.strip().splitlines()[-1])
    return int(re.search(r"Collected : (\d+)", r.stderr).group(1)) / seen["runs"], seen


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", type=Path, help="another build's _core module, measured beside this tree's")
    p.add_argument("--module", type=Path, help="measure this _core module instead of this tree's")
    p.add_argument("--profile", type=Path)
    p.add_argument("--engine-only", action="store_true", help="count the engine-only loop alone")
    args = p.parse_args()
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    builds = {"this tree": ""} if args.module is None else {f"{args.module}": str(args.module.resolve())}
    if args.baseline is not None:
        builds = {f"baseline {args.baseline}": str(args.baseline.resolve()), **builds}
    print("| build | loop | engine only, instructions per run | + export, per distinct history | "
          "+ kind pass, per distinct history | runs | distinct |")
    print("|---|---|---|---|---|---|---|")
    for loop in LOOPS:
        for name, module in builds.items():
            tag = "baseline" if module and module == builds.get(f"baseline {args.baseline}") else "tree"
            counts = {j: per_run(module, loop, j, args.profile, tag) for j in JUDGES[:1 if args.engine_only else 3]}
            engine = counts["engine"][0]
            if args.engine_only:
                print(f"| {name} | {loop} | {engine:,.0f} | | | {counts['engine'][1]['runs']} | |", flush=True)
                continue
            runs, distinct = counts["exported"][1]["runs"], counts["exported"][1]["distinct"]
            export = (counts["exported"][0] - engine) * runs / distinct
            kinds = (counts["floor"][0] - counts["exported"][0]) * runs / distinct
            print(f"| {name} | {loop} | {engine:,.0f} | {export:,.0f} | {kinds:,.0f} | {runs} | {distinct} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
