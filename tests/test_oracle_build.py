"""Which oracle runs (pyfuzz/mypyc_oracle.py): the compiled build only when it was compiled from
the source beside it, the source otherwise, and never without saying which."""

import sys

import pytest

from pyfuzz import mypyc_oracle, oracle

COMPILED = mypyc_oracle._compiled()[0]
needs_build = pytest.mark.skipif(COMPILED is None, reason="the mypyc build is absent (make build compiles it)")


def test_python_runs_the_source(monkeypatch):
    monkeypatch.setenv("PYFUZZ_ORACLE", "python")
    mod, name = mypyc_oracle.choose()
    assert mod is oracle and "pure Python" in name


def test_a_bad_value_is_one_line_and_exit_2(monkeypatch, capsys):
    monkeypatch.setenv("PYFUZZ_ORACLE", "fast")
    with pytest.raises(SystemExit) as e:
        mypyc_oracle.choose()
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "PYFUZZ_ORACLE" in err


@needs_build
def test_an_up_to_date_build_runs(monkeypatch):
    monkeypatch.delenv("PYFUZZ_ORACLE", raising=False)
    mod, name = mypyc_oracle.choose()
    assert mod is COMPILED and name == "compiled with mypyc"


@needs_build
def test_a_stale_build_is_not_run_and_the_name_says_why(monkeypatch, capsys):
    monkeypatch.setattr(mypyc_oracle, "source_hash", lambda: "edited-source")
    monkeypatch.delenv("PYFUZZ_ORACLE", raising=False)
    mod, name = mypyc_oracle.choose()
    assert mod is oracle and "stale" in name
    monkeypatch.setenv("PYFUZZ_ORACLE", "mypyc")
    with pytest.raises(SystemExit) as e:
        mypyc_oracle.choose()
    assert e.value.code == 2 and "stale" in capsys.readouterr().err


@needs_build
def test_a_frozen_bundle_without_sources_runs_its_build(monkeypatch, tmp_path):
    # PyInstaller (ClusterFuzzLite's fuzzers) keeps modules in an archive: no source file to hash.
    monkeypatch.setattr(mypyc_oracle, "SOURCE", tmp_path)
    monkeypatch.delenv("PYFUZZ_ORACLE", raising=False)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert mypyc_oracle.choose()[0] is COMPILED
    monkeypatch.setattr(sys, "frozen", False)
    assert mypyc_oracle.choose()[0] is oracle
