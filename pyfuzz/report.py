"""Human-facing rendering of a history: a race table in the style of the lib/rcuref.c comments.

One column per thread, one row per event worth showing, each cell a short kernel-flavoured phrase.
Objects are named by allocation, `vma#S.G` = generation G of slab slot S, because under
SLAB_TYPESAFE_BY_RCU the slot alone does not say which VMA a thread is really touching.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Sequence

from .program import Program
from .signature import named_allocation, slot_of

LINE_MAX = 119
SETUP_THREAD = -1
RCU_THREAD = -2

COUNTER_CONSTANTS = (
    ("ONEREF", 0x0000_0000),
    ("MAXREF", 0x7FFF_FFFF),
    ("SATURATED", 0xA000_0000),
    ("RELEASED", 0xC000_0000),
    ("DEAD", 0xE000_0000),
    ("NOREF", 0xFFFF_FFFF),
)
# Values this close to a constant are named relative to it (DEAD+1, MAXREF-2); farther ones are
# just hex, since "ONEREF+123456" reads worse than the number.
SYMBOLIC_DISTANCE = 16

WARNINGS = {
    "saturated": "WARN: rcuref saturated - leaking memory",
    "imbalanced_put": "WARN: rcuref - imbalanced put()",
    "vma_get_disabled": "WARN: vma_get() without CONFIG_VMA_REF",
}
REF_FUNCTIONS = {"get": "vma_get", "put": "vma_put", "init": "vma_rcuref_init"}
ATOMIC_NAMES = {"add": "add_return", "sub": "sub_return", "load": "read", "store": "set"}
MARKER = " <=="
LEGEND = "vma#S.G = allocation G of slab slot S; [slot now ...] = the thread's pointer outlived its object"


def counter_symbol(value: int) -> str | None:
    """The rcuref name of a raw counter value (exact or within a few of a constant), else None."""
    name, base = min(COUNTER_CONSTANTS, key=lambda constant: abs(value - constant[1]))
    distance = value - base
    if distance == 0:
        return name
    if abs(distance) <= SYMBOLIC_DISTANCE:
        return f"{name}{distance:+d}"
    return None


def format_counter(value: int) -> str:
    symbol = counter_symbol(value)
    return f"0x{value:08x}" + (f" ({symbol})" if symbol else "")


def _short_counter(value: int) -> str:
    return counter_symbol(value) or f"0x{value:08x}"


class _History:
    """What the events so far say about slots, pointers and ops: enough to name things."""

    def __init__(self, program: Program | None) -> None:
        self.program = program
        self.deferred = program is not None and program.config_dict["slab"] == "deferred"
        self.generation: dict[int, int] = {}
        self.freed: dict[int, str] = {}
        # (thread, slot) -> generation the thread's pointer to that slot was taken at.
        self.pointer: dict[tuple[int, int], int] = {}
        self.ref_call_open: dict[int, int] = {}
        self.ref_function: dict[int, str] = {}  # thread -> the rcuref call it is inside
        self.op_label: dict[int, str] = {}
        self.op_has_row: dict[int, bool] = {}

    def acquire(self, thread: int, slot: int) -> None:
        self.pointer[(thread, slot)] = self.generation.get(slot, 0)

    def name(self, thread: int, slot: int) -> str:
        return f"vma#{slot}.{self.pointer.get((thread, slot), self.generation.get(slot, 0))}"

    def note(self, thread: int, slot: int) -> str:
        """Why the thread's pointer no longer designates a live object, or ''."""
        current = self.generation.get(slot, 0)
        if self.pointer.get((thread, slot), current) != current:
            return f"slot now vma#{slot}.{current}"
        return self.freed.get(slot, "")

    def tagged(self, phrase: str, thread: int, slot: int) -> str:
        """The phrase, followed by a [note] when the thread's object is no longer what it was."""
        note = self.note(thread, slot)
        return f"{phrase} [{note}]" if note else phrase

    def op_name(self, thread: int, index: int) -> str:
        if self.program is not None and 0 <= thread < len(self.program.threads):
            ops = self.program.threads[thread]
            if 0 <= index < len(ops):
                return str(ops[index])
        return f"op {index}"


