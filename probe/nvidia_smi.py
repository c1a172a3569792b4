"""NVIDIA GPUs through ``nvidia-smi``: the fallback when NVML cannot be used from Python.

``parse_nvidia_smi_csv`` parses the output of ``QUERY`` (``--format=csv,noheader,nounits``,
memory in MiB). WSL keeps the tool in ``/usr/lib/wsl/lib``, often off ``PATH``.
"""

from __future__ import annotations

from gptoss_doctor.probe.model import GpuInfo, Note
from gptoss_doctor.probe.sources import Sources

FIELDS = ("index", "name", "memory.total", "memory.free", "driver_version", "pci.bus_id",
          "compute_cap")
QUERY = ["--query-gpu=" + ",".join(FIELDS), "--format=csv,noheader,nounits"]
WSL_PATH = "/usr/lib/wsl/lib/nvidia-smi"
MIB = 1024 * 1024


def _value(text: str) -> str | None:
    text = text.strip()
    # Unsupported fields print "[N/A]", "N/A" or "[Not Supported]" depending on the driver.
    if not text or text.strip("[]").lower() in ("n/a", "not supported", "unknown error"):
        return None
    return text


def _mib(text: str) -> int | None:
    value = _value(text)
    try:
        return int(float(value) * MIB) if value is not None else None
    except ValueError:
        return None


def parse_nvidia_smi_csv(text: str) -> tuple[GpuInfo, ...]:
    """Parse one CSV line per GPU, in ``FIELDS`` order (pure; bad lines are skipped)."""
    gpus: list[GpuInfo] = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.split(",")]
        if len(cells) != len(FIELDS) or not cells[1]:
            continue
        index, name, total, free, driver, bus_id, capability = cells
        total_bytes = _mib(total)
        unified = not total_bytes  # GB10 prints [N/A] for every framebuffer field
        gpus.append(
            GpuInfo(
                vendor="nvidia",
                name=name,
                source="nvidia-smi",
                index=int(index) if index.isdigit() else None,
                vram_total_bytes=None if unified else total_bytes,
                vram_free_bytes=None if unified else _mib(free),
                unified_memory=unified,
                discrete=not unified,
                driver_version=_value(driver),
                compute_capability=_value(capability),
                pci_bus_id=_value(bus_id),
            )
        )
    return tuple(gpus)


def read_nvidia_smi(sources: Sources) -> tuple[tuple[GpuInfo, ...], tuple[Note, ...]]:
    """Run nvidia-smi (PATH, then the WSL location) and parse it."""
    binary = sources.which("nvidia-smi")
    if binary is None and sources.file_size(WSL_PATH) is not None:
        binary = WSL_PATH
    if binary is None:
        return (), ()
    result = sources.run([binary, *QUERY])
    if result is None:
        return (), (Note("nvidia-smi", "nvidia-smi did not answer in time", "warning"),)
    if result.returncode != 0:
        first = (result.stdout or result.stderr).strip().splitlines()
        reason = first[0] if first else f"exit code {result.returncode}"
        return (), (Note("nvidia-smi", f"nvidia-smi failed: {reason}", "warning"),)
    gpus = parse_nvidia_smi_csv(result.stdout)
    notes = tuple(
        Note("nvidia-smi", f"{gpu.name}: no dedicated memory reported; treating it as "
             "unified memory sized from host RAM")
        for gpu in gpus
        if gpu.unified_memory
    )
    return gpus, notes
