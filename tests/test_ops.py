"""Campaign operations (issue 11): bad input of every command, the program reader under fuzzing,
campaigns interrupted, killed, resumed and run on two workers, corpus care, the package's build."""

import base64
import hashlib
import os
import random
import re
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from pyfuzz import cli

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "corpus"
GOOD = (CORPUS / "typesafe-reinit-swallows-get.txt").read_text()


def pyfuzz(*args, cwd=None, timeout=300):
    # A wide console: rich wraps the summary table's cells at 80 columns off a terminal.
    return subprocess.run([sys.executable, "-m", "pyfuzz", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=timeout, env=dict(os.environ, COLUMNS="300"))


def snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None, p.stat().st_mode)
            for p in sorted(root.rglob("*"))}


# (name, argv with {d} for the case's directory, files to create there)
BAD_INPUT = [
    ("malformed program", ["replay", "{d}/p.txt"], {"p.txt": "thread 0\n  teleport 3\nthread 1\n"}),
    ("truncated program", ["replay", "{d}/p.txt"], {"p.txt": GOOD[: GOOD.index("thread 1") + 7]}),
    ("unknown op", ["stress", "{d}/p.txt"], {"p.txt": "thread 0\n  munmapp 0\nthread 1\n"}),
    ("unknown mutant in a file", ["replay", "{d}/p.txt"], {"p.txt": "mutant bogus\nthread 0\nthread 1\n"}),
    ("unknown config value in a file", ["replay", "{d}/p.txt"], {"p.txt": "config slab=sometimes\nthread 0\nthread 1\n"}),
    ("random bytes", ["replay", "{d}/p.txt"], {"p.txt": random.Random(1).randbytes(300)}),
    ("not UTF-8", ["replay", "--expect", "{d}/p.txt"], {"p.txt": b"thread 0\n\xff\xfe\nthread 1\n"}),
    ("malformed expectation", ["replay", "--expect", "{d}/p.txt"], {"p.txt": "# expect: slab= => ok\n" + GOOD}),
    ("unknown --mutant", ["replay", "--mutant", "bogus", "{d}/p.txt"], {"p.txt": GOOD}),
    ("unknown --config value", ["fuzz", "--config", "slab=sometimes"], {}),
    ("unknown --config key", ["stress", "--config", "nokey=1", "{d}/p.txt"], {"p.txt": GOOD}),
    ("missing file", ["replay", "{d}/missing.txt"], {}),
    ("directory without programs", ["replay", "{d}"], {"x.bin": b"\x01"}),
    ("--corpus is a file", ["fuzz", "--corpus", "{d}/c", "--time", "1"], {"c": b"data"}),
    ("--corpus parent missing", ["fuzz", "--corpus", "{d}/no/c", "--time", "1"], {}),
    ("--artifacts is a file", ["fuzz", "--artifacts", "{d}/a", "--time", "1"], {"a": b"data"}),
    ("--jobs 0", ["fuzz", "--jobs", "0"], {}),
    ("--time soon", ["fuzz", "--time", "soon"], {}),
    ("bad flag", ["fuzz", "--frobnicate"], {}),
    ("unknown command", ["frobnicate"], {}),
    ("corpus without a command", ["corpus"], {}),
    ("corpus merge OUT is a file", ["corpus", "merge", "{d}/o", "{d}"], {"o": b"data"}),
    ("corpus merge DIR missing", ["corpus", "merge", "{d}/o", "{d}/missing"], {}),
    ("corpus minimize of a file", ["corpus", "minimize", "{d}/f"], {"f": b"data"}),
    ("corpus minimize of a missing dir", ["corpus", "minimize", "{d}/missing"], {}),
    ("corpus check of a missing dir", ["corpus", "check", "{d}/missing"], {}),
    ("corpus check of a file that does not parse", ["corpus", "check", "{d}"], {"p.txt": b"\x00\x01", "q.txt": GOOD}),
    ("bench parser --inputs 0", ["bench", "parser", "--inputs", "0"], {}),
    ("unknown bench", ["bench", "frob"], {}),
    ("bench bugs, unknown mutant", ["bench", "bugs", "--mutant", "bogus"], {}),
    ("verify, bad bound", ["verify", "--programs", "threads=9"], {}),
    ("verify, unknown bound key", ["verify", "--programs", "bogus=1"], {}),
    ("verify, bad config value", ["verify", "--programs", "threads=2", "--config", "lockdep=maybe"], {}),
    ("verdict, bad bound", ["verdict", "--bound", "nonsense", "--corpus", "{d}", "--out", "{d}/out"], {}),
    ("verdict --jobs 0", ["verdict", "--jobs", "0"], {}),
    ("show of a missing file", ["show", "{d}/missing.txt"], {}),
    ("show, unknown format", ["show", "--format", "xml", "{d}/p.txt"], {"p.txt": GOOD}),
    ("minimize of a missing file", ["minimize", "{d}/missing.txt"], {}),
    ("export without a file", ["export", "--pytest", "{d}/t.py"], {}),
]


