"""Benchmark: the speed model against published gpt-oss measurements (``nox -s calibration``).

Fits the model's constants on every ``use=fit`` row of
``tests/fixtures/calibration/measurements.csv``, prints them (install/predict.py's
``CONSTANTS`` must equal them; a test checks), then predicts each row from constants fitted
without it (leave-one-out) and prints, per hardware class, the median |ln(pred/measured)|,
the share within ±30 % and the bias (geometric mean of pred/measured), for generation (tg)
and prompt (pp) speed. It also derives the Intel GPU factor (``VENDOR_EFFICIENCY``) from
llama.cpp's Vulkan scoreboard, ``vulkan-scoreboard.csv``. ``--rows`` lists every row's prediction.
"""

from __future__ import annotations

import sys
from pathlib import Path

from gptoss_doctor.install.calibrate import (
    ErrorStats,
    by_class,
    fit,
    leave_one_out,
    parse,
    vendor_efficiency,
)

DATA = Path(__file__).resolve().parents[1] / "fixtures" / "calibration" / "measurements.csv"
SCOREBOARD = DATA.with_name("vulkan-scoreboard.csv")


def _table(title: str, table: dict[str, ErrorStats]) -> None:
    print(f"\n{title}\n")
    print("| hardware class | n | median abs ln(pred/meas) | within ±30 % | bias (pred/meas) |")
    print("|---|---|---|---|---|")
    for name, s in table.items():
        print(f"| {name} | {s.n} | {s.median_abs_log:.3f} | {s.within_30:.0%} | "
              f"×{s.bias:.2f} |")


def main(argv: list[str]) -> int:
    rows = parse(DATA.read_text(encoding="utf-8"))
    used = [m for m in rows if m.fitted]
    print(f"{len(rows)} measurements, {len(used)} used to fit "
          f"({len(rows) - len(used)} excluded with their reasons in the file)")
    print(f"fitted on all: {fit(rows)}")
    print(f"vendor efficiency from {SCOREBOARD.name} (not fitted on these rows): "
          f"{vendor_efficiency(SCOREBOARD.read_text(encoding='utf-8'))}")
    preds = leave_one_out(rows)
    _table("Generation (tg), leave-one-out", by_class(preds, "tg"))
    _table("Prompt processing (pp), leave-one-out", by_class(preds, "pp"))
    if "--rows" in argv:
        print("\n| id | tg measured | tg LOO | pp measured | pp LOO |\n|---|---|---|---|---|")
        for p in preds:
            m = p.measurement
            print(f"| {m.id} | {m.tg_tps or ''} | {(p.tg and round(p.tg, 1)) or ''} | "
                  f"{m.pp_tps or ''} | {(p.pp and round(p.pp)) or ''} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
