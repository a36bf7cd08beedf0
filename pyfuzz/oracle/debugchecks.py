"""The kernel's own debug checks, as oracle rules (issue 8, item 6).

These do not judge what happened to the objects (the other rules do): they fire where a kernel
built with the matching debug option would warn, whether or not the hazard did damage in this
history.  `check` reports their first violation when it comes no later than the first violation
of the other rules (the kernel's check runs before the damage it guards).  The main pass calls
them at the events of the kinds they read (`DebugChecks.kind_mask`), a typed call first thing in
each event's branch, ahead of every other rule, and they only note their first violation without
stopping the pass.

* `vma-not-detached`: `vm_area_free` of a VMA that is still in an mm's tree.  `vm_area_free`
  asserts `vma_assert_detached` first thing; always on (it needs no debug option).
* With `lockdep=on` (CONFIG_PROVE_RCU, CONFIG_DEBUG_ATOMIC_SLEEP, CONFIG_PROVE_LOCKING):
  * `suspicious-rcu-usage`: an rcuref put outside any RCU read-side section and with preemption
    enabled; `__rcuref_put` starts with `RCU_LOCKDEP_WARN(!rcu_read_lock_held() &&
    preemptible(), ...)`, so both `rcuref_put_rcusafe` from a plain context and an `rcuref_put`
    that lost its `preempt_disable` are caught;
  * `might-sleep`: the mmap_lock (an rwsem, a sleeping lock) taken inside an RCU read-side
    section or with preemption disabled (`might_sleep()` in `down_read`/`down_write`);
  * `unbalanced-rcu`: an operation that ends (returns to user space) inside a read-side section
    or with preemption still disabled.
"""

from __future__ import annotations

from typing import Final

from .kinds import K_FREE, K_LOCK, K_OP_END, K_PREEMPT_OFF, K_PREEMPT_ON, K_RCU_LOCK, K_RCU_UNLOCK, K_REF_CALL, K_TREE_INSERT, \
    K_TREE_REMOVE, kind_mask
from .kinds import fit
from .violation import Violation, thread_name

KINDS = ("vma-not-detached", "suspicious-rcu-usage", "might-sleep", "unbalanced-rcu")
# The events each check reads: without lockdep only the trees and the frees.
_DETACHED_EVENTS = frozenset(("tree_insert", "tree_remove", "free"))
_LOCKDEP_EVENTS = _DETACHED_EVENTS | {"rcu_lock", "rcu_unlock", "preempt_off", "preempt_on", "ref_call", "lock",
                                      "op_end"}
_DETACHED_MASK: Final = kind_mask(_DETACHED_EVENTS)
_LOCKDEP_MASK: Final = kind_mask(_LOCKDEP_EVENTS)


