"""The mypyc build of the oracle at main when the fifth session began (df366ab, MUTANT_CONFIG with
rmap_lock=rwsem) against the build that runs here, in `pyfuzz bench speed`'s loop on its inputs,
passes interleaved (`bench._before_after`: the loop's checked runs/s and the oracle alone per
distinct history).  The old source is read from git and compiled with mypyc into a temporary
directory (a few minutes), not kept in the tree.

    .venv/bin/python bench-results/oracle5-versus-main.py
"""

import importlib
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import pyfuzz
from pyfuzz import _core, model
from pyfuzz.bench import MUTANT_CONFIG, WALK_DEPTH, _before_after, _shaped_program, spell_input
from pyfuzz.program import random_input

BEFORE = "df366ab"
REPO = Path(__file__).resolve().parents[1]


def compiled_at(commit: str):
    where = Path(tempfile.mkdtemp(prefix=f"pyfuzz-oracle-{commit}-"))
    (where / "pyfuzz" / "oracle_before").mkdir(parents=True)
    (where / "pyfuzz" / "__init__.py").write_text("")
    names = subprocess.run(["git", "ls-tree", "--name-only", f"{commit}:pyfuzz/oracle/"], cwd=REPO, check=True,
                           capture_output=True, text=True).stdout.split()
    for name in names:
        text = subprocess.run(["git", "show", f"{commit}:pyfuzz/oracle/{name}"], cwd=REPO, check=True,
                              capture_output=True, text=True).stdout
        (where / "pyfuzz" / "oracle_before" / name).write_text(text)
    setup = ("from setuptools import setup\nfrom mypyc.build import mypycify\n"
             "setup(name='before', script_args=['build_ext', '--inplace'], ext_modules=mypycify("
             "['--check-untyped-defs', 'pyfuzz/oracle_before'], opt_level='3', group_name='pyfuzz.oracle_before'))\n")
    subprocess.run([sys.executable, "-c", setup], cwd=where, check=True, capture_output=True)
    pyfuzz.__path__.append(str(where / "pyfuzz"))
    return importlib.import_module("pyfuzz.oracle_before")


def main():
    assert model.ORACLE_NAME == "compiled with mypyc", model.ORACLE_NAME
    before = compiled_at(BEFORE)
    engine = _core.Engine(MUTANT_CONFIG)
    own = engine.run_bytes

    def walk(data, seed, steps):
        return engine.run_bytes_with(data, "pct", seed, WALK_DEPTH, steps)

    # the inputs bench speed draws for these two rows (the same generator, the same order)
    rng = random.Random(2024)
    loops = {"default campaign loop": [random_input(rng) for _ in range(200)]}
    for threads in (2, 3, 4):
        for ops in (8, 16, 32):
            programs = [_shaped_program(rng, threads, ops, ("get", "put", "rmap")) for _ in range(50)]
            if (threads, ops) == (3, 16):
                loops["3 threads x 16 get/put/rmap ops"] = [spell_input(*p) for p in programs]
    mods = {f"main {BEFORE}, mypyc": before, "now, mypyc": model.ORACLE}
    for name, inputs in loops.items():
        print(name, json.dumps(_before_after(own, walk, inputs, 3, mods)), flush=True)


if __name__ == "__main__":
    main()
