"""Benchmark (not a unit test): does `gptoss-doctor bench speed` agree with llama-bench?

Builds llama-bench from the llama.cpp sources vendored in the installed llama-cpp-python's
sdist (same version, same default CMake options: native CPU, OpenMP), runs both tools on the
same GGUF with the same settings (flash attention on, no mmap, threads, batch sizes), and
prints each test's rates and the ratio ours / llama-bench. Timings are noisy: the ratio
is the result, not either number.

    nox -s agreement -- [--model FILE] [--tests pp64,tg32] [--reps 3] [--threads 2]

Without --model it measures a synthetic gpt-oss-20b (11.27 GiB, written on first use).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

CACHE = Path.home() / ".cache" / "gptoss-doctor-tests" / "llama-bench"


# llama.cpp's AMX kernels crash on some Sapphire Rapids machines (docs/design.md, "AMX"):
# left out here as in noxfile.py's build of llama-cpp-python, so both run the same kernels.
NO_AMX = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"


def build_llama_bench() -> Path:
    version = importlib.metadata.version("llama-cpp-python")
    root = CACHE / f"{version}-no-amx"  # built as the test session builds llama-cpp-python
    binary = root / "build" / "bin" / "llama-bench"
    if binary.exists():
        return binary
    CACHE.mkdir(parents=True, exist_ok=True)
    sdist_dir = Path(tempfile.mkdtemp(dir=CACHE))
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary",
                    ":all:", f"llama-cpp-python=={version}", "-d", str(sdist_dir)], check=True)
    archive = next(sdist_dir.glob("llama_cpp_python-*.tar.gz"))
    prefix = f"llama_cpp_python-{version}/vendor/llama.cpp/"
    with tarfile.open(archive) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
        for member in members:
            member.name = member.name[len(prefix):]
        tar.extractall(root, members=members, filter="data")
    subprocess.run(["cmake", "-S", str(root), "-B", str(root / "build"),
                    "-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF",
                    "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
                    "-DLLAMA_BUILD_SERVER=OFF", f"-DCMAKE_C_FLAGS={NO_AMX}",
                    f"-DCMAKE_CXX_FLAGS={NO_AMX}"], check=True)
    subprocess.run(["cmake", "--build", str(root / "build"), "--target", "llama-bench",
                    "-j2"], check=True)
    return binary


def run_llama_bench(binary: Path, model: Path, tests: list[str], reps: int,
                    threads: int) -> dict[str, dict[str, object]]:
    rates: dict[str, dict[str, object]] = {}
    for test in tests:
        kind, count = test[:2], test[2:]
        args = ["-p", count, "-n", "0"] if kind == "pp" else ["-p", "0", "-n", count]
        done = subprocess.run([str(binary), "-m", str(model), *args, "-r", str(reps),
                               "-t", str(threads), "-fa", "on", "-lm", "none", "-o", "json"],
                              capture_output=True, text=True, check=True)
        (row,) = json.loads(done.stdout)
        rates[test] = {"mean_ts": row["avg_ts"], "stddev_ts": row["stddev_ts"],
                       "samples_ts": row["samples_ts"]}
    return rates


def run_ours(model: Path, tests: list[str], reps: int,
             threads: int) -> dict[str, dict[str, object]]:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "r.json"
        subprocess.run([sys.executable, "-m", "gptoss_doctor", "bench", "speed", "--model",
                        str(model), "--tests", ",".join(tests), "--reps", str(reps),
                        "--threads", str(threads), "--no-chat", "-o", str(out)], check=True)
        record = json.loads(out.read_text())
    return {t["name"]: {"mean_ts": t["mean_ts"], "stddev_ts": t["stddev_ts"],
                        "samples_ts": t["samples_ts"]} for t in record["tests"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--tests", default="pp64,tg32")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the comparison here")
    parser.add_argument("--llama-bench", type=Path, help="use this llama-bench binary")
    args = parser.parse_args()
    model = args.model
    if model is None:
        model = CACHE.parent / "gpt-oss-20b-synthetic-seed0.gguf"
        if not model.exists():
            subprocess.run([sys.executable, "-m", "gptoss_doctor", "synth", "20b", "-o",
                            str(model)], check=True)
    tests = args.tests.split(",")
    binary = args.llama_bench or build_llama_bench()
    theirs = run_llama_bench(binary, model, tests, args.reps, args.threads)
    ours = run_ours(model, tests, args.reps, args.threads)
    print(f"{model.name}, {args.threads} threads, flash attention on, no mmap, "
          f"{args.reps} repetitions")
    print(f"{'test':<8}{'llama-bench t/s':>22}{'gptoss-doctor t/s':>22}{'ratio':>8}")
    comparison = {}
    for test in tests:
        a, b = theirs[test], ours[test]
        ratio = float(b["mean_ts"]) / float(a["mean_ts"])  # type: ignore[arg-type]
        comparison[test] = {"llama_bench": a, "gptoss_doctor": b, "ratio": ratio}
        print(f"{test:<8}{a['mean_ts']:>14.2f} ± {a['stddev_ts']:<5.2f}"
              f"{b['mean_ts']:>14.2f} ± {b['stddev_ts']:<5.2f}{ratio:>8.3f}")
    if args.json:
        args.json.write_text(json.dumps({"model": model.name, "threads": args.threads,
                                         "reps": args.reps, "tests": comparison}, indent=2))


if __name__ == "__main__":
    main()
