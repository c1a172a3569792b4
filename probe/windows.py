"""Windows facts from one PowerShell call: GPUs of every vendor and the memory modules.

NVML and nvidia-smi only see NVIDIA cards; AMD and Intel GPUs (and NVIDIA ones whose NVML is
broken) come from WMI's ``Win32_VideoController``. Its ``AdapterRAM`` is a 32-bit number that
stops at 4 GiB - 1 MiB (4293918720) for every larger card, so the memory size is read from
the display driver's registry key, ``HardwareInformation.qwMemorySize`` (64-bit, written by
the driver), matched to the controller by the driver's description. The same call returns
``Win32_PhysicalMemory`` for ``probe.dimm``. One call, because PowerShell takes about a
second to start. Parsers are pure; ``read`` runs the script through the injected ``Sources``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from gptoss_doctor.probe.gpu_sysfs import INTEL_DISCRETE
from gptoss_doctor.probe.model import GpuInfo, Note
from gptoss_doctor.probe.sources import Sources

DISPLAY_CLASS = (r"HKLM:\SYSTEM\CurrentControlSet\Control\Class"
                 r"\{4d36e968-e325-11ce-bfc1-08002be10318}")
SCRIPT = (
    "$ErrorActionPreference = 'SilentlyContinue'; [pscustomobject]@{"
    "memory = @(Get-CimInstance Win32_PhysicalMemory | Select-Object Capacity, Speed, "
    "ConfiguredClockSpeed, DataWidth, DeviceLocator, BankLabel); "
    "video = @(Get-CimInstance Win32_VideoController | Select-Object Name, AdapterRAM, "
    "PNPDeviceID, DriverVersion); "
    f"adapters = @(Get-ItemProperty '{DISPLAY_CLASS}\\0*' | Select-Object DriverDesc, "
    "MatchingDeviceId, 'HardwareInformation.qwMemorySize')"
    "} | ConvertTo-Json -Depth 4 -Compress")
VENDOR_IDS = {"1002": "amd", "8086": "intel", "10DE": "nvidia"}
# AdapterRAM's ceiling: a card reporting this much (or more) has an unknown, larger memory.
ADAPTER_RAM_CAP = 4293918720
# Intel's integrated graphics (Iris Xe, UHD, Meteor Lake's "Arc Graphics") share system
# RAM; the discrete cards carry a model number: "Intel(R) Arc(TM) A770 Graphics", "B580".
# The name decides only where the PCI id is missing (``_intel_discrete``).
_INTEL_DISCRETE = re.compile(r"\bArc(\(TM\))?\s+(Pro\s+)?[AB]\d{2,3}", re.IGNORECASE)
_PCI = re.compile(r"VEN_([0-9A-Fa-f]{4})&DEV_([0-9A-Fa-f]{4})")
MAX_BYTES = 2**50  # a memory size beyond a petabyte is garbage


@dataclass(frozen=True, slots=True)
class WindowsFacts:
    """What the script returned: each part a list of JSON objects."""

    memory: tuple[dict[str, Any], ...]
    video: tuple[dict[str, Any], ...]
    adapters: tuple[dict[str, Any], ...]


def _objects(value: Any) -> tuple[dict[str, Any], ...]:
    items = value if isinstance(value, list) else [value]
    return tuple(item for item in items if isinstance(item, dict))


def parse(text: str) -> WindowsFacts | None:
    """The script's JSON; None when it is not the object the script writes."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # deep nesting overflows the decoder's stack
        return None
    if not isinstance(data, dict):
        return None
    return WindowsFacts(_objects(data.get("memory")), _objects(data.get("video")),
                        _objects(data.get("adapters")))


def _size(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) \
        and 0 < value < MAX_BYTES else None


def _registry_size(name: str, pci: str | None, adapters: tuple[dict[str, Any], ...]
                   ) -> int | None:
    """The driver's 64-bit memory size for the controller called ``name``."""
    for adapter in adapters:
        matching = str(adapter.get("MatchingDeviceId") or "").upper()
        if adapter.get("DriverDesc") == name or (pci and pci in matching):
            size = _size(adapter.get("HardwareInformation.qwMemorySize"))
            if size is not None:
                return size
    return None


def _intel_discrete(name: str, ids: re.Match[str] | None) -> bool:
    """An Intel card by PCI device id where there is one (the kernel's discrete lists, as on
    Linux: Panther Lake's integrated "Arc(TM) B390 GPU" is named like a card), else by name."""
    if ids is not None:
        return f"0x{ids.group(2).lower()}" in INTEL_DISCRETE
    return _INTEL_DISCRETE.search(name) is not None


def gpus(facts: WindowsFacts, skip_nvidia: bool) -> tuple[tuple[GpuInfo, ...], tuple[Note, ...]]:
    """Each display controller as a ``GpuInfo`` (NVIDIA ones only when ``skip_nvidia`` is
    false: NVML and nvidia-smi know them better)."""
    found: list[GpuInfo] = []
    notes: list[Note] = []
    for index, controller in enumerate(facts.video):
        name = str(controller.get("Name") or "").strip()[:200]
        ids = _PCI.search(str(controller.get("PNPDeviceID") or ""))
        vendor = VENDOR_IDS.get(ids.group(1).upper(), "other") if ids else "other"
        if not name or vendor == "other" or (vendor == "nvidia" and skip_nvidia):
            continue
        pci = f"VEN_{ids.group(1)}&DEV_{ids.group(2)}".upper() if ids else None
        total = _registry_size(name, pci, facts.adapters)
        adapter_ram = _size(controller.get("AdapterRAM"))
        if total is None and adapter_ram is not None and adapter_ram < ADAPTER_RAM_CAP:
            total = adapter_ram
        elif total is None:
            notes.append(Note("wmi", f"{name}: memory size unknown (WMI's AdapterRAM stops at "
                              "4 GiB and the driver's registry key was not readable)",
                              "warning"))
        integrated = vendor == "intel" and not _intel_discrete(name, ids)
        apu = vendor == "amd" and total is not None and total <= 4 * 1024**3
        shared = integrated or apu
        found.append(GpuInfo(vendor=vendor, name=name, source="wmi", index=index,
                             vram_total_bytes=None if shared else total,
                             unified_memory=shared, discrete=not shared,
                             driver_version=str(controller.get("DriverVersion") or "")[:64]
                             or None))
    return tuple(found), tuple(notes)


def read(sources: Sources) -> WindowsFacts | None:
    """Run the script (Windows only; None when PowerShell is missing or fails)."""
    done = sources.run(["powershell", "-NoProfile", "-NonInteractive", "-Command", SCRIPT],
                       timeout_s=15.0)
    if done is None or done.returncode != 0:
        return None
    return parse(done.stdout)
