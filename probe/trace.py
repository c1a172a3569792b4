"""Replay a power trace: recorded or transcribed readings served through ``PowerSources``.

A trace (``tests/fixtures/power/<name>.json``) is::

    {"source": "where every value came from",
     "system": "Linux", "self_pid": 4242,
     "frames": [{"t_s": 0.0, "files": {"/sys/...": "text"}, "dirs": {"/sys/...": [names]},
                 "nvml": {...NvmlSampler record...}, "cpu_times": {...},
                 "ram_available_bytes": int, "processes": {"pid": ["name", cpu_s]}}, ...]}

Each frame lists only what changed: files, directories, NVML and CPU times carry over from
the frame before, so a trace stays short. ``advance()`` moves to the next frame.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gptoss_doctor.probe.power import PowerSources, read_tick
from gptoss_doctor.probe.sampler import PowerTrace, Sampler

CARRIED = ("nvml", "cpu_times", "ram_available_bytes")  # values a frame repeats unless changed


class TraceSources:
    """``PowerSources`` over the frames of a trace; ``advance()`` steps through them."""

    def __init__(self, trace: dict[str, Any]) -> None:
        self.trace = trace
        self.frames: list[dict[str, Any]] = list(trace["frames"])
        self.index = 0
        self.state: dict[str, Any] = {"files": {}, "dirs": {}, "nvml": {}, "cpu_times": None,
                                      "processes": None, "ram_available_bytes": None}
        self._apply(self.frames[0])

    @classmethod
    def load(cls, path: Path) -> TraceSources:
        loaded: dict[str, Any] = json.loads(path.read_text())
        return cls(loaded)

    @property
    def self_pid(self) -> int:
        return int(self.trace.get("self_pid", 0))

    @property
    def t_s(self) -> float:
        return float(self.frames[self.index]["t_s"])

    def _apply(self, frame: dict[str, Any]) -> None:
        self.state["files"].update(frame.get("files", {}))
        self.state["dirs"].update(frame.get("dirs", {}))
        for key in ("nvml", "cpu_times", "processes", "ram_available_bytes"):
            if key in frame:
                self.state[key] = frame[key]

    def advance(self) -> bool:
        """Move to the next frame; ``False`` after the last."""
        if self.index + 1 >= len(self.frames):
            return False
        self.index += 1
        self._apply(self.frames[self.index])
        return True

    def read_text(self, path: str) -> str | None:
        value: str | None = self.state["files"].get(path)
        return value

    def list_dir(self, path: str) -> tuple[str, ...] | None:
        names = self.state["dirs"].get(path)
        return tuple(sorted(names)) if names is not None else None

    def nvml_sample(self) -> dict[str, Any]:
        record: dict[str, Any] = self.state["nvml"] or {"status": "LibraryNotFound"}
        return record

    def cpu_times(self) -> dict[str, float] | None:
        value: dict[str, float] | None = self.state["cpu_times"]
        return value

    def processes(self) -> dict[int, tuple[str, float]] | None:
        raw = self.state["processes"]
        if raw is None:
            return None
        return {int(pid): (str(name), float(cpu)) for pid, (name, cpu) in raw.items()}

    def ram_available_bytes(self) -> int | None:
        value = self.state["ram_available_bytes"]
        return int(value) if value is not None else None

    def system(self) -> str:
        return str(self.trace.get("system", "Linux"))


class _Recording:
    """Passes calls through to ``inner`` and keeps what they returned for one frame."""

    def __init__(self, inner: PowerSources) -> None:
        self.inner = inner
        self.frame: dict[str, Any] = {}

    def read_text(self, path: str) -> str | None:
        value = self.inner.read_text(path)
        if value is not None:
            self.frame.setdefault("files", {})[path] = value
        return value

    def list_dir(self, path: str) -> tuple[str, ...] | None:
        value = self.inner.list_dir(path)
        if value is not None:
            self.frame.setdefault("dirs", {})[path] = list(value)
        return value

    def nvml_sample(self) -> dict[str, Any]:
        self.frame["nvml"] = self.inner.nvml_sample()
        return dict(self.frame["nvml"])

    def cpu_times(self) -> dict[str, float] | None:
        self.frame["cpu_times"] = self.inner.cpu_times()
        return self.frame["cpu_times"]  # type: ignore[no-any-return]

    def processes(self) -> dict[int, tuple[str, float]] | None:
        return self.inner.processes()

    def ram_available_bytes(self) -> int | None:
        self.frame["ram_available_bytes"] = self.inner.ram_available_bytes()
        return self.frame["ram_available_bytes"]  # type: ignore[no-any-return]

    def system(self) -> str:
        return self.inner.system()


def _changed(frame: dict[str, Any], earlier: list[dict[str, Any]]) -> dict[str, Any]:
    """``frame`` less what it repeats from the frames before (they carry over on replay)."""
    state: dict[str, Any] = {"files": {}, "dirs": {}}
    for old in earlier:
        state["files"].update(old.get("files", {}))
        state["dirs"].update(old.get("dirs", {}))
        state.update({k: old[k] for k in CARRIED if k in old})
    kept: dict[str, Any] = {"t_s": frame["t_s"]}
    for key in ("files", "dirs"):
        fresh = {p: v for p, v in frame.get(key, {}).items() if state[key].get(p) != v}
        if fresh:
            kept[key] = fresh
    kept.update({k: frame[k] for k in CARRIED if k in frame and state.get(k) != frame[k]})
    return kept


def record(sources: PowerSources, frames: int, interval_s: float, *, self_pid: int,
           clock: Callable[[], float] = time.perf_counter,
           sleep: Callable[[float], None] = time.sleep) -> dict[str, Any]:
    """Read ``frames`` ticks from ``sources`` into a trace (how fixtures are recorded).

    Processes are kept only where their CPU time moved during the recording."""
    recording = _Recording(sources)
    before = sources.processes() or {}
    start = clock()
    out: list[dict[str, Any]] = []
    for index in range(frames):
        if index:
            sleep(interval_s)
        recording.frame = {"t_s": round(clock() - start, 4)}
        read_tick(recording, 0.0, self_pid)
        out.append(_changed(recording.frame, out))
    after = sources.processes() or {}
    moved = [pid for pid, (_, cpu) in after.items()
             if pid == self_pid or cpu > before.get(pid, ("", cpu))[1]]
    out[0]["processes"] = {str(p): list(before[p]) for p in moved if p in before}
    out[-1]["processes"] = {str(p): list(after[p]) for p in moved}
    return {"system": sources.system(), "self_pid": self_pid, "frames": out}


def replay(sources: TraceSources) -> PowerTrace:
    """What the sampler would have collected over every frame of a trace (no thread)."""
    sampler = Sampler(sources, clock=lambda: sources.t_s, self_pid=sources.self_pid)
    sampler.begin()
    while sources.advance():
        sampler.sample()
    return sampler.trace(sources.processes())