def _atomic_phrase(history: _History, event: Sequence) -> str:
    _, thread, slot, op, order, old, new = event
    inside_ref_call = history.ref_call_open.get(thread) == slot
    suffix = "" if order in ("relaxed", "plain") else f"_{order}"
    if op in ("cas_ok", "cas_fail"):
        if op == "cas_ok":
            text = f"cmpxchg{suffix} {_short_counter(old)}->{_short_counter(new)} ok"
        else:
            text = f"cmpxchg{suffix} failed, saw {format_counter(new)}"
    elif order == "plain" and op == "store":
        # A plain store to the counter outside rcuref code is vm_area_alloc()'s memset.
        text = f"{'plain store' if inside_ref_call else 'memset'} -> {format_counter(new)}"
    elif order == "plain":
        text = f"plain {ATOMIC_NAMES.get(op, op)} -> {format_counter(new)}"
    else:
        text = f"{ATOMIC_NAMES.get(op, op)}{suffix} -> {format_counter(new)}"
    if inside_ref_call:
        return history.tagged(f"  {text}", thread, slot)
    return history.tagged(f"{history.name(thread, slot)}: {text}", thread, slot)


def _describe(history: _History, event: Sequence) -> tuple[str, bool]:
    """(cell text, shown without verbose) for one event, advancing the history past it."""
    kind, thread = event[0], event[1]
    if kind == "op_begin":
        history.op_label[thread] = history.op_name(thread, event[2])
        history.op_has_row[thread] = False
        return f"{history.op_label[thread]} begins", False
    if kind == "op_end":
        outcome = event[3]
        quiet = outcome == "ok" and history.op_has_row.get(thread, False)
        return f"{history.op_name(thread, event[2])} -> {outcome}", not quiet
    if kind == "lookup":
        _, _, mm, slot = event
        history.acquire(thread, slot)
        return f"find_vma(mm{mm}) = {history.name(thread, slot)}", True
    if kind == "ref_call":
        _, _, slot, function = event
        history.ref_call_open[thread] = slot
        history.ref_function[thread] = REF_FUNCTIONS.get(function, function)
        call = f"{REF_FUNCTIONS.get(function, function)}({history.name(thread, slot)})"
        return history.tagged(call, thread, slot), True
    if kind == "ref_ret":
        _, _, slot, function, result = event
        history.ref_call_open.pop(thread, None)
        call = f"{REF_FUNCTIONS.get(function, function)}({history.name(thread, slot)})"
        if result is None:
            return f"{call} done", False
        return history.tagged(f"{call} = {str(result).lower()}", thread, slot), True
    if kind == "atomic":
        return _atomic_phrase(history, event), True
    if kind == "fence":
        return "  smp_acquire__after_ctrl_dep()", True
    if kind == "warn":
        _, _, slot, what = event
        warning = WARNINGS.get(what, f"WARN: {what}")
        return history.tagged(f"{warning} on {history.name(thread, slot)}", thread, slot), True
    if kind == "alloc":
        _, _, slot, generation = event
        history.generation[slot] = generation
        history.freed.pop(slot, None)
        history.acquire(thread, slot)
        reused = " (slot reused)" if generation > 1 else ""
        return f"kmem_cache_alloc = vma#{slot}.{generation}{reused}", True
    if kind == "free":
        _, _, slot, generation = event
        name = history.name(thread, slot)
        phrase = f"kfree_rcu({name}) queued" if history.deferred else f"kmem_cache_free({name})"
        phrase = history.tagged(phrase, thread, slot)
        history.freed[slot] = "freed, awaiting grace period" if history.deferred else "freed"
        return phrase, True
    if kind == "reclaim":
        _, _, slot, generation = event
        history.freed[slot] = "reclaimed"
        return f"grace period over: vma#{slot}.{generation} reclaimed", True
    if kind in ("read", "write"):
        _, _, slot, field, value = event
        interesting = bool(history.note(thread, slot))
        operator = "=" if kind == "read" else ":="
        access = f"{kind} {history.name(thread, slot)}->{field} {operator} {value}"
        return history.tagged(access, thread, slot), interesting
    if kind == "use":
        _, _, slot, page = event
        return history.tagged(f"rmap_one(folio {page}) via {history.name(thread, slot)}", thread, slot), True
    if kind in _SIMPLE_PHRASES:
        return _SIMPLE_PHRASES[kind], True
    if kind in ("lock", "unlock"):
        return f"mmap_{event[2]}_{kind}()", True
    if kind in ("rmap_lock", "rmap_unlock"):
        _, _, slot, mode = event
        verb = ("down_" if kind == "rmap_lock" else "up_") + mode
        return history.tagged(f"{verb}(rmap rwsem of {history.name(thread, slot)})", thread, slot), True
    if kind in ("tree_insert", "tree_update"):
        _, _, mm, slot, start, end, pgoff = event
        verb = "insert" if kind == "tree_insert" else "update"
        change = f"mm{mm}: {verb} {history.name(thread, slot)} [{start}-{end}) pgoff {pgoff}"
        return history.tagged(change, thread, slot), True
    if kind == "tree_remove":
        _, _, mm, slot = event
        return history.tagged(f"mm{mm}: remove {history.name(thread, slot)}", thread, slot), True
    if kind == "mapping_load":
        _, _, page, slot = event
        if slot is None or slot < 0:
            return f"mapping(folio {page}) = NULL", True
        history.acquire(thread, slot)
        return f"mapping(folio {page}) = {history.name(thread, slot)}", True
    if kind == "mapping_store":
        _, _, page, slot = event
        return history.tagged(f"mapping(folio {page}) := {history.name(thread, slot)}", thread, slot), True
    if kind == "panic":
        return f"PANIC: {event[2]}", True
    return " ".join(str(part) for part in (kind, *event[2:])), True


