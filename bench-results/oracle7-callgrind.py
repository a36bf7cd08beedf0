"""Instructions per history of the compiled oracle, on the histories of `pyfuzz bench speed`'s own
loop (the first distinct histories of its campaign inputs and of its 3 threads x 16 programs, as
`oracle6-repeats.py` draws them), for this checkout's mypyc build and for main's oracle at
`BEFORE` compiled by the same mypyc (read from git into a temporary directory). Counts, not
timings: the load does not change them. Only `check` is counted (`--toggle-collect`), with the
first five histories judged once before counting starts, so nothing is counted cold.

    .venv/bin/python bench-results/oracle7-callgrind.py [--profile DIR]

With `--profile DIR` it also keeps each callgrind output in DIR and writes the per-function
inclusive and self counts (`callgrind_annotate`) beside it.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BEFORE = "2dd6bd5"
LOOPS = {"default campaign loop": 100, "3 threads x 16 get/put/rmap ops": 30}


def compiled_at(commit: str, name: str = "oracle_before") -> Path:
    """main's oracle at `commit`, compiled with mypyc as package `pyfuzz.<name>` in a temporary
    directory; returns the directory to put on pyfuzz's package path."""
    where = Path(tempfile.mkdtemp(prefix=f"pyfuzz-oracle-{commit}-"))
    (where / "pyfuzz" / name).mkdir(parents=True)
    (where / "pyfuzz" / "__init__.py").write_text("")
    files = subprocess.run(["git", "ls-tree", "--name-only", f"{commit}:pyfuzz/oracle/"], cwd=REPO, check=True,
                           capture_output=True, text=True).stdout.split()
    for f in files:
        text = subprocess.run(["git", "show", f"{commit}:pyfuzz/oracle/{f}"], cwd=REPO, check=True,
                              capture_output=True, text=True).stdout
        (where / "pyfuzz" / name / f).write_text(text)
    setup = ("from setuptools import setup\nfrom mypyc.build import mypycify\n"
             "setup(name='before', script_args=['build_ext', '--inplace'], ext_modules=mypycify("
             f"['--check-untyped-defs', 'pyfuzz/{name}'], opt_level='3', group_name='pyfuzz.{name}'))\n")
    subprocess.run([sys.executable, "-c", setup], cwd=where, check=True, capture_output=True)
    return where / "pyfuzz"


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


def load_compiled(path: Path, name: str = "oracle_before"):
    import pyfuzz
    pyfuzz.__path__.append(str(path))
    return importlib.import_module(f"pyfuzz.{name}")


_GRIND = """
import sys
sys.path.insert(0, %(here)r)
import importlib
from pathlib import Path
from pyfuzz.bench import MUTANT_CONFIG
repeats = importlib.import_module("oracle6-repeats")
grind = importlib.import_module("oracle7-callgrind")
if %(before)r:
    mod = grind.load_compiled(Path(%(before)r))
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
    """Instructions in `check` per history over the loop's first n distinct histories."""
    symbol = "CPyDef_oracle_before___check" if before else "CPyDef_oracle_mypyc___check"
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
    before = compiled_at(BEFORE)
    for loop, n in LOOPS.items():
        tag = "campaign" if loop.startswith("default") else "3x16"
        now = instructions(loop, n, keep=profile / f"now-{tag}.out" if profile else None)
        old = instructions(loop, n, str(before), keep=profile / f"{BEFORE}-{tag}.out" if profile else None)
        print(f"{loop}: first {n} distinct histories, instructions per history in check: "
              f"main {BEFORE} {old:,.0f}, this build {now:,.0f} ({old / now:.2f}x fewer)", flush=True)


if __name__ == "__main__":
    main()
