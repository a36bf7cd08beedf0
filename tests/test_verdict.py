"""pyfuzz verdict: the configurations come from _core.CONFIG by rule, an unsafe cell carries a
reproducer that replays (filed once per signature), a safe cell carries its bound's figures."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pyfuzz import _core, verdict
from pyfuzz.check import execute
from pyfuzz.program import DEFAULT_CONFIG, ProgramError, load
from pyfuzz.signature import signature

REPO = Path(__file__).resolve().parents[1]
# The seed's race is program 15 of this bound (rmap against munmap + mmap reusing the slot).
BOUND = "threads=2,ops=1..2,setup=1,ops-set=rmap,munmap,mmap"


def test_the_configurations_are_derived_from_the_core_keys():
    configs = verdict.configurations()
    assert configs[0] == DEFAULT_CONFIG
    assert len({tuple(sorted(c.items())) for c in configs}) == len(configs)
    for key in (*verdict.CROSSED, *verdict.ALONE):
        for value in _core.CONFIG[key][1:]:
            for reading in _core.CONFIG["mapping"]:
                assert {**DEFAULT_CONFIG, key: value, "mapping": reading} in configs, (key, value, reading)
    for get in _core.CONFIG["get"][1:]:
        assert {**DEFAULT_CONFIG, "get": get, "init": "keep_counter"} in configs
    for key in verdict.HELD:
        assert all(c[key] == DEFAULT_CONFIG[key] for c in configs)
    # fixes crossed: 3 gets x 2 inits; alone: slab=deferred, vma_ref=off; each under 2 readings
    assert len(configs) == (3 * 2 + 2) * 2


def test_a_key_without_a_rule_stops_the_verdict(monkeypatch):
    monkeypatch.setattr(_core, "CONFIG", {**_core.CONFIG, "newkey": ("a", "b")})
    with pytest.raises(ProgramError, match="newkey"):
        verdict.configurations()


def test_a_tiny_verdict_seed_unsafe_deferred_safe_and_json_round_trip(tmp_path):
    corpus = tmp_path / "corpus"
    shutil.copytree(REPO / "corpus", corpus)
    before = sorted(p.name for p in corpus.iterdir())
    seed, deferred = dict(DEFAULT_CONFIG), {**DEFAULT_CONFIG, "slab": "deferred"}
    data = verdict.run_verdict(BOUND, 0, 1, corpus, verify_programs=20, configs=[seed, deferred])
    unsafe, safe = data["cells"]

    assert unsafe["verdict"] == "UNSAFE" and unsafe["found_by"] == "verify"
    assert unsafe["kind"] == "not-linearizable" and unsafe["replayed"]
    reproducer = verdict.parse(unsafe["reproducer"])
    replay = execute(reproducer)
    assert not replay.ok and signature(replay) == unsafe["signature"]
    # the corpus has the seed's race already: the cell names that file instead of adding a twin
    assert not unsafe["corpus_new"] and sorted(p.name for p in corpus.iterdir()) == before
    assert signature(execute(load(unsafe["corpus_file"]))) == unsafe["signature"]

    assert safe["verdict"] == "SAFE UP TO A BOUND" and safe["bound"]["violation"] is None
    assert safe["bound"]["programs_done"] > 0 and safe["bound"]["classes"] > 0
    assert safe["bound"]["schedules"] >= safe["bound"]["classes"]
    table = verdict.markdown(data)
    assert "**UNSAFE** (verify): not-linearizable" in table and "SAFE UP TO A BOUND" in table

    path = tmp_path / "verdict.json"
    path.write_text(json.dumps(data))
    assert verdict.load_json(path) == data
    assert verdict.markdown(verdict.load_json(path)) == table

    # into an empty corpus the reproducer goes once, with expectations, and is then its own twin
    empty = tmp_path / "empty"
    empty.mkdir()
    cells = [verdict.Cell.from_json(unsafe), verdict.Cell.from_json({**unsafe, "label": "again"})]
    verdict.file_reproducers(cells, empty)
    assert [c.corpus_new for c in cells] == [True, False]
    assert cells[0].corpus_file == cells[1].corpus_file
    text = Path(cells[0].corpus_file).read_text()
    assert "# expect: => not-linearizable" in text and "# expect: slab=deferred => ok" in text
    filed = execute(load(cells[0].corpus_file))
    assert signature(filed) == unsafe["signature"]


def test_not_a_verdict_json(tmp_path):
    bad = tmp_path / "v.json"
    bad.write_text("[1, 2")
    with pytest.raises(ProgramError, match="not a verdict result"):
        verdict.load_json(bad)


def test_the_pct_statement_is_honest_about_deep_walks():
    text = verdict.pct_statement(1000, 32, 2, 20)
    assert "10^-41" in text and "no useful guarantee" in text
    assert "no PCT walks" in verdict.pct_statement(0, 32, 2, 20)


@pytest.mark.parametrize("args, message", [
    (["--bound", "threads=9"], "threads=9 must lie within"),
    (["--bound", "colour=red"], "unknown key 'colour'"),
    (["--bound", "ops-set=get,fly"], "unknown op 'fly'"),
    (["--jobs", "0"], "--jobs"),
    (["--campaign", "soon"], "--campaign"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    r = subprocess.run([sys.executable, "-m", "pyfuzz", "verdict", "--out", str(tmp_path), *args],
                       capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and message in r.stderr, r.stderr
    assert not (tmp_path / "verdict.json").exists()
