"""LM Studio's command line (``lms``) as an install path: the commands, their bounded
output, and one line with the next command for every failure.

``lms`` is run as a subprocess with a time limit and progress ticks; its output is treated
as hostile: at most ``OUTPUT_LIMIT`` bytes of each stream are read (the rest is never held
in memory), control characters are not interpreted here (the terminal layer makes them
visible), and JSON of an unknown shape becomes one line, never a traceback. The formats
parsed here, and where each is documented, are listed in docs/lmstudio.md and in the
recorded fake ``lms`` the tests put on PATH (tests/fixtures/lms/lms.py).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from gptoss_doctor.errors import DoctorError
from gptoss_doctor.load_settings import LoadSettings

OUTPUT_LIMIT = 256 * 1024  # bytes kept of each of stdout and stderr
LINE_LIMIT = 300  # characters of lms's own words quoted in an error line
TICK_S = 0.25
GET_TIMEOUT_S = 6 * 3600.0  # a 120b download on a slow line
LOAD_TIMEOUT_S = 1800.0
SHORT_TIMEOUT_S = 120.0
# lms's model keys for the catalogue's models (LM Studio's gpt-oss guide: `lms get
# openai/gpt-oss-20b`); `--mlx` or `--gguf` restricts the variant `lms get` resolves.
MODEL_KEYS = {"20b": "openai/gpt-oss-20b", "120b": "openai/gpt-oss-120b"}
INSTALL_HINT = ("install LM Studio (https://lmstudio.ai), open it once, then run "
                "`~/.lmstudio/bin/lms bootstrap` (or `npx lmstudio install-cli`) so `lms` is "
                "on PATH")
UNITS = {"bytes": 1, "b": 1, "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
         "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4}
SIZE = r"([0-9][0-9,]*(?:\.[0-9]+)?)\s*(Bytes|[KMGT]i?B)\b"


class LmsError(DoctorError):
    """``lms`` failed, or said something this project cannot read."""

    def __init__(self, kind: str, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.kind = kind  # "not-installed" | "daemon-down" | "model-not-found" | ...


@dataclass(frozen=True, slots=True)
class Ran:
    """One ``lms`` command: what was run, how it ended, what it said (bounded)."""

    command: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    truncated: bool

    @property
    def text(self) -> str:
        return f"{self.stdout}\n{self.stderr}"


@dataclass(frozen=True, slots=True)
class LmsEstimate:
    """``lms load --estimate-only``: LM Studio's own memory estimate for the settings."""

    gpu_bytes: int | None
    total_bytes: int | None
    passes_guardrails: bool | None
    confidence: str | None  # "low" when lms says so, else None


def find_lms(lmstudio_home: Path, path: str | None = None) -> str | None:
    """``lms`` on PATH, else where LM Studio puts it (``~/.lmstudio/bin/lms``)."""
    found = shutil.which("lms", path=path)
    if found:
        return found
    bundled = lmstudio_home / "bin" / "lms"
    return str(bundled) if bundled.is_file() and os.access(bundled, os.X_OK) else None


def require_lms(lmstudio_home: Path) -> str:
    lms = find_lms(lmstudio_home)
    if lms is None:
        raise LmsError("not-installed", "LM Studio's command line `lms` is not installed "
                       "(not on PATH, nor in ~/.lmstudio/bin)", INSTALL_HINT)
    return lms


def model_key(key: str) -> str:
    return MODEL_KEYS[key]


def gpu_setting(settings: LoadSettings, n_layer: int) -> str:
    """``--gpu``: "max" for every layer, "off" for none, else the offloaded fraction."""
    if settings.n_gpu_layers < 0 or settings.n_gpu_layers >= n_layer:
        return "max"
    if settings.n_gpu_layers == 0:
        return "off"
    return f"{settings.n_gpu_layers / n_layer:.2f}"


def get_args(key: str, mlx: bool) -> tuple[str, ...]:
    return ("get", model_key(key), "--mlx" if mlx else "--gguf", "--yes")