@pytest.mark.parametrize("name,argv,files", BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_input_is_one_line_exit_2_and_touches_nothing(name, argv, files, tmp_path, capsys):
    for rel, content in files.items():
        (tmp_path / rel).write_bytes(content if isinstance(content, bytes) else content.encode())
    before = snapshot(tmp_path)
    code = cli.main([a.format(d=tmp_path) for a in argv])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pyfuzz: error: "), err
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("argv", [
    ["fuzz", "--corpus", "{d}/corpus", "--time", "1"],
    ["fuzz", "--artifacts", "{d}/artifacts", "--time", "1"],
    ["corpus", "minimize", "{d}"],
    ["corpus", "merge", "{d}/out", "{d}"],
])
def test_a_read_only_directory_is_bad_input(argv, tmp_path, capsys, monkeypatch):
    d = tmp_path / "ro"
    d.mkdir()
    (d / ("0" * 40)).write_bytes(b"x")
    d.chmod(0o555)
    if os.geteuid() == 0:  # root may write anywhere: see the directory as any other user would
        real = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: real(p, mode) and not (
            mode & os.W_OK and os.path.isdir(p) and not os.stat(p).st_mode & 0o222))
    before = snapshot(d)
    try:
        code = cli.main([a.format(d=d) for a in argv])
    finally:
        d.chmod(0o755)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "not writable" in err, err
    assert snapshot(d) == {k: (v[0], v[1]) for k, v in before.items()}


def test_the_program_reader_survives_20k_fuzzed_inputs():
    from pyfuzz.parser_fuzz import fuzz_parser

    counts = fuzz_parser(20_000, seed=11, seeds=[p.read_bytes() for p in CORPUS.glob("*.txt")])
    assert sum(counts.values()) == 20_000
    # Both sides of the reader are exercised, not only its first check.
    assert counts["parsed"] > 1000 and counts["rejected"] > 10_000


def test_mutants_prints_one_name_a_line_off_a_terminal():
    from pyfuzz import _core

    result = pyfuzz("mutants")
    assert result.returncode == 0
    assert result.stdout.splitlines() == [name for name, _, _ in _core.MUTANTS]


