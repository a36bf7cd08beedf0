"""pyfuzz verify: exhaustive exploration finds what it must, proves what it can, and agrees with
a plain DFS of every schedule."""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from pyfuzz import _core
from pyfuzz.check import execute, judge
from pyfuzz.program import DEFAULT_CONFIG, load, parse
from pyfuzz.verify import explore, merge_results, parse_bound, verify_bound

REPO = Path(__file__).resolve().parents[1]
SEED_HAZARD = REPO / "corpus" / "typesafe-reinit-swallows-get.txt"


def pyfuzz(*args, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "pyfuzz", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd or REPO, timeout=timeout)


def unscheduled(path):
    return replace(load(path), schedule=())


def test_verify_finds_the_seed_hazard_with_the_fewest_preemptions():
    program = unscheduled(SEED_HAZARD)
    result = explore(program)
    assert not result.ok and result.violation.kind == "not-linearizable"
    assert result.witness.schedule, "the witness carries its interleaving"
    replayed = execute(result.witness)
    assert not replayed.ok and replayed.violation.kind == result.violation.kind
    # Fewest: every interleaving with one preemption fewer holds.
    fewer = explore(program, preemptions=result.witness_preemptions - 1)
    assert fewer.ok and fewer.complete and fewer.schedules > 0


def test_the_seed_hazard_witness_comes_with_the_interleaving_that_shows_its_damage():
    from pyfuzz.model import first_damage

    program = unscheduled(SEED_HAZARD)
    result = explore(program)
    # The fewest-preemption witness is the memset window: a wrong get result, nothing freed yet.
    assert first_damage(result.witness_events, program.config_dict) is None
    assert result.damage is not None and result.damage.kind in ("vma-not-detached", "free-while-held")
    assert result.damage_preemptions == result.witness_preemptions + 1
    replayed = execute(result.damage_witness)
    assert replayed.violation.kind == result.violation.kind
    assert first_damage(replayed.events, program.config_dict).kind == result.damage.kind
    # A witness that shows its damage itself gets no second one.
    uaf = explore(unscheduled(REPO / "corpus" / "rcuref-deconstruction-race-rcusafe.txt"))
    assert uaf.violation.kind == "use-after-free" and uaf.damage is None


def test_the_seed_hazard_program_is_safe_in_every_interleaving_with_deferred_freeing():
    result = explore(unscheduled(SEED_HAZARD).with_config(slab="deferred"))
    assert result.ok and result.complete
    assert result.classes == result.schedules - result.blocked > 10


SMALL = {
    "munmap-vs-get-put": "vma 0-2\nthread 0\n  munmap 0\nthread 1\n  get 0\n  put\n",
    "two-getters-and-munmap": "vma 0-2\nthread 0\n  get 0\nthread 1\n  get 0\nthread 2\n  munmap 0\n",
    "remap-vs-get": "vma 0-1\nthread 0\n  munmap 0\n  mmap 5 1\nthread 1\n  get 0\n",
    "merge-vs-get": "vma 0-2\nvma 2-4\nthread 0\n  merge 0\nthread 1\n  get 2\n  put\n",
}


def classes_and_verdicts(program, mode):
    config = program.config_dict
    explorer = _core.Explorer(program.to_tuple(), config, program.mutant, mode)
    verdicts = {}
    while not explorer.done:
        for _, _, klass, outcome, _ in explorer.explore(1024, 5.0):
            v = judge(outcome, config)
            verdicts.setdefault(klass, set()).add(v.kind if v else "ok")
    return explorer.stats, verdicts


@pytest.mark.parametrize("name", sorted(SMALL))
@pytest.mark.parametrize("variant", [{}, {"slab": "deferred"}, {"mutant": "remove_double_put"}])
def test_dpor_and_dfs_agree_on_classes_and_verdicts(name, variant):
    program = parse(SMALL[name])
    if "mutant" in variant:
        program = program.with_mutant(variant["mutant"])
    else:
        program = program.with_config(**variant)
    dpor_stats, dpor = classes_and_verdicts(program, "dpor")
    dfs_stats, dfs = classes_and_verdicts(program, "dfs")
    assert dpor_stats["classes"] == dfs_stats["classes"] == len(dfs)
    assert set(dpor) == set(dfs)
    assert all(len(kinds) == 1 for kinds in dfs.values()), "equivalent histories got different verdicts"
    assert all(dpor[c] == dfs[c] for c in dpor)
    assert set().union(*dpor.values()) == set().union(*dfs.values())
    assert dfs_stats["schedules"] > dpor_stats["schedules"]


def test_dpor_and_dfs_agree_on_a_violating_program():
    program = parse(SMALL["munmap-vs-get-put"]).with_mutant("remove_double_put")
    _, dpor = classes_and_verdicts(program, "dpor")
    assert "ok" in set().union(*dpor.values()) and len(set().union(*dpor.values())) > 1


def test_the_explorer_is_deterministic():
    program = unscheduled(SEED_HAZARD).with_config(slab="deferred")

    def everything():
        explorer = _core.Explorer(program.to_tuple(), program.config_dict, "none", "dpor")
        seen = []
        while not explorer.done:
            seen.extend((tuple(s), p, c, o.digest) for s, p, c, o, _ in explorer.explore(64, 5.0))
        return seen, explorer.stats

    assert everything() == everything()


