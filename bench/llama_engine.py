"""The llama.cpp engine adapter: the only module that imports ``llama_cpp``.

It loads a GGUF with the plan's settings, records the buffer sizes llama.cpp reports while
loading (its own log, captured through ``llama_log_set``), and exposes the raw decode loop
the speed suite times — the same calls llama-bench makes: ``llama_batch_get_one`` chunks of
at most ``n_batch`` tokens, ``llama_decode``, then ``llama_synchronize``.

Expert offload (llama.cpp's ``--n-cpu-moe N``): llama-cpp-python 0.3.36 declares the model
parameter ``tensor_buft_overrides`` as an unused ``void *`` (docs/design.md, "Expert
offload"), so we fill it by hand: a NULL-terminated array of ``{pattern, buffer type}``
with the CPU device's buffer type from ggml, placed into the parameters ``Llama`` builds
while it loads.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gptoss_doctor import catalog
from gptoss_doctor.bench import gguf_info, smoke, synth
from gptoss_doctor.bench.engine import Progress
from gptoss_doctor.bench.llama_log import LoadBuffers, parse_load_log, parse_overrides
from gptoss_doctor.bench.records import (
    EngineConfig,
    EngineExtras,
    MemoryFigures,
    ModelFacts,
    SoftwareFacts,
)
from gptoss_doctor.bench.smoke import SmokeResult
from gptoss_doctor.errors import DoctorError
from gptoss_doctor.load_settings import LoadSettings


class EngineError(DoctorError):
    """The engine could not load or run the model."""


class _Override(ctypes.Structure):
    # llama.h: struct llama_model_tensor_buft_override {
    #     const char * pattern; ggml_backend_buffer_type_t buft; };
    _fields_ = (("pattern", ctypes.c_char_p), ("buft", ctypes.c_void_p))


def expert_pattern(n_cpu_moe: int) -> str:
    """The regex llama.cpp matches against tensor names for the first ``n_cpu_moe`` layers."""
    layers = "|".join(str(i) for i in range(n_cpu_moe))
    return rf"blk\.({layers})\.ffn_(up|down|gate)_exps"


def _cpu_buffer_type() -> int:
    """ggml's CPU buffer type, from the libraries llama-cpp-python ships."""
    import glob

    import llama_cpp

    folder = os.path.join(os.path.dirname(llama_cpp.__file__), "lib")

    def library(stem: str) -> ctypes.CDLL:
        found = sorted(glob.glob(os.path.join(folder, f"{stem}.*")))
        if not found:
            raise EngineError(f"{stem} is missing from llama-cpp-python's build",
                              "reinstall llama-cpp-python")
        return ctypes.CDLL(found[0])

    by_type = library("libggml").ggml_backend_dev_by_type
    by_type.restype, by_type.argtypes = ctypes.c_void_p, [ctypes.c_int]
    buffer_type = library("libggml-base").ggml_backend_dev_buffer_type
    buffer_type.restype, buffer_type.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
    device = by_type(0)  # GGML_BACKEND_DEVICE_TYPE_CPU
    buft = buffer_type(device) if device else None
    if not buft:
        raise EngineError("llama.cpp's CPU buffer type is not available for expert offload")
    return int(buft)


def build_info() -> dict[str, Any]:
    """Version, GPU offload support and ``llama_print_system_info`` of the installed build."""
    import llama_cpp

    raw = llama_cpp.llama_print_system_info()
    return {"llama_cpp_python": llama_cpp.__version__,
            "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()),
            "system_info": raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)}


