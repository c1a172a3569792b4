"""Developer sessions: ``nox`` runs tests, lint and typecheck (the README's test command).

The ``tests`` session installs the llama.cpp extra: llama-cpp-python compiles from source
(about 10 minutes on 2 cores) once per machine; pip's wheel cache keeps the build.
``nox -s quick`` (not a default session) is the base install and every test that needs no
engine: nothing compiles.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True


@nox.session(python="3.11")
def tests(session: nox.Session) -> None:
    """The whole test suite, including the llama.cpp checks, the endpoint tests against
    llama-cpp-python's own server, and the MLX engine on its Linux CPU backend."""
    session.env["CMAKE_BUILD_PARALLEL_LEVEL"] = session.env.get("CMAKE_BUILD_PARALLEL_LEVEL", "2")
    session.install(".[test,llama,server,mlx,llamaserver,mcp]")
    session.run("pytest", *session.posargs)


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
    session.install(".[llama]")
    session.run("python", "tests/benchmarks/llama_bench_agreement.py", *session.posargs)


@nox.session(python="3.11", default=False)
def calibration(session: nox.Session) -> None:
    """Benchmark: the speed model's leave-one-out errors on published measurements."""
    session.install(".")
    session.run("python", "tests/benchmarks/calibration.py", *session.posargs)
