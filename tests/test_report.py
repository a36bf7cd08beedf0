import pytest

from pyfuzz.model import Violation
from pyfuzz.program import parse
from pyfuzz.report import counter_symbol, format_counter, render_finding, render_trace

PROGRAM = parse("""vma 0-4
thread 0
  munmap 0
thread 1
  rmap 1
thread 2
  mmap 8 4
schedule 1:3 0:30 2:40
""")

S = -1
# T1 loads folio 1's mapping, T0 unmaps and frees the VMA, T2's mmap reuses the slot, and T1's get
# then succeeds on the new object: a typesafe-by-RCU reuse the reader must notice.
HISTORY = [
    ("alloc", S, 0, 1),
    ("atomic", S, 0, "store", "plain", 0, 0),
    ("ref_call", S, 0, "init"),
    ("atomic", S, 0, "store", "relaxed", 0, 0),
    ("ref_ret", S, 0, "init", None),
    ("tree_insert", S, 0, 0, 0, 4, 0),
    *(("mapping_store", S, page, 0) for page in range(4)),
    ("op_begin", 1, 0),  # 10
    ("rcu_lock", 1),
    ("mapping_load", 1, 1, 0),
    ("op_begin", 0, 0),
    ("lock", 0, "write"),
    ("lookup", 0, 0, 0),  # 15
    ("tree_remove", 0, 0, 0),
    ("unlock", 0, "write"),
    ("read", 0, 0, "vm_file", 0),
    ("read", 0, 0, "vm_policy", 0),
    ("ref_call", 0, 0, "put"),  # 20
    ("preempt_off", 0),
    ("atomic", 0, 0, "sub", "release", 0, 0xFFFFFFFF),
    ("atomic", 0, 0, "cas_ok", "release", 0xFFFFFFFF, 0xE0000000),
    ("fence", 0, "acquire"),
    ("preempt_on", 0),  # 25
    ("ref_ret", 0, 0, "put", True),
    ("free", 0, 0, 1),
    ("op_end", 0, 0, "ok"),
    ("op_begin", 2, 0),
    ("lock", 2, "write"),  # 30
    ("alloc", 2, 0, 2),
    ("atomic", 2, 0, "store", "plain", 0xE0000000, 0),
    ("write", 2, 0, "vm_start", 8),
    ("ref_call", 2, 0, "init"),
    ("atomic", 2, 0, "store", "relaxed", 0, 0),  # 35
    ("ref_ret", 2, 0, "init", None),
    ("tree_insert", 2, 0, 0, 8, 12, 8),
    ("unlock", 2, "write"),
    ("op_end", 2, 0, "ok"),
    ("ref_call", 1, 0, "get"),  # 40
    ("atomic", 1, 0, "add", "relaxed", 0, 1),
    ("ref_ret", 1, 0, "get", True),
    ("read", 1, 0, "vm_start", 8),
    ("mapping_load", 1, 1, 0),
    ("ref_call", 1, 0, "put"),  # 45
    ("atomic", 1, 0, "sub", "release", 1, 0),
    ("ref_ret", 1, 0, "put", False),
    ("warn", 1, 0, "imbalanced_put"),
    ("rcu_unlock", 1),
    ("op_end", 1, 0, "stale"),  # 50
    ("reclaim", -2, 0, 1),
]


def _row(text, index):
    return next(line for line in text.splitlines() if line.split()[:1] == [str(index)])


def _cell(text, index):
    """The whole (possibly wrapped) cell of event `index`, whitespace normalised."""
    lines = text.splitlines()
    start = lines.index(_row(text, index))
    end = start + 1
    while end < len(lines) and lines[end][:1] == " " and not lines[end].lstrip()[:1].isdigit():
        end += 1
    return " ".join(" ".join(lines[start:end]).split()[1:])


def _column_start(text, header):
    header_line = next(line for line in text.splitlines() if line.split()[:1] == ["#"])
    return header_line.index(header)


def test_counter_values_are_named_symbolically():
    assert [counter_symbol(v) for v in (0, 0x7FFFFFFF, 0xA0000000, 0xC0000000, 0xE0000000, 0xFFFFFFFF)] == [
        "ONEREF", "MAXREF", "SATURATED", "RELEASED", "DEAD", "NOREF"]
    assert counter_symbol(0xE0000001) == "DEAD+1"
    assert counter_symbol(0x7FFFFFFE) == "MAXREF-1"
    assert counter_symbol(0x80000000) == "MAXREF+1"
    assert counter_symbol(0xFFFFFFFE) == "NOREF-1"
    assert counter_symbol(2) == "ONEREF+2"
    assert counter_symbol(0x12345678) is None
    assert format_counter(0xFFFFFFFF) == "0xffffffff (NOREF)"
    assert format_counter(0x12345678) == "0x12345678"


def test_trace_has_thread_columns_and_kernel_phrases():
    text = render_trace(HISTORY, PROGRAM)
    assert all(len(line) < 120 for line in text.splitlines())
    for header in ("T0", "T1", "T2", "RCU"):
        assert _column_start(text, header) >= 0
    for phrase in (
        "rcu_read_lock()",
        "munmap 0: mmap_write_lock()",
        "vma_put(vma#0.1)",
        "sub_return_release -> 0xffffffff (NOREF)",
        "cmpxchg_release NOREF->DEAD ok",
        "kmem_cache_free(vma#0.1)",
        "kmem_cache_alloc = vma#0.2 (slot reused)",
        "vma_get(vma#0.1) = true",
        "WARN: rcuref - imbalanced put()",
        "rmap 1 -> stale",
        "grace period over: vma#0.1 reclaimed",
    ):
        assert phrase in " ".join(text.split()), phrase
    # A word longer than the column may be broken across lines.
    assert _cell(text, 24).replace(" ", "") == "smp_acquire__after_ctrl_dep()"
    assert "setup: vma#0.1 mm0 [0-4) pgoff 0, counter 0x00000000 (ONEREF), folios 0..3" in text


