"""The HTML timeline in a real headless Chromium (Debian's `chromium`, installed by `make test`):
the screenshot must show the highlight at the violating step's position, and the rendered DOM
must carry each step's event for the hover."""

import re
import shutil
import subprocess

import pytest
from PIL import Image

from pyfuzz.check import execute
from pyfuzz.program import load
from pyfuzz.report import step_table
from pyfuzz.signature import signature
from pyfuzz.timeline import STEP_PX, TOP_PX, VIOLATION_COLOUR, render_timeline, step_x

from test_explain import SEED_RACE

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(tmp_path, *args):
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: 'make test' installs it (apt-get install chromium)")
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--force-device-scale-factor=1", f"--user-data-dir={tmp_path / 'profile'}", *args],
        capture_output=True, text=True, timeout=120,
    )


def _rgb(colour):
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def _close(pixel, colour, tolerance=12):
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], colour))


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("timeline")
    program = load(SEED_RACE)
    verdict = execute(program)
    table = step_table(program, verdict.events, verdict.violation)
    html = render_timeline(program, table, signature(verdict))
    path = tmp / "race.html"
    path.write_text(html, encoding="utf-8")
    shown = [row for row in table.rows if row.lane != -1]
    position = next(i for i, row in enumerate(shown) if row.index == verdict.violation.event_index)
    width = int(re.search(r'<svg id="timeline"[^>]* width="(\d+)"', html)[1])
    return tmp, path, html, step_x(position), width, verdict


def test_page_is_self_contained(page):
    _, _, html, *_ = page
    assert "<script" not in html and "src=" not in html and "href=" not in html and "@import" not in html
    assert re.findall(r"https?://[^\"' ]+", html) == ["http://www.w3.org/2000/svg"]  # the SVG namespace name


def test_screenshot_shows_the_violating_step_highlighted(page):
    tmp, path, _, x, width, _ = page
    shot = tmp / "shot.png"
    result = chromium(tmp, f"--window-size={width},420", f"--screenshot={shot}", path.as_uri())
    assert shot.exists(), result.stderr
    image = Image.open(shot).convert("RGB")
    highlight = _rgb(VIOLATION_COLOUR)
    # Inside the highlight, in the strip above the lanes where nothing else is drawn ...
    assert _close(image.getpixel((x - STEP_PX // 2 + 3, TOP_PX - 3)), highlight)
    assert _close(image.getpixel((x + STEP_PX // 2 - 3, TOP_PX - 3)), highlight)
    # ... and nowhere else along that strip.
    strip = [image.getpixel((px, TOP_PX - 3)) for px in range(0, width)]
    highlighted = [px for px, pixel in enumerate(strip) if _close(pixel, highlight)]
    assert min(highlighted) >= x - STEP_PX // 2 and max(highlighted) <= x + STEP_PX // 2


def test_rendered_dom_carries_every_steps_event(page):
    tmp, path, _, _, _, verdict = page
    result = chromium(tmp, "--dump-dom", path.as_uri())
    dom = result.stdout
    index = verdict.violation.event_index
    violating = re.search(r'<g class="violating" data-step="(\d+)"><title>([^<]*)</title>', dom)
    assert violating is not None, result.stderr[-500:]
    assert int(violating[1]) == index
    assert violating[2].startswith(f"step {index} | T1 | rmap 1: vma_get(vma#0.1) = true")
    assert "VIOLATION" in violating[2]
    titles = re.findall(r'<g class="(?:step|violating)" data-step="\d+"><title>', dom)
    assert len(titles) == len([e for e in verdict.events if e[1] != -1])
    assert "slot reuse" in dom and "not-linearizable in rmap" in dom
