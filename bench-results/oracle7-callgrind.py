"""Instructions per history of the compiled oracle, on the histories of `pyfuzz bench speed`'s own
loop (the first distinct histories of its campaign inputs and of its 3 threads x 16 programs, as
`oracle6-repeats.py` draws them), for this checkout's mypyc build and for main's oracle at
`bench.ORACLE_MAIN` compiled by the same mypyc (`bench.compiled_oracle_at`). Counts, not
timings: the load does not change them. Only `check` is counted (`--toggle-collect`), with the
first five histories judged once before counting starts, so nothing is counted cold.

    .venv/bin/python bench-results/oracle7-callgrind.py [--profile DIR]

With `--profile DIR` it also keeps each callgrind output in DIR and writes the per-function
inclusive and self counts (`callgrind_annotate`) beside it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from pyfuzz.bench import ORACLE_MAIN

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LOOPS = {"default campaign loop": 100, "3 threads x 16 get/put/rmap ops": 30}


def distinct(inputs) -> list[tuple[list, list]]:
    """The loop's distinct histories (events, final counters), in the order it meets them."""
    from pyfuzz import _core
    from pyfuzz.bench import MUTANT_CONFIG, checked_loop
    from pyfuzz.harness import WALK_DEPTH
    engine = _core.Engine(MUTANT_CONFIG)
    seen: set[int] = set()
    out = []

    def keep(outcome):
        if outcome.digest not in seen:
            seen.add(outcome.digest)
            out.append((outcome.events, outcome.final_counters))
    checked_loop(engine.run_bytes, lambda d, s, n: engine.run_bytes_with(d, "pct", s, WALK_DEPTH, n), keep, inputs)
    return out


_GRIND = """
import sys
sys.path.insert(0, %(here)r)
import importlib
from pyfuzz.bench import MUTANT_CONFIG
repeats = importlib.import_module("oracle6-repeats")
grind = importlib.import_module("oracle7-callgrind")
if %(before)r:
    from pyfuzz.bench import compiled_oracle_at
    mod = compiled_oracle_at(%(before)r)
else:
    from pyfuzz import model
    assert model.ORACLE_NAME == "compiled with mypyc", model.ORACLE_NAME
    mod = model.ORACLE
cases = grind.distinct(repeats.loops()[%(loop)r])[:%(n)d]
for events, final in cases[:5] + cases:  # the first five twice: nothing is counted cold but those
    try:
        mod.check(events, MUTANT_CONFIG, final)
    except mod.Violation:
        pass
"""


def instructions(loop: str, n: int, before: str = "", keep: Path | None = None) -> float:
    """Instructions in `check` per history over the loop's first n distinct histories, of this
    build or (`before`: a commit) of the oracle at that commit compiled alike."""
    symbol = f"CPyDef_pyfuzz_oracle_{before}_mypyc___check" if before else "CPyDef_oracle_mypyc___check"
    with tempfile.NamedTemporaryFile("w", suffix=".py") as script, tempfile.NamedTemporaryFile() as out:
        script.write(_GRIND % {"here": str(HERE), "loop": loop, "n": n, "before": before})
        script.flush()
        dest = str(keep) if keep is not None else out.name
        r = subprocess.run(["valgrind", "--tool=callgrind", f"--toggle-collect={symbol}",
                            f"--callgrind-out-file={dest}", sys.executable, script.name],
                           capture_output=True, text=True, env={"PYTHONHASHSEED": "0", "PATH": "/usr/bin:/bin"},
                           cwd=REPO)
        lines = [x for x in r.stderr.splitlines() if "Collected" in x]
        if not lines:
            raise RuntimeError(r.stderr[-2000:])
    if keep is not None:
        for inclusive in ("yes", "no"):
            a = subprocess.run(["callgrind_annotate", f"--inclusive={inclusive}", "--threshold=99.5", str(keep)],
                               capture_output=True, text=True)
            keep.with_suffix(f".{'inclusive' if inclusive == 'yes' else 'self'}.txt").write_text(a.stdout)
    # the warm-up histories are counted too (check is collected every call): n + 5 checks
    return int(lines[0].split(":")[-1].replace(",", "")) / (n + 5)


def main() -> None:
    profile = Path(sys.argv[sys.argv.index("--profile") + 1]) if "--profile" in sys.argv else None
    if profile is not None:
        profile.mkdir(parents=True, exist_ok=True)
    for loop, n in LOOPS.items():
        tag = "campaign" if loop.startswith("default") else "3x16"
        now = instructions(loop, n, keep=profile / f"now-{tag}.out" if profile else None)
        old = instructions(loop, n, ORACLE_MAIN, keep=profile / f"{ORACLE_MAIN}-{tag}.out" if profile else None)
        print(f"{loop}: first {n} distinct histories, instructions per history in check: "
              f"main {ORACLE_MAIN} {old:,.0f}, this build {now:,.0f} ({old / now:.2f}x fewer)", flush=True)


if __name__ == "__main__":
    main()