_SIMPLE_PHRASES = {
    "rcu_lock": "rcu_read_lock()",
    "rcu_unlock": "rcu_read_unlock()",
    "preempt_off": "preempt_disable()",
    "preempt_on": "preempt_enable()",
}


def _column_widths(natural: list[int], available: int) -> list[int]:
    """Natural widths if they fit; otherwise narrow columns keep theirs and wide ones share the rest."""
    widths = list(natural)
    wide = list(range(len(widths)))
    while wide:
        share = available // len(wide)
        narrow = [c for c in wide if natural[c] <= share]
        if not narrow:
            for c in wide:
                widths[c] = share
            break
        for c in narrow:
            widths[c] = natural[c]
            available -= natural[c]
        wide = [c for c in wide if c not in narrow]
    return widths


def _wrap(text: str, width: int) -> list[str]:
    indent = text[: len(text) - len(text.lstrip(" "))]
    return textwrap.wrap(
        text.strip(),
        width=width,
        initial_indent=indent,
        subsequent_indent=indent + "  ",
        break_on_hyphens=False,
    ) or [""]


def _setup_block(history: _History, events: Sequence[Sequence], highlight: int | None) -> list[str]:
    """One line per VMA the setup built, plus any setup event that is not routine construction."""
    vmas: dict[int, dict] = {}
    unusual: list[str] = []
    for index, event in enumerate(events):
        if event[1] != SETUP_THREAD:
            continue
        cell, _ = _safe_describe(history, event)
        kind = event[0]
        try:
            _summarize_setup_event(vmas, event)
        except (TypeError, ValueError, IndexError, KeyError):
            kind = "malformed"
        if index == highlight or kind in ("warn", "panic", "free", "malformed"):
            marker = MARKER if index == highlight else ""
            unusual.append(f"event #{index}: {cell.strip()}{marker}")
    lines = []
    for vma in vmas.values():
        line = f"{vma['name']} {vma.get('range', 'in no tree')}, counter {vma.get('counter', '?')}"
        if vma["pages"]:
            line += ", folios " + _page_list(vma["pages"])
        lines.append(line)
    lines.extend(unusual)
    if not lines:
        return ["setup: (nothing)"]
    wrapped = []
    for number, line in enumerate(lines):
        prefix = "setup: " if number == 0 else "       "
        wrapped.extend(textwrap.wrap(line, LINE_MAX, initial_indent=prefix, subsequent_indent=" " * 9))
    return wrapped


