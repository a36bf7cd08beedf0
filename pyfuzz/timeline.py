"""The HTML timeline of `pyfuzz show --html`: one self-contained page (inline CSS and SVG, no
script, no network, no fonts) with a lane per thread, the steps placed left to right in the order
they ran, the contested counters' values along the way, slab reuse and grace periods marked as
vertical rules, and the violating step highlighted. Hovering a step shows its row of the step
table (SVG <title>, which every browser shows as a tooltip)."""

from __future__ import annotations

import html
from .program import Program
from .report import StepRow, StepTable, counter_symbol, counter_zone

STEP_PX = 26  # horizontal distance between consecutive steps
LEFT_PX = 110  # the lane labels
TOP_PX = 34  # the step-number strip; the highlight reaches into it, nothing else does
LANE_PX = 44
TRACK_PX = 150  # one counter track per contested slot
VIOLATION_COLOUR = "#ff2d55"
REUSE_COLOUR = "#7b3fe4"
GRACE_COLOUR = "#18a558"
KIND_COLOURS = {
    "atomic": "#1f6feb",
    "ref_ret": "#0b3d91",
    "alloc": REUSE_COLOUR,
    "free": "#d1242f",
    "reclaim": GRACE_COLOUR,
    "warn": "#e36209",
    "panic": "#e36209",
}
OTHER_COLOUR = "#8c959f"
# The counter track's bands, top to bottom: references in the valid zone, then the zones above.
ZONE_BANDS = ("valid", "saturation", "dead", "noref")


def lane_order(table: StepTable) -> list[int]:
    lanes = sorted({row.lane for row in table.rows if row.lane >= 0})
    if any(row.lane == -2 for row in table.rows):
        lanes.append(-2)
    return lanes


def step_x(position: int) -> int:
    """The x of the centre of the `position`-th step shown."""
    return LEFT_PX + position * STEP_PX + STEP_PX // 2


def _counter_y(value: int, top: int) -> float:
    """Where a raw counter value sits in its track: four bands, the valid one scaled by count."""
    band = TRACK_PX / len(ZONE_BANDS)
    zone = counter_zone(value)
    row = ZONE_BANDS.index(zone)
    if zone == "valid":
        fraction = 1 - min(value, 4) / 5  # ONEREF at the band's bottom, up to ONEREF+4
        return top + band * (row + 0.2 + 0.7 * fraction) - band * 0.1
    return top + band * (row + 0.5)


def _tooltip(row: StepRow) -> str:
    parts = [f"step {row.index}", row.thread, row.what]
    if row.counter is not None:
        parts.append(f"counter {row.counter_text}")
    if row.refs:
        parts.append(f"refs {row.refs}")
    if row.events:
        parts.append(row.events)
    return " | ".join(parts)


