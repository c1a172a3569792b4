"""Benchmark (not a test): does an open-loop run keep its schedule while the server falls
behind, and does the SLO sweep give the same answer twice?

The server is a slot-limited variant of the zero-work server (tests/zero_server.py) in a
process of its own: ``--slots`` requests are served at once, each after a ``--prefill``
sleep and then ``--tokens`` tokens ``--delay`` apart; the others wait for a slot, so past
``slots / (prefill + tokens x delay)`` requests/s its queue — and TTFT — grow without bound,
as a real server's do. Nothing here spends CPU per token beyond writing it.

1. Schedule: ``bench speed --endpoint --rate R --arrivals constant --duration D`` at half
   and at twice the server's capacity; the achieved rate (measured requests sent / their
   send span) against the requested one, the send lag p99 and the requests in flight.
2. Sweep: ``--sweep --slo ttft_p95=...`` ``--repeats`` times against the same server; the
   answers and the bisection step.

    python tests/benchmarks/open_loop.py [--duration 20] [--repeats 3] [--parts schedule,sweep]
        [--out FILE]

Figures measured here are in docs/serving.md ("Measured").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from zero_server import ZeroConfig, ZeroServer


class SlotServer(ZeroServer):
    """The zero-work server with a fixed number of slots and a prefill delay."""

    def __init__(self, config: ZeroConfig, slots: int, prefill_s: float) -> None:
        super().__init__(config)
        self.slots = asyncio.Semaphore(slots)
        self.prefill_s = prefill_s

    async def complete(self, writer: asyncio.StreamWriter, body: dict[str, object]) -> None:
        async with self.slots:
            await asyncio.sleep(self.prefill_s)
            await super().complete(writer, body)


def serve(args: argparse.Namespace) -> None:
    async def run() -> None:
        server = SlotServer(ZeroConfig(tokens=args.tokens, delay_s=args.delay), args.slots,
                            args.prefill)
        print(f"listening on {await server.start()}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(run())


def bench(url: str, out: Path, *flags: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "gptoss_doctor", "bench", "speed",
                           "--endpoint", url, "--tests", "pp16,tg32", "--timeout", "600",
                           "-o", str(out), *flags], capture_output=True, text=True, check=False)
    if not out.exists():
        raise SystemExit(f"bench failed ({done.returncode}): {done.stderr[-2000:]}")
    loaded: dict[str, Any] = json.loads(out.read_text())
    return loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--prefill", type=float, default=0.05)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--delay", type=float, default=0.01)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--sweep-duration", type=float, default=8.0)
    parser.add_argument("--slo", default="ttft_p95=1s")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--parts", default="schedule,sweep", help="which parts to run")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.serve:
        serve(args)
        return
    server = subprocess.Popen([sys.executable, __file__, "--serve", "--slots", str(args.slots),
                               "--prefill", str(args.prefill), "--tokens", str(args.tokens),
                               "--delay", str(args.delay)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        url = server.stdout.readline().split()[-1]
        capacity = args.slots / (args.prefill + args.tokens * args.delay)
        report: dict[str, Any] = {"server": {"slots": args.slots, "prefill_s": args.prefill,
                                             "tokens": args.tokens, "delay_s": args.delay,
                                             "capacity_rps": round(capacity, 3)},
                                  "schedule": [], "sweeps": []}
        with tempfile.TemporaryDirectory() as folder:
            for share in (0.5, 2.0) if "schedule" in args.parts else ():
                rate = round(capacity * share, 2)
                record = bench(url, Path(folder) / f"rate{share}.json", "--rate", str(rate),
                               "--arrivals", "constant", "--duration", str(args.duration),
                               "--warmup", "2s")
                level = record["load"]["levels"][0]
                row = {"requested_rps": rate, "achieved_rps": level["achieved_rate"],
                       "error_percent": round(100 * (level["achieved_rate"] / rate - 1), 3),
                       "sent": level["sent"], "dropped": level["dropped"],
                       "max_in_flight": level["max_outstanding"],
                       "send_lag_p99_ms": round(1000 * level["send_lag_p99_s"], 2),
                       "ttft_p95_s": level["total"]["ttft_s"]["p95"],
                       "client": level["client"]}
                report["schedule"].append(row)
                print(json.dumps(row), flush=True)
            for repeat in range(args.repeats if "sweep" in args.parts else 0):
                record = bench(url, Path(folder) / f"sweep{repeat}.json", "--sweep", "--rate",
                               "1", "--slo", args.slo, "--duration", str(args.sweep_duration),
                               "--warmup", "1s")
                sweep = record["load"]["sweep"]
                row = {"best_rps": sweep["best_rate"], "first_failing_rps":
                       sweep["first_failing_rate"], "tried": sweep["tried"],
                       "client_bound_levels": sum(lv["client"]["client_bound"] for lv in
                                                  record["load"]["levels"])}
                report["sweeps"].append(row)
                print(json.dumps(row), flush=True)
        best = [s["best_rps"] for s in report["sweeps"] if s["best_rps"] is not None]
        if best:
            step = min(s["first_failing_rps"] - s["best_rps"] for s in report["sweeps"]
                       if s["first_failing_rps"] is not None and s["best_rps"] is not None)
            report["sweep_spread_rps"] = round(max(best) - min(best), 3)
            report["sweep_smallest_step_rps"] = round(step, 3)
        print(json.dumps({k: report[k] for k in report if k.startswith("sweep_")}))
        if args.out is not None:
            args.out.write_text(json.dumps(report, indent=1))
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
