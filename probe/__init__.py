"""The probe: one frozen ``HardwareSnapshot`` of this (or a recorded) machine.

``snapshot()`` never raises for an unreadable fact: it records a ``Note`` instead.
"""

from __future__ import annotations

from gptoss_doctor.probe.model import HardwareSnapshot
from gptoss_doctor.probe.snapshot import snapshot

__all__ = ["HardwareSnapshot", "snapshot"]
