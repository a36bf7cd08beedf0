"""Tests of the independent oracle (pyfuzz.model) on hand-built histories.

Every history is written event by event, like the race tables in lib/rcuref.c, so that each test
shows the interleaving it judges.  Each rejecting test asserts the specific violation kind.
"""

import pytest

from pyfuzz.model import Violation, check

CFG = {"vma_ref": "on", "slab": "typesafe", "put": "preempt", "debug_vm": "on"}
MAXREF = 0x7FFFFFFF
SATURATED = 0xA0000000
DEAD = 0xE0000000
NOREF = 0xFFFFFFFF


def cfg(**kw):
    c = dict(CFG)
    c.update(kw)
    return c


class H:
    """A history builder: H()(*event) appends one raw event; helpers append common sequences."""

    def __init__(self):
        self.ev = []

    def __call__(self, *e):
        self.ev.append(tuple(e))
        return self

    # -------------------------------------------------------------- setup (thread -1)
    def vma(self, slot, start, end, counter=None, gen=1):
        self("alloc", -1, slot, gen)
        self("atomic", -1, slot, "store", "plain", 0, 0)
        self("ref_call", -1, slot, "init")
        self("atomic", -1, slot, "store", "relaxed", 0, 0)
        self("ref_ret", -1, slot, "init", None)
        for f, v in (("vm_start", start), ("vm_end", end), ("vm_pgoff", start)):
            self("write", -1, slot, f, v)
        self("tree_insert", -1, 0, slot, start, end, start)
        if counter is not None:
            self("atomic", -1, slot, "store", "relaxed", 0, counter)
        for p in range(start, end):
            self("mapping_store", -1, p, slot)
            self("folio_map", -1, p, True)
        return self

    # -------------------------------------------------------------- rcuref operations
    def get_fast(self, t, slot, old=0):
        self("ref_call", t, slot, "get")
        self("atomic", t, slot, "add", "relaxed", old, (old + 1) & 0xFFFFFFFF)
        return self("ref_ret", t, slot, "get", True)

    def put_fast(self, t, slot, old=1, order="release"):
        """A put that does not drop the last reference (old > 0)."""
        self("preempt_off", t)
        self("ref_call", t, slot, "put")
        self("atomic", t, slot, "sub", order, old, old - 1)
        self("ref_ret", t, slot, "put", False)
        return self("preempt_on", t)

    def put_last(self, t, slot, order="release"):
        self("preempt_off", t)
        self("ref_call", t, slot, "put")
        self("atomic", t, slot, "sub", order, 0, NOREF)
        self("atomic", t, slot, "cas_ok", "release", NOREF, DEAD)
        self("fence", t, "acquire")
        self("ref_ret", t, slot, "put", True)
        return self("preempt_on", t)

    # -------------------------------------------------------------- VMA paths
    def munmap_detach(self, t, slot, start, end):
        self("lock", t, "write")
        self("lookup", t, 0, slot)
        self("tree_remove", t, 0, slot)
        for p in range(start, end):
            self("folio_map", t, p, False)
        self("read", t, slot, "vm_file", 0)
        return self("read", t, slot, "vm_policy", 0)

    def munmap(self, t, slot, start, end, op=0):
        """A complete munmap that drops the last reference and frees (gen 1)."""
        self("op_begin", t, op)
        self.munmap_detach(t, slot, start, end)
        self.put_last(t, slot)
        self("free", t, slot, 1)
        self("unlock", t, "write")
        return self("op_end", t, op, "ok")

    def reader_enter(self, t, page, slot):
        self("rcu_lock", t)
        self("mapping_load", t, page, slot)
        return self("mapped_load", t, page, True)

    def read_fields(self, t, slot, start, end, pgoff):
        self("mapping_load", t, start, slot)
        self("read", t, slot, "vm_start", start)
        self("read", t, slot, "vm_end", end)
        return self("read", t, slot, "vm_pgoff", pgoff)


def rejects(events, kind, config=CFG, final=None):
    with pytest.raises(Violation) as ei:
        check(events, config, final)
    v = ei.value
    assert v.kind == kind, str(v)
    assert str(v) == f"{v.kind}: {v.message}"
    assert 0 <= v.event_index <= len(events)
    assert v.events is events
    return v


