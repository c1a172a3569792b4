"""Linux facts from ``/proc``, ``/sys`` and ``/etc``: memory, cgroup limits, WSL, containers.

Each ``parse_*`` function is pure over the text of one file.
"""

from __future__ import annotations

from gptoss_doctor.probe.model import Note
from gptoss_doctor.probe.sources import Sources

KIB = 1024
# cgroup v1 reports "no limit" as a huge page-aligned number.
_CGROUP_V1_UNLIMITED = 1 << 60


def parse_meminfo(text: str) -> dict[str, int]:
    """``/proc/meminfo`` -> bytes per key (``MemTotal``, ``MemAvailable``, ...)."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if not parts or not parts[0].isdigit():
            continue
        scale = KIB if len(parts) > 1 and parts[1].lower() == "kb" else 1
        values[key.strip()] = int(parts[0]) * scale
    return values


def parse_cgroup_limit(text: str | None) -> int | None:
    """``memory.max`` (v2) or ``memory.limit_in_bytes`` (v1) -> bytes, ``None`` if unlimited."""
    if text is None:
        return None
    value = text.strip()
    if not value.isdigit():
        return None  # "max" or unreadable
    limit = int(value)
    return None if limit >= _CGROUP_V1_UNLIMITED else limit


def parse_os_release(text: str) -> str | None:
    """``/etc/os-release`` -> ``PRETTY_NAME`` ("Ubuntu 24.04.1 LTS")."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip('"')
    return fields.get("PRETTY_NAME") or fields.get("NAME")


def is_wsl(kernel_release: str | None, proc_version: str | None) -> bool:
    """WSL kernels say "microsoft" in their release ("5.15.153.1-microsoft-standard-WSL2")."""
    text = f"{kernel_release or ''} {proc_version or ''}".lower()
    return "microsoft" in text or "wsl" in text


def detect_container(sources: Sources) -> str | None:
    """Name the container runtime, if any (docker/podman/kubernetes), from well-known marks."""
    if sources.env("KUBERNETES_SERVICE_HOST"):
        return "kubernetes"
    if sources.read_text("/run/.containerenv") is not None:
        return "podman"
    if sources.read_text("/.dockerenv") is not None:
        return "docker"
    cgroup = sources.read_text("/proc/1/cgroup") or ""
    for marker in ("docker", "kubepods", "containerd", "lxc"):
        if marker in cgroup:
            return "kubernetes" if marker == "kubepods" else marker
    return None


def read_cgroup_limit(sources: Sources) -> tuple[int | None, tuple[Note, ...]]:
    """The memory limit of this process's cgroup (v2 first, then v1)."""
    # Method 1: cgroup v2 unified hierarchy.
    limit = parse_cgroup_limit(sources.read_text("/sys/fs/cgroup/memory.max"))
    if limit is None:
        # Method 2: cgroup v1 memory controller.
        limit = parse_cgroup_limit(
            sources.read_text("/sys/fs/cgroup/memory/memory.limit_in_bytes")
        )
    if limit is None:
        return None, ()
    gib = limit / 1024**3
    return limit, (Note("cgroup", f"this container may use at most {gib:.1f} GiB of RAM"),)
