"""How long ``redact.redact`` takes per recorded results file (median of repeats).

Run: ``python tests/benchmarks/redact_speed.py [--repeats 7]``. ``publish`` redacts every
run it reads and ``share`` every run it uploads; the README quotes these figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from gptoss_doctor.redact import redact

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    repeats = parser.parse_args().repeats
    for path in sorted((FIXTURES / "results").glob("*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        redact(record)  # the context and the compiled patterns, once
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            redact(record)
            times.append(time.perf_counter() - start)
        print(f"{path.name:40} {path.stat().st_size / 1024:8.1f} KiB "
              f"{statistics.median(times) * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