def accepts(events, config=CFG, final=None):
    assert check(events, config, final) is None


# ====================================================================== clean histories

def clean_history():
    h = H().vma(0, 0, 4)
    h("op_begin", 1, 0)
    h.reader_enter(1, 1, 0)
    h.get_fast(1, 0, 0)
    h.read_fields(1, 0, 0, 4, 0)
    h("use", 1, 0, 1)
    h.put_fast(1, 0, 1)
    h("rcu_unlock", 1)
    h("op_end", 1, 0, "walked")
    h.munmap(0, 0, 0, 4)
    return h.ev


def test_clean_sequential_get_put_free():
    ev = clean_history()
    accepts(ev, final=[DEAD, 0, 0, 0, 0, 0, 0, 0])


def test_clean_history_counter_mismatch_at_end():
    # the same history, but slot 1 is untouched and slot 0 is live in a variant: see below
    h = H().vma(0, 0, 4)
    h.get_fast(1, 0, 0)            # T1 keeps its reference
    accepts(h.ev, final=[1])
    rejects(h.ev, "counter-mismatch", final=[0])


# ====================================================================== rcuref races

def test_critical_states_race_table_is_linearizable():
    """lib/rcuref.c "critical states": T0 put to NOREF, T1 get back to ONEREF, T1 put marks DEAD
    and frees, T0's cmpxchg fails.  T0 is preemption-disabled across its put."""
    h = H().vma(0, 0, 4)
    h("op_begin", 1, 0)
    h.reader_enter(1, 1, 0)
    h("op_begin", 0, 0).munmap_detach(0, 0, 0, 4)
    h("preempt_off", 0)
    h("ref_call", 0, 0, "put")
    h("atomic", 0, 0, "sub", "release", 0, NOREF)          # T0: last reference gone
    h("ref_call", 1, 0, "get")
    h("atomic", 1, 0, "add", "relaxed", NOREF, 0)          # T1: back to ONEREF
    h("ref_ret", 1, 0, "get", True)
    h.read_fields(1, 0, 0, 4, 0)
    h("use", 1, 0, 1)
    h.put_last(1, 0)                                       # T1: NOREF -> DEAD
    h("free", 1, 0, 1)
    h("rcu_unlock", 1)
    h("op_end", 1, 0, "walked")
    h("atomic", 0, 0, "cas_fail", "release", DEAD, DEAD)   # T0: cmpxchg(NOREF, DEAD) fails
    h("ref_ret", 0, 0, "put", False)
    h("preempt_on", 0)
    h("unlock", 0, "write")
    h("op_end", 0, 0, "ok")
    accepts(h.ev, final=[DEAD])
    # with put=rcusafe and no preemption disabled around T0's put, T0's cmpxchg hits freed memory
    ev2 = [e for e in h.ev if not (e[0] in ("preempt_off", "preempt_on") and e[1] == 0)]
    v = rejects(ev2, "use-after-free", config=cfg(put="rcusafe"))
    assert "T0" in v.message and "cas_fail" in v.message


def test_get_racing_last_put_ends_dead_plus_one_and_fails():
    h = H().vma(0, 0, 4)
    h.reader_enter(1, 1, 0)
    h("ref_call", 1, 0, "get")
    h.munmap(0, 0, 0, 4)                                   # put -> DEAD, free
    h("atomic", 1, 0, "add", "relaxed", DEAD, DEAD + 1)    # T1 lands in the dead zone
    h("atomic", 1, 0, "load", "relaxed", DEAD + 1, DEAD + 1)
    h("atomic", 1, 0, "store", "relaxed", DEAD + 1, DEAD)
    h("ref_ret", 1, 0, "get", False)
    h("rcu_unlock", 1)
    accepts(h.ev, final=[DEAD])