class LlamaEngine:
    """A loaded model plus the decode loop. ``close()`` frees it."""

    warning: str | None = None

    def __init__(self, model_path: Path, settings: LoadSettings) -> None:
        import llama_cpp
        from llama_cpp import _logger
        from llama_cpp import llama as llama_module

        self.settings = settings
        self.model_path = model_path
        lines: list[str] = []

        @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
        def collect(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
            lines.append(text.decode("utf-8", "replace"))

        llama_cpp.llama_log_set(collect, ctypes.c_void_p(0))
        threads = settings.n_threads or max(1, (os.cpu_count() or 2))
        defaults = llama_module.llama_cpp.llama_model_default_params
        if settings.n_cpu_moe:
            llama_module.llama_cpp.llama_model_default_params = \
                self._with_expert_overrides(defaults, settings.n_cpu_moe)
        try:
            self._llm = llama_cpp.Llama(
                model_path=str(model_path), n_ctx=settings.n_ctx, n_batch=settings.n_batch,
                n_ubatch=settings.n_ubatch, n_threads=threads, n_threads_batch=threads,
                n_gpu_layers=settings.n_gpu_layers, flash_attn=settings.flash_attn,
                swa_full=settings.swa_full, use_mmap=settings.use_mmap, verbose=False)
        except (ValueError, RuntimeError) as exc:
            last = next((ln.strip() for ln in reversed(lines) if "error" in ln.lower()), "")
            raise EngineError(f"llama.cpp could not load {model_path.name}: "
                              f"{last or exc}") from None
        finally:
            llama_module.llama_cpp.llama_model_default_params = defaults
            llama_cpp.llama_log_set(_logger.llama_log_callback, ctypes.c_void_p(0))
        self.threads = threads
        self._read_loaded("".join(lines))

    def _with_expert_overrides(self, defaults: Any, n_cpu_moe: int) -> Any:
        """llama-cpp-python's default model parameters with the tensor override that keeps
        the experts of the first ``n_cpu_moe`` layers on the CPU (kept alive on ``self``)."""
        self._overrides = (_Override * 2)()
        self._overrides[0].pattern = expert_pattern(n_cpu_moe).encode()
        self._overrides[0].buft = _cpu_buffer_type()  # [1] stays NULL: the terminator

        def with_overrides() -> Any:
            params = defaults()
            params.tensor_buft_overrides = ctypes.cast(self._overrides, ctypes.c_void_p)
            return params

        return with_overrides

    def _read_loaded(self, load_log: str) -> None:
        """What llama.cpp said while loading, and the loaded model's facts."""
        import llama_cpp

        self.load_log = load_log
        self.buffers: LoadBuffers = parse_load_log(load_log)
        self.overridden_tensors = parse_overrides(load_log)
        self._ctx = self._llm.ctx
        vocab = llama_cpp.llama_model_get_vocab(self._llm.model)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(vocab))
        self.n_ctx = int(llama_cpp.llama_n_ctx(self._ctx))
        self.description = _describe(self._llm)
        self.n_params = int(llama_cpp.llama_model_n_params(self._llm.model))
        self.model_size_bytes = int(llama_cpp.llama_model_size(self._llm.model))
        self.on_gpu = self.settings.n_gpu_layers > 0

    def reset(self) -> None:
        """Empty the KV cache (llama-bench clears memory before every repetition)."""
        import llama_cpp

        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self._ctx), True)

    def decode(self, tokens: Sequence[int]) -> None:
        """Append ``tokens`` to the context in chunks of ``n_batch``; wait for the device."""
        import llama_cpp

        step = self.settings.n_batch
        for start in range(0, len(tokens), step):
            chunk = tokens[start:start + step]
            array = (llama_cpp.llama_token * len(chunk))(*chunk)
            status = llama_cpp.llama_decode(self._ctx,
                                            llama_cpp.llama_batch_get_one(array, len(chunk)))
            if status != 0:
                raise EngineError(f"llama_decode failed with status {status}",
                                  "the context may be full: lower the depth or the prompt")
        llama_cpp.llama_synchronize(self._ctx)

    def logits(self) -> Any:
        """The last decoded position's logits (a numpy view; copy before the next decode)."""
        import llama_cpp
        import numpy as np

        logits = llama_cpp.llama_get_logits_ith(self._ctx, -1)
        return np.ctypeslib.as_array(logits, shape=(self.n_vocab,))

    def argmax_next(self) -> int:
        """Greedy next token from the last decoded position's logits."""
        import numpy as np

        return int(np.argmax(self.logits()))

    def tokenize(self, text: str) -> list[int]:
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=True, special=False))

    def detokenize(self, tokens: list[int]) -> str:
        raw: bytes = self._llm.detokenize(tokens)
        return raw.decode("utf-8", "replace")

    def close(self) -> None:
        self._llm.close()

    def config(self, settings_source: str) -> EngineConfig:
        return EngineConfig.of_llama("llama.cpp", settings_source, self.settings, self.threads)

    def software(self, python: str | None, backends: Sequence[str]) -> SoftwareFacts:
        build = build_info()
        return SoftwareFacts(python=python, backends=tuple(backends),
                             llama_cpp_python=build["llama_cpp_python"],
                             gpu_offload=build["gpu_offload"], system_info=build["system_info"])

    def memory(self, peak_rss_bytes: int, gpu_used_bytes: int | None) -> MemoryFigures:
        return MemoryFigures(peak_rss_bytes, gpu_used_bytes,
                             None if gpu_used_bytes is not None
                             else "no NVIDIA GPU readable through NVML")

    def extras(self) -> EngineExtras:
        return EngineExtras(dataclasses.asdict(self.buffers), dict(self.overridden_tensors))

    def engine_reported(self, prompt: Sequence[int], n_gen: int) -> dict[str, Any] | None:
        return None  # llama.cpp's own timings are what the suite measures already


