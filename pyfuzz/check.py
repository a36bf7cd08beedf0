"""Run a program on the Rust core and judge its history with the Python oracle."""

from __future__ import annotations

from dataclasses import dataclass

from . import _core
from .model import Violation, check, is_core_panic, panic_violation
from .program import Program, run_lengths


@dataclass
class Verdict:
    program: Program
    outcome: object  # _core.Outcome, or None when the core panicked
    violation: Violation | None

    @property
    def ok(self) -> bool:
        return self.violation is None

    @property
    def events(self) -> list:
        return self.outcome.events if self.outcome is not None else []

    @property
    def taken(self) -> list:
        return self.outcome.taken if self.outcome is not None else []


def judge(outcome, config: dict[str, str]) -> Violation | None:
    try:
        check(outcome.events, config, outcome.final_counters)
    except Violation as v:
        return v
    return None


def execute(program: Program) -> Verdict:
    config = program.config_dict
    try:
        outcome = _core.run(program.to_tuple(), config, program.mutant)
    except BaseException as e:
        if not is_core_panic(e):
            raise
        return Verdict(program, None, panic_violation(e))
    return Verdict(program, outcome, judge(outcome, config))


def decode(data: bytes, config: dict[str, str], mutant: str, walk: dict | None = None) -> Program:
    """The program fuzzer bytes spell; with a walk (its `run_bytes_with` arguments), the walk's
    steps written out as the schedule, so that it replays as program text."""
    setup, threads, schedule = _core.decode(data)
    if walk is not None:
        schedule = run_lengths(_core.Engine(config, mutant).walk_steps(data, **walk))
    return Program.from_tuple((setup, threads, schedule), config, mutant)