def test_get_succeeding_on_dead_object_is_not_linearizable():
    h = H().vma(0, 0, 4)
    h.reader_enter(1, 1, 0)
    h("ref_call", 1, 0, "get")
    h.munmap(0, 0, 0, 4)
    h("atomic", 1, 0, "add", "relaxed", DEAD, DEAD + 1)
    h("ref_ret", 1, 0, "get", True)                        # get_ignores_dead
    h("rcu_unlock", 1)
    v = rejects(h.ev, "not-linearizable")
    assert "T1's vma_get on VMA slot 0 gen 1" in v.message and "DEAD" in v.message
    assert "T0's vma_put" in v.message


def test_two_puts_both_returning_true_is_not_linearizable():
    h = H().vma(0, 0, 4)
    h("ref_call", 0, 0, "put")
    h("ref_call", 1, 0, "put")
    h("atomic", 0, 0, "sub", "release", 0, NOREF)
    h("atomic", 1, 0, "sub", "release", NOREF, NOREF - 1)
    h("atomic", 0, 0, "store", "relaxed", NOREF - 1, DEAD)
    h("ref_ret", 0, 0, "put", True)
    h("atomic", 1, 0, "store", "relaxed", DEAD, DEAD)
    h("ref_ret", 1, 0, "put", True)
    v = rejects(h.ev, "not-linearizable")
    assert "no linearization of" in v.message


def _mmap_into_recycled_slot(h):
    """T0's op 1: mmap [8, 12) gets slot 0 back as gen 2 (memset, rcuref init, fields, insert)."""
    h("op_begin", 0, 1)
    h("lock", 0, "write")
    h("alloc", 0, 0, 2)
    h("atomic", 0, 0, "store", "plain", DEAD, 0)
    h("ref_call", 0, 0, "init")
    h("atomic", 0, 0, "store", "relaxed", 0, 0)
    h("ref_ret", 0, 0, "init", None)
    for f, v in (("vm_start", 8), ("vm_end", 12), ("vm_pgoff", 8)):
        h("write", 0, 0, f, v)
    h("tree_insert", 0, 0, 0, 8, 12, 8)
    h("unlock", 0, "write")
    h("op_end", 0, 1, "ok")


def test_stale_reader_pins_reused_slot_and_puts_it_back():
    """SLAB_TYPESAFE_BY_RCU: T1's stale pointer to gen 1 takes a reference on gen 2, notices
    (the folio is no longer mapped by it) and puts it back.  Legal."""
    h = H().vma(0, 0, 4)
    h.reader_enter(1, 1, 0)
    h.munmap(0, 0, 0, 4)
    _mmap_into_recycled_slot(h)
    h.get_fast(1, 0, 0)                                    # on gen 2's counter
    h("mapping_load", 1, 1, 0)
    h("read", 1, 0, "vm_start", 8)
    h("read", 1, 0, "vm_end", 12)
    h("read", 1, 0, "vm_pgoff", 8)
    h.put_fast(1, 0, 1)                                    # gives gen 2's reference back
    h("rcu_unlock", 1)
    accepts(h.ev, final=[0])


def test_get_between_alloc_memset_and_init_is_reported():
    """The zeroed counter of a re-allocated slot reads as one reference: a stale get succeeding
    before vma_rcuref_init revives the dead previous object."""
    h = H().vma(0, 0, 4)
    h.reader_enter(1, 1, 0)
    h.munmap(0, 0, 0, 4)
    h("lock", 0, "write")
    h("alloc", 0, 0, 2)
    h("atomic", 0, 0, "store", "plain", DEAD, 0)
    h.get_fast(1, 0, 0)
    v = rejects(h.ev, "not-linearizable")
    assert "gen 1" in v.message


# ====================================================================== free rules

def test_free_while_reader_holds_a_reference():
    h = H().vma(0, 0, 4)
    h.reader_enter(1, 1, 0)
    h.get_fast(1, 0, 0)
    h.munmap_detach(0, 0, 0, 4)
    h.put_fast(0, 0, 1)                                    # correctly returns false
    h("free", 0, 0, 1)                                     # ... but frees anyway
    v = rejects(h.ev, "free-while-held")
    assert "T1 (from its vma_get" in v.message