class LlamaAdapter:
    """llama.cpp through llama-cpp-python: GGUF files."""

    name = "llama.cpp"
    unsupported: tuple[str, ...] = ()
    synthetic_shapes: tuple[str, ...] = tuple(catalog.ARCHITECTURES)
    own_settings: str | None = None  # the doctor's plan decides

    def owns(self, path: Path) -> bool:
        return not path.is_dir()

    def read_model(self, path: Path, require_gpt_oss: bool) -> ModelFacts:
        info = gguf_info.read_info(path, require_gpt_oss=require_gpt_oss)
        key = catalog.identify_gguf(info.n_tensors, info.synthetic) if info.is_gpt_oss \
            else None
        return ModelFacts(file_name=info.file_name, path=info.path, name=info.name,
                          size_bytes=info.size_bytes, architecture=info.architecture,
                          file_type=info.file_type, synthetic=info.synthetic, format="gguf",
                          gpt_oss=key, n_tensors=info.n_tensors, is_gpt_oss=info.is_gpt_oss)

    def content_files(self, path: Path) -> list[Path]:
        return [path]

    def synthetic_path(self, shape: str, folder: Path) -> Path:
        return folder / f"gpt-oss-{shape}-synthetic-seed0.gguf"

    def write_synthetic(self, shape: str, path: Path, progress: Progress) -> None:
        synth.write_synthetic(shape, path, seed=0, progress=progress)

    def gpu_offload(self) -> bool:
        return bool(build_info()["gpu_offload"])

    def load(self, path: Path, settings: LoadSettings) -> LlamaEngine:
        return LlamaEngine(path, settings.for_build(self.gpu_offload()))

    def model_path(self, files: Sequence[Path]) -> Path:
        return files[0]  # a split GGUF loads from its first shard

    def smoke_test(self, path: Path, settings: LoadSettings) -> SmokeResult:
        gpt_oss = gguf_info.read_info(path).is_gpt_oss
        return smoke.smoke_test(lambda: self.load(path, settings), gpt_oss=gpt_oss)


ADAPTER = LlamaAdapter()


def _describe(llm: Any) -> str:
    import llama_cpp

    buffer = ctypes.create_string_buffer(256)
    llama_cpp.llama_model_desc(llm.model, buffer, len(buffer))
    return buffer.value.decode("utf-8", "replace")
