"""Benchmark (not a unit test): llama.cpp's own server (xllamacpp) vs llama-cpp-python.

On one GGUF (default: a synthetic gpt-oss-20b, 11.27 GiB, written on first use) it runs,
one after the other and with the same threads:
- ``bench speed --engine llama.cpp``: llama-cpp-python's decode loop, llama-bench's method;
- ``bench speed --engine llama-server --concurrency 1,2,4``: llama.cpp's server in-process,
  streamed over HTTP, as many slots as the highest level;
- with ``--llama-cpp-server``: llama-cpp-python's own server on loopback, the same sweep
  (``--interrupt_requests False``, else it cuts running streams);
- with ``--llama-bench PATH``: llama-bench itself, ``-fa on``.
The engines run in interleaved rounds (``--rounds``, the order reversed every other round),
each run with the 1-minute load average before and after it; each round's rates are divided
by the same round's llama-cpp-python rates, so load that drifts between rounds cancels out of
each ratio. It prints the rates with their basis, the per-round ratios, the concurrency
tables, and llama.cpp's own memory breakdown beside the doctor's estimate. Timings on shared
machines are noisy: compare the ratios measured side by side, not single numbers.

    python tests/benchmarks/llama_server_vs_llama_cpp.py [--model FILE] [--tests pp64,tg16]
        [--reps 3] [--threads 2] [--concurrency 1,2,4] [--rounds 2] [--llama-cpp-server]
        [--llama-bench PATH] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CACHE = Path.home() / ".cache" / "gptoss-doctor-tests"


def bench(*args: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "r.json"
        subprocess.run([sys.executable, "-m", "gptoss_doctor", "bench", "speed", *args,
                        "-o", str(out)], check=True)
        record: dict[str, Any] = json.loads(out.read_text())
    return record


def rates(record: dict[str, Any]) -> dict[str, tuple[float, float | None, str]]:
    return {t["name"]: (t["mean_ts"], t.get("stddev_ts"), t.get("basis", "llama-bench method"))
            for t in record["tests"] if t.get("mean_ts")}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def llama_cpp_server(model: Path, threads: int, streams: int, tests: str, reps: int,
                     concurrency: str) -> dict[str, Any]:
    """llama-cpp-python's server on loopback (one model, requests queue), the same sweep."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host",
         "127.0.0.1", "--port", str(port), "--n_ctx", str(2048 * streams), "--n_threads",
         str(threads), "--flash_attn", "true", "--use_mmap", "false",
         "--interrupt_requests", "False"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(2)
        return bench("--endpoint", f"http://127.0.0.1:{port}/v1", "--tests", tests, "--reps",
                     str(reps), "--concurrency", concurrency, "--timeout", "600")
    finally:
        server.terminate()
        server.wait(timeout=60)


def llama_bench(binary: Path, model: Path, tests: list[str], reps: int, threads: int
                ) -> dict[str, tuple[float, float | None, str]]:
    found = {}
    for test in tests:
        kind, count = test[:2], test[2:]
        args = ["-p", count, "-n", "0"] if kind == "pp" else ["-p", "0", "-n", count]
        done = subprocess.run([str(binary), "-m", str(model), *args, "-r", str(reps), "-t",
                               str(threads), "-fa", "on", "-lm", "none", "-o", "json"],
                              capture_output=True, text=True, check=True)
        (row,) = json.loads(done.stdout)
        found[test] = (row["avg_ts"], row["stddev_ts"], "llama-bench")
    return found


def show(runs: dict[str, dict[str, tuple[float, float | None, str]]], tests: list[str]) -> None:
    print(f"{'engine':<28}" + "".join(f"{t:>22}" for t in tests))
    for name, found in runs.items():
        cells = []
        for test in tests:
            mean, sd, _ = found.get(test, (float("nan"), None, ""))
            cells.append(f"{mean:>14.2f} ± {sd or 0:<5.2f}")
        print(f"{name:<28}" + "".join(cells))
    for name, found in runs.items():
        print(f"  {name}: " + "; ".join(f"{t} {found[t][2]}" for t in tests if t in found))


def sweep(name: str, record: dict[str, Any]) -> None:
    print(f"\n{name}: streams, ok/requests, aggregate t/s, per-stream t/s, TTFT p50 / p95 s")
    for level in record["concurrency"]:
        print(f"  {level['streams']:>2}  {level['ok']}/{level['requests']}  "
              f"{level.get('aggregate_ts')}  {level.get('per_stream_ts')}  "
              f"{level.get('ttft_p50_s')} / {level.get('ttft_p95_s')}")