def test_free_while_still_in_tree_with_vma_ref_off():
    h = H().vma(0, 0, 4)
    h("lock", 0, "write")
    h("lookup", 0, 0, 0)
    h("free", 0, 0, 1)
    # vm_area_free's vma_assert_detached() fires first (oracle/debugchecks.py)
    v = rejects(h.ev, "vma-not-detached", config=cfg(vma_ref="off"))
    assert "the tree of mm 0" in v.message
    # detaching first makes it legal
    h2 = H().vma(0, 0, 4)
    h2.munmap_detach(0, 0, 0, 4)
    h2("free", 0, 0, 1)
    h2("unlock", 0, "write")
    accepts(h2.ev, config=cfg(vma_ref="off"))


def test_double_free():
    ev = clean_history()
    ev.append(("free", 0, 0, 1))
    rejects(ev, "double-free")


# ====================================================================== memory safety

def _freed_then_read(inside):
    h = H().vma(0, 0, 4)
    h("rcu_lock", 1)
    h("mapping_load", 1, 1, 0)
    if not inside:
        h("rcu_unlock", 1)
    h.munmap(0, 0, 0, 4)
    h("read", 1, 0, "vm_start", 0)
    if inside:
        h("rcu_unlock", 1)
    return h.ev


def test_access_after_free_outside_read_side_section():
    v = rejects(_freed_then_read(inside=False), "use-after-free")
    assert "T1" in v.message and "T0 freed" in v.message


def test_access_after_free_inside_rcu_section_begun_before_free():
    accepts(_freed_then_read(inside=True))


def test_access_in_rcu_section_begun_after_free():
    h = H().vma(0, 0, 4)
    h.munmap(0, 0, 0, 4)
    h("rcu_lock", 1)
    h("mapping_load", 1, 1, 0)                             # stale folio mapping
    h("read", 1, 0, "vm_start", 0)
    h("rcu_unlock", 1)
    v = rejects(h.ev, "use-after-free")
    assert "began at event" in v.message


# ====================================================================== ordering

def _reader_put_then_owner_frees(order):
    h = H().vma(0, 0, 4)
    h.reader_enter(1, 1, 0)
    h.get_fast(1, 0, 0)
    h.read_fields(1, 0, 0, 4, 0)
    h("use", 1, 0, 1)
    h.put_fast(1, 0, 1, order=order)
    h("rcu_unlock", 1)
    h.munmap(0, 0, 0, 4)
    return h.ev


def test_release_put_orders_reader_before_free():
    accepts(_reader_put_then_owner_frees("release"))


def test_relaxed_put_is_a_data_race_with_the_free():
    v = rejects(_reader_put_then_owner_frees("relaxed"), "data-race")
    assert "T1's" in v.message and "T0's free" in v.message


def test_missing_acquire_fence_is_a_data_race():
    ev = [e for e in _reader_put_then_owner_frees("release") if not (e[0] == "fence" and e[1] == 0)]
    rejects(ev, "data-race")


# ====================================================================== warnings

def _saturating_get(warn):
    h = H().vma(0, 0, 4, counter=MAXREF)
    h("ref_call", 1, 0, "get")
    h("atomic", 1, 0, "add", "relaxed", MAXREF, MAXREF + 1)
    h("atomic", 1, 0, "load", "relaxed", MAXREF + 1, MAXREF + 1)
    if warn:
        h("warn", 1, 0, "saturated")
    h("atomic", 1, 0, "store", "relaxed", MAXREF + 1, SATURATED)
    h("ref_ret", 1, 0, "get", True)
    return h.ev


def test_saturation_warning_expected():
    accepts(_saturating_get(True), final=[SATURATED])


def test_saturation_warning_missing():
    v = rejects(_saturating_get(False), "not-linearizable")
    assert "saturated" in v.message


def test_saturated_counter_left_the_zone():
    rejects(_saturating_get(True), "counter-mismatch", final=[MAXREF])


def test_warning_outside_any_rcuref_operation():
    h = H().vma(0, 0, 4)
    h("warn", 1, 0, "saturated")
    rejects(h.ev, "unexpected-warning")


