"""Run a program on the Rust core and judge its history with the Python oracle."""

from __future__ import annotations

from dataclasses import dataclass

from . import _core
from .model import Violation, check
from .program import Program


@dataclass
class Verdict:
    program: Program
    outcome: object  # _core.Outcome
    violation: Violation | None

    @property
    def ok(self) -> bool:
        return self.violation is None


def judge(outcome, config: dict[str, str]) -> Violation | None:
    try:
        check(outcome.events, config, outcome.final_counters)
    except Violation as v:
        return v
    return None


def execute(program: Program) -> Verdict:
    config = program.config_dict
    outcome = _core.run(program.to_tuple(), config, program.mutant)
    return Verdict(program, outcome, judge(outcome, config))


def decode(data: bytes, config: dict[str, str], mutant: str) -> Program:
    return Program.from_tuple(_core.decode(data), config, mutant)