class DebugChecks:
    def __init__(self, config: dict):
        self.events: list = []
        self.lockdep = config.get("lockdep", "off") == "on"
        self.kind_mask = _LOCKDEP_MASK if self.lockdep else _DETACHED_MASK  # bit k: events of kind k are read
        self.rcu: dict[int, int] = {}       # thread -> rcu_read_lock nesting
        self.preempt: dict[int, int] = {}   # thread -> preempt_disable nesting
        self.in_tree: list[int] = []  # by slot (kinds.fit): bit mm set while mm's tree holds it
        self.found: Violation | None = None  # the first violation

    def reset(self, events: list) -> None:
        """For the History's next history (`History.start`)."""
        self.events = events
        self.rcu.clear()
        self.preempt.clear()
        self.in_tree.clear()
        self.found = None

    def context(self, t) -> str:
        parts = []
        if self.rcu.get(t, 0):
            parts.append("inside an RCU read-side section")
        if self.preempt.get(t, 0):
            parts.append("with preemption disabled")
        return " and ".join(parts)

    def report(self, v: Violation) -> None:
        if self.found is None:
            self.found = v

    # The pass calls these at the events of `kind_mask`, first thing at each (ahead of every
    # other rule): the ones of `_LOCKDEP_EVENTS` only with lockdep.

    def entered(self, t: int, rcu: bool) -> None:
        """rcu_read_lock (rcu) or preempt_disable by t."""
        nest = self.rcu if rcu else self.preempt
        nest[t] = nest.get(t, 0) + 1

    def left(self, t: int, rcu: bool) -> None:
        """rcu_read_unlock (rcu) or preempt_enable by t."""
        nest = self.rcu if rcu else self.preempt
        nest[t] = nest.get(t, 0) - 1

    def inserted(self, mm: int, slot: int) -> None:
        in_tree = self.in_tree
        fit(in_tree, slot, 0)
        in_tree[slot] = in_tree[slot] | (1 << mm)

    def removed(self, mm: int, slot: int) -> None:
        in_tree = self.in_tree
        if 0 <= slot < len(in_tree):
            in_tree[slot] = in_tree[slot] & ~(1 << mm)

    def freed(self, idx: int, t: int, slot: int, gen: int) -> None:
        in_tree = self.in_tree
        mms = in_tree[slot] if 0 <= slot < len(in_tree) else 0
        if mms:
            low = (mms & -mms).bit_length() - 1
            self.report(Violation(
                "vma-not-detached",
                f"{thread_name(t)} frees VMA slot {slot} gen {gen} at event {idx} while it is still "
                f"in the tree of mm {low}: vm_area_free's vma_assert_detached() fires.", idx, self.events))

    def put_called(self, idx: int, t: int, slot: int) -> None:
        if not self.rcu.get(t, 0) and not self.preempt.get(t, 0):
            self.report(Violation(
                "suspicious-rcu-usage",
                f"{thread_name(t)}'s vma_put on VMA slot {slot} at event {idx} runs __rcuref_put outside "
                "any RCU read-side section and with preemption enabled: lockdep reports "
                "\"suspicious rcuref_put_rcusafe() usage\" (nothing holds the grace period off "
                "between the put's decrement and its cmpxchg).", idx, self.events))

    def locking(self, idx: int, t: int, mode: str) -> None:
        where = self.context(t)
        if where:
            self.report(Violation(
                "might-sleep",
                f"{thread_name(t)} takes the mmap_lock ({mode}) at event {idx} {where}: the rwsem may "
                "sleep, and might_sleep() reports a sleeping function called from invalid context.",
                idx, self.events))

    def op_ended(self, idx: int, t: int, op: object) -> None:
        where = self.context(t)
        if where:
            self.report(Violation(
                "unbalanced-rcu",
                f"{thread_name(t)}'s op {op} ends at event {idx} {where}: a section entered in the "
                "operation was never left (lockdep reports a lock held when returning to user space).",
                idx, self.events))

    def see(self, idx: int, kind: int, ev: tuple) -> None:
        """One event of `kind_mask` by its kind, as the pass's branches feed them: for the first
        event after setup, when the setup invariants fail before its branch runs (`History.run`)."""
        t: int = ev[1]
        if kind == K_RCU_LOCK or kind == K_PREEMPT_OFF:
            self.entered(t, kind == K_RCU_LOCK)
        elif kind == K_RCU_UNLOCK or kind == K_PREEMPT_ON:
            self.left(t, kind == K_RCU_UNLOCK)
        elif kind == K_TREE_INSERT:
            self.inserted(ev[2], ev[3])
        elif kind == K_TREE_REMOVE:
            self.removed(ev[2], ev[3])
        elif kind == K_FREE:
            self.freed(idx, t, ev[2], ev[3])
        elif kind == K_REF_CALL:
            if ev[3] == "put":
                self.put_called(idx, t, ev[2])
        elif kind == K_LOCK:
            self.locking(idx, t, ev[2])
        elif kind == K_OP_END:
            self.op_ended(idx, t, ev[2])
