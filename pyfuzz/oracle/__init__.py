"""The independent oracle: judges one event history against DESIGN.md sections 4 and 5.

`check(events, config, final_counters)` returns None for a correct history and raises
`Violation` for the first violation found.  It never looks at the mutant name and never asks the
Rust core anything: every verdict is re-derived from the events.

One module per rule family, in the order of DESIGN.md section 5:

* `spec`: the sequential specification of one allocation's reference count;
* `linearizability`: rule 1, each allocation's rcuref operations against the spec;
* `lifetime`: rules 2 and 5, frees and holders, and the reader's use;
* `rcu`: rule 3, memory safety under RCU (read-side sections, grace periods);
* `ordering`: rule 4, happens-before at the free (vector clocks);
* `endstate`: rule 6, leaks, raw counters and holders at the end;
* `invariants`: rule 7, the VMA trees and folio mappings;
* `debugchecks`: the kernel's own debug checks (vma_assert_detached, and with `lockdep=on`
  RCU_LOCKDEP_WARN in __rcuref_put, might_sleep, sections left open), fed by the pass ahead of
  the other rules;
* `rmaplock`: rule 10, with `rmap_lock=rwsem` the reverse-map lock's rules, fed by the pass
  ahead of the other rules as the debug checks are;
* `kinds`: the event kinds as the small integers the pass and the rules it feeds dispatch on;
* `history`: the one pass that replays the shared facts (allocations, pointers, trees,
  mappings, operations in flight) and hands each event to the rules above; rule 8 (stray
  warnings) is there too, as it is a fact about the operation in flight.

`check` runs the pass (which stops at the first event-level violation), then linearizability over
the operations observed before that stop (a linearizability violation observed earlier wins), and
with no violation so far, the end state.

A History is built for a configuration and started for each history (`History.start` empties
what it and its rules keep): `check` builds one per call, `DistinctHistories` keeps one and
starts it again for every history it judges.

Adding a rule: a module with a class that takes the History and keeps its own per-allocation
state (an `allocated(a)` hook appends to it, `reset()` empties it for `History.start`), called
from `History.run` at the events it judges
(keep the order: the first violation in the history is the one reported), and documented in
DESIGN.md section 5.
"""

from __future__ import annotations

from array import array

from .endstate import check_end
from .history import History
from .kinds import codes_of, kind_codes
from .spec import MAXREF, RELEASED, SAT_LO
from .violation import Violation, is_core_panic, panic_violation

__all__ = ["MAXREF", "RELEASED", "SAT_LO", "DistinctHistories", "Violation", "check", "first_damage",
           "is_core_panic", "panic_violation"]


def check(events: list, config: dict, final_counters: list | None = None, kinds: bytes | None = None) -> None:
    """Judge one history.  Raises Violation on the first violation found; returns None if correct.
    `kinds`: the events' kind codes (`kinds.kind_codes`, the core's `Outcome.kinds`), derived from
    the events when not given."""
    h = History(config)
    try:
        _judge(h, events, final_counters, kinds)
    finally:
        h.close()


def _judge(h: History, events: list, final_counters: list | None, kinds: bytes | None) -> None:
    h.start(events, kinds if kinds is not None else kind_codes(events))
    first = None
    try:
        h.run()
    except Violation as v:
        first = v
    stop = first.event_index if first is not None else len(events) + 1
    lv = h.lin.finish(stop)
    if lv is not None and (first is None or lv.event_index <= first.event_index):
        first = lv
    dv = h.debug_checks.found
    if dv is not None and (first is None or dv.event_index <= first.event_index):
        first = dv
    # A lock rule broken no later than the first damage is its cause, as with the debug checks.
    rv = h.rmap_lock.found
    if rv is not None and (first is None or rv.event_index <= first.event_index):
        first = rv
    if first is not None:
        raise first
    check_end(h, h.lin, h.life, final_counters)


def first_damage(events: list, config: dict) -> Violation | None:
    """The first thing the history's events show going wrong in memory (a free while held, a use
    after free, a bad use, a VMA freed in a tree...), ignoring the verdicts about returned values
    (linearizability, which the pass also raises for a never-initialised counter: then None) and
    the end state: what a wrong result led to, if anything yet.  `check`
    reports the earliest violation, which is often the wrong result itself; this is for showing
    a reviewer the damage (`pyfuzz verify`'s damage witness)."""
    h = History(config)
    h.start(events, kind_codes(events))
    found = None
    try:
        h.run()
    except Violation as v:
        found = v
    finally:
        h.close()
    dv = h.debug_checks.found
    if dv is not None and (found is None or dv.event_index <= found.event_index):
        found = dv
    return None if found is not None and found.kind == "not-linearizable" else found


class DistinctHistories:
    """Checks each history once: equal histories have equal digests and get the same verdict,
    so the fuzz loop and the blind baselines skip any history they have already judged.

    The digests sit in a preallocated direct-mapped table (`slots` entries of 8 bytes), so a
    campaign's memory stays flat however long it runs: a digest that lands on an occupied entry
    replaces it, and the history it evicted is only judged again if it comes back.

    It judges with one `History` of its configuration (read once, here), started again for each
    history: the same verdict as `check`, without building the pass's containers every time."""

    def __init__(self, config: dict, slots: int = 1 << 20):
        if slots <= 0 or slots & (slots - 1):
            raise ValueError("slots must be a power of two")
        self.config = config
        self.table = array("Q", bytes(8 * slots))
        self.mask = slots - 1
        self.checked = 0
        self.history = History(config)

    def fresh(self, outcome) -> bool:
        """Whether the outcome's history is one not judged before (and from now on it counts as
        judged)."""
        digest = outcome.digest or 1  # 0 marks an empty entry
        entry = digest & self.mask
        if self.table[entry] == digest:
            return False
        self.table[entry] = digest
        self.checked += 1
        return True

    def judge(self, outcome) -> "Violation | None":
        """The outcome's violation, or None when it holds or its history was judged before."""
        if not self.fresh(outcome):
            return None
        return self.verdict(outcome.events, outcome.final_counters, codes_of(outcome))

    def verdict(self, events: list, final_counters: list | None = None,
                kinds: bytes | None = None) -> "Violation | None":
        """The history's violation (what `check` raises), or None when it holds."""
        try:
            _judge(self.history, events, final_counters, kinds)
        except Violation as v:
            return v
        return None
