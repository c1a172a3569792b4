"""Closed value sets shared by every layer, as ``Literal`` aliases.

Results files and the ``--json`` envelopes carry these values; the JSON Schemas under
``reports/schemas`` and ``bench/schemas`` enumerate the same sets, and a test keeps the
two in step (``tests/test_types_and_schemas.py``).
"""

from __future__ import annotations

from typing import Literal

VerdictStatus = Literal["runs", "slow", "does-not-fit"]
EngineName = Literal["llama.cpp", "mlx"]
RunEngine = Literal["llama.cpp", "llama-server", "mlx", "endpoint"]
Backend = Literal["CUDA", "ROCm", "Vulkan", "Metal", "CPU", "MLX", "MLX (CPU)"]
Placement = Literal["gpu", "expert-offload", "cpu", "unified"]
CheckStatus = Literal["ok", "warn", "fail", "info"]
FileAction = Literal["reuse", "resume", "download"]
EngineAction = Literal["keep", "install", "rebuild", "upgrade"]
Suite = Literal["speed", "tools", "conformance"]
RunStatus = Literal["complete", "interrupted", "partial"]
TestStatus = Literal["ok", "skipped", "failed", "interrupted"]
HostClass = Literal["local", "private", "remote"]
Method = Literal["in-process", "endpoint"]
ModelFormat = Literal["gguf", "mlx"]
ModelKey = Literal["20b", "120b"]
EnergyStatus = Literal["measured", "not measured"]
EnergyKind = Literal["gpu", "cpu-package", "dram"]

