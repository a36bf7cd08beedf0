"""The benchmark machinery produces its files and honest records (the figures themselves live
in BENCHMARKS.md, never in assertions)."""

import json
import subprocess
import sys
from pathlib import Path

from pyfuzz.baselines import Attempt
from pyfuzz.bench import MUTANT_CONFIG, SCENARIOS, WALKS, row_setup, summarize
from pyfuzz.check import execute
from pyfuzz.program import DEFAULT_CONFIG, load

CORPUS = Path(__file__).resolve().parent.parent / "corpus"


def run(*args):
    return subprocess.run([sys.executable, "-m", "pyfuzz", *map(str, args)], capture_output=True, text=True, timeout=600)


def test_bench_bugs_writes_json_markdown_and_plot(tmp_path):
    result = run("bench", "bugs", "--mutant", "dup_no_reinit", "--method", "random", "--method", "hypothesis",
                 "--seeds", "2", "--budget", "20", "--no-false-alarm-check", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    data = json.loads((tmp_path / "bugs.json").read_text())
    attempts = data["attempts"]
    assert {(a["method"], a["seed"]) for a in attempts} == {(m, s) for m in ("random", "hypothesis") for s in (0, 1)}
    for a in attempts:
        assert a["mutant"] == "dup_no_reinit" and "slab=deferred" in a["config"]
        assert a["found"] == (a["kind"] is not None)
        assert a["executions"] >= 1 and 0 <= a["seconds"] <= 20 + 5
    assert "| `dup_no_reinit` |" in (tmp_path / "bugs.md").read_text()
    assert (tmp_path / "bugs.png").read_bytes()[:4] == b"\x89PNG"


def test_summary_counts_a_miss_as_the_budget():
    def attempt(seed, found, seconds):
        return Attempt("random", "m", "cfg", seed, found, seconds, 10, "x" if found else None)

    s = summarize([attempt(0, True, 1.0), attempt(1, False, 60.0), attempt(2, False, 60.0)], 60.0, ["random"])
    assert s["per"]["m/random"]["median_s"] == 60.0
    assert s["per"]["m/random"]["found"] == 1


def test_summary_compares_pyfuzz_with_the_fastest_other_method_per_mutant():
    attempts = [
        Attempt("pyfuzz", "m", "cfg", 0, True, 2.0, 10, "x", startup=0.1),
        Attempt("random", "m", "cfg", 0, True, 4.0, 10, "x"),
        Attempt("pct", "m", "cfg", 0, True, 1.0, 10, "x"),
    ]
    s = summarize(attempts, 60.0, ["pyfuzz", "random", "pct"])
    assert s["per"]["m/pyfuzz"]["best_other_ratio"] == 0.5
    assert s["overall"]["pyfuzz"]["median_startup_s"] == 0.1


def test_summary_compares_campaigns_in_runs_too():
    # A campaign's inputs get different numbers of walks: the comparison in runs uses its runs,
    # a blind method's executions.
    attempts = [
        Attempt("pyfuzz", "m", "cfg", 0, True, 2.0, 10, "x", startup=0.1, runs=400),
        Attempt("pct-walk", "m", "cfg", 0, True, 1.0, 1000, "x"),
    ]
    s = summarize(attempts, 60.0, ["pyfuzz", "pct-walk"])
    assert s["per"]["m/pyfuzz"]["median_runs"] == 400
    assert s["per"]["m/pct-walk"]["median_runs"] == 1000
    assert s["per"]["m/pyfuzz"]["best_other_ratio_runs"] == 2.5
    assert s["per"]["m/pyfuzz"]["best_other_ratio"] == 0.5


def test_the_scenario_rows_stay_out_of_the_catalog_median():
    attempts = [Attempt("pyfuzz", "m", "cfg", 0, True, 2.0, 10, "x"), Attempt("pyfuzz", "seed", "cfg", 0, True, 50.0, 9, "x"),
                Attempt("pyfuzz", "torn-range", "cfg", 0, True, 90.0, 9, "x")]
    s = summarize(attempts, 60.0, ["pyfuzz"])
    assert s["mutants"] == ["m", "seed", "torn-range"]
    assert s["overall"]["pyfuzz"]["median_of_medians_s"] == 2.0


def test_each_row_runs_the_configuration_its_bug_needs():
    assert row_setup("put_reread") == (MUTANT_CONFIG, "put_reread")
    assert row_setup("rmap_leaks_rcu") == ({**MUTANT_CONFIG, "lockdep": "on"}, "rmap_leaks_rcu")
    assert row_setup("rmap_recheck_mapping_only") == ({**MUTANT_CONFIG, "rmap_lock": "none"}, "rmap_recheck_mapping_only")
    assert row_setup("torn-range") == ({**MUTANT_CONFIG, "rmap_lock": "none"}, "none")
    assert row_setup("seed") == (DEFAULT_CONFIG, "none")


def test_the_torn_range_scenario_is_a_bug_of_its_configuration_alone():
    """The scenario's program fails without the rmap lock and holds under MUTANT_CONFIG, the
    configuration the mutants (and the false-alarm check) run under."""
    program = load(CORPUS / "split-below-torn-range-read.txt")
    assert execute(program.with_config(**SCENARIOS["torn-range"][0])).violation.kind == "bad-use"
    assert execute(program.with_config(**MUTANT_CONFIG)).violation is None


def test_bench_walks_counts_violations_on_the_same_programs_per_walk(tmp_path):
    result = run("bench", "walks", "--mutant", "get_ignores_dead", "--mutant", "put_relaxed", "--inputs", "300",
                 "--jobs", "1", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    counts = json.loads((tmp_path / "walks.json").read_text())["counts"]
    assert len(counts) == 2 * len(WALKS)
    assert all(0 <= c["violations"] <= 300 for c in counts)
    # put_relaxed breaks on almost any program that frees a VMA, whatever the interleaving.
    assert all(c["violations"] > 0 for c in counts if c["mutant"] == "put_relaxed")
    assert all(sum(c["kinds"].values()) == c["violations"] for c in counts)
    assert all(set(c["kinds"]) == {"data-race"} for c in counts if c["mutant"] == "put_relaxed")
    assert "| `get_ignores_dead` |" in (tmp_path / "walks.md").read_text()


def test_bench_threads_and_memory_report_every_row(tmp_path):
    result = run("bench", "threads", "--inputs", "2000", "--repeats", "1", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    rows = json.loads((tmp_path / "threads.json").read_text())["rows"]
    assert {(r["threads"], r["kind"]) for r in rows} == {(t, k) for t in (1, 2) for k in ("vma", "vma_unrecorded", "fetch_add", "fetch_add_seam", "inc_not_zero")}
    assert all(r["pairs_per_s"] > 0 and r["pairs_per_cpu_s"] > 0 for r in rows)
    result = run("bench", "memory", "--inputs", "3000", "--stress-runs", "1200", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    rows = json.loads((tmp_path / "memory.json").read_text())["rows"]
    assert [r["runs"] for r in rows] == [1000, 3000]
    assert all(r["resident_bytes"] > 0 for r in rows)
    report = json.loads((tmp_path / "memory.json").read_text())
    assert [r["runs"] for r in report["stress_rows"]] == [1000, 1200]
    assert report["stress_false_alarms"] == 0


def test_bench_speed_reports_every_layer(tmp_path):
    result = run("bench", "speed", "--inputs", "8", "--repeats", "1", "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    rows = json.loads((tmp_path / "speed.json").read_text())["rows"]
    # the campaign row, 2-4 threads x 8, 16 and 32 ops, and three get/put pairs (Rust, pure Python)
    assert len(rows) == 1 + 3 * 3 + 3 * 2
    assert all(r["runs_per_s"] > 0 and 0 < r["distinct"] <= r["runs"] for r in rows)
    assert all(r["exported_runs_per_s"] > 0 and r["floor_runs_per_s"] > 0 for r in rows)
    assert sum("ratio_to_python" in r for r in rows) == 3
    text = (tmp_path / "speed.md").read_text()
    # its rows in the speed table, the floor's table and the four oracles' table
    assert text.count("| 3 threads x 16 get/put/rmap ops |") == 6 and "| 3 threads x 32 get/put/rmap ops (as tuples) |" in text
    assert "the floor at 50,000?" in text
    campaign = json.loads((tmp_path / "speed.json").read_text())["campaign"]
    assert campaign["inputs"] == 100 and campaign["runs_per_cpu_s"] > 0 and campaign["runs_per_cpu_s_without_oracle"] > 0


def test_bench_engine_rejects_a_baseline_that_is_not_a_module(tmp_path):
    """One line on stderr and exit 2, before or after the child tried to load it; nothing written."""
    not_a_module = tmp_path / "_core.so"
    not_a_module.write_text("not an extension module\n")
    for baseline in (tmp_path / "missing.so", not_a_module):
        result = run("bench", "engine", "--inputs", "10", "--repeats", "1", "--baseline", baseline, "--out", tmp_path / "out")
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
        assert not (tmp_path / "out").exists()
