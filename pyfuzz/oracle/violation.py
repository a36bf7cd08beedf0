"""What a verdict says: the Violation raised for the first broken rule, and the words the rules
use to name threads, results and spec states in its message."""

from __future__ import annotations


class Violation(Exception):
    """A violation of the specification, found at `events[event_index]`."""

    def __init__(self, kind: str, message: str, event_index, events: list):
        Exception.__init__(self, kind, message)
        self.kind = kind
        self.message = message
        self.event_index = event_index
        self.events = events

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"

    def __reduce__(self):
        return (Violation, (self.kind, self.message, self.event_index, self.events))

    def __repr__(self) -> str:
        return f"Violation({self.kind!r}, {self.message!r}, event_index={self.event_index})"


def is_core_panic(error: BaseException) -> bool:
    """A Rust panic reaches Python as pyo3's PanicException (a BaseException): a finding."""
    return type(error).__name__ == "PanicException"


def panic_violation(error: BaseException) -> Violation:
    return Violation("panic", f"the Rust core panicked: {error}", -1, [])


def thread_name(t) -> str:
    if t == -1:
        return "setup"
    if t == -2:
        return "the RCU callback"
    return f"T{t}"


def result_text(result, warns) -> str:
    s = "true" if result else "false"
    if warns:
        s += " with warning " + "+".join(sorted(warns))
    return s