def _imbalanced_put(live, warn):
    """A put on the allocation: on a DEAD counter (from inside an RCU section that began before
    the free) or on a live one."""
    h = H().vma(0, 0, 4)
    h("rcu_lock", 1)
    h("mapping_load", 1, 1, 0)
    old = 0
    if not live:
        h.munmap(0, 0, 0, 4)
        old = DEAD
    h("ref_call", 1, 0, "put")
    h("atomic", 1, 0, "sub", "release", old, (old - 1) & 0xFFFFFFFF)
    if warn:
        h("warn", 1, 0, "imbalanced_put")
    h("atomic", 1, 0, "store", "relaxed", (old - 1) & 0xFFFFFFFF, DEAD)
    h("ref_ret", 1, 0, "put", False)
    h("rcu_unlock", 1)
    return h.ev


def test_imbalanced_put_on_dead_counter_warns_as_specified():
    accepts(_imbalanced_put(live=False, warn=True))


def test_imbalanced_put_without_its_warning():
    rejects(_imbalanced_put(live=False, warn=False), "not-linearizable")


def test_imbalanced_put_warning_on_live_counter():
    v = rejects(_imbalanced_put(live=True, warn=True), "not-linearizable")
    assert "imbalanced_put" in v.message


def test_vma_get_disabled_warning_depends_on_config():
    h = H().vma(0, 0, 4)
    h("lock", 1, "read")
    h("lookup", 1, 0, 0)
    h("warn", 1, 0, "vma_get_disabled")
    h("unlock", 1, "read")
    accepts(h.ev, config=cfg(vma_ref="off", debug_vm="on"))
    rejects(h.ev, "unexpected-warning", config=cfg(vma_ref="off", debug_vm="off"))
    rejects(h.ev, "unexpected-warning", config=cfg(vma_ref="on"))


# ====================================================================== end state

def test_leak_released_but_never_freed():
    h = H().vma(0, 0, 4)
    h.munmap_detach(0, 0, 0, 4)
    h.put_last(0, 0)                                       # returns true ...
    h("unlock", 0, "write")                                # ... but nobody frees
    v = rejects(h.ev, "leak")
    assert v.event_index == len(h.ev)


def test_leak_detached_but_never_put():
    h = H().vma(0, 0, 4)
    h.munmap_detach(0, 0, 0, 4)
    h("unlock", 0, "write")
    v = rejects(h.ev, "leak", final=[0])
    assert "T0 detached it" in v.message


def test_counter_mismatch_reference_dropped_by_non_holder():
    h = H().vma(0, 0, 4, counter=1)                        # tree + one external holder
    h.put_fast(1, 0, 1)                                    # T1 drops a reference it never took
    v = rejects(h.ev, "counter-mismatch", final=[0])
    assert "external holder" in v.message


# ====================================================================== VMA invariants and use

def _split(move_pgoff):
    h = H().vma(0, 0, 4)
    h("op_begin", 0, 0)
    h("lock", 0, "write")
    h("lookup", 0, 0, 0)
    h("alloc", 0, 1, 1)
    for f, v in (("vm_start", 0), ("vm_end", 4), ("vm_pgoff", 0)):
        h("read", 0, 0, f, v)
        h("write", 0, 1, f, v)
    h("ref_call", 0, 1, "init")
    h("atomic", 0, 1, "store", "relaxed", 0, 0)
    h("ref_ret", 0, 1, "init", None)
    h("write", 0, 1, "vm_start", 2)
    if move_pgoff:
        h("write", 0, 1, "vm_pgoff", 2)
    h("write", 0, 0, "vm_end", 2)
    h("tree_update", 0, 0, 0, 0, 2, 0)
    h("tree_insert", 0, 0, 1, 2, 4, 2 if move_pgoff else 0)
    h("mapping_store", 0, 2, 1)
    h("mapping_store", 0, 3, 1)
    h("unlock", 0, "write")
    h("op_end", 0, 0, "ok")
    return h.ev


def test_split_moves_pgoff():
    accepts(_split(True), final=[0, 0])


def test_split_without_pgoff_breaks_invariant():
    v = rejects(_split(False), "vma-invariant")
    assert "vm_pgoff" in v.message


def test_folio_not_repointed_breaks_invariant():
    ev = [e for e in _split(True) if not (e[0] == "mapping_store" and e[1] == 0)]
    v = rejects(ev, "vma-invariant")
    assert "folio 2" in v.message


