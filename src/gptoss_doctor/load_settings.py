"""The one settings object that travels from the verdict to the engine, the recipe and the
results: how a model is loaded, named like llama-cpp-python's ``Llama()`` arguments.

The doctor's verdict fills it (flash attention on, a small sliding-window cache, no mmap
where weights sit in RAM: docs/design.md, "Measured buffers"), a recipe stores it, the
user's flags override single fields, and an engine adapter receives it whole.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

ALL_LAYERS = 99  # llama.cpp's idiom for "every layer": more blocks than any gpt-oss has


@dataclass(frozen=True, slots=True)
class LoadSettings:
    """``n_gpu_layers`` -1 means every layer (the plan's word; see ``for_build``)."""

    n_ctx: int = 4096
    n_batch: int = 2048
    n_ubatch: int = 512
    n_threads: int | None = None
    n_gpu_layers: int = 0
    flash_attn: bool = True
    swa_full: bool = False
    use_mmap: bool = False
    n_cpu_moe: int = 0

    def for_build(self, gpu_offload: bool) -> LoadSettings:
        """These settings for an engine build with or without GPU offload: "every layer"
        (-1) becomes ``ALL_LAYERS``, or 0 on a build that cannot offload."""
        if self.n_gpu_layers >= 0:
            return self
        return dataclasses.replace(self, n_gpu_layers=ALL_LAYERS if gpu_offload else 0)

    def on_cpu_only(self) -> LoadSettings:
        """A GPU plan run by a CPU-only build: no GPU layers, no expert offload (everything
        is on the CPU already) and no mmap (the CPU backend repacks the weights, so a mapped
        file would be a second copy: docs/design.md, "Measured buffers")."""
        return dataclasses.replace(self, n_gpu_layers=0, n_cpu_moe=0, use_mmap=False)

    def with_overrides(self, **given: Any) -> LoadSettings:
        """A copy with the fields the user gave (``None`` means not given)."""
        known = {f.name for f in dataclasses.fields(self)}
        chosen = {k: v for k, v in given.items() if v is not None and k in known}
        return dataclasses.replace(self, **chosen)

    def shown(self) -> str:
        """``n_ctx=…, n_ubatch=…`` for people, in field order, leaving out unset fields."""
        return ", ".join(f"{f.name}={getattr(self, f.name)}" for f in dataclasses.fields(self)
                         if getattr(self, f.name) is not None)