def _start(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pyfuzz", "fuzz", *map(str, args)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_inputs(corpus: Path, proc: subprocess.Popen, at_least: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if corpus.is_dir() and sum(1 for _ in corpus.iterdir()) >= at_least:
            return
        time.sleep(0.2)
    raise AssertionError(f"no {at_least} inputs in {corpus}")


def test_ctrl_c_prints_the_summary_and_the_next_campaign_resumes(tmp_path):
    from pyfuzz.campaign_bench import whole_corpus

    corpus, artifacts = tmp_path / "corpus", tmp_path / "artifacts"
    proc = _start("--config", "slab=deferred", "--config", "rmap_lock=rwsem", "--time", "120", "--corpus", corpus, "--artifacts", artifacts)
    _wait_for_inputs(corpus, proc, 20)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, out + err
    assert "campaign summary (interrupted)" in out and "no violation found" in out
    saved = whole_corpus(corpus)
    assert saved >= 20
    again = pyfuzz("fuzz", "--config", "slab=deferred", "--config", "rmap_lock=rwsem", "--time", "3", "--corpus", corpus, "--artifacts", artifacts)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"resuming from {saved:,} inputs" in again.stdout
    assert f"({saved:,} loaded at the start)" in again.stdout
    assert whole_corpus(corpus) >= saved


def test_sigkill_at_random_moments_leaves_corpus_and_artifacts_readable(tmp_path):
    """Three of `pyfuzz bench kill`'s twenty kills, on one corpus and artifacts directory."""
    from pyfuzz.campaign_bench import kill_args, kill_once

    rng = random.Random(5)
    (tmp_path / "tmp").mkdir()
    rows = [kill_once(rng, tmp_path / "corpus", tmp_path / "artifacts", tmp_path / "tmp", kill_args(i))
            for i in (0, 1, 2)]
    assert rows[-1]["corpus"] >= 1 and all(r["workers"] >= 1 for r in rows)
    # Each campaign removed the scratch directory the one killed before it had left.
    assert [r["abandoned"] for r in rows] == [1, 1, 1]


def test_two_workers_save_one_file_per_signature(tmp_path):
    from pyfuzz.check import execute
    from pyfuzz.program import load
    from pyfuzz.signature import signature

    artifacts = tmp_path / "artifacts"
    result = pyfuzz("fuzz", "--jobs", "2", "--keep-going", "--mutant", "get_ignores_dead", "--config",
                    "slab=deferred", "--time", "10", "--artifacts", artifacts, "--corpus", tmp_path / "corpus")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "2 workers" in result.stdout
    saved = [p for p in artifacts.glob("*.txt") if not p.name.endswith(".orig.txt")]
    signatures = [signature(execute(load(p))) for p in saved]
    assert saved and len(set(signatures)) == len(signatures), signatures
    # This mutant is found within a worker's first inputs, again and again: repeats were dropped.
    assert "more with its signature" in result.stdout
    # Resumed on the same artifacts, the campaign finds the same bug at once and fuzzes on
    # without saving it again.
    before = snapshot(artifacts)
    again = pyfuzz("fuzz", "--keep-going", "--mutant", "get_ignores_dead", "--config", "slab=deferred", "--time", "4",
                   "--artifacts", artifacts, "--corpus", tmp_path / "corpus")
    assert again.returncode == 1, again.stdout + again.stderr
    assert snapshot(artifacts) == before
    assert "more with its signature" in again.stdout and any(str(p) in again.stdout for p in saved)


def test_a_checkout_with_an_uncompiled_package_does_not_shadow_the_harness(tmp_path):
    """The harness child imports the pyfuzz its parent runs, whatever the working directory holds."""
    shadow = tmp_path / "pyfuzz"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise ImportError('the shadowing checkout was imported')\n")
    result = subprocess.run([str(Path(sys.executable).with_name("pyfuzz")), "fuzz", "--config", "slab=deferred", "--config", "rmap_lock=rwsem",
                             "--time", "3", "--artifacts", tmp_path / "a"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Rust core with sanitizer coverage" in result.stdout
    # Interleaving pairs come from the instrumented core alone: its coverage really reached libFuzzer.
    # (the summary table may wrap the cell between the words and the count)
    assert re.search(r"interleaving pairs[\s│]*[1-9]", result.stdout), result.stdout


def test_corpus_minimize_keeps_every_feature_and_merge_adds_only_new_ones(tmp_path):
    from pyfuzz.corpus import merge, minimize
    from pyfuzz.program import DEFAULT_CONFIG, random_input

    config = dict(DEFAULT_CONFIG, slab="deferred")
    rng = random.Random(3)
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        for _ in range(40):
            data = random_input(rng)
            (d / hashlib.sha1(data).hexdigest()).write_bytes(data)
    union = merge(tmp_path / "union", [a, b], config, "none")
    assert 0 < union.added <= 80
    assert merge(tmp_path / "union", [a, b], config, "none").added == 0  # nothing new the second time
    minimize(b, config, "none")
    before = merge(tmp_path / "full", [a], config, "none").features
    result = minimize(a, config, "none")
    assert result.kept + result.removed == 40 and result.kept == len(list(a.iterdir()))
    assert merge(tmp_path / "small", [a], config, "none").features == before


def test_corpus_check_reports_every_file(tmp_path, capsys):
    (tmp_path / "good.txt").write_text(GOOD)
    (tmp_path / "wrong.txt").write_text(GOOD.replace("slab=deferred => ok", "slab=deferred => not-linearizable"))
    code = cli.main(["corpus", "check", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 1
    assert "PASS" in out and f"FAIL {tmp_path / 'wrong.txt'}" in out and "1 of 2 program files hold" in out


def test_the_wheel_carries_the_instrumented_core_with_its_record_line(tmp_path):
    from pyfuzz.build import _add_to_wheel

    wheel = tmp_path / "pyfuzz-0.1.0-cp311-cp311-linux_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("pyfuzz/__init__.py", "")
        z.writestr("pyfuzz-0.1.0.dist-info/RECORD", "pyfuzz/__init__.py,,0\npyfuzz-0.1.0.dist-info/RECORD,,\n")
    core = tmp_path / "core.so"
    core.write_bytes(b"\x7fELF-not-really")
    _add_to_wheel(wheel, core, "pyfuzz/_core-sancov.so")
    with zipfile.ZipFile(wheel) as z:
        assert z.read("pyfuzz/_core-sancov.so") == core.read_bytes()
        record = z.read("pyfuzz-0.1.0.dist-info/RECORD").decode().splitlines()
        assert z.namelist()[-1].endswith("RECORD")
    digest = base64.urlsafe_b64encode(hashlib.sha256(core.read_bytes()).digest()).rstrip(b"=").decode()
    assert f"pyfuzz/_core-sancov.so,sha256={digest},{len(core.read_bytes())}" in record


_HOLDER = """
import sys, time
from pathlib import Path
from pyfuzz.files import holding, scratch_directory
with scratch_directory("pyfuzz-", sys.argv[1]) as d, holding(Path(sys.argv[2])):
    print(d, flush=True)
    time.sleep(600)
"""


def _holder(tmp_path: Path, corpus: Path) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path), str(corpus)], stdout=subprocess.PIPE,
                            text=True)
    return proc, Path(proc.stdout.readline().strip())


def test_scratch_directories_of_dead_owners_go_and_live_ones_stay(tmp_path):
    from pyfuzz.files import remove_abandoned

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    live, live_dir = _holder(tmp_path, corpus)
    dead, dead_dir = _holder(tmp_path, tmp_path)
    dead.send_signal(signal.SIGKILL)
    dead.wait()
    foreign = tmp_path / "pyfuzz-not-ours"  # no owner file: not made by scratch_directory
    foreign.mkdir()
    try:
        assert dead_dir.is_dir() and live_dir.is_dir()
        assert remove_abandoned(tmp_path, "pyfuzz-") == [dead_dir]
        assert live_dir.is_dir() and foreign.is_dir() and not dead_dir.exists()
    finally:
        live.kill()
        live.wait()
    assert remove_abandoned(tmp_path, "pyfuzz-") == [live_dir]


def test_a_corpus_in_use_is_refused_and_free_again_when_its_campaign_dies(tmp_path, capsys):
    from pyfuzz.files import holding

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / ("0" * 40)).write_bytes(b"x")
    before = snapshot(corpus)
    holder, _ = _holder(tmp_path, corpus)
    try:
        for argv in (["fuzz", "--corpus", str(corpus), "--time", "1", "--artifacts", str(tmp_path / "a")],
                     ["corpus", "minimize", str(corpus)]):
            assert cli.main(argv) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and "in use by" in err, err
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert snapshot(corpus) == before
    with holding(corpus):  # the kernel dropped the dead holder's lock
        pass


def test_a_file_the_campaign_cannot_write_stops_it_with_its_summary(tmp_path, capsys, monkeypatch):
    """A full disk under the corpus (here: every write into it fails as on one)."""
    import errno

    from pyfuzz import campaign, files

    corpus = tmp_path / "corpus"

    def full(path, data, mode=None):
        if Path(path).parent == corpus:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        files.write_atomically(path, data, mode)

    monkeypatch.setattr(campaign, "write_atomically", full)
    code = cli.main(["fuzz", "--config", "slab=deferred", "--config", "rmap_lock=rwsem", "--time", "120", "--corpus", str(corpus),
                     "--artifacts", str(tmp_path / "a")])
    out, err = capsys.readouterr()
    assert code == 2, out + err
    assert re.fullmatch(rf"pyfuzz: error: campaign stopped: cannot write {re.escape(str(corpus))}/[0-9a-f]{{40}}: "
                        r"No space left on device\n", err), err
    assert "campaign summary (stopped)" in out and "no violation found" in out
    assert list(corpus.iterdir()) == []
