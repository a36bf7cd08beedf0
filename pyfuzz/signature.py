"""A violation's signature: what went wrong, in which operation, to which kind of object.

Two findings are the same bug when the oracle reports the same kind of violation, in the same
program operation and rcuref call (say `rmap`'s `vma_put`), on an object in the same role (say
"a VMA found through a folio mapping, since reused by mmap"). None of that depends on thread
numbers, addresses, slot numbers, event indices or how many steps the schedule took, so the
signature survives rescheduling and minimization, and the minimizer keeps it as its predicate.

`signature(verdict)` is the readable form; `slug(verdict)` a short filesystem-safe one for file
names and dedupe keys. Both are read off the history alone (the events and the program's ops).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

SETUP_THREAD = -1
RCU_THREAD = -2
# The operation of a verdict on the end state (past the last event).
END = "end"
# The role of no object: the violating step is on no VMA and the message names none (a lock
# taken inside a read-side section, an op ending inside one).
NO_OBJECT = ("", "")

_REF_FUNCTIONS = {"get": "vma_get", "put": "vma_put", "init": "vma_rcuref_init"}
# Events whose third field is the VMA slot they act on.
_SLOT_AT_2 = frozenset(
    ("atomic", "ref_call", "ref_ret", "warn", "alloc", "free", "reclaim", "read", "write", "use")
)
# Events whose fourth field is the slot.
_SLOT_AT_3 = frozenset(("lookup", "mapping_load", "mapping_store", "tree_insert", "tree_update", "tree_remove"))
# How a thread came to hold a pointer, by the event that gave it one.
_FOUND = {
    "lookup": ("found in the tree", "tree"),
    "mapping_load": ("found through a folio mapping", "mapping"),
    "alloc": ("it allocated", "own"),
}
# The oracle names allocations "VMA slot S gen G"; the report names them "vma#S.G".
ALLOCATION_NAME = re.compile(r"slot (\d+) gen (\d+)|vma#(\d+)\.(\d+)")


@dataclass(frozen=True)
class Signature:
    kind: str  # the violation kind
    operation: str  # the program op the violating step belongs to: rmap, munmap, setup, end, ...
    step: str  # the sub-step inside it: an rcuref call, a field access, free, ...
    found: tuple[str, str]  # (phrase, token): how the thread's pointer to the object was obtained
    fate: tuple[str, str]  # (phrase, token): what became of the object by then, or ("", "")

    @property
    def role(self) -> str:
        found, fate = self.found[0], self.fate[0]
        return f"a VMA {found}" + (f", since {fate}" if fate else "")

    def __str__(self) -> str:
        if self.operation == END:
            where = "at the end"
        elif self.step == self.operation:
            where = f"in {self.operation}"
        else:
            where = f"in {self.operation}'s {self.step}"
        return f"{self.kind} {where}" + (f" on {self.role}" if self.found != NO_OBJECT else "")

    @property
    def slug(self) -> str:
        step = "" if self.step == self.operation else self.step
        words = [self.kind, self.operation, step, self.found[1] if self.found != NO_OBJECT else "", self.fate[1]]
        return ".".join(re.sub(r"[^A-Za-z0-9_-]+", "-", w).strip("-") for w in words if w)


def signature(verdict) -> str:
    """The readable signature of a failing `pyfuzz.check.Verdict`."""
    return str(analyze(verdict))


def slug(verdict) -> str:
    """The filesystem-safe short signature of a failing `pyfuzz.check.Verdict`."""
    return analyze(verdict).slug


def analyze(verdict) -> Signature:
    violation = verdict.violation
    if violation is None:
        raise ValueError("a passing verdict has no signature")
    events = verdict.events
    index = getattr(violation, "event_index", -1)
    if violation.kind == "panic" or verdict.outcome is None:
        # The Rust core's own assertion: its message, less the numbers, is all there is.
        text = re.sub(r"\d+", "N", str(getattr(violation, "message", violation)))
        return Signature(violation.kind, "core", _first_words(text), ("in the core", "core"), ("", ""))
    walk = _Walk(verdict.program)
    inside = 0 <= index < len(events)
    for event in events[:index] if inside else events:
        walk.advance(event)
    if inside:
        return walk.at(violation.kind, events[index], getattr(violation, "message", ""))
    # End-state verdicts point past the last event: name the allocation the message does.
    return walk.at_end(violation.kind, getattr(violation, "message", ""))


def _first_words(text: str, count: int = 6) -> str:
    return " ".join(text.replace("the Rust core panicked:", "").split()[:count]) or "panic"


class _Walk:
    """Who allocated what, who holds which pointer and how, and which op each thread is in."""

    def __init__(self, program) -> None:
        self.program = program
        self.generation: dict[int, int] = {}
        self.allocated_by: dict[tuple[int, int], str] = {}
        self.released: set[tuple[int, int]] = set()  # allocations whose last reference went
        self.pointer: dict[tuple[int, int], tuple[int, str]] = {}  # (thread, slot) -> (gen, how)
        self.current_op: dict[int, str] = {}
        self.open_call: dict[int, str] = {}

    def op_name(self, thread: int) -> str:
        if thread == SETUP_THREAD:
            return "setup"
        if thread == RCU_THREAD:
            return "rcu-callback"
        return self.current_op.get(thread, "thread")

    def advance(self, event: Sequence) -> None:
        kind, thread = event[0], event[1]
        if kind == "op_begin":
            ops = self.program.threads[thread] if 0 <= thread < len(self.program.threads) else ()
            self.current_op[thread] = ops[event[2]].name if 0 <= event[2] < len(ops) else "op"
        elif kind == "ref_call":
            self.open_call[thread] = event[3]
        elif kind == "ref_ret":
            self.open_call.pop(thread, None)
            if event[3] == "put" and event[4] is True:  # the last reference went
                self.released.add((event[2], self.generation.get(event[2], 0)))
        elif kind == "alloc":
            slot, gen = event[2], event[3]
            self.generation[slot] = gen
            self.allocated_by[(slot, gen)] = self.op_name(thread)
            self.pointer[(thread, slot)] = (gen, "alloc")
        elif kind == "free":
            self.released.add((event[2], event[3]))
        elif kind in ("lookup", "mapping_load") and event[3] is not None and event[3] >= 0:
            slot = event[3]
            self.pointer[(thread, slot)] = (self.generation.get(slot, 0), kind)

    def step(self, event: Sequence) -> str:
        kind, thread = event[0], event[1]
        if kind in ("ref_call", "ref_ret"):
            return _REF_FUNCTIONS.get(event[3], event[3])
        if thread in self.open_call:
            return _REF_FUNCTIONS.get(self.open_call[thread], self.open_call[thread])
        if kind in ("read", "write"):
            return f"{kind} {event[3]}"
        if kind == "atomic":
            return "memset" if event[4] == "plain" and event[3] == "store" else "counter access"
        if kind == "op_end":
            return "op end"
        return kind.replace("_", " ")

    def fate(self, slot: int, gen: int) -> tuple[str, str]:
        current = self.generation.get(slot, gen)
        if current != gen:
            by = self.allocated_by.get((slot, current), "another op")
            return f"reused by {by}", f"reused-by-{by}"
        if (slot, gen) in self.released:
            # Neither by whom nor how far: which op dropped the last reference (munmap, merge,
            # the reader's own put, ...) and whether its free has happened yet both vary with
            # the schedule. The reusing op stays: mmap's vm_area_alloc and split's or fork's
            # vm_area_dup re-initialise the counter by different code.
            return "released", "released"
        return "", ""

    def at(self, kind: str, event: Sequence, message: str) -> Signature:
        thread = event[1]
        operation, step = self.op_name(thread), self.step(event)
        slot = slot_of(event)
        if slot is None:
            # A step on no slot (an op's end, where the tree is checked): the object is the one
            # the message names.
            allocation = named_allocation(message)
            if allocation is None:
                return Signature(kind, operation, step, NO_OBJECT, ("", ""))
            slot = allocation[0]
        gen, how = self.pointer.get((thread, slot), (self.generation.get(slot, 0), ""))
        if how:
            found = _FOUND[how]
        elif thread == SETUP_THREAD:
            found = ("built by the setup", "setup")
        else:
            found = ("it never looked up", "unseen")
        return Signature(kind, operation, step, found, self.fate(slot, gen))

    def at_end(self, kind: str, message: str) -> Signature:
        allocation = named_allocation(message)
        if allocation is None:
            return Signature(kind, END, END, ("left at the end", "end"), ("", ""))
        slot, gen = allocation
        by = self.allocated_by.get((slot, gen), "setup")
        return Signature(kind, END, END, (f"made by {by}", f"from-{by}"), self.fate(slot, gen))


def named_allocation(message: str) -> tuple[int, int] | None:
    """The first allocation a violation's message names, as (slot, generation)."""
    match = ALLOCATION_NAME.search(message or "")
    if match is None:
        return None
    slot, gen = match.groups()[:2] if match[1] else match.groups()[2:]
    return int(slot), int(gen)


def slot_of(event: Sequence) -> int | None:
    kind = event[0]
    if kind in _SLOT_AT_2 and len(event) > 2:
        slot = event[2]
    elif kind in _SLOT_AT_3 and len(event) > 3:
        slot = event[3]
    else:
        return None
    return slot if isinstance(slot, int) and slot >= 0 else None