def _summarize_setup_event(vmas: dict[int, dict], event: Sequence) -> None:
    kind = event[0]
    if kind == "alloc":
        vmas[event[2]] = {"name": f"vma#{event[2]}.{event[3]}", "pages": []}
    elif kind == "tree_insert" and event[3] in vmas:
        _, _, mm, slot, start, end, pgoff = event
        vmas[slot]["range"] = f"mm{mm} [{start}-{end}) pgoff {pgoff}"
    elif kind == "atomic" and event[2] in vmas:
        vmas[event[2]]["counter"] = format_counter(event[6])
    elif kind == "mapping_store" and event[3] in vmas:
        vmas[event[3]]["pages"].append(event[2])


def _page_list(pages: list[int]) -> str:
    """[0, 1, 2, 3, 6] -> '0..3,6'."""
    runs: list[list[int]] = []
    for page in sorted(set(pages)):
        if runs and page == runs[-1][1] + 1:
            runs[-1][1] = page
        else:
            runs.append([page, page])
    return ",".join(f"{low}..{high}" if high > low else str(low) for low, high in runs)


def _safe_describe(history: _History, event: Sequence) -> tuple[str, bool]:
    # The report is also how an engine bug (a malformed event) gets looked at: never die on one.
    try:
        return _describe(history, event)
    except (TypeError, ValueError, IndexError, KeyError):
        return "malformed event " + repr(tuple(event)), True


def render_trace(
    events: Sequence[Sequence],
    program: Program | None,
    *,
    highlight: int | None = None,
    verbose: bool = False,
) -> str:
    """The history as a race table; `highlight` (an event index) is always shown, marked `<==`."""
    thread_count = len(program.threads) if program is not None else 0
    thread_count = max([thread_count, *(event[1] + 1 for event in events if event[1] >= 0)])
    headers = [f"T{t}" for t in range(thread_count)]
    if any(event[1] == RCU_THREAD for event in events):
        headers.append("RCU")

    setup_lines = _setup_block(_History(program), events, highlight)
    history = _History(program)
    rows: list[tuple[int, int, str]] = []
    for index, event in enumerate(events):
        thread = event[1]
        cell, shown = _safe_describe(history, event)
        if thread == SETUP_THREAD:
            continue
        if not (shown or verbose or index == highlight):
            continue
        starts_op_rows = event[0] not in ("op_begin", "op_end")
        if thread >= 0 and starts_op_rows and not history.op_has_row.get(thread, True):
            cell = f"{history.op_label[thread]}: {cell.strip()}"
        if thread >= 0:
            history.op_has_row[thread] = True
        column = len(headers) - 1 if thread == RCU_THREAD else thread
        rows.append((index, column, cell))

    index_width = max(len("#"), *(len(str(index)) for index, _, _ in rows)) if rows else 1
    gap = "  "
    available = LINE_MAX - index_width - len(gap) - len(MARKER) - len(gap) * (len(headers) - 1)
    natural = [
        max([len(header), *(len(cell) for _, column, cell in rows if column == c)])
        for c, header in enumerate(headers)
    ]
    widths = _column_widths(natural, available)

    def line(index_text: str, cells: list[str], marker: str = "") -> str:
        padded = gap.join(cell.ljust(width) for cell, width in zip(cells, widths))
        text = f"{index_text.rjust(index_width)}{gap}{padded}"
        return text + marker if marker else text.rstrip()

    output = [LEGEND, *setup_lines, "", line("#", headers), line("", ["-" * w for w in widths])]
    for index, column, cell in rows:
        wrapped = _wrap(cell, widths[column])
        for number, text in enumerate(wrapped):
            cells = ["" for _ in headers]
            cells[column] = text
            if number == 0:
                output.append(line(str(index), cells, MARKER if index == highlight else ""))
            else:
                output.append(line("", cells))
    return "\n".join(output) + "\n"


