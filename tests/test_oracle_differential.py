"""The oracle as it is now, as pure Python and as its mypyc build, judges exactly as the oracle on
main did before the third session (`bench.ORACLE_BEFORE`) and before the ninth (`bench.ORACLE_MAIN`),
both read from git: the same kind, event index and message for every history of the corpus, of
every mutant under several configurations, of random programs under random configurations and of
the pure-Python executor, and the same damage witness (`first_damage`).
`bench-results/oracle7-differential.py` runs the same comparison on many more histories."""

import random
from collections import Counter
from pathlib import Path

import pytest

from pyfuzz import _core, model, oracle, pyrcuref
from pyfuzz.bench import MUTANT_CONFIG, ORACLE_BEFORE, ORACLE_MAIN, WALK_DEPTH, _shaped_program, oracle_at
from pyfuzz.corpus import expectations, program_files
from pyfuzz.program import load, random_input

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
MUTANTS = [m[0] for m in _core.MUTANTS]


def _verdict(mod, events, config, final_counters):
    try:
        mod.check(events, config, final_counters)
    except mod.Violation as v:
        verdict = (v.kind, v.event_index, v.message)
    else:
        verdict = None
    damage = mod.first_damage(events, config)
    return verdict, damage and (damage.kind, damage.event_index, damage.message)


def _judged_in_turn(mod, judges: dict, events, config, final_counters):
    """The verdict of the campaign's way of judging, one History per configuration started again
    for each history (`DistinctHistories.verdict`), `judges` keeping one per configuration across
    the cases, so that each judges many histories in turn, violating ones among them."""
    key = tuple(sorted(config.items()))
    if key not in judges:
        judges[key] = mod.DistinctHistories(config, slots=1)
    v = judges[key].verdict(events, final_counters)
    return v and (v.kind, v.event_index, v.message)


def _runs(engine, data, rng):
    """The input's own schedule and two PCT walks, as the harness runs it (core panics are
    judged elsewhere: they never reach the oracle)."""
    try:
        first = engine.run_bytes(data)
        return [first] + [engine.run_bytes_with(data, "pct", rng.getrandbits(64), WALK_DEPTH, first.steps)
                          for _ in range(2)]
    except BaseException:
        return []


def _histories(seed: int = 9, scale: int = 1, corpus: bool = True):
    """The corpus's histories, then `scale` times the random ones (`seed`)."""
    rng = random.Random(seed)
    cases = []
    for path in program_files([str(CORPUS)]) if corpus else []:
        for e in expectations(path):
            program = e.apply(load(path, MUTANTS))
            outcome = _core.run(program.to_tuple(), program.config_dict, program.mutant)
            cases.append((outcome.events, program.config_dict, outcome.final_counters))
    for mutant in MUTANTS * scale:
        for config in (MUTANT_CONFIG, dict(MUTANT_CONFIG, lockdep="on"), dict(MUTANT_CONFIG, slab="typesafe"),
                       *({k: rng.choice(v) for k, v in _core.CONFIG.items()} for _ in range(3))):
            engine = _core.Engine(config, mutant)
            for _ in range(4):
                cases += [(o.events, config, o.final_counters) for o in _runs(engine, random_input(rng), rng)]
    for _ in range(300 * scale):
        config = {k: rng.choice(v) for k, v in _core.CONFIG.items()}
        cases += [(o.events, config, o.final_counters)
                  for o in _runs(_core.Engine(config), random_input(rng), rng)]
    # rule 10 never fires on the core's histories under rmap_lock=rwsem (the core keeps the lock's
    # rules), so histories with one rwsem event dropped or repeated: misuse, unlocked updates and walks
    rwsem = dict(MUTANT_CONFIG, rmap_lock="rwsem")
    engine = _core.Engine(rwsem)
    for _ in range(60 * scale):
        for o in _runs(engine, random_input(rng), rng):
            at = [i for i, ev in enumerate(o.events) if ev[0] in ("rmap_lock", "rmap_unlock")]
            if at:
                i = rng.choice(at)
                cut = rng.random() < 0.5
                events = o.events[:i] + o.events[i + cut:] if cut else o.events[:i] + [o.events[i]] + o.events[i:]
                cases.append((events, rwsem, o.final_counters))
    # the core's grace periods are always right, so histories with one reclaim moved to right after its
    # free (often inside a reader's section) or right before it, repeated, or judged as SLAB_TYPESAFE_BY_RCU's
    engine = _core.Engine(MUTANT_CONFIG)
    for _ in range(40 * scale):
        for o in _runs(engine, random_input(rng), rng):
            at = [i for i, ev in enumerate(o.events) if ev[0] == "reclaim"]
            if at:
                i = rng.choice(at)
                ev = o.events[i]
                how = rng.randrange(4)
                free = next(j for j, e in enumerate(o.events) if e[0] == "free" and e[2:4] == ev[2:4])
                if how == 0:
                    events = o.events[:free + 1] + [ev] + o.events[free + 1:i] + o.events[i + 1:]
                elif how == 3:
                    events = o.events[:free] + [ev] + o.events[free:i] + o.events[i + 1:]
                elif how == 1:
                    events = o.events[:i] + [ev] + o.events[i:]
                else:
                    events = o.events
                config = dict(MUTANT_CONFIG, slab="typesafe") if how == 2 else MUTANT_CONFIG
                cases.append((events, config, o.final_counters))
    # and with one folio's re-pointing by a thread dropped: folios a split or merge left naming a VMA in
    # the tree that no longer covers them (among other verdicts)
    for _ in range(40 * scale):
        for o in _runs(engine, random_input(rng), rng):
            at = [i for i, ev in enumerate(o.events) if ev[0] == "mapping_store" and ev[1] >= 0]
            if at:
                i = rng.choice(at)
                cases.append((o.events[:i] + o.events[i + 1:], MUTANT_CONFIG, o.final_counters))
    for threads in (2, 3, 4):
        for _ in range(20 * scale):
            prog, schedule = _shaped_program(rng, threads, 8, ("get", "put"))
            for o in (pyrcuref.run((0, 4), prog, pyrcuref.ListSchedule(schedule)),
                      pyrcuref.run((0, 4), prog, pyrcuref.Pct(threads, WALK_DEPTH, 200, rng.getrandbits(64)))):
                cases.append((o.events, MUTANT_CONFIG, o.final_counters))
    return cases


# The pure-Python source, and the oracle that runs when it is another (the mypyc build).
ORACLES = [oracle] + ([model.ORACLE] if model.ORACLE is not oracle else [])


@pytest.mark.parametrize("now_oracle", ORACLES, ids=[m.__name__ for m in ORACLES])
def test_the_oracle_judges_as_the_oracle_on_main_did(now_oracle):
    befores = [oracle_at(ORACLE_BEFORE), oracle_at(ORACLE_MAIN)]
    cases = _histories()
    kinds = Counter()
    judges: dict = {}
    for events, config, final_counters in cases:
        now = _verdict(now_oracle, events, config, final_counters)
        for before in befores:
            assert now == _verdict(before, events, config, final_counters), (before.__name__, config, events)
        assert _judged_in_turn(now_oracle, judges, events, config, final_counters) == now[0], (config, events)
        kinds[now[0][0] if now[0] else "ok"] += 1
    # the comparison covers correct histories and a wide range of violations
    assert len(cases) > 3000 and kinds["ok"] > 1000, kinds
    assert len(kinds) >= 12, kinds
