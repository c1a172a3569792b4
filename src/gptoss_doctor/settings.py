"""Every environment-driven path and setting, read in one place.

Tests point all of them at a temporary folder through one autouse fixture, so no test
touches the user's home directory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Settings:
    """Paths and switches derived from the environment at call time."""

    home: Path
    models_dir: Path
    cache_dir: Path
    hf_home: Path
    lmstudio_home: Path
    debug: bool
    lmstudio_url: str
    hf_endpoint: str | None  # HF_ENDPOINT; None means huggingface_hub's default
    hf_offline: bool  # HF_HUB_OFFLINE
    # The user's configuration (calibration.json): GPTOSS_CONFIG_DIR, else
    # $XDG_CONFIG_HOME/gptoss-doctor, else ~/.config/gptoss-doctor on every system.
    config_dir: Path


def current(environ: dict[str, str] | None = None) -> Settings:
    """Read the settings from ``environ`` (default: the process environment)."""
    env = dict(os.environ) if environ is None else environ
    home = Path(env.get("HOME") or Path.home())
    hf_home = Path(env["HF_HOME"]) if env.get("HF_HOME") else home / ".cache" / "huggingface"
    models_dir = (
        Path(env["GPTOSS_MODELS_DIR"])
        if env.get("GPTOSS_MODELS_DIR")
        else home / ".cache" / "gptoss-doctor" / "models"
    )
    cache_dir = (Path(env["GPTOSS_CACHE_DIR"]) if env.get("GPTOSS_CACHE_DIR")
                 else home / ".cache" / "gptoss-doctor")
    lmstudio_home = (
        Path(env["LMSTUDIO_HOME"]) if env.get("LMSTUDIO_HOME") else home / ".lmstudio"
    )
    config_dir = (Path(env["GPTOSS_CONFIG_DIR"]) if env.get("GPTOSS_CONFIG_DIR")
                  else Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "gptoss-doctor")
    return Settings(
        home=home,
        models_dir=models_dir,
        cache_dir=cache_dir,
        hf_home=hf_home,
        lmstudio_home=lmstudio_home,
        debug=env.get("GPTOSS_DEBUG", "") not in ("", "0"),
        lmstudio_url=env.get("GPTOSS_LMSTUDIO_URL", "http://127.0.0.1:1234"),
        hf_endpoint=env.get("HF_ENDPOINT") or None,
        hf_offline=env.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"),
        config_dir=config_dir,
    )