def render_timeline(program: Program, table: StepTable, signature: str | None, everything: bool = True) -> str:
    rows = [row for row in table.shown(everything) if row.lane != -1]
    lanes = lane_order(table)
    lane_y = {lane: TOP_PX + i * LANE_PX + LANE_PX // 2 for i, lane in enumerate(lanes)}
    tracks_top = TOP_PX + len(lanes) * LANE_PX + 24
    width = LEFT_PX + max(1, len(rows)) * STEP_PX + 20
    height = tracks_top + len(table.contested) * (TRACK_PX + 20) + 10
    svg: list[str] = []
    add = svg.append
    for i, row in enumerate(rows):  # the highlight first, so that everything else is drawn over it
        if row.index == table.violation_index:
            add(f'<rect id="violation" x="{step_x(i) - STEP_PX // 2}" y="0" width="{STEP_PX}" '
                f'height="{height}" fill="{VIOLATION_COLOUR}"/>')
    for lane in lanes:
        y = lane_y[lane]
        name = "RCU" if lane == -2 else f"T{lane}"
        add(f'<text x="8" y="{y + 4}" class="lane">{name}</text>')
        add(f'<line x1="{LEFT_PX}" y1="{y}" x2="{width - 10}" y2="{y}" class="lane-line"/>')
    for t, slot in enumerate(table.contested):
        top = tracks_top + t * (TRACK_PX + 20)
        band = TRACK_PX / len(ZONE_BANDS)
        add(f'<text x="8" y="{top - 6}" class="lane">slot {slot}</text>')
        for b, zone in enumerate(ZONE_BANDS):
            add(f'<rect x="{LEFT_PX}" y="{top + b * band:.1f}" width="{width - LEFT_PX - 10}" '
                f'height="{band:.1f}" class="band band-{zone}"/>')
            add(f'<text x="8" y="{top + b * band + band / 2 + 4:.1f}" class="zone">{zone}</text>')
        points = []
        last = None
        for i, row in enumerate(rows):
            if row.slot == slot and row.counter is not None and row.counter != last:
                last = row.counter
                y = _counter_y(row.counter, top)
                if points:
                    points.append(f"{step_x(i) - STEP_PX / 2:.1f},{points[-1].split(',')[1]}")
                points.append(f"{step_x(i) - STEP_PX / 2:.1f},{y:.1f}")
                label = counter_symbol(row.counter) or f"0x{row.counter:08x}"
                add(f'<text x="{step_x(i) - STEP_PX / 2 + 2:.1f}" y="{y - 4:.1f}" class="value">'
                    f'{html.escape(label)}</text>')
        if points:
            points.append(f"{width - 10},{points[-1].split(',')[1]}")
            add(f'<polyline points="{" ".join(points)}" class="counter"/>')
    for i, row in enumerate(rows):
        x = step_x(i)
        add(f'<text x="{x}" y="14" class="step">{row.index}</text>')
        if row.kind == "alloc" and row.events:
            add(f'<line x1="{x}" y1="20" x2="{x}" y2="{height}" stroke="{REUSE_COLOUR}" class="rule"/>')
            add(f'<text x="{x + 3}" y="28" class="mark" fill="{REUSE_COLOUR}">reuse</text>')
        elif row.kind == "reclaim":
            add(f'<line x1="{x}" y1="20" x2="{x}" y2="{height}" stroke="{GRACE_COLOUR}" class="rule"/>')
            add(f'<text x="{x + 3}" y="28" class="mark" fill="{GRACE_COLOUR}">grace period</text>')
        y = lane_y.get(row.lane)
        if y is None:
            continue
        colour = KIND_COLOURS.get(row.kind, OTHER_COLOUR)
        shape = "violating" if row.index == table.violation_index else "step"
        add(f'<g class="{shape}" data-step="{row.index}"><title>{html.escape(_tooltip(row))}</title>'
            f'<circle cx="{x}" cy="{y}" r="7" fill="{colour}"/></g>')
    title = "ok" if signature is None else signature
    head = html.escape(table.verdict_text)
    return _PAGE.format(
        title=html.escape(title),
        verdict=head,
        program=html.escape(program.to_text()),
        width=width,
        height=height,
        svg="\n".join(svg),
        violation=VIOLATION_COLOUR,
    )


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>pyfuzz: {title}</title>
<style>
body {{ margin: 0; font: 13px monospace; color: #1f2328; background: #ffffff; }}
svg {{ display: block; }}
header {{ padding: 8px 12px; }}
h1 {{ font-size: 15px; margin: 0 0 4px 0; }}
pre {{ margin: 4px 0; }}
.lane {{ font: bold 13px monospace; fill: #1f2328; }}
.zone {{ font: 11px monospace; fill: #57606a; }}
.step {{ font: 9px monospace; fill: #57606a; text-anchor: middle; }}
.value {{ font: 9px monospace; fill: #1f2328; }}
.mark {{ font: 10px monospace; }}
.lane-line {{ stroke: #d0d7de; stroke-width: 1; }}
.band {{ fill: #f6f8fa; fill-opacity: 0.55; stroke: #d0d7de; stroke-width: 0.5; }}
.band-dead, .band-noref {{ fill: #fff1f0; }}
.band-saturation {{ fill: #fff8e5; }}
.counter {{ fill: none; stroke: #1f6feb; stroke-width: 2; }}
.rule {{ stroke-width: 2; stroke-dasharray: 4 3; }}
g.step:hover circle, g.violating:hover circle {{ r: 10; }}
g.violating circle {{ stroke: #1f2328; stroke-width: 2; }}
.legend span {{ display: inline-block; padding: 0 6px; margin-right: 6px; color: #ffffff; }}
</style></head>
<body>
<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}"
 viewBox="0 0 {width} {height}">
{svg}
</svg>
<header>
<h1>{title}</h1>
<div class="verdict">{verdict}</div>
<div class="legend"><span style="background:{violation}">violating step</span><span
 style="background:#7b3fe4">slab reuse</span><span style="background:#18a558">grace period</span><span
 style="background:#d1242f">free</span><span style="background:#1f6feb">counter access</span></div>
<pre>{program}</pre>
</header>
</body></html>
"""