def ratios(rounds: list[dict[str, Any]], tests: list[str], base: str
           ) -> dict[str, dict[str, list[float]]]:
    """Per engine and test, each round's rate / the same round's ``base`` rate: measured
    side by side, so load that drifts between rounds cancels out of each ratio."""
    found: dict[str, dict[str, list[float]]] = {}
    for measured in rounds:
        reference = measured["rates"].get(base, {})
        for name, rates_ in measured["rates"].items():
            for test in tests:
                if name != base and test in rates_ and test in reference:
                    found.setdefault(name, {}).setdefault(test, []).append(
                        rates_[test][0] / reference[test][0])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--tests", default="pp64,tg16")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--concurrency", default="1,2,4")
    parser.add_argument("--rounds", type=int, default=2,
                        help="interleaved rounds: every engine once per round, in turn")
    parser.add_argument("--llama-cpp-server", action="store_true",
                        help="also sweep llama-cpp-python's own server (first round)")
    parser.add_argument("--llama-bench", type=Path, help="also run this llama-bench binary")
    parser.add_argument("--json", type=Path, help="also write every record here")
    args = parser.parse_args()
    model = args.model or CACHE / "gpt-oss-20b-synthetic-seed0.gguf"
    if not model.exists():
        subprocess.run([sys.executable, "-m", "gptoss_doctor", "synth", "20b", "-o",
                        str(model)], check=True)
    tests = args.tests.split(",")
    common = ("--model", str(model), "--tests", args.tests, "--reps", str(args.reps),
              "--threads", str(args.threads))
    base = "llama-cpp-python (in-process)"
    engines: dict[str, Any] = {
        base: lambda: bench(*common, "--engine", "llama.cpp", "--no-chat"),
        "llama-server (xllamacpp)": lambda: bench(*common, "--engine", "llama-server",
                                                  "--concurrency", args.concurrency)}
    rounds: list[dict[str, Any]] = []
    records: dict[str, dict[str, Any]] = {}
    for index in range(args.rounds):
        order = list(engines) if index % 2 == 0 else list(reversed(engines))
        measured: dict[str, Any] = {"rates": {}, "load": {}}
        for name in order:
            load = os.getloadavg()[0]
            records[name] = engines[name]()
            measured["rates"][name] = rates(records[name])
            measured["load"][name] = (round(load, 2), round(os.getloadavg()[0], 2))
        if args.llama_bench:
            load = os.getloadavg()[0]
            measured["rates"]["llama-bench"] = llama_bench(args.llama_bench, model, tests,
                                                           args.reps, args.threads)
            measured["load"]["llama-bench"] = (round(load, 2), round(os.getloadavg()[0], 2))
        if args.llama_cpp_server and index == 0:
            streams = max(int(n) for n in args.concurrency.split(","))
            records["llama-cpp-python server"] = llama_cpp_server(
                model, args.threads, streams, args.tests, args.reps, args.concurrency)
        rounds.append(measured)
        print(f"\nround {index + 1} (1-minute load average before, after each run: "
              f"{measured['load']})")
        show(measured["rates"], tests)
    print(f"\n{model.name}, {args.threads} threads, {args.reps} repetitions, "
          f"{args.rounds} interleaved rounds; ratios to {base}, per round:")
    for name, per_test in ratios(rounds, tests, base).items():
        print(f"  {name}: " + "; ".join(
            f"{test} {', '.join(f'{r:.2f}' for r in values)}"
            for test, values in per_test.items()))
    for name, record in records.items():
        if "concurrency" in record:
            sweep(name, record)
    fit = records["llama-server (xllamacpp)"]["endpoint"]["served"]["fit"]
    print("\nllama.cpp's own fit vs the doctor's estimate (bytes):",
          json.dumps({"llama.cpp": {k: fit["llama_cpp"][k] for k in ("host", "gpu")},
                      "doctor": fit["doctor"], "disagreements": fit["disagreements"]}))
    if args.json:
        args.json.write_text(json.dumps({"records": records, "rounds": rounds,
                                         "ratios": ratios(rounds, tests, base)}, indent=2))


if __name__ == "__main__":
    main()