def render_finding(
    program: Program, events: Sequence[Sequence], violation: object, *, verbose: bool = False
) -> str:
    """A reproducer for code review: what went wrong, the program that does it, and how.

    `violation` is a `pyfuzz.model.Violation` (kind, message, event_index); any other exception
    (say a PanicException) is shown by its type and text, without a highlighted event."""
    kind = getattr(violation, "kind", type(violation).__name__)
    message = getattr(violation, "message", None) or str(violation)
    index = getattr(violation, "event_index", None)
    lines = [f"VIOLATION: {kind}"]
    lines.extend(textwrap.wrap(message, LINE_MAX, subsequent_indent="  ") or [""])
    if index is not None:
        lines.append(f"at event #{index} (marked <== below)")
    lines.append("")
    lines.append("program:")
    lines.extend(f"  {text}" for text in program.to_text().splitlines())
    lines.append("")
    lines.append("trace:")
    return "\n".join(lines) + "\n" + render_trace(events, program, highlight=index, verbose=verbose)


# --------------------------------------------------------------------------- the step table
# `pyfuzz show`: one row per step, folded by default to the steps the verdict depends on.

TEXT_WIDTH = 80
ZONES = (
    # (lowest raw value, zone name): rcuref's counter zones, in increasing order.
    (0x0000_0000, "valid"),
    (0x8000_0000, "saturation"),
    (0xC000_0000, "dead"),
    (0xFFFF_FFFF, "noref"),
)
_SECTION_EVENTS = frozenset(("rcu_lock", "rcu_unlock", "preempt_off", "preempt_on"))


def counter_zone(value: int) -> str:
    """The rcuref zone a raw counter lies in: valid (ONEREF..MAXREF), saturation, dead
    (RELEASED..DEAD and on up to NOREF-1), or noref (the last reference just went)."""
    return [name for low, name in ZONES if value >= low][-1]


@dataclass
class StepRow:
    index: int  # the event's index in the history
    thread: str  # T0.., setup, RCU
    what: str  # the op and its sub-step
    counter: int | None  # the raw counter of the step's slot after it, when the step is on one
    refs: str  # references the specification expects the slot's counter owner to have
    events: str  # warning, free, slot reuse, grace period, the violation
    kept: bool  # shown when the table is folded
    kind: str  # the event kind (the timeline colours by it)
    lane: int  # thread number, -1 setup, -2 RCU
    slot: int | None

    @property
    def counter_text(self) -> str:
        if self.counter is None:
            return ""
        return f"0x{self.counter:08x} {counter_zone(self.counter)}"


@dataclass
class StepTable:
    rows: list[StepRow]
    contested: tuple[int, ...]  # the slots whose counters the verdict is about
    violation_index: int | None
    verdict_text: str

    def shown(self, everything: bool) -> list[StepRow]:
        return [row for row in self.rows if everything or row.kept]


def _refs_text(state) -> str:
    if state is None:
        return "-"
    if state == 0:
        return "0 dead"
    if state < 0:
        return "sat"
    return str(state)


def _substep(event: Sequence, history: _History) -> str:
    """What a counter access is, in rcuref's words, without the value (it has its own column)."""
    _, thread, slot, op, order, _, _ = event
    suffix = "" if order in ("relaxed", "plain") else f"_{order}"
    call = history.ref_call_open.get(thread)
    inside = f"{history.ref_function.get(thread, '')}: " if call == slot else f"{history.name(thread, slot)}: "
    if op in ("cas_ok", "cas_fail"):
        text = f"cmpxchg{suffix} {'ok' if op == 'cas_ok' else 'failed'}"
    elif order == "plain" and op == "store":
        text = "plain store" if call == slot else "memset"
    else:
        text = f"{ATOMIC_NAMES.get(op, op)}{suffix}"
    return inside + text


def _contested_slots(events: Sequence[Sequence], violation, index: int | None) -> tuple[int, ...]:
    if violation is not None:
        if index is not None and 0 <= index < len(events):
            slot = slot_of(events[index])
            if slot is not None:
                return (slot,)
        allocation = named_allocation(getattr(violation, "message", ""))
        if allocation is not None:
            return (allocation[0],)
    # A passing program: the counters more than one thread touched, else any a thread touched.
    touched: dict[int, set[int]] = {}
    for event in events:
        if event[0] == "atomic" and event[1] >= 0:
            touched.setdefault(event[2], set()).add(event[1])
    shared = tuple(sorted(slot for slot, threads in touched.items() if len(threads) > 1))
    return shared or tuple(sorted(touched))


