"""The event kinds as small integers: the pass reads each event's code and picks its branch, and
the rules it feeds, by int compares, where a chain of string compares cost about as much as the
branch itself.  The plain accesses come first (one range test); kinds not listed (the facts no
verdict depends on: op_begin, folio_map and mapped_load) are `NO_KIND` and get no branch.

The codes of a history are a `bytes` of one code per event: the Rust core's outcome hands them out
beside the events (`Outcome.kinds`, the events' own kind field re-encoded, checked against `KIND`
by tests/test_oracle.py), and `kind_codes` derives them from the events for any other history."""

from __future__ import annotations

from typing import Final, Iterable

K_READ: Final = 0
K_WRITE: Final = 1
K_USE: Final = 2
K_ATOMIC: Final = 3
K_REF_CALL: Final = 4
K_REF_RET: Final = 5
K_OP_END: Final = 6
K_LOCK: Final = 7
K_UNLOCK: Final = 8
K_RCU_LOCK: Final = 9
K_PREEMPT_OFF: Final = 10
K_RCU_UNLOCK: Final = 11
K_PREEMPT_ON: Final = 12
K_MAPPING_STORE: Final = 13
K_MAPPING_LOAD: Final = 14
K_ALLOC: Final = 15
K_LOOKUP: Final = 16
K_TREE_INSERT: Final = 17
K_TREE_UPDATE: Final = 18
K_FREE: Final = 19
K_FENCE: Final = 20
K_TREE_REMOVE: Final = 21
K_WARN: Final = 22
K_RECLAIM: Final = 23
K_PANIC: Final = 24
K_RMAP_LOCK: Final = 25  # read by rmaplock only
K_RMAP_UNLOCK: Final = 26
KIND: Final[dict[str, int]] = {
    "read": K_READ, "write": K_WRITE, "use": K_USE, "atomic": K_ATOMIC, "ref_call": K_REF_CALL,
    "ref_ret": K_REF_RET, "op_end": K_OP_END, "lock": K_LOCK, "unlock": K_UNLOCK, "rcu_lock": K_RCU_LOCK,
    "preempt_off": K_PREEMPT_OFF, "rcu_unlock": K_RCU_UNLOCK, "preempt_on": K_PREEMPT_ON,
    "mapping_store": K_MAPPING_STORE, "mapping_load": K_MAPPING_LOAD, "alloc": K_ALLOC, "lookup": K_LOOKUP,
    "tree_insert": K_TREE_INSERT, "tree_update": K_TREE_UPDATE, "free": K_FREE, "fence": K_FENCE,
    "tree_remove": K_TREE_REMOVE, "warn": K_WARN, "reclaim": K_RECLAIM, "panic": K_PANIC,
    "rmap_lock": K_RMAP_LOCK, "rmap_unlock": K_RMAP_UNLOCK}
NO_KIND: Final = 27  # the code of a kind no rule reads

# Per-thread state is a list by thread index, thread + 2: the RCU callback is 0, setup 1, the
# program's threads (at most 4) 2..5.
THREAD_INDICES: Final = 6

# The slots (and folio pages) the oracle takes, 0..SLOTS-1: the core's events carry a slot and a
# page in a byte each, and per-slot (per-page) state is kept in lists indexed by it.
SLOTS: Final = 256


def bound(i: int, what: str) -> None:
    """Refuse a slot (page, mm: `what`) that is not in 0..SLOTS-1."""
    if not 0 <= i < SLOTS:
        raise ValueError(f"{what} {i}: the oracle takes {what}s 0..{SLOTS - 1}, as the core's events carry them")


def fit(per_slot: list, slot: int, fill: object, what: str = "VMA slot") -> None:
    """Room for `slot` in a list indexed by the slot (or by `what` else, a page), new entries `fill`."""
    bound(slot, what)
    while len(per_slot) <= slot:
        per_slot.append(fill)


def kind_codes(events: list[tuple]) -> bytes:
    """The codes of the events' kinds (`KIND`, `NO_KIND` for the others), one byte each."""
    codes = bytearray(len(events))
    for i in range(len(events)):
        k: str = events[i][0]
        codes[i] = KIND.get(k, NO_KIND)
    return bytes(codes)


def codes_of(outcome) -> bytes:
    """An outcome's kind codes: the core's (`Outcome.kinds`), or derived from its events for an
    outcome that has none (the pure-Python executor's)."""
    kinds = getattr(outcome, "kinds", None)
    return kinds if kinds is not None else kind_codes(outcome.events)


def kind_mask(names: Iterable[str]) -> int:
    """The bit mask of the kinds named (bit k: kind k), for a rule fed the events of those kinds."""
    mask = 0
    for name in names:
        mask |= 1 << KIND[name]
    return mask