def _reader_on_reused_slot(recheck):
    """T1 loads folio 1's stale mapping (slot 0), T0 unmaps gen 1 and mmaps [8, 12) into the
    recycled slot 0 (gen 2); T1's get pins gen 2 and the re-loaded mapping still says slot 0."""
    h = H().vma(0, 0, 4)
    h("op_begin", 1, 0)
    h.reader_enter(1, 1, 0)
    h.munmap(0, 0, 0, 4)
    _mmap_into_recycled_slot(h)
    h.get_fast(1, 0, 0)
    h("mapping_load", 1, 1, 0)
    h("read", 1, 0, "vm_start", 8)
    h("read", 1, 0, "vm_end", 12)
    h("read", 1, 0, "vm_pgoff", 8)
    if not recheck:
        h("use", 1, 0, 1)
    h.put_fast(1, 0, 1)
    h("rcu_unlock", 1)
    h("op_end", 1, 0, "stale" if recheck else "walked")
    return h.ev


def test_reader_rechecks_reused_slot():
    accepts(_reader_on_reused_slot(recheck=True), final=[0])


def test_bad_use_by_reader_on_reused_slot():
    v = rejects(_reader_on_reused_slot(recheck=False), "bad-use")
    assert "VMA slot 0 gen 2" in v.message and "page 1" in v.message


def test_use_without_reference():
    h = H().vma(0, 0, 4)
    h.reader_enter(1, 1, 0)
    h.read_fields(1, 0, 0, 4, 0)
    h("use", 1, 0, 1)
    rejects(h.ev, "bad-use")


# ====================================================================== deferred reclaim

def _deferred(reclaim_early, realloc_early=False):
    h = H().vma(0, 0, 4)
    h("rcu_lock", 1)
    h("mapping_load", 1, 1, 0)
    h.munmap(0, 0, 0, 4)
    if realloc_early:
        h("alloc", 0, 0, 2)
    if reclaim_early:
        h("reclaim", -2, 0, 1)
    h("read", 1, 0, "vm_start", 0)
    h("rcu_unlock", 1)
    if not reclaim_early:
        h("reclaim", -2, 0, 1)
    return h.ev


def test_reclaim_after_grace_period():
    accepts(_deferred(reclaim_early=False), config=cfg(slab="deferred"))


def test_bad_reclaim_while_reader_in_section():
    v = rejects(_deferred(reclaim_early=True), "bad-reclaim", config=cfg(slab="deferred"))
    assert "T1 is still inside" in v.message


def test_alloc_of_unreclaimed_slot():
    rejects(_deferred(reclaim_early=False, realloc_early=True), "bad-reclaim", config=cfg(slab="deferred"))


def test_reclaim_in_typesafe_mode():
    rejects(_deferred(reclaim_early=False), "bad-reclaim", config=cfg(slab="typesafe"))


# ====================================================================== misc

def test_dup_without_rcuref_init_is_reported():
    ev = [e for e in _split(True)
          if not (e[1] == 0 and (e[0] in ("ref_call", "ref_ret") or (e[0] == "atomic" and e[2] == 1)))]
    v = rejects(ev, "not-linearizable")
    assert "vma_rcuref_init" in v.message


def test_panic_event():
    h = H().vma(0, 0, 4)
    h("panic", 0, "assertion failed: slot in range")
    v = rejects(h.ev, "panic")
    assert v.event_index == len(h.ev) - 1


def test_earliest_violation_wins():
    """A linearizability violation observed before an event-level one is the one reported."""
    h = H().vma(0, 0, 4)
    h.get_fast(1, 0, 0)
    h.munmap_detach(0, 0, 0, 4)
    h("preempt_off", 0)
    h("ref_call", 0, 0, "put")
    h("atomic", 0, 0, "sub", "release", 1, 0)
    h("ref_ret", 0, 0, "put", True)                        # wrong: T1 still holds a reference
    h("preempt_on", 0)
    h("free", 0, 0, 1)                                     # free-while-held, but later
    v = rejects(h.ev, "not-linearizable")
    assert h.ev[v.event_index][0] == "ref_ret"
