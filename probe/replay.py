"""Replay a recorded machine: a folder of real outputs served through ``Sources``.

Layout of a recording (``tests/fixtures/machines/<name>/``)::

    machine.json   platform facts, env, which, memory, cpu counts, disk, NVML record,
                   engine inspections, HTTP bodies, dist versions, file sizes
    fs/...         files by absolute path (``fs/proc/meminfo`` is ``/proc/meminfo``);
                   paths listed in machine.json's ``denied`` read as root-only
    commands/...   ``<program>.out`` (stdout) and optional ``<program>.rc`` per command
    SOURCE.md      where every value came from
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from gptoss_doctor.probe.sources import BytesRead, CommandResult


class ReplaySources:
    """``Sources`` backed by a recording folder. Anything not recorded reads as missing."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        machine = folder / "machine.json"
        self.data: dict[str, Any] = json.loads(machine.read_text()) if machine.exists() else {}

    def _fs(self, path: str) -> Path:
        return self.folder / "fs" / path.lstrip("/")

    def read_text(self, path: str) -> str | None:
        target = self._fs(path)
        return target.read_text() if target.is_file() else None

    def read_bytes(self, path: str, limit: int) -> BytesRead:
        if path in self.data.get("denied", ()):
            return BytesRead(None, denied=True)
        target = self._fs(path)
        if not target.is_file():
            return BytesRead(None)
        with target.open("rb") as handle:
            return BytesRead(handle.read(max(0, limit)))

    def list_dir(self, path: str) -> tuple[str, ...] | None:
        target = self._fs(path)
        return tuple(sorted(os.listdir(target))) if target.is_dir() else None

    def file_size(self, path: str) -> int | None:
        sizes: dict[str, int] = self.data.get("file_sizes", {})
        if path in sizes:
            return sizes[path]
        target = self._fs(path)
        return target.stat().st_size if target.is_file() else None

    def run(self, argv: list[str], timeout_s: float = 5.0) -> CommandResult | None:
        program = os.path.basename(argv[0])
        out = self.folder / "commands" / f"{program}.out"
        if not out.is_file():
            return None
        rc_file = out.with_suffix(".rc")
        rc = int(rc_file.read_text().strip()) if rc_file.is_file() else 0
        return CommandResult(rc, out.read_text())

    def which(self, name: str) -> str | None:
        found: str | None = self.data.get("which", {}).get(name)
        return found

    def env(self, name: str) -> str | None:
        value: str | None = self.data.get("env", {}).get(name)
        return value

    def platform(self) -> dict[str, str]:
        facts: dict[str, str] = self.data["platform"]
        return facts

    def memory(self) -> dict[str, int] | None:
        value: dict[str, int] | None = self.data.get("memory")
        return value

    def cpu_counts(self) -> tuple[int | None, int | None]:
        counts = self.data.get("cpu_counts", [None, None])
        return counts[0], counts[1]

    def disk_usage(self, path: str) -> tuple[int, int] | None:
        disk = self.data.get("disk")
        return (disk["total"], disk["free"]) if disk else None

    def nvml(self) -> dict[str, Any]:
        record: dict[str, Any] = self.data.get(
            "nvml", {"status": "LibraryNotFound", "error": "NVML Shared Library Not Found"})
        return record

    def cpuinfo(self) -> dict[str, Any] | None:
        value: dict[str, Any] | None = self.data.get("cpuinfo")
        return value

    def engine_info(self, engine: str) -> dict[str, Any] | None:
        value: dict[str, Any] | None = self.data.get("engines", {}).get(engine)
        return value

    def dist_version(self, dist: str) -> str | None:
        value: str | None = self.data.get("dists", {}).get(dist)
        return value

    def http_get(self, url: str, timeout_s: float = 0.5) -> str | None:
        value: str | None = self.data.get("http", {}).get(url)
        return value
