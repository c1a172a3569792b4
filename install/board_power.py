"""Published board power of known GPUs, for a predicted energy per token (an estimate).

Values are the vendors' total board power (TBP/TGP/TDP) in watts at full load. Names are
matched as case-insensitive substrings, longest first, as in ``install.bandwidth``; where
one name covers several configurations the lower figure is used. Laptop GPUs are left out:
their power limit is set by each laptop maker.

The estimate is board power / predicted tokens per second. Generation is memory-bound and
usually draws less than full board power, so the figure is an upper bound; ``bench speed``
measures the real one where the machine reports power.
"""

from __future__ import annotations

from dataclasses import dataclass

BOARD_POWER_W: dict[str, float] = {
    # NVIDIA datacenter (SXM unless named; a bare name takes the PCIe figure)
    "H200": 700, "H100 80GB HBM3": 700, "H100 SXM": 700, "H100 NVL": 400, "H100 PCIe": 350,
    "H100": 350, "B200": 1000, "A100-SXM4": 400, "A100 80GB PCIe": 300, "A100-PCIE": 250,
    "A100": 250, "L40S": 350, "L40": 300, "L4": 72, "T4": 70, "V100": 250,
    "RTX 6000 Ada": 300, "RTX A6000": 300, "RTX PRO 6000": 600, "GB10": 140,
    # NVIDIA GeForce (desktop)
    "RTX 5090": 575, "RTX 5080": 360, "RTX 5070 Ti": 300, "RTX 5070": 250, "RTX 5060 Ti": 180,
    "RTX 4090": 450, "RTX 4080 SUPER": 320, "RTX 4080": 320, "RTX 4070 Ti SUPER": 285,
    "RTX 4070 Ti": 285, "RTX 4070 SUPER": 220, "RTX 4070": 200, "RTX 4060 Ti": 160,
    "RTX 4060": 115, "RTX 3090 Ti": 450, "RTX 3090": 350, "RTX 3080 Ti": 350, "RTX 3080": 320,
    "RTX 3070 Ti": 290, "RTX 3070": 220, "RTX 3060 Ti": 200, "RTX 3060": 170,
    "RTX 2080 Ti": 250,
    # AMD
    "MI300X": 750, "MI250X": 560, "RX 7900 XTX": 355, "RX 7900 XT": 315, "RX 7900 GRE": 260,
    "RX 7800 XT": 263, "RX 6900 XT": 300, "RX 6800 XT": 300, "RX 6800": 250, "RX 9070 XT": 304,
}


@dataclass(frozen=True, slots=True)
class EnergyEstimate:
    """Predicted joules per generated token and what it rests on."""

    joules_per_token: float
    basis: str


def lookup(name: str) -> tuple[str, float] | None:
    """(table key, watts) for the longest key found in ``name``; ``None`` for laptops."""
    lowered = name.lower()
    if "laptop" in lowered:
        return None
    matches = [key for key in BOARD_POWER_W if key.lower() in lowered]
    if not matches:
        return None
    key = max(matches, key=len)
    return key, BOARD_POWER_W[key]


def estimate(gpu_names: tuple[str, ...], tokens_per_s: float | None) -> EnergyEstimate | None:
    """Every GPU's board power over the predicted rate; ``None`` when a GPU's power or the
    rate is unknown."""
    if not gpu_names or not tokens_per_s:
        return None
    found = [lookup(name) for name in gpu_names]
    if any(f is None for f in found):
        return None
    watts = sum(f[1] for f in found if f is not None)
    keys = ", ".join(dict.fromkeys(f[0] for f in found if f is not None))
    power = f"{len(found)} x {keys}, {watts:g} W in all" if len(found) > 1 \
        else f"{keys}, {watts:g} W"
    return EnergyEstimate(round(watts / tokens_per_s, 2),
                          f"estimate: published board power ({power}) / ~{tokens_per_s:g} "
                          "tok/s; an upper bound, since generation rarely draws full board "
                          "power")
