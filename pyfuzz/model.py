"""The oracle's entry points, under the name the rest of pyfuzz imports (see pyfuzz/oracle/)."""

from .oracle import (MAXREF, RELEASED, SAT_LO, DistinctHistories, Violation, check, is_core_panic,
                     panic_violation)

__all__ = ["MAXREF", "RELEASED", "SAT_LO", "DistinctHistories", "Violation", "check", "is_core_panic",
           "panic_violation"]
