"""The coverage build of the Rust core for the fuzz loop.

libFuzzer only sees the Rust branches when the extension is compiled with sanitizer coverage.
Those flags go to the top crate alone (`cargo rustc -- ...`): in RUSTFLAGS they would also
instrument proc-macro crates, which then fail to load in the compiler. The instrumented module
needs libFuzzer's symbols at load time, so it is kept apart from the normal build (its own target
directory, a file named after the source hash) and loaded only by the harness.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SANCOV_FLAGS = [
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
    "-Cllvm-args=-sanitizer-coverage-trace-compares",
]


class BuildError(RuntimeError):
    pass


def _source_hash(crate: Path) -> str:
    h = hashlib.sha256()
    files = [REPO / "Cargo.toml", REPO / "Cargo.lock", crate / "Cargo.toml", *sorted((crate / "src").rglob("*.rs"))]
    for f in files:
        if f.exists():
            h.update(str(f.relative_to(REPO)).encode())
            h.update(f.read_bytes())
    h.update(" ".join(SANCOV_FLAGS + ["sancov"]).encode())
    return h.hexdigest()[:16]


def instrumented_core(quiet: bool = True) -> Path | None:
    """Path of the sanitizer-coverage build of `_core`, building it if the sources changed.

    None when this is not a source checkout (no rust/ beside the package): the fuzz loop then
    runs with the normal module and Python-side coverage only.
    """
    crate = REPO / "rust"
    if not (crate / "Cargo.toml").exists() or shutil.which("cargo") is None:
        return None
    target = REPO / "target" / "fuzz"
    built = target / f"_core-{_source_hash(crate)}.so"
    if built.exists():
        return built
    print("pyfuzz: building the coverage-instrumented core (once per source change)...", file=sys.stderr)
    cmd = [
        "cargo", "rustc", "--release", "--lib", "--crate-type", "cdylib",
        "--manifest-path", str(crate / "Cargo.toml"), "--features", "extension-module,sancov",
        "--target-dir", str(target), "--", *SANCOV_FLAGS,
    ]
    env = dict(os.environ, PYO3_PYTHON=sys.executable)
    result = subprocess.run(cmd, env=env, capture_output=quiet, text=True)
    if result.returncode != 0:
        tail = (result.stderr or "").strip().splitlines()[-3:]
        raise BuildError("cargo failed to build the instrumented core: " + " | ".join(tail))
    for stale in target.glob("_core-*.so"):
        stale.unlink()
    shutil.copy2(target / "release" / "lib_core.so", built)
    return built