def step_table(program: Program, events: Sequence[Sequence], violation=None) -> StepTable:
    """Every step of the history as a row; `kept` marks the ones the verdict depends on: the
    counter's atomics and rcuref results on the contested slots, their allocation, free, reuse
    and reclaim, how threads found them, the read-side sections of the threads that touched
    them (and, with deferred freeing, the preemption-off sections that hold grace periods off),
    stale accesses, warnings and the violating step."""
    from .oracle.spec import spec_step, state_from_counter

    index = getattr(violation, "event_index", None) if violation is not None else None
    contested = _contested_slots(events, violation, index)
    history = _History(program)
    counter: dict[int, int] = {}
    owner: dict[int, int] = {}  # slot -> generation whose counter the slot holds (after its init)
    spec: dict[tuple[int, int], int | None] = {}
    op_allocation: dict[int, tuple[int, int]] = {}  # thread -> allocation its open rcuref op hit
    toucher = {event[1] for event in events if _slot_in(event, contested) and event[1] >= 0}
    rows: list[StepRow] = []
    for i, event in enumerate(events):
        kind, thread = event[0], event[1]
        note = ""
        slot = slot_of(event)
        if kind == "atomic":
            what = _substep(event, history)
        else:
            what, _ = _safe_describe(history, event)
            what = what.strip()
        if kind == "alloc":
            spec[(event[2], event[3])] = None
            if event[3] > 1:
                note = "slot reuse"
        elif kind == "atomic":
            counter[slot] = event[6]
            inside = history.ref_call_open.get(thread) == slot
            if inside and history.ref_function.get(thread) == REF_FUNCTIONS["init"]:
                # From its init store on, the counter in the slot is the new allocation's.
                owner[slot] = history.generation.get(slot, 0)
                spec[(slot, owner[slot])] = state_from_counter(event[6])
            elif inside and thread not in op_allocation:
                op_allocation[thread] = (slot, owner.get(slot, history.generation.get(slot, 0)))
        elif kind == "ref_ret":
            fn = event[3]
            if fn != "init":
                allocation = op_allocation.get(thread, (slot, owner.get(slot, 0)))
                state = spec.get(allocation)
                if state is not None:
                    spec[allocation] = spec_step(state, fn)[0]
            op_allocation.pop(thread, None)
        elif kind == "warn":
            note = WARNINGS.get(event[3], f"WARN: {event[3]}")
        elif kind == "free":
            note = "free (deferred)" if history.deferred else "free"
        elif kind == "reclaim":
            note = "grace period over"
        if i == index:
            note = (note + "; " if note else "") + "VIOLATION"
        label = "setup" if thread == SETUP_THREAD else "RCU" if thread == RCU_THREAD else f"T{thread}"
        if thread >= 0 and kind not in ("op_begin", "op_end"):
            what = f"{history.op_label.get(thread, '')}: {what}"
        on_counter = slot if kind in ("atomic", "ref_ret", "alloc", "free", "reclaim", "warn") else None
        refs = ""
        if on_counter is not None and (on_counter, owner.get(on_counter, -1)) in spec:
            refs = _refs_text(spec[(on_counter, owner[on_counter])])
        kept = i == index or _matters(event, contested, toucher, history)
        rows.append(StepRow(
            i, label, what, counter.get(on_counter) if on_counter is not None else None, refs, note, kept,
            kind, thread, slot,
        ))
    verdict_text = "ok" if violation is None else f"{violation.kind}: {violation.message}"
    return StepTable(rows, contested, index, verdict_text)


def _slot_in(event: Sequence, slots: tuple[int, ...]) -> bool:
    return slot_of(event) in slots


