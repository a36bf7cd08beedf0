"""The floor of a checked run: the least a Python oracle that reads every event of every distinct
history must do, compiled by the same build as the oracle, so that `pyfuzz bench speed` can time
it in the same loop as the oracle.

The loop calls `judge` on every run's outcome, as it calls `DistinctHistories.judge`: the digest
table skips a history judged before; a fresh one is exported (`outcome.events`, the list of event
tuples the oracle reads) and then, for `KindsRead`, each event's kind is read and looked up as
the pass looks it up (`KIND`), and nothing is dispatched.  Their checked runs per second are the
ceiling of any oracle that reads these histories as tuples.  Neither gives a verdict: they are
never a judge of anything but the cost."""

from __future__ import annotations

from typing import Final

from . import DistinctHistories
from .kinds import KIND

# The bit `read_kinds` sets for a kind no rule reads (the largest kind is below it).
_UNREAD: Final = 27


def read_kinds(events: list[tuple]) -> int:
    """Each event's kind read and looked up: the set of kinds seen (bit k: kind k), so that the
    pass computes something."""
    seen = 0
    for ev in events:
        k: str = ev[0]
        seen |= 1 << KIND.get(k, _UNREAD)
    return seen


class Exported(DistinctHistories):
    """Each distinct history's events exported and dropped unread."""

    def __init__(self, config: dict, slots: int = 1 << 20):
        super().__init__(config, slots)
        self.events = 0

    def judge(self, outcome) -> None:
        if self.fresh(outcome):
            self.events += len(outcome.events)


class KindsRead(DistinctHistories):
    """Each distinct history's events exported and every event's kind read (`read_kinds`)."""

    def __init__(self, config: dict, slots: int = 1 << 20):
        super().__init__(config, slots)
        self.kinds = 0

    def judge(self, outcome) -> None:
        if self.fresh(outcome):
            self.kinds |= read_kinds(outcome.events)
