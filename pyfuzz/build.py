"""The coverage build of the Rust core for the fuzz loop, and the package's build backend.

libFuzzer only sees the Rust branches when the extension is compiled with sanitizer coverage.
Those flags go to the top crate alone (`cargo rustc -- ...`): in RUSTFLAGS they would also
instrument proc-macro crates, which then fail to load in the compiler. The instrumented module
needs libFuzzer's symbols at load time, so it is kept apart from the normal build and loaded only
by the harness. In a source checkout it is built on demand into target/fuzz/ (a file named after
the source hash, so an edit rebuilds it); an installed package carries the copy its wheel was
built with, pyfuzz/_core-sancov.so (not an importable module name: only the harness loads it,
as pyfuzz._core). This module is also the PEP 517 backend (pyproject.toml): maturin's, with that
file added to the wheel.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHIPPED = Path(__file__).resolve().with_name("_core-sancov.so")
# Edge counters only, no -sanitizer-coverage-trace-compares: campaigns run libFuzzer with
# -use_value_profile=0, so compare tracing only fed the dictionary of a few of its mutations, at a
# call per comparison in the engine's hot path. Without it the campaign ran 1.6-2.3x as many runs
# per CPU second with the oracle off (1.04-1.55x with it), and the inputs to the first violation of
# put_no_cmpxchg, put_no_preempt, put_reread and the seed's race over 10 seeds each were alike
# (BENCHMARKS.md, "The campaign itself"; bench-results/tuning/trace-compares/).
SANCOV_FLAGS = [
    "-Cpasses=sancov-module",
    "-Cllvm-args=-sanitizer-coverage-level=4",
    "-Cllvm-args=-sanitizer-coverage-inline-8bit-counters",
    "-Cllvm-args=-sanitizer-coverage-pc-table",
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
    """Path of the sanitizer-coverage build of `_core`: in a source checkout built from its
    sources (again when they change), else the one installed with the package; None when there
    is neither, and then a campaign sees Python coverage only (and says so)."""
    crate = REPO / "rust"
    if (crate / "Cargo.toml").exists() and shutil.which("cargo") is not None:
        return _build_from_checkout(crate, quiet)
    return SHIPPED if SHIPPED.exists() else None


def describe(core: Path | None) -> str:
    if core is None:
        return "NONE: no instrumented Rust core, libFuzzer sees Python coverage only"
    where = "shipped with the package" if core == SHIPPED else "built from this checkout"
    return f"Rust core with sanitizer coverage ({where})"


def _build_from_checkout(crate: Path, quiet: bool) -> Path:
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


# PEP 517 hooks: maturin's, except that a wheel also carries the instrumented core, so that an
# installed pyfuzz is the coverage-guided fuzzer without its sources, and the oracle compiled
# with mypyc (its pure-Python source is in the wheel as well, and is what runs if they differ).


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    import tempfile

    import maturin

    from .mypyc_oracle import build as build_oracle

    name = maturin.build_wheel(wheel_directory, config_settings, metadata_directory)
    core = _build_from_checkout(REPO / "rust", quiet=False)
    _add_to_wheel(Path(wheel_directory) / name, core, f"pyfuzz/{SHIPPED.name}")
    with tempfile.TemporaryDirectory() as staging:
        for so in build_oracle(Path(staging), quiet=False):
            _add_to_wheel(Path(wheel_directory) / name, so, f"pyfuzz/{so.relative_to(staging)}")
    return name


def _add_to_wheel(wheel: Path, file: Path, arcname: str) -> None:
    """Add a file to a built wheel, with its line in the wheel's RECORD (replacing a file of that
    name that the wheel already has, such as a copy left in the source tree by `make build`)."""
    data = file.read_bytes()
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    temp = wheel.with_name(f".{wheel.name}.tmp")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(temp, "w", zipfile.ZIP_DEFLATED) as dst:
        items = src.infolist()
        metadata = [i for i in items if ".dist-info/" in i.filename]
        for item in [i for i in items if i not in metadata and i.filename != arcname]:
            dst.writestr(item, src.read(item))
        entry = zipfile.ZipInfo(arcname, date_time=metadata[0].date_time)
        entry.external_attr = 0o755 << 16
        dst.writestr(entry, data, zipfile.ZIP_DEFLATED)
        for item in metadata:
            content = src.read(item)
            if item.filename.endswith(".dist-info/RECORD"):
                kept = [line for line in content.decode().splitlines(True) if not line.startswith(f"{arcname},")]
                content = (f"{arcname},sha256={digest},{len(data)}\n" + "".join(kept)).encode()
            dst.writestr(item, content)
    os.replace(temp, wheel)


# The other hooks are maturin's own; looked up on use, since maturin is a build requirement only.
_MATURIN_HOOKS = frozenset({
    "build_sdist", "build_editable", "get_requires_for_build_wheel", "get_requires_for_build_sdist",
    "get_requires_for_build_editable", "prepare_metadata_for_build_wheel",
    "prepare_metadata_for_build_editable",
})


def __getattr__(name: str):
    if name in _MATURIN_HOOKS:
        import maturin

        return getattr(maturin, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
