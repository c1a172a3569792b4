"""Where the probe's raw facts come from: the ``Sources`` interface and the live machine.

Readers are pure parsers of text; they fetch that text only through a ``Sources`` object.
``LiveSources`` reads this machine; ``gptoss_doctor.probe.replay.ReplaySources`` replays a
machine recorded as files, which is how tests cover machines we do not have.
Every method returns ``None`` for "could not read" and never raises.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Protocol

# Child-process scripts that inspect an installed engine. They run in a separate Python so
# that a broken native library can crash or hang only the child (bounded by a timeout), and
# so that the doctor's own process never imports an engine.
_ENGINE_SCRIPTS = {
    "llama_cpp": """
import json, llama_cpp
info = {"version": getattr(llama_cpp, "__version__", None)}
try:
    info["gpu_offload"] = bool(llama_cpp.llama_supports_gpu_offload())
except Exception as exc:
    info["gpu_offload_error"] = str(exc)
try:
    raw = llama_cpp.llama_print_system_info()
    info["system_info"] = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
except Exception as exc:
    info["system_info_error"] = str(exc)
print(json.dumps(info))
""",
    "mlx": """
import json
import mlx.core as mx
info = {"version": getattr(mx, "__version__", None)}
try:
    info["device_info"] = {k: v for k, v in mx.device_info().items()
                           if isinstance(v, (int, float, str, bool))}
except Exception as exc:
    info["device_info_error"] = str(exc)
print(json.dumps(info))
""",
}


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a finished command printed."""

    returncode: int
    stdout: str
    stderr: str = ""


@dataclass(frozen=True, slots=True)
class BytesRead:
    """The first bytes of a binary file (``data``), or None; ``denied`` when the file is
    there but this user may not read it (root-only firmware tables)."""

    data: bytes | None
    denied: bool = False


class Sources(Protocol):
    """Everything the probe reads. Implementations must never raise."""

    def read_text(self, path: str) -> str | None: ...

    def read_bytes(self, path: str, limit: int) -> BytesRead: ...

    def list_dir(self, path: str) -> tuple[str, ...] | None: ...

    def file_size(self, path: str) -> int | None: ...

    def run(self, argv: list[str], timeout_s: float = 5.0) -> CommandResult | None: ...

    def which(self, name: str) -> str | None: ...

    def env(self, name: str) -> str | None: ...

    def platform(self) -> dict[str, str]: ...

    def memory(self) -> dict[str, int] | None: ...

    def cpu_counts(self) -> tuple[int | None, int | None]: ...

    def disk_usage(self, path: str) -> tuple[int, int] | None: ...

    def nvml(self) -> dict[str, Any]: ...

    def cpuinfo(self) -> dict[str, Any] | None: ...

    def engine_info(self, engine: str) -> dict[str, Any] | None: ...

    def dist_version(self, dist: str) -> str | None: ...

    def http_get(self, url: str, timeout_s: float = 0.5) -> str | None: ...


class LiveSources:
    """Reads the machine this process runs on."""

    def read_text(self, path: str) -> str | None:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                return handle.read()
        except OSError:
            return None

    def read_bytes(self, path: str, limit: int) -> BytesRead:
        try:
            with open(path, "rb") as handle:
                return BytesRead(handle.read(max(0, limit)))
        except PermissionError:
            return BytesRead(None, denied=True)
        except (OSError, ValueError):
            return BytesRead(None)

    def list_dir(self, path: str) -> tuple[str, ...] | None:
        try:
            return tuple(sorted(os.listdir(path)))
        except OSError:
            return None

    def file_size(self, path: str) -> int | None:
        try:
            return os.stat(path).st_size  # follows the HF cache's symlinks to blobs
        except OSError:
            return None

    def run(self, argv: list[str], timeout_s: float = 5.0) -> CommandResult | None:
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except (OSError, subprocess.SubprocessError, ValueError):
            return None
        return CommandResult(done.returncode, done.stdout, done.stderr)

    def which(self, name: str) -> str | None:
        return shutil.which(name)

    def env(self, name: str) -> str | None:
        return os.environ.get(name)

    def platform(self) -> dict[str, str]:
        return {
            "system": platform.system(),
            "release": platform.release(),
            "machine": platform.machine(),
            "python_version": platform.python_version(),
            "mac_ver": platform.mac_ver()[0],
            "win_ver": platform.version() if platform.system() == "Windows" else "",
        }

    def memory(self) -> dict[str, int] | None:
        try:
            import psutil

            vm = psutil.virtual_memory()
            swap = psutil.swap_memory()
        except Exception:
            return None
        return {"total": int(vm.total), "available": int(vm.available), "swap_total": swap.total}

    def cpu_counts(self) -> tuple[int | None, int | None]:
        try:
            import psutil

            return psutil.cpu_count(logical=False), psutil.cpu_count(logical=True)
        except Exception:
            return None, os.cpu_count()

    def disk_usage(self, path: str) -> tuple[int, int] | None:
        # The models folder may not exist yet: measure its nearest existing parent.
        probe_path = os.path.abspath(path)
        while not os.path.exists(probe_path):
            parent = os.path.dirname(probe_path)
            if parent == probe_path:
                return None
            probe_path = parent
        try:
            usage = shutil.disk_usage(probe_path)
        except OSError:
            return None
        return usage.total, usage.free

    def nvml(self) -> dict[str, Any]:
        from gptoss_doctor.probe.nvml import read_nvml

        return read_nvml()

    def cpuinfo(self) -> dict[str, Any] | None:
        try:
            import cpuinfo

            # The internal call skips py-cpuinfo's extra process (about a second).
            getter = getattr(cpuinfo, "_get_cpu_info_internal", cpuinfo.get_cpu_info)
            info = getter()
        except Exception:
            return None
        return dict(info) if isinstance(info, dict) else None

    def engine_info(self, engine: str) -> dict[str, Any] | None:
        script = _ENGINE_SCRIPTS.get(engine)
        if script is None:
            return None
        module = "llama_cpp" if engine == "llama_cpp" else "mlx"
        if importlib.util.find_spec(module) is None:
            return None
        result = self.run([sys.executable, "-c", script], timeout_s=20.0)
        if result is None:
            return {"error": "the inspection process timed out"}
        if result.returncode != 0:
            lines = (result.stderr or result.stdout).strip().splitlines()
            return {"error": lines[-1] if lines else f"exit code {result.returncode}"}
        try:
            parsed = json.loads(result.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return {"error": "unreadable inspection output"}
        return parsed if isinstance(parsed, dict) else None

    def dist_version(self, dist: str) -> str | None:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            return None

    def http_get(self, url: str, timeout_s: float = 0.5) -> str | None:
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        with (contextlib.suppress(OSError, ValueError, urllib.error.URLError),
              urllib.request.urlopen(request, timeout=timeout_s) as response):
            body: bytes = response.read(1_000_000)
            return body.decode("utf-8", "replace")
        return None
