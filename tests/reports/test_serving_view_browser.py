"""The serving charts measured in a real headless Chromium: every text's rendered box lies
inside its picture, clear of the others, and no wider than reports/line_chart.py
estimated it (the estimate is what keeps them apart)."""

from __future__ import annotations

import json
import subprocess
from itertools import combinations
from pathlib import Path

import pytest

from gptoss_doctor.reports import serving_view as sv

from conftest import CHROMIUM

pytestmark = pytest.mark.chromium
MEASURE = """<script>
const out = [...document.querySelectorAll('svg')].map(svg => {
  const [,, w, h] = svg.getAttribute('viewBox').split(' ').map(Number);
  return {w, h, texts: [...svg.querySelectorAll('text')].map(t => {
    const b = t.getBBox(), m = t.getCTM(), s = svg.getScreenCTM().inverse();
    const p = svg.createSVGPoint();
    const corners = [[b.x, b.y], [b.x + b.width, b.y + b.height]].map(([x, y]) => {
      p.x = x; p.y = y; return p.matrixTransform(t.getScreenCTM()).matrixTransform(s); });
    return {text: t.textContent, x0: Math.min(corners[0].x, corners[1].x),
            x1: Math.max(corners[0].x, corners[1].x), y0: Math.min(corners[0].y, corners[1].y),
            y1: Math.max(corners[0].y, corners[1].y), width: b.width};
  })};
});
document.getElementById('out').textContent = JSON.stringify(out);
</script>"""


def test_rendered_text_stays_inside_apart_and_within_its_estimate(tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_serving_view import SLOS, levels

    figures = [*sv.figures(levels(6), SLOS, True),
               *sv.figures(levels(3, 1e6, "<b>" + "w" * 60), SLOS, False)]
    page = tmp_path / "charts.html"
    page.write_text("<!DOCTYPE html><html><body>" + "".join(f.svg for f in figures)
                    + '<pre id="out"></pre>' + MEASURE + "</body></html>")
    assert CHROMIUM is not None
    done = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    measured = json.loads(done.stdout.split('<pre id="out">')[1].split("</pre>")[0]
                          .replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
    assert len(measured) == len(figures)
    for figure, chart in zip(figures, measured, strict=True):
        texts = chart["texts"]
        assert len(texts) == len(figure.boxes)
        for text, box in zip(texts, figure.boxes, strict=True):
            assert text["x0"] >= -0.5 and text["x1"] <= chart["w"] + 0.5, text
            assert text["y0"] >= -0.5 and text["y1"] <= chart["h"] + 0.5, text
            assert text["width"] <= max(box.x1 - box.x0, box.y1 - box.y0) + 0.5, text
        for a, b in combinations(texts, 2):
            apart = (a["x1"] <= b["x0"] + 0.5 or b["x1"] <= a["x0"] + 0.5
                     or a["y1"] <= b["y0"] + 0.5 or b["y1"] <= a["y0"] + 0.5)
            assert apart, (a, b)
