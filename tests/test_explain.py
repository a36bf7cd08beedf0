"""Reproducers people read and CIs keep: minimize, show, export, the pytest plugin, corpus add."""

import subprocess
import sys
from pathlib import Path

from pyfuzz.bench_minimize import failing_padded_races
from pyfuzz.check import execute
from pyfuzz.corpus import EXPECT_LINES_MAX, expectations
from pyfuzz.minimize import context_switches, reduce
from pyfuzz.program import load, parse
from pyfuzz.report import counter_zone, render_steps_markdown, render_steps_text, step_table
from pyfuzz.signature import signature

REPO = Path(__file__).resolve().parents[1]
SEED_RACE = REPO / "corpus" / "typesafe-reinit-swallows-get.txt"
PASSING = REPO / "corpus" / "rcuref-get-after-last-put.txt"

# The seed race padded with random ops before and after it in every thread (the benchmark's
# generator, pyfuzz/bench_minimize.py): the minimizer must find its way back to the race.
BLOATED_RACE = failing_padded_races(seed=3, count=1, threads=3, ops_per_thread=4)[0].to_text()


def pyfuzz(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "pyfuzz", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd or REPO, timeout=300)


def pytest_run(*args, cwd):
    # Without hypothesis's plugin: importing it costs more than the runs themselves.
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:hypothesispytest",
                           *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=300)


def assert_one_line_error(result):
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pyfuzz: error:"), result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def _folded_steps(text):
    rows = text.split("-" * 80 + "\n", 1)[1].splitlines()
    return [line.split()[0] for line in rows if line[:6].strip()]


def test_counter_zones():
    assert [counter_zone(v) for v in (0, 0x7FFFFFFF, 0x80000000, 0xBFFFFFFF, 0xC0000000, 0xE0000001,
                                      0xFFFFFFFE, 0xFFFFFFFF)] == [
        "valid", "valid", "saturation", "saturation", "dead", "dead", "dead", "noref"]


def test_show_folds_to_the_race_and_fits_an_email():
    program = load(SEED_RACE)
    verdict = execute(program)
    table = step_table(program, verdict.events, verdict.violation)
    text = render_steps_text(program, table, signature(verdict))
    assert max(map(len, text.splitlines())) <= 80
    steps = _folded_steps(text)
    index = verdict.violation.event_index
    assert f"=>{index}" in steps
    kept = {row.index for row in table.rows if row.kept}
    assert len(kept) < len(verdict.events) / 2
    kinds = {verdict.events[i][0] for i in kept}
    # The counter's atomics, the free, the slot's reuse and the reader's RCU section all stay.
    assert {"atomic", "free", "alloc", "rcu_lock", "rcu_unlock"} <= kinds
    assert "op_begin" not in kinds and "lock" not in kinds
    # The get's fetch-add on the dead counter: hex and zone, and the spec's count for the slot.
    row = next(r for r in table.rows if r.kind == "atomic" and r.counter == 0xE0000001)
    assert row.counter_text == "0xe0000001 dead" and row.refs == "0 dead" and row.thread == "T1"
    assert "0xe0000001 dead" in text and "slot reuse" in text and "VIOLATION" in text
    everything = render_steps_text(program, table, signature(verdict), everything=True)
    assert len(_folded_steps(everything)) == len(verdict.events)


def test_show_of_a_64_op_program_still_fits_80_columns():
    program = failing_padded_races(seed=2, count=1, threads=4, ops_per_thread=16)[0]
    verdict = execute(program)
    table = step_table(program, verdict.events, verdict.violation)
    for everything in (False, True):
        text = render_steps_text(program, table, signature(verdict), everything=everything)
        assert max(map(len, text.splitlines())) <= 80


def test_show_markdown_is_a_pipe_table():
    program = load(SEED_RACE)
    verdict = execute(program)
    md = render_steps_markdown(program, step_table(program, verdict.events, verdict.violation), signature(verdict))
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    assert rows[0] == "| step | thr | op: sub-step | counter | refs | events |"
    assert all(line.count(" | ") >= 5 for line in rows)
    assert "**VIOLATION**" in md


def test_show_a_passing_program_and_its_exit_status():
    result = pyfuzz("show", PASSING)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("verdict: ok")
    assert "vma_get(vma#0.1) = false" in result.stdout
    failing = pyfuzz("show", SEED_RACE, "--format", "md")
    assert failing.returncode == 1 and "| step |" in failing.stdout


def test_minimize_recovers_the_race_from_a_bloated_program(tmp_path):
    bloated = parse(BLOATED_RACE)
    before = execute(bloated)
    assert not before.ok
    result = reduce(bloated)
    assert result.signature == signature(before)
    after = execute(result.program)
    assert signature(after) == result.signature
    assert result.after.threads <= 3 and result.after.ops <= 3 and result.after.setup == 1
    assert result.after.switches == context_switches(after.taken) <= 4
    assert result.before.ops == 12 and result.before.threads == 3
    assert reduce(bloated).program == result.program, "the minimizer is not deterministic"


