"""The floor of a checked run: the least a Python oracle that reads every event of every distinct
history must do, compiled by the same build as the oracle, so that `pyfuzz bench speed` can time
it in the same loop as the oracle.

The loop calls `judge` on every run's outcome, as it calls `DistinctHistories.judge`: the digest
table skips a history judged before; a fresh one is exported (`outcome.events`, the list of event
tuples the oracle reads) and then, for `KindsRead`, its kind codes too (`outcome.kinds`), and each
event is read with its code as the pass reads them (the tuple, its thread, its code), and nothing
is dispatched.  Their checked runs per second are the
ceiling of any oracle that reads these histories as tuples.  Neither gives a verdict: they are
never a judge of anything but the cost."""

from __future__ import annotations

from typing import Final

from . import DistinctHistories
from .kinds import NO_KIND, codes_of

# Where `read_kinds` sets the bits of the threads seen: above every kind's (NO_KIND the largest).
_THREADS: Final = NO_KIND + 1


def read_kinds(events: list[tuple], kinds: bytes) -> int:
    """Each event read with its kind's code (`kinds`), as the pass reads them: the kinds seen (bit
    k: kind k) and the threads (bit _THREADS + thread + 2), so that the pass computes something."""
    seen = 0
    for idx in range(len(events)):
        t: int = events[idx][1]
        seen |= (1 << kinds[idx]) | (1 << (_THREADS + t + 2))
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
    """Each distinct history's events and kind codes exported and every event read with its code
    (`read_kinds`)."""

    def __init__(self, config: dict, slots: int = 1 << 20):
        super().__init__(config, slots)
        self.kinds = 0

    def judge(self, outcome) -> None:
        if self.fresh(outcome):
            self.kinds |= read_kinds(outcome.events, codes_of(outcome))
