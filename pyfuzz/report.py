"""Human-facing rendering of a history: a race table in the style of the lib/rcuref.c comments.

One column per thread, one row per event worth showing, each cell a short kernel-flavoured phrase.
Objects are named by allocation, `vma#S.G` = generation G of slab slot S, because under
SLAB_TYPESAFE_BY_RCU the slot alone does not say which VMA a thread is really touching.
"""

from __future__ import annotations

import textwrap
from typing import Sequence

from .program import Program

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