@pytest.mark.parametrize("mutant,spec", [
    ("put_no_cmpxchg", "threads=2,ops=1..2,setup=1,ops-set=get,put,rmap,munmap"),
    ("put_reread", "threads=2,ops=1..2,setup=1,ops-set=get,put,rmap,munmap"),
    ("split_no_pgoff", "threads=2,ops=1,setup=1,ops-set=split,rmap"),
    ("no_saturation", "threads=2,ops=1,setup=1,ops-set=get,presets=maxref"),
])
def test_verify_programs_finds_catalog_mutants(mutant, spec):
    result = verify_bound(parse_bound(spec), {**DEFAULT_CONFIG, "slab": "deferred"}, mutant)
    assert result.violation is not None, f"{mutant} not found within {spec}"
    witness = parse(result.violation["program"])
    replayed = execute(witness)
    assert not replayed.ok and replayed.violation.kind == result.violation["kind"]


def test_verify_programs_without_a_mutant_holds_and_shards_merge(tmp_path):
    spec = parse_bound("threads=2,ops=1,setup=1,ops-set=get,put,rmap,munmap,mmap")
    config = {**DEFAULT_CONFIG, "slab": "deferred"}
    whole = verify_bound(spec, config, "none")
    assert whole.complete and whole.violation is None and whole.programs_done > 5
    paths = []
    for i in (1, 2, 3):
        part = verify_bound(spec, config, "none", shard=(i, 3))
        paths.append(tmp_path / f"{i}.json")
        paths[-1].write_text(json.dumps(part.to_json()))
    merged = merge_results(paths)
    assert merged["complete"] and merged["programs_done"] == whole.programs_done
    assert merged["classes"] == whole.classes
    partial = merge_results(paths[:2])
    assert not partial["complete"] and partial["missing_shards"] == [3]


def test_symmetric_programs_are_enumerated_once():
    from pyfuzz.verify import enumerate_programs

    programs = [c.program for c in enumerate_programs(parse_bound("threads=2,ops=1,setup=1,ops-set=get,munmap"),
                                                       DEFAULT_CONFIG, "none")]
    shapes = {tuple(sorted(map(str, p.threads))) for p in programs}
    assert len(shapes) == len(programs) == 3  # {get,get}, {get,munmap}, {munmap,munmap}


def test_the_split_merge_variants_and_presets_are_enumerated():
    from pyfuzz.verify import PRESETS, enumerate_programs

    bound = parse_bound("threads=2,ops=1,setup=1..3,ops-set=split-below,merge-next,merge-both,rmap,"
                        "presets=none,maxref")
    programs = [c.program for c in enumerate_programs(bound, DEFAULT_CONFIG, "none")]
    texts = {p.to_text() for p in programs}
    assert len(texts) == len(programs)
    ops = {(op.name, op.b) for p in programs for t in p.threads for op in t}
    assert {("split", 1), ("merge", 1), ("merge", 2), ("rmap", 0)} <= ops
    for p in programs:
        # A merge names the VMA at its address and the successors it may absorb (two for
        # `both`); every setup VMA is named, since the bound allows dropping unnamed ones.
        named = set()
        for op in (op for t in p.threads for op in t):
            reach = 1 + (op.name == "merge") + (op.name == "merge" and op.b == 2)
            named |= set(range(op.a // 2, op.a // 2 + reach))
        assert named & set(range(len(p.setup))) == set(range(len(p.setup))), p.to_text()
    assert {v.counter for p in programs for v in p.setup} == {PRESETS["none"], PRESETS["maxref"]}
    # with one setup VMA the only VMA is always named: every (preset, thread pair) is there
    one = parse_bound("threads=2,ops=1,setup=1,ops-set=split-below,rmap,presets=none,held,saturated")
    assert len(list(enumerate_programs(one, DEFAULT_CONFIG, "none"))) == 3 * (3 * 4 // 2)


def test_cli_verify_writes_a_witness_that_replays(tmp_path):
    result = pyfuzz("verify", SEED_HAZARD, "-o", tmp_path)
    assert result.returncode == 1, result.stderr
    [damage] = tmp_path.glob("damage-*.txt")
    [witness] = set(tmp_path.glob("*.txt")) - {damage}
    assert "fewest-preemption" in result.stdout and "the damage shows: vma-not-detached" in result.stdout
    replay = pyfuzz("replay", witness)
    assert replay.returncode == 1 and "not-linearizable" in replay.stdout
    clean = pyfuzz("verify", SEED_HAZARD, "--config", "slab=deferred", "--preemptions", "2")
    assert clean.returncode == 0 and "at most 2 preemption(s)" in clean.stdout


FOUR_THREADS = "vma 0-2\nthread 0\n  get 0\nthread 1\n  get 0\nthread 2\n  get 0\nthread 3\n  get 0\n"


@pytest.mark.parametrize("args", [
    ["--programs", "threads=2..x"],
    ["--programs", "ops-set=get,frobnicate"],
    ["--programs", "presets=none,lots"],
    ["--programs", "threads=9"],
    ["--programs", "colour=blue"],
    ["--programs", "threads=2", "--shard", "3/2"],
    ["--programs", "threads=2", "--config", "slab=bogus"],
    ["--programs", "threads=2", "--mutant", "bogus"],
    [],
])
def test_bad_verify_input_is_one_line_and_exit_2(args):
    result = pyfuzz("verify", *args)
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pyfuzz: error:"), result.stderr


def test_a_program_with_more_threads_than_verify_supports_is_refused(tmp_path):
    path = tmp_path / "four.txt"
    path.write_text(FOUR_THREADS)
    result = pyfuzz("verify", path)
    assert result.returncode == 2 and "at most 3 threads" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_verify_programs_summarizes_and_writes_json(tmp_path):
    out = tmp_path / "r.json"
    result = pyfuzz("verify", "--programs", "threads=2,ops=1,setup=1,ops-set=get,munmap",
                    "--config", "slab=deferred", "--json", out)
    assert result.returncode == 0, result.stderr
    assert "no violation in any interleaving of any of 3 programs" in result.stdout
    data = json.loads(out.read_text())
    assert data["complete"] and data["programs_done"] == 3 and data["classes"] > 3