def test_minimize_command_writes_and_refuses(tmp_path):
    source = tmp_path / "race.txt"
    source.write_text(BLOATED_RACE)
    out = tmp_path / "small.txt"
    result = pyfuzz("minimize", source, "-o", out)
    assert result.returncode == 1, result.stderr
    assert "before: 3 threads, 12 ops" in result.stderr and "after:" in result.stderr
    small = load(out)
    assert signature(execute(small)) == signature(execute(parse(BLOATED_RACE)))
    # An existing output is never overwritten without --force, nor the input itself.
    kept = out.read_text()
    assert_one_line_error(pyfuzz("minimize", source, "-o", out))
    assert out.read_text() == kept
    assert_one_line_error(pyfuzz("minimize", source, "-o", source, "--force"))
    assert source.read_text() == BLOATED_RACE


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    assert_one_line_error(pyfuzz("minimize", PASSING))
    bad = tmp_path / "bad.txt"
    bad.write_text("config vma_ref=on\nthread 0\n  frobnicate 3\n")
    assert_one_line_error(pyfuzz("show", bad))
    assert_one_line_error(pyfuzz("show", tmp_path / "missing.txt"))
    assert_one_line_error(pyfuzz("export", SEED_RACE, "--pytest", tmp_path / "no" / "such" / "dir" / "t.py"))
    existing = tmp_path / "test_existing.py"
    existing.write_text("keep me\n")
    assert_one_line_error(pyfuzz("export", SEED_RACE, "--pytest", existing))
    assert existing.read_text() == "keep me\n"
    html = tmp_path / "t.html"
    html.write_text("keep me too\n")
    assert_one_line_error(pyfuzz("show", SEED_RACE, "--html", html))
    assert html.read_text() == "keep me too\n"
    assert_one_line_error(pyfuzz("corpus", "add", PASSING, "--corpus", tmp_path))


def test_exported_test_passes_and_fails_with_the_table(tmp_path):
    assert pyfuzz("export", SEED_RACE, "--pytest", tmp_path / "test_seed_race.py").returncode == 0
    # The same program against a wrong expectation: its test must fail and show the steps.
    wrong = tmp_path / "wrong.txt"
    wrong.write_text(SEED_RACE.read_text().replace("# expect: slab=deferred => ok",
                                                   "# expect: slab=deferred => use-after-free"))
    assert pyfuzz("export", wrong, "--pytest", tmp_path / "test_wrong.py").returncode == 0
    run = pytest_run("-q", tmp_path / "test_seed_race.py", tmp_path / "test_wrong.py", cwd=tmp_path)
    assert run.returncode == 1
    assert f"1 failed, {2 * len(expectations(SEED_RACE)) - 1} passed" in run.stdout, run.stdout
    assert "test_wrong.py::test_replays_as_expected[slab=deferred => use-after-free]" in run.stdout
    assert "expected slab=deferred => use-after-free, got ok" in run.stdout
    assert "op: sub-step" in run.stdout and "verdict: ok" in run.stdout


def test_plugin_collects_programs_only(tmp_path):
    (tmp_path / "race.txt").write_text(SEED_RACE.read_text())
    (tmp_path / "holds.txt").write_text(PASSING.read_text())
    (tmp_path / "notes.txt").write_text("config files are read at start-up\nthread 0\n  munmap 0 then rmap 1\n")
    (tmp_path / "requirements.txt").write_text("pyfuzz\n")
    # A failing item prints the step table.
    (tmp_path / "wrong.txt").write_text(SEED_RACE.read_text().replace("=> not-linearizable", "=> ok", 1))
    run = pytest_run("-v", tmp_path, cwd=tmp_path)
    assert run.returncode == 1, run.stdout
    passed = [line for line in run.stdout.splitlines() if "PASSED" in line]
    failed = [line for line in run.stdout.splitlines() if line.endswith("FAILED") or " FAILED " in line]
    programs = len(expectations(SEED_RACE)) * 2 + len(expectations(tmp_path / "holds.txt"))
    assert len(passed) + len(failed) == programs
    assert len(failed) == 1 and "wrong.txt" in failed[0]
    assert not any("notes.txt" in line or "requirements.txt" in line for line in run.stdout.splitlines())
    assert "expected (as written) => ok, got not-linearizable" in run.stdout
    assert "VIOLATION" in run.stdout and "op: sub-step" in run.stdout


def test_corpus_add_computes_expectations_and_refuses_duplicates(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    finding = tmp_path / "finding.txt"
    finding.write_text("# found by pyfuzz fuzz\n" + load(SEED_RACE).to_text())
    added = pyfuzz("corpus", "add", finding, "--corpus", corpus)
    assert added.returncode == 0, added.stderr
    (path,) = corpus.iterdir()
    assert path.name == "not-linearizable.rmap.vma_get.mapping.reused-by-mmap.txt"
    described = {e.describe() for e in expectations(path)}
    # The seed race needs VMA_REF and the typesafe slab; debug_vm= never changes its verdict.
    assert {"(as written) => not-linearizable", "slab=deferred => ok", "vma_ref=off => ok"} <= described
    assert not any("debug_vm=" in line for line in described)
    assert len(described) <= EXPECT_LINES_MAX  # one line per meaningful change, not the whole product
    assert "# found by pyfuzz fuzz" in path.read_text()
    assert pyfuzz("replay", "--expect", path).returncode == 0
    first = path.read_text()
    again = pyfuzz("corpus", "add", finding, "--corpus", corpus)
    assert_one_line_error(again)
    assert "already reproduces" in again.stderr
    assert pyfuzz("corpus", "add", finding, "--corpus", corpus, "--force").returncode == 0
    assert len(list(corpus.iterdir())) == 2 and path.read_text() == first


def test_export_without_expectations_pins_todays_verdict(tmp_path):
    bare = tmp_path / "bare.txt"
    bare.write_text(load(SEED_RACE).to_text())
    test = tmp_path / "test_bare.py"
    assert pyfuzz("export", bare, "--pytest", test).returncode == 0
    namespace = {}
    exec(compile(test.read_text(), str(test), "exec"), namespace)
    assert [e.describe() for e in namespace["EXPECTATIONS"]] == ["(as written) => not-linearizable"]
    namespace["test_replays_as_expected"](namespace["EXPECTATIONS"][0])  # passes: no exception