def _matters(event: Sequence, contested: tuple[int, ...], toucher: set[int], history: _History) -> bool:
    kind, thread = event[0], event[1]
    if thread == SETUP_THREAD:
        return kind in ("warn", "panic")
    if kind in ("warn", "panic"):
        return True
    if kind in _SECTION_EVENTS:
        if thread not in toucher:
            return False
        return kind.startswith("rcu") or history.deferred
    if not _slot_in(event, contested):
        return False
    if kind in ("atomic", "alloc", "free", "reclaim", "lookup", "mapping_load", "tree_insert", "tree_remove", "use"):
        return True
    if kind == "ref_ret":
        return event[3] != "init"
    if kind in ("read", "write"):
        return bool(history.note(thread, event[2]))
    return False


def _table_header(program: Program, table: StepTable, verdict_signature: str | None, everything: bool) -> list[str]:
    shown = len(table.shown(everything))
    lines = [f"verdict: {table.verdict_text}"]
    if verdict_signature:
        lines.append(f"signature: {verdict_signature}")
    slots = ", ".join(f"slot {slot}" for slot in table.contested) or "none"
    fold = "every step" if everything else f"{shown} of {len(table.rows)} steps (--all shows every step)"
    lines.append(f"contested counter: {slots}; showing {fold}")
    return lines


def _ascii_rule():
    """rich's SIMPLE box in ASCII: a rule under the header and no other lines."""
    from rich import box

    return box.Box("    \n    \n -- \n    \n    \n -- \n    \n    \n", ascii=True)


def render_steps_text(program: Program, table: StepTable, verdict_signature: str | None = None,
                      everything: bool = False, width: int = TEXT_WIDTH) -> str:
    """The step table as plain text for an email: at most `width` columns, ASCII only."""
    import io

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    lines = [*(textwrap.wrap(line, width, subsequent_indent="  ") for line in
               _table_header(program, table, verdict_signature, everything))]
    out = [part for wrapped in lines for part in wrapped]
    listing = [wrapped for text in program.to_text().splitlines()
               for wrapped in textwrap.wrap(text, width - 2, subsequent_indent="    ", drop_whitespace=True)]
    folded = len(listing) > len(program.to_text().splitlines())
    out += ["", "program (long lines wrapped: replay the file itself):" if folded else "program:",
            *(f"  {text}" for text in listing), ""]
    grid = Table(box=_ascii_rule(), show_edge=False, pad_edge=False, padding=(0, 1, 0, 0), expand=True)
    grid.add_column("step", justify="right", no_wrap=True)
    grid.add_column("thr", no_wrap=True)
    grid.add_column("op: sub-step", overflow="fold", ratio=3)
    grid.add_column("counter", no_wrap=True)
    grid.add_column("refs", no_wrap=True)
    grid.add_column("events", overflow="fold", ratio=1)
    previous_op: dict[str, str] = {}
    for row in table.shown(everything):
        events = row.events
        step = f"=>{row.index}" if row.index == table.violation_index else str(row.index)
        # The op is named on a thread's first row for it; its later rows show only the sub-step.
        op, _, substep = row.what.partition(": ")
        what = row.what
        if substep and previous_op.get(row.thread) == op:
            what = "  " + substep
        previous_op[row.thread] = op
        grid.add_row(*(Text(cell) for cell in (step, row.thread, what, row.counter_text, row.refs, events)))
    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, legacy_windows=False, emoji=False,
            highlight=False).print(grid)
    out += [line.rstrip() for line in buffer.getvalue().splitlines()]
    return "\n".join(out) + "\n"


def render_steps_markdown(program: Program, table: StepTable, verdict_signature: str | None = None,
                          everything: bool = False) -> str:
    """The step table as a Markdown pipe table, to paste into a code review."""

    def cell(text: str) -> str:
        return text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`") or " "

    out = [f"- {line}" for line in _table_header(program, table, verdict_signature, everything)]
    out += ["", "```", program.to_text().rstrip("\n"), "```", ""]
    out.append("| step | thr | op: sub-step | counter | refs | events |")
    out.append("|---:|---|---|---|---|---|")
    for row in table.shown(everything):
        events = row.events
        if row.index == table.violation_index:
            events = f"**{events}**"
        out.append("| " + " | ".join(
            [str(row.index), row.thread, cell(row.what), cell(row.counter_text), cell(row.refs), events or " "]
        ) + " |")
    return "\n".join(out) + "\n"
