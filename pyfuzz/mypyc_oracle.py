"""The oracle compiled with mypyc, and which oracle runs.

The oracle's only source is `pyfuzz/oracle/` (pure Python, annotated).  `make build` and a wheel
build (pyfuzz/build.py) also compile that unchanged source with mypyc into C extensions, as the
package `pyfuzz.oracle_mypyc` (its shared runtime is `pyfuzz/oracle_mypyc__mypyc*.so`), stamped
with a hash of the source it was compiled from.  `pyfuzz.model` runs the compiled oracle when its
stamp matches the source beside it and the pure-Python one otherwise, and says which
(`ORACLE_NAME`, printed by `pyfuzz fuzz`): a stale or missing build is never used silently.

`PYFUZZ_ORACLE=python` runs the pure-Python source, `PYFUZZ_ORACLE=mypyc` insists on the
compiled one (exit 2 when it is missing or stale); `on` and `off` are the harness's switch for
judging at all (pyfuzz/harness.py) and leave the build to the rule above.

    python -m pyfuzz.mypyc_oracle      # (re)build it in this checkout; a no-op when up to date
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
SOURCE = PACKAGE / "oracle"
COMPILED = "oracle_mypyc"
# mypy pinned in pyproject.toml's build requirements and the Makefile: the C it generates is
# only as reproducible as the compiler that wrote it.
MYPY = "mypy==2.4.1"

_SETUP = """
from setuptools import setup
from mypyc.build import mypycify
setup(name=%(group)r, script_args=["build_ext", "--inplace"],
      ext_modules=mypycify(["--check-untyped-defs", %(path)r], opt_level="3", group_name=%(group)r))
"""


def compile_in_place(cwd: Path, path: str, group: str, what: str, quiet: bool = True) -> None:
    """Compile the package at `cwd`/`path` into C extensions beside its sources, with the flags
    of the oracle's build (bench speed compiles an older oracle with them too, so that the two
    builds differ only in their source).  Raises RuntimeError, naming `what`, when mypyc fails."""
    r = subprocess.run([sys.executable, "-c", _SETUP % {"path": path, "group": group}], cwd=cwd,
                       capture_output=quiet, text=True)
    if r.returncode != 0:
        tail = (r.stdout or "").strip().splitlines()[-3:] + (r.stderr or "").strip().splitlines()[-3:]
        raise RuntimeError(f"mypyc failed to compile {what}: " + " | ".join(tail))


def source_hash() -> str:
    h = hashlib.sha256()
    for f in sorted(SOURCE.glob("*.py")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def build(out: Path = PACKAGE, quiet: bool = True) -> list[Path]:
    """Compile the oracle's source into `out` (the pyfuzz package directory, or a staging copy
    of it for a wheel); returns the files written.  Raises RuntimeError when mypyc fails."""
    stamp = source_hash()
    with tempfile.TemporaryDirectory(prefix="pyfuzz-mypyc-") as tmp:
        staged = Path(tmp) / "pyfuzz"
        (staged / COMPILED).mkdir(parents=True)
        (staged / "__init__.py").write_text("")
        for f in SOURCE.glob("*.py"):
            shutil.copy2(f, staged / COMPILED / f.name)
        with open(staged / COMPILED / "__init__.py", "a") as init:
            init.write(f'\nCOMPILED_FROM = "{stamp}"\n')
        compile_in_place(Path(tmp), f"pyfuzz/{COMPILED}", f"pyfuzz.{COMPILED}", "the oracle", quiet)
        (out / COMPILED).mkdir(exist_ok=True)
        for old in [*(out / COMPILED).glob("*.so"), *out.glob(f"{COMPILED}__mypyc*.so")]:
            old.unlink()
        written = []
        for so in [*(staged / COMPILED).glob("*.so"), *staged.glob(f"{COMPILED}__mypyc*.so")]:
            dest = out / so.relative_to(staged)
            shutil.copy2(so, dest)
            written.append(dest)
    return written


def _compiled():
    """The compiled oracle package, or None and why not."""
    try:
        mod = importlib.import_module(f"pyfuzz.{COMPILED}")
    except ImportError:
        return None, "not built (make build compiles it)"
    if getattr(mod, "COMPILED_FROM", None) != source_hash():
        # A frozen bundle (PyInstaller, as ClusterFuzzLite packs the fuzzers) keeps its modules in
        # an archive, not as files to hash; both builds in it came from one installed wheel,
        # whose backend compiled the one from the other.
        if getattr(sys, "frozen", False) and not any(SOURCE.glob("*.py")):
            return mod, ""
        return None, "stale: pyfuzz/oracle/ changed since it was compiled (make build)"
    return mod, ""


def choose():
    """(the oracle package to run, the words that name it)."""
    want = os.environ.get("PYFUZZ_ORACLE", "")
    # on/off is the harness's own switch (off: libFuzzer's merge runs without judging), which
    # leaves the choice of build to this function.
    if want not in ("", "on", "off", "python", "mypyc"):
        print(f"pyfuzz: PYFUZZ_ORACLE must be python, mypyc, on or off, not {want!r}", file=sys.stderr)
        raise SystemExit(2)
    source = importlib.import_module("pyfuzz.oracle")
    if want == "python":
        return source, "pure Python (PYFUZZ_ORACLE=python)"
    mod, why = _compiled()
    if mod is not None:
        return mod, "compiled with mypyc"
    if want == "mypyc":
        print(f"pyfuzz: PYFUZZ_ORACLE=mypyc, but the compiled oracle is {why}", file=sys.stderr)
        raise SystemExit(2)
    return source, f"pure Python (the mypyc build is {why})"


def main() -> int:
    mod, _ = _compiled()
    if mod is not None:
        print(f"pyfuzz: the compiled oracle is up to date ({source_hash()})")
        return 0
    print("pyfuzz: compiling the oracle with mypyc...", file=sys.stderr)
    try:
        files = build(quiet=True)
    except RuntimeError as e:
        print(f"pyfuzz: {e}", file=sys.stderr)
        return 2
    print(f"pyfuzz: compiled the oracle ({source_hash()}): {len(files)} extension modules")
    return 0


if __name__ == "__main__":
    sys.exit(main())
