"""Benchmark (not a unit test): how long ``gptoss-doctor publish`` takes and how big the site
is, for the recorded runs plus N generated ones (``tests/site_runs.py``, default 1,000).

It runs the real command in a subprocess (so the import time counts), ``--runs`` times, and
prints the wall time of each build, the site's file count and size in total and by kind
(index, run pages, group pages, index.json), and the size of the input files. Timings on a
shared machine are noisy: repeat and read the spread.

    python tests/benchmarks/publish_site.py [--runs-generated 1000] [--repeats 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from site_runs import RECORDED, write


def _sizes(site: Path) -> dict[str, int]:
    kinds = {"index.html": 0, "index.json": 0, "runs": 0, "groups": 0}
    for path in site.rglob("*"):
        if path.is_file():
            kind = path.parts[len(site.parts)] if path.parent != site else path.name
            kinds[kind] = kinds.get(kind, 0) + path.stat().st_size
    return kinds


def measure(count: int, repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        inputs = [*RECORDED, *write(Path(folder) / "in", count)]
        seconds = []
        for _ in range(repeats):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "gptoss_doctor", "publish",
                            *map(str, inputs), "-o", str(Path(folder) / "site")],
                           check=True, stdout=subprocess.DEVNULL)
            seconds.append(time.perf_counter() - started)
        site = Path(folder) / "site"
        files = [p for p in site.rglob("*") if p.is_file()]
        index = json.loads((site / "index.json").read_text())
        return {"inputs": len(inputs),
                "input_bytes": sum(p.stat().st_size for p in inputs),
                "runs": len(index["runs"]), "groups": len(index["groups"]),
                "seconds": [round(s, 1) for s in seconds], "files": len(files),
                "bytes": sum(p.stat().st_size for p in files), "by_kind": _sizes(site)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-generated", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()
    found = measure(args.runs_generated, args.repeats)
    mib = 1024 * 1024
    print(f"{found['runs']} runs ({found['inputs']} files, {found['input_bytes'] / mib:.1f} MiB"
          f") in {found['groups']} groups")
    print("build: " + ", ".join(f"{s:.1f} s" for s in found["seconds"]))
    print(f"site: {found['files']} files, {found['bytes'] / mib:.1f} MiB ("
          + ", ".join(f"{k} {v / mib:.2f} MiB" for k, v in found["by_kind"].items()) + ")")
    if args.json:
        args.json.write_text(json.dumps(found, indent=2) + "\n")


if __name__ == "__main__":
    main()
