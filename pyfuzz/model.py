"""The oracle's entry points, under the name the rest of pyfuzz imports (see pyfuzz/oracle/)."""

from .oracle import (MAXREF, RELEASED, SAT_LO, DistinctHistories, Violation, check, first_damage,
                     is_core_panic, panic_violation)
from .oracle.spec import DEAD, SAT, spec_step, state_from_counter

__all__ = ["DEAD", "MAXREF", "RELEASED", "SAT", "SAT_LO", "DistinctHistories", "Violation", "check",
           "first_damage", "is_core_panic", "panic_violation", "spec_step", "state_from_counter"]