def test_cells_sit_in_their_thread_column():
    text = render_trace(HISTORY, PROGRAM)
    assert _row(text, 11).index("rmap 1: rcu_read_lock()") == _column_start(text, "T1")
    assert _row(text, 27).index("kmem_cache_free") == _column_start(text, "T0")
    assert _row(text, 31).index("kmem_cache_alloc") == _column_start(text, "T2")
    assert _row(text, 51).index("grace period over") == _column_start(text, "RCU")
    # Atomics inside an rcuref call are indented under it, as in the lib/rcuref.c tables.
    assert _row(text, 22).index("sub_return_release") == _column_start(text, "T0") + 2


def test_stale_pointer_is_named_after_its_own_allocation():
    text = render_trace(HISTORY, PROGRAM)
    # T1 took its pointer before the slot was recycled, so its get acts on memory that now holds
    # vma#0.2 while T1 still means vma#0.1.
    assert _cell(text, 40) == "vma_get(vma#0.1) [slot now vma#0.2]"
    assert _cell(text, 42) == "vma_get(vma#0.1) = true [slot now vma#0.2]"
    assert _cell(text, 43) == "read vma#0.1->vm_start = 8 [slot now vma#0.2]"
    # After re-loading the mapping it refers to the new object.
    assert _cell(text, 45) == "vma_put(vma#0.2)"


def test_quiet_by_default_verbose_shows_everything():
    quiet = render_trace(HISTORY, PROGRAM)
    loud = render_trace(HISTORY, PROGRAM, verbose=True)
    quiet_rows = {line.split()[0] for line in quiet.splitlines() if line[:3].strip().isdigit()}
    loud_rows = {line.split()[0] for line in loud.splitlines() if line[:3].strip().isdigit()}
    for hidden in (10, 13, 18, 19, 28, 33, 36):  # op_begin, plain reads/writes, init's return, op_end ok
        assert str(hidden) not in quiet_rows and str(hidden) in loud_rows
    # A field read through a pointer whose object was recycled is the interesting kind: always shown.
    assert "43" in quiet_rows
    assert loud_rows == {str(i) for i in range(10, len(HISTORY))}


def test_highlight_marks_the_row_and_forces_it_visible():
    text = render_trace(HISTORY, PROGRAM, highlight=18)
    assert _row(text, 18).endswith(" <==")
    assert sum(line.endswith("<==") for line in text.splitlines()) == 1


def test_rcu_column_only_when_callbacks_ran():
    text = render_trace(HISTORY[:-1], PROGRAM)
    assert "RCU" not in text.splitlines()[4]


def test_deferred_free_reads_as_kfree_rcu():
    text = render_trace(HISTORY, PROGRAM.with_config(slab="deferred"))
    assert "kfree_rcu(vma#0.1) queued" in text


def test_long_cells_wrap_within_the_width():
    program = parse("thread 0\nthread 1\nthread 2\nthread 3\n")
    events = [("panic", t, "assertion failed: " + "very long message " * 8) for t in range(4)]
    events.append(("warn", 3, 7, "saturated"))
    text = render_trace(events, program)
    assert all(len(line) < 120 for line in text.splitlines())
    assert "WARN: rcuref saturated - leaking memory" in " ".join(text.split())


def test_malformed_or_unknown_events_do_not_break_the_report():
    events = [("atomic", 0, 1), ("teleport", 1, 3, "far"), ("lookup", 0, 0, 2)]
    text = render_trace(events, parse("thread 0\nthread 1\n"))
    assert "malformed event ('atomic', 0, 1)" in text
    assert "teleport 3 far" in text
    assert "find_vma(mm0) = vma#2.0" in text


@pytest.mark.parametrize("index", [None, 46])
def test_finding_has_kind_message_program_and_table(index):
    violation = Violation("linearizability", "put returned false on " + "x" * 150, index, HISTORY)
    text = render_finding(PROGRAM, HISTORY, violation)
    lines = text.splitlines()
    assert lines[0] == "VIOLATION: linearizability"
    assert lines[1].startswith("put returned false on")
    assert all(len(line) < 120 for line in lines)
    assert "  " + PROGRAM.to_text().replace("\n", "\n  ").rstrip() in text
    assert parse(text.split("program:\n", 1)[1].split("\ntrace:", 1)[0]) == PROGRAM
    if index is None:
        assert "<==" not in text
    else:
        assert f"at event #{index}" in text
        assert _row(text, index).endswith("<==")


def test_setup_is_one_summary_block():
    setup_events = [event for event in HISTORY if event[1] == -1]
    text = render_trace(setup_events + [("alloc", -1, 1), ("warn", -1, 0, "saturated")], PROGRAM)
    assert text.splitlines()[1] == "setup: vma#0.1 mm0 [0-4) pgoff 0, counter 0x00000000 (ONEREF), folios 0..3"
    assert "event #10: malformed event ('alloc', -1, 1)" in text
    assert "event #11: WARN: rcuref saturated - leaking memory on vma#0.1" in text
    assert "setup: (nothing)" in render_trace([], PROGRAM)


def test_finding_for_a_plain_exception_and_verbose():
    text = render_finding(PROGRAM, HISTORY, RuntimeError("engine panicked"), verbose=True)
    assert text.startswith("VIOLATION: RuntimeError\nengine panicked\n")
    assert "rmap 1 begins" in text and "<==" not in text