def load_args(key: str, n_ctx: int, gpu: str, *, estimate_only: bool) -> tuple[str, ...]:
    args = ("load", model_key(key), "--context-length", str(n_ctx), "--gpu", gpu, "--yes")
    return (*args, "--estimate-only") if estimate_only else (*args, "--identifier",
                                                              model_key(key))


def server_start_args(port: int) -> tuple[str, ...]:
    return ("server", "start", "--port", str(port))


def _read(handle: IO[bytes]) -> tuple[str, bool]:
    handle.seek(0)
    data = handle.read(OUTPUT_LIMIT + 1)
    return data[:OUTPUT_LIMIT].decode("utf-8", "replace"), len(data) > OUTPUT_LIMIT


def run(lms: str, args: Sequence[str], timeout_s: float,
        tick: Callable[[float], None] | None = None) -> Ran:
    """Run ``lms args`` with a time limit; ``tick(elapsed)`` about every quarter second.

    Output goes to temporary files, so a flood costs disk, not memory, and only the first
    ``OUTPUT_LIMIT`` bytes are read back. A run past ``timeout_s`` is killed."""
    command = (lms, *args)
    start = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        env = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"}
        try:
            proc = subprocess.Popen(command, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                    env=env)
        except OSError as exc:
            raise LmsError("not-installed", f"cannot run {lms}: {exc.strerror or exc}",
                           INSTALL_HINT) from None
        while True:
            try:
                code = proc.wait(timeout=TICK_S)
                break
            except subprocess.TimeoutExpired:
                elapsed = time.monotonic() - start
                if elapsed > timeout_s:
                    proc.kill()
                    proc.wait()
                    raise LmsError("timeout", f"`lms {' '.join(args)}` did not finish in "
                                   f"{timeout_s:.0f} s and was stopped",
                                   "run it yourself to see what it waits for") from None
                if tick is not None:
                    tick(elapsed)
        stdout, cut_out = _read(out)
        stderr, cut_err = _read(err)
    return Ran(command, code, stdout, stderr, time.monotonic() - start, cut_out or cut_err)


def _quote(text: str) -> str:
    """lms's own words, one line and bounded, for an error message."""
    line = " ".join(text.split())
    return line if len(line) <= LINE_LIMIT else line[:LINE_LIMIT] + "…"


def parse_size(text: str) -> int | None:
    """ "12.35 GiB" -> bytes (binary units as lms prints them; "GB" read as 10^9)."""
    match = re.search(SIZE, text)
    if match is None:
        return None
    try:
        value = float(match.group(1).replace(",", ""))
    except ValueError:
        return None
    size = value * UNITS[match.group(2).lower()]
    return int(size) if math.isfinite(size) else None  # "999…9 GiB" is no figure


def classify(ran: Ran, step: str, port: int | None = None) -> LmsError:
    """One line and the next command for a failed ``lms`` run."""
    text = ran.text
    low = text.lower()
    cmd = "lms " + " ".join(ran.command[1:])
    if "failed to start or connect to local lm studio" in low or \
            "does not appear to be running" in low or "econnrefused" in low:
        return LmsError("daemon-down", f"`{cmd}`: LM Studio is not running (lms could not "
                        "connect to it)", "start LM Studio, or its headless service with "
                        "`lms daemon up`, then run this again")
    if "model not found" in low or "no model found" in low or (
            "not found" in low and step in ("estimate", "load")):
        return LmsError("model-not-found", f"`{cmd}`: LM Studio has no such model "
                        f"downloaded ({_quote(_last_lines(text))})",
                        "download it with `lms get` (this command does that first unless "
                        "it failed), then see `lms ls`")
    if "insufficient system resources" in low or "guardrail" in low:
        need = parse_size(text[low.find("approximately"):]) if "approximately" in low \
            else None
        said = f": LM Studio estimates {need / 1024**3:.2f} GiB" if need else ""
        return LmsError("guardrail", f"`{cmd}`: LM Studio's load guardrail refused the "
                        f"model{said}", "load a shorter context (--ctx) or fewer GPU layers, "
                        "or relax 'Model loading guardrails' in LM Studio's settings")
    if "out of memory" in low or "unable to allocate" in low or "failed to allocate" in low:
        return LmsError("out-of-memory", f"`{cmd}`: the engine ran out of memory while "
                        f"loading ({_quote(_last_lines(text))})",
                        "close other programs using the GPU, or load a shorter context "
                        "(--ctx) or fewer GPU layers")
    if step == "server" and ("another port" in low or "address already in use" in low
                             or "eaddrinuse" in low):
        return LmsError("port-busy", f"`{cmd}`: port {port} is already taken by another "
                        "program", f"choose a free port with --port (e.g. --port "
                        f"{(port or 1234) + 1})")
    return LmsError("failed", f"`{cmd}` failed (exit {ran.returncode}): "
                    f"{_quote(_last_lines(text)) or 'no output'}",
                    f"run `{cmd}` yourself to see the whole message")


