"""The oracle's shortcuts lose nothing (docs/DESIGN.md, "How the oracle is built")."""

import random
from types import SimpleNamespace

import pytest

from pyfuzz import _core
# The pure-Python source: its module functions are what the test swaps (a compiled build binds them).
from pyfuzz.oracle import Violation, check, history, rmaplock
from pyfuzz.oracle.kinds import kind_codes
from pyfuzz.program import random_input


def _verdict(outcome, config):
    try:
        check(outcome.events, config, outcome.final_counters)
    except Violation as v:
        return v.kind, v.message, v.event_index
    return None


def _random_outcomes(seed: int, inputs: int = 400) -> list:
    """(outcome, config) of random inputs under random configurations and mutants, each under its
    own schedule and a PCT walk."""
    rng = random.Random(seed)
    mutants = [m[0] for m in _core.MUTANTS]
    cases = []
    for _ in range(inputs):
        config = {k: rng.choice(v) for k, v in _core.CONFIG.items()}
        engine = _core.Engine(config, rng.choice(mutants))
        data = random_input(rng)
        try:
            first = engine.run_bytes(data)
            outcomes = [first, engine.run_bytes_with(data, "pct", rng.getrandbits(64), 32, first.steps)]
        except BaseException:  # a core panic is judged elsewhere
            continue
        cases += [(o, config) for o in outcomes]
    return cases


def test_histories_get_the_same_verdict_with_ordering_kept_to_the_end(monkeypatch):
    """The pass keeps the clocks only up to the history's last free (none without one)."""
    cases = _random_outcomes(11)
    shortcut = [_verdict(o, c) for o, c in cases]
    monkeypatch.setattr(history, "last_free", len)
    assert [_verdict(o, c) for o, c in cases] == shortcut
    # histories with and without a free, and verdicts of ordering among the others
    frees = sum(any(ev[0] == "free" for ev in o.events) for o, _ in cases)
    assert 100 < frees < len(cases) - 100 and sum(v is not None for v in shortcut) > 20
    assert any(v is not None and v[0] == "data-race" for v in shortcut)


def test_distinct_histories_judges_each_digest_once_in_a_fixed_table():
    """The skip-table is direct-mapped and never grows: a repeat is skipped, a digest that lands
    on an occupied entry evicts it, and the evicted history is judged again if it comes back."""

    from pyfuzz.model import DistinctHistories
    from pyfuzz.program import DEFAULT_CONFIG

    histories = DistinctHistories(dict(DEFAULT_CONFIG), slots=4)
    size = len(histories.table)

    def judged(digest):
        before = histories.checked
        assert histories.judge(SimpleNamespace(digest=digest, events=[], final_counters=None)) is None
        return histories.checked - before

    assert [judged(5), judged(5), judged(9), judged(5), judged(6)] == [1, 0, 1, 1, 1]
    for digest in range(100, 1100):
        judged(digest)
    assert len(histories.table) == size
    with pytest.raises(ValueError):
        DistinctHistories(dict(DEFAULT_CONFIG), slots=6)


_RULES = ("lin", "life", "rcu", "hb", "debug_checks", "rmap_lock")


def _facts(h):
    """What a History and its rules keep, as plain values: all of it but the events, the rules'
    references back to the History and each thread's InFlight (kept on purpose: every call starts
    it again)."""
    out = {}
    for name, value in vars(h).items():
        if name in _RULES:  # (rule 10's records kept for reuse: `made`, checked by `_renewed_as_new`)
            out[name] = {k: v for k, v in vars(value).items() if k not in ("h", "events", "made")}
        elif name not in ("events", "ops_of", "made"):
            out[name] = value
    return out


