"""The oracle's entry points, under the name the rest of pyfuzz imports (see pyfuzz/oracle/).

The oracle that runs is the mypyc build of pyfuzz/oracle/ when it is up to date, else that
source itself; `ORACLE_NAME` says which (pyfuzz/mypyc_oracle.py)."""

import importlib

from .mypyc_oracle import choose

ORACLE, ORACLE_NAME = choose()
_spec = importlib.import_module(ORACLE.__name__ + ".spec")
# the floor of a checked run, from the same build (`pyfuzz bench speed`)
FLOOR = importlib.import_module(ORACLE.__name__ + ".floor")

MAXREF, RELEASED, SAT_LO = ORACLE.MAXREF, ORACLE.RELEASED, ORACLE.SAT_LO
DistinctHistories, Violation, check, first_damage = (ORACLE.DistinctHistories, ORACLE.Violation, ORACLE.check,
                                                     ORACLE.first_damage)
is_core_panic, panic_violation = ORACLE.is_core_panic, ORACLE.panic_violation
DEAD, SAT, spec_step, state_from_counter = _spec.DEAD, _spec.SAT, _spec.spec_step, _spec.state_from_counter

__all__ = ["DEAD", "FLOOR", "MAXREF", "ORACLE", "ORACLE_NAME", "RELEASED", "SAT", "SAT_LO", "DistinctHistories", "Violation",
           "check", "first_damage", "is_core_panic", "panic_violation", "spec_step", "state_from_counter"]
