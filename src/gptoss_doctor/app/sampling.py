"""The power sampler around a measurement: ``with Sampling() as sampled: ...``.

Starts ``probe.sampler.Sampler`` on this machine's sources (or given ones), stops it however
the block ends, and releases NVML; ``sampled.trace`` is the ``PowerTrace`` afterwards.
"""

from __future__ import annotations

from types import TracebackType

from gptoss_doctor.app import conditions, energy
from gptoss_doctor.app.records import Conditions, EnergyReport
from gptoss_doctor.probe.power import PowerSources
from gptoss_doctor.probe.power_sources import LivePowerSources
from gptoss_doctor.probe.sampler import PowerTrace, Sampler
from gptoss_doctor.serde import to_json

REMOTE = "not measured: the server is not on this machine"


class Sampling:
    """Power and conditions read on a thread for the length of a ``with`` block."""

    def __init__(self, power: PowerSources | None = None) -> None:
        self._live: LivePowerSources | None = None
        if power is None:
            power = self._live = LivePowerSources()
        self._sampler = Sampler(power)
        self.trace: PowerTrace | None = None

    def __enter__(self) -> Sampling:
        self._sampler.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.trace = self._sampler.stop()
        if self._live is not None:
            self._live.close()

    def sweep(self, generated_tokens: int) -> tuple[EnergyReport, Conditions]:
        """An endpoint sweep against a server on this machine (see ``energy.sweep_report``)."""
        assert self.trace is not None, "read after the with block"
        return (energy.sweep_report(self.trace, generated_tokens),
                conditions.judge(self.trace, neighbours=False))


def endpoint_fields(sampled: Sampling | None, generated_tokens: int) -> dict[str, object]:
    """The ``energy`` and ``conditions`` of an endpoint results record: measured for a
    server on this machine, an explicit "not measured" for one elsewhere."""
    if sampled is None:
        return {"energy": to_json(EnergyReport("not measured", REMOTE, (), 0.1, None, ())),
                "conditions": None}
    spent, judged = sampled.sweep(generated_tokens)
    return {"energy": to_json(spent), "conditions": to_json(judged)}