def _renewed_as_new(h) -> bool:
    """Whether every Allocation the History keeps for reuse (`made`, kept on purpose), and every
    slot record rule 10 keeps, comes out of its `renew` as one just built: nothing of the history
    it served before is left."""
    fields = history.Allocation.__slots__
    for a in h.made:
        a.renew(3, 7, 11, 1)
        built = history.Allocation(a.aid, 3, 7, 11, 1)
        if [getattr(a, f) for f in fields] != [getattr(built, f) for f in fields]:
            return False
    fields = rmaplock._Slot.__slots__
    for s in h.rmap_lock.made:
        if s is not None:
            s.renew(9)
            built = rmaplock._Slot(9)
            if [getattr(s, f) for f in fields] != [getattr(built, f) for f in fields]:
                return False
    return True


def test_a_history_started_again_keeps_nothing_of_the_one_before():
    """`DistinctHistories` judges with one History per configuration, started again for each history
    (`History.start`): after any history, correct or violating (a pass stopped midway), the started
    History holds what a new one holds, and the verdict is `check`'s."""
    from pyfuzz.oracle import DistinctHistories

    rng = random.Random(23)
    mutants = [m[0] for m in _core.MUTANTS]
    kinds = set()
    judged = renewed = 0
    for _ in range(60):
        config = {k: rng.choice(v) for k, v in _core.CONFIG.items()}
        judge = DistinctHistories(config, slots=1)
        engine = _core.Engine(config, rng.choice(mutants))
        # a tree of an mm the core never makes, so that `start` meets one too
        outcomes = [SimpleNamespace(events=[("alloc", -1, 0, 1), ("tree_insert", -1, 5, 0, 1, 2, 1)],
                                    final_counters=None)]
        for _ in range(6):
            try:
                outcomes.append(engine.run_bytes(random_input(rng)))
            except BaseException:  # a core panic is judged elsewhere
                continue
        for o in outcomes:
            codes = kind_codes(o.events)
            fresh = history.History(config)
            fresh.start(o.events, codes)
            judge.history.start(o.events, codes)
            assert _facts(judge.history) == _facts(fresh)
            assert _renewed_as_new(judge.history)
            renewed += len(judge.history.made) + sum(s is not None for s in judge.history.rmap_lock.made)
            v = judge.verdict(o.events, o.final_counters, getattr(o, "kinds", None))
            assert (v and (v.kind, v.message, v.event_index)) == _verdict(o, config)
            kinds.add(v.kind if v else "ok")
            judged += 1
    assert judged > 300 and "ok" in kinds and len(kinds) >= 5 and renewed > 300, kinds


def test_the_cores_kind_codes_are_the_events_own_kinds():
    """`Outcome.kinds`, which the pass reads instead of looking each event's kind name up, is the
    events' own kind field re-encoded as kinds.py numbers it: on every event of many histories,
    under random configurations and mutants, of every kind the core makes."""
    from pyfuzz.oracle.kinds import KIND, NO_KIND

    seen = set()
    for o, _ in _random_outcomes(31):
        assert o.kinds == kind_codes(o.events)
        seen |= {ev[0] for ev in o.events}
    assert len(set(KIND.values()) | {NO_KIND}) == len(KIND) + 1
    assert set(KIND) - seen <= {"panic", "warn"} and {"op_begin", "folio_map", "mapped_load"} <= seen, set(KIND) - seen


def test_slots_pages_and_mms_past_a_byte_are_refused_not_judged():
    """The per-slot, per-page and per-mm lists take what the core's events carry, 0..255: anything else
    is a ValueError, never a verdict (nor a list indexed from its end)."""
    from pyfuzz.program import DEFAULT_CONFIG

    config = dict(DEFAULT_CONFIG)
    with pytest.raises(Violation, match="leak"):  # judged: never initialised, never freed
        check([("alloc", -1, 255, 1), ("mapping_store", -1, 255, 255)], config)
    for events in ([("alloc", -1, 256, 1)], [("alloc", -1, -1, 1)],
                   [("alloc", -1, 0, 1), ("mapping_store", -1, 256, 0)],
                   [("alloc", -1, 0, 1), ("mapping_store", -1, -1, 0)],
                   [("alloc", -1, 0, 1), ("tree_remove", -1, 256, 0)], [("lookup", -1, -1, 0)]):
        with pytest.raises(ValueError):
            check(events, config)
