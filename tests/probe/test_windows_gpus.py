"""GPUs on Windows from WMI with the driver's 64-bit memory size (issue 14), replayed from
tests/fixtures/machines/windows-r9700-32gb (SOURCE.md there)."""

from __future__ import annotations

import json

import pytest

from gptoss_doctor.install.resources import resources
from gptoss_doctor.probe import windows
from gptoss_doctor.probe.replay import ReplaySources
from gptoss_doctor.probe.snapshot import snapshot
from gptoss_doctor.settings import current

from conftest import MACHINES

R9700 = MACHINES / "windows-r9700-32gb"
GIB = 1024**3


def _facts(**parts: object) -> windows.WindowsFacts:
    facts = windows.parse(json.dumps(parts))
    assert facts is not None
    return facts


def test_the_registry_size_replaces_the_capped_adapter_ram() -> None:
    snap = snapshot(ReplaySources(R9700), current({"HOME": "/h"}))
    card, igpu = snap.gpus
    assert (card.vendor, card.name, card.source) == ("amd", "AMD Radeon AI PRO R9700", "wmi")
    assert card.vram_total_bytes == 32 * GIB and card.discrete
    assert igpu.unified_memory and igpu.vram_total_bytes is None
    res = resources(snap)
    assert res.backend == "Vulkan" and res.gpu_bandwidth is not None
    assert res.gpu_bandwidth.bytes_per_s == 640e9
    assert snap.memory.host_bandwidth_bytes_per_s == 2 * 6000e6 * 8  # one call gives both


def test_without_the_registry_a_capped_size_is_unknown_and_said() -> None:
    facts = _facts(video=[{"Name": "AMD Radeon RX 7900 XTX", "AdapterRAM": 4293918720,
                           "PNPDeviceID": "PCI\\VEN_1002&DEV_744C&SUBSYS_0&REV_C8"}])
    (gpu,), (note,) = windows.gpus(facts, skip_nvidia=False)
    assert gpu.vram_total_bytes is None and "AdapterRAM stops at 4 GiB" in note.message


def test_a_small_adapter_ram_is_believed_and_matching_by_pci_id_works() -> None:
    facts = _facts(
        video=[{"Name": "Intel(R) Arc(TM) A770 Graphics", "AdapterRAM": 2147483648,
                "PNPDeviceID": "PCI\\VEN_8086&DEV_56A0&SUBSYS_1&REV_08"},
               {"Name": "Intel(R) UHD Graphics 770", "AdapterRAM": 1073741824,
                "PNPDeviceID": "PCI\\VEN_8086&DEV_4680&SUBSYS_1&REV_0C"}],
        adapters={"DriverDesc": "renamed by the driver", "MatchingDeviceId":
                  "pci\\ven_8086&dev_56a0", "HardwareInformation.qwMemorySize": 16 * GIB})
    arc, uhd = windows.gpus(facts, skip_nvidia=False)[0]
    assert arc.vram_total_bytes == 16 * GIB and arc.discrete
    assert uhd.unified_memory and not uhd.discrete


def test_nvidia_is_left_to_nvml_unless_nvml_found_none() -> None:
    facts = _facts(video={"Name": "NVIDIA GeForce RTX 4090", "AdapterRAM": 4293918720,
                          "PNPDeviceID": "PCI\\VEN_10DE&DEV_2684&SUBSYS_1&REV_A1"},
                   adapters={"DriverDesc": "NVIDIA GeForce RTX 4090",
                             "HardwareInformation.qwMemorySize": 24 * GIB})
    assert windows.gpus(facts, skip_nvidia=True)[0] == ()
    (gpu,) = windows.gpus(facts, skip_nvidia=False)[0]
    assert gpu.vendor == "nvidia" and gpu.vram_total_bytes == 24 * GIB


@pytest.mark.parametrize("text", ["", "null", "[1]", "{\"video\": 5}",
                                  "{\"video\": [{\"Name\": 7, \"AdapterRAM\": -1}]}",
                                  "{\"video\": [{\"Name\": \"x\", \"PNPDeviceID\": \"USB\"}]}"])
def test_odd_output_gives_no_gpu_and_no_error(text: str) -> None:
    facts = windows.parse(text)
    assert facts is None or windows.gpus(facts, skip_nvidia=False)[0] == ()
