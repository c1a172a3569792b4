"""A published site in a real headless Chromium: the recorded runs plus 1,000 generated ones
open with no console error, and every chart's text boxes, as the browser lays them out, lie
inside the chart and clear of each other.

The site's pages run no script (their Content-Security-Policy forbids it), so the geometry
is read from a test-only copy of each page: the same HTML with ``script-src 'unsafe-inline'``
added to the policy and a script that writes each ``<text>``'s ``getBBox()`` into the
document, which ``--dump-dom`` prints after the load event. Screenshots of the index and of
one chart go to ``test-artifacts/`` (the README's come from there).
"""

from __future__ import annotations

import html
import json
import re
import subprocess
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from gptoss_doctor.cli import main

from conftest import CHROMIUM
from site_runs import RECORDED, write

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
GENERATED = 1000
pytestmark = pytest.mark.chromium
POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
MEASURE = """<script>
const charts = [...document.querySelectorAll("svg.chart")].map((svg) => ({
  title: svg.getAttribute("aria-label"),
  width: svg.viewBox.baseVal.width, height: svg.viewBox.baseVal.height,
  boxes: [...svg.querySelectorAll("text")].map((t) => {
    const b = t.getBBox();
    return {text: t.textContent, x: b.x, y: b.y, width: b.width, height: b.height};
  })}));
const out = document.createElement("pre");
out.id = "geometry";
out.textContent = JSON.stringify(charts);
document.body.appendChild(out);
</script>"""
SLACK = 0.5  # px: anti-aliasing rounds boxes outwards


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
         *args], capture_output=True, text=True, timeout=180,
        check=False)


def _problems(log: str) -> list[str]:
    return [line for line in log.splitlines()
            if "Refused to" in line or ("CONSOLE" in line and "rror" in line)
            or "Uncaught" in line]


def _geometry(page: Path, tmp_path: Path) -> list[dict[str, Any]]:
    text = page.read_text(encoding="utf-8")
    assert text.count(POLICY) == 1
    probe = page.with_name(f"measure-{page.name}")
    probe.write_text(text.replace(POLICY, POLICY + "; script-src 'unsafe-inline'")
                     .replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    dom = _chromium(tmp_path / "measure", "--window-size=1280,1600", "--dump-dom",
                    probe.as_uri())
    probe.unlink()
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'<pre id="geometry">(.*?)</pre>', dom.stdout, re.S)
    assert found, "the measuring script did not run"
    charts: list[dict[str, Any]] = json.loads(html.unescape(found.group(1)))
    return charts


def _assert_readable(chart: dict[str, Any]) -> None:
    width, height, boxes = chart["width"], chart["height"], chart["boxes"]
    assert boxes, chart["title"]
    for box in boxes:
        assert box["width"] > 0, box
        assert box["x"] >= -SLACK and box["y"] >= -SLACK, (chart["title"], box)
        assert box["x"] + box["width"] <= width + SLACK, (chart["title"], box)
        assert box["y"] + box["height"] <= height + SLACK, (chart["title"], box)
    for a, b in combinations(boxes, 2):
        apart = (a["x"] + a["width"] <= b["x"] + SLACK or b["x"] + b["width"] <= a["x"] + SLACK
                 or a["y"] + a["height"] <= b["y"] + SLACK
                 or b["y"] + b["height"] <= a["y"] + SLACK)
        assert apart, (chart["title"], a["text"], b["text"])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("published")
    generated = write(folder / "generated", GENERATED)
    target = folder / "site"
    with pytest.raises(SystemExit) as done:
        main(["publish", *map(str, RECORDED), *map(str, generated), "-o", str(target)])
    assert done.value.code == 0
    return target


def test_the_site_opens_cleanly_and_no_chart_text_overlaps(site: Path, tmp_path: Path) -> None:
    index = json.loads((site / "index.json").read_text())
    assert len(index["runs"]) >= GENERATED
    biggest = max(index["groups"], key=lambda g: len(g["runs"]))
    tools = next(g for g in index["groups"] if "tool use" in g["title"])
    endpoint = next(r for r in index["runs"] if r["method"] == "endpoint")
    mlx = next(r for r in index["runs"] if r["engine"] == "mlx")
    pages = [site / "index.html", site / biggest["page"], site / tools["page"],
             site / endpoint["page"], site / mlx["page"]]
    measured = 0
    for page in pages:
        dom = _chromium(tmp_path / "plain", "--window-size=1280,1600", "--dump-dom",
                        page.as_uri())
        assert dom.returncode == 0 and "</html>" in dom.stdout, dom.stderr[-2000:]
        assert _problems(dom.stderr) == []
        for chart in _geometry(page, tmp_path):
            _assert_readable(chart)
            measured += 1
    assert measured >= 8


def test_screenshots_of_the_index_and_one_chart(site: Path, tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    shots = {"publish-index.png": (site / "index.html", "1280,1500")}
    page = (site / "index.html").read_text(encoding="utf-8")
    svg = re.search(r'<svg xmlns="http://www.w3.org/2000/svg" class="chart".*?</svg>', page,
                    re.S)
    assert svg is not None
    alone = tmp_path / "chart.html"
    alone.write_text(f'<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" '
                     f'content="{POLICY}"><style>body {{ margin: 8px; }} svg.chart text {{ '
                     'font: 12px "DejaVu Sans", sans-serif; }</style></head><body>'
                     f"{svg.group(0)}</body></html>", encoding="utf-8")
    height = int(re.search(r'height="(\d+)"', svg.group(0)).group(1))  # type: ignore[union-attr]
    shots["publish-chart.png"] = (alone, f"656,{height + 16}")  # the chart and its margin
    for name, (source, size) in shots.items():
        shot = ARTIFACTS / name
        shot.unlink(missing_ok=True)
        done = _chromium(tmp_path / name, f"--screenshot={shot}", f"--window-size={size}",
                         "--hide-scrollbars", source.as_uri())
        assert done.returncode == 0 and _problems(done.stderr) == [], done.stderr[-2000:]
        assert shot.stat().st_size > 10_000


def test_the_browser_check_catches_overlapping_and_clipped_text(tmp_path: Path) -> None:
    """The measuring page itself: text drawn on top of other text, or past the edge, fails."""
    page = tmp_path / "bad.html"
    page.write_text(
        f'<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" '
        f'content="{POLICY}"></head><body><svg xmlns="http://www.w3.org/2000/svg" '
        'class="chart" aria-label="bad" width="200" height="60" viewBox="0 0 200 60">'
        '<text x="10" y="20">pp64 31.0</text><text x="14" y="24">pp64 29</text>'
        '<text x="180" y="50">tg16 13</text></svg></body></html>', encoding="utf-8")
    charts = _geometry(page, tmp_path)
    assert len(charts) == 1 and len(charts[0]["boxes"]) == 3
    boxes = charts[0]["boxes"]
    with pytest.raises(AssertionError, match="pp64 29"):  # on top of "pp64 31.0"
        _assert_readable({**charts[0], "boxes": boxes[:2]})
    with pytest.raises(AssertionError, match="tg16 13"):  # past the right edge
        _assert_readable({**charts[0], "boxes": boxes[2:]})