def _last_lines(text: str, count: int = 3) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " ".join(lines[-count:])


def parse_estimate(text: str) -> LmsEstimate:
    """The lines ``lms load --estimate-only`` prints (lms src/subcommands/load.ts,
    ``printEstimatedResourceUsage``): "Estimated GPU Memory:   12.35 GiB", "Estimated Total
    Memory: 13.10 GiB", an optional "Confidence: LOW" and "Estimate: This model may be
    loaded / will fail to load based on your resource guardrails settings."."""
    gpu = total = None
    passes: bool | None = None
    confidence = None
    for raw in text.splitlines():
        line = raw.strip()
        low = line.lower()
        if low.startswith("estimated gpu memory"):
            gpu = parse_size(line.split(":", 1)[-1])
        elif low.startswith("estimated total memory"):
            total = parse_size(line.split(":", 1)[-1])
        elif low.startswith("confidence:"):
            confidence = line.split(":", 1)[1].strip().lower()[:20] or None
        elif low.startswith("estimate:"):
            passes = "may be loaded" in low if ("may be loaded" in low
                                                or "will fail" in low) else None
    if gpu is None and total is None:
        raise LmsError("unreadable", "`lms load --estimate-only` printed no memory estimate "
                       f"this project can read ({_quote(text[-LINE_LIMIT:]) or 'no output'})",
                       "update LM Studio (the estimate needs 0.3.27 or newer)")
    return LmsEstimate(gpu, total, passes, confidence)


def parse_server_status(text: str) -> tuple[bool, int | None]:
    """``lms server status --json``: ``{"running": true, "port": 1234}`` (lms
    src/subcommands/server.ts); anything else is one line."""
    try:
        body: Any = json.loads(text.strip().splitlines()[-1]) if text.strip() else None
    except (ValueError, RecursionError):  # ValueError: also a 5,000-digit integer
        body = None
    if not isinstance(body, dict) or not isinstance(body.get("running"), bool):
        raise LmsError("unreadable", "`lms server status --json` did not answer "
                       f"{{\"running\": …, \"port\": …}} ({_quote(text[:LINE_LIMIT])})",
                       "update LM Studio")
    port = body.get("port")
    return body["running"], port if isinstance(port, int) and 0 < port < 65536 else None


def downloaded(text: str, key: str, mlx: bool) -> bool:
    """Whether ``lms ls --json`` (a list of downloaded models: ``modelKey``, ``format``
    "gguf" or "safetensors" for MLX, ``path``, ``sizeBytes``) lists ``key`` in the wanted
    format. An answer of another shape is "no": ``lms get`` then decides."""
    try:
        body: Any = json.loads(text) if text.strip() else None
    except (ValueError, RecursionError):  # ValueError: also a 5,000-digit integer
        return False
    wanted = ("mlx", "safetensors") if mlx else ("gguf",)
    return any(isinstance(item, dict) and item.get("modelKey") == model_key(key)
               and str(item.get("format", "")).lower() in wanted
               for item in (body if isinstance(body, list) else []))
