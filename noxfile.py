"""Developer sessions: ``nox`` runs tests, lint and typecheck (the README's test command).

The ``tests`` session installs the llama.cpp extra: llama-cpp-python compiles from source
(about 10 minutes on 2 cores) once per machine; pip's wheel cache keeps the build.
``nox -s quick`` (not a default session) is the base install and every test that needs no
engine: nothing compiles.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """The whole test suite, including the llama.cpp checks, the endpoint tests against
    llama-cpp-python's own server, and the MLX engine on its Linux CPU backend."""
    session.install("--find-links", str(llama_wheels(session)),
                    ".[test,llama,server,mlx,llamaserver,mcp]")
    session.run("pytest", *session.posargs)


LLAMA_CPP = "llama-cpp-python==0.3.36"
# llama.cpp's AMX kernels crash at the first batch of several tokens on some Sapphire Rapids
# machines (this project's CI among them; docs/design.md, "AMX"): the test build leaves them
# out. GCC keeps explicit -mno-* flags over the ones -march=native implies.
NO_AMX = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
LLAMA_CMAKE_ARGS = f'-DCMAKE_C_FLAGS="{NO_AMX}" -DCMAKE_CXX_FLAGS="{NO_AMX}"'
WHEELS = Path.home() / ".cache" / "gptoss-doctor-build" / "llama-cpp-python-0.3.36-no-amx"


def llama_wheels(session: nox.Session) -> Path:
    """A folder holding llama-cpp-python built with ``LLAMA_CMAKE_ARGS``, built once per
    machine. pip's own wheel cache is keyed by the sdist alone, so a build with other flags
    could be taken from it: this folder is keyed by the flags instead."""
    if not any(WHEELS.glob("llama_cpp_python-*.whl")):
        WHEELS.mkdir(parents=True, exist_ok=True)
        session.run("python", "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "-w",
                    str(WHEELS), LLAMA_CPP,
                    env={"CMAKE_ARGS": LLAMA_CMAKE_ARGS, "CMAKE_BUILD_PARALLEL_LEVEL":
                         session.env.get("CMAKE_BUILD_PARALLEL_LEVEL", "2")})
    return WHEELS


@nox.session(python="3.11", default=False)
def quick(session: nox.Session) -> None:
    """Every test that needs no engine, on a base install (``.[test]``: no llama-cpp-python,
    no server, no MLX). The markers that gate the engine tests are in pyproject.toml."""
    session.install(".[test]")
    session.env["GPTOSS_FUZZ_EXAMPLES"] = "100"  # the full suite runs 200 per loader
    session.run("pytest", "-m",
                "not llama and not mlx and not server and not xllamacpp and not mcp",
                *session.posargs)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    # Installed non-editable: mypy cannot follow setuptools' editable import hooks, and the
    # installed tree is exactly what users import.
    session.install(".", "mypy", "types-psutil", "types-jsonschema")
    session.run("mypy", "-p", "gptoss_doctor")


@nox.session(python="3.11", default=False)
def agreement(session: nox.Session) -> None:
    """Benchmark: our speed suite against llama-bench built from the same llama.cpp sources."""
    session.install("--find-links", str(llama_wheels(session)), ".[llama]")
    session.run("python", "tests/benchmarks/llama_bench_agreement.py", *session.posargs)


@nox.session(python="3.11", default=False)
def calibration(session: nox.Session) -> None:
    """Benchmark: the speed model's leave-one-out errors on published measurements."""
    session.install(".")
    session.run("python", "tests/benchmarks/calibration.py", *session.posargs)
