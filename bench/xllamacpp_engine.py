"""llama.cpp's own server as an engine: the only module that imports ``xllamacpp``.

xllamacpp (prebuilt wheels: CPU and macOS on PyPI, CUDA/ROCm/Vulkan on its own index) embeds
llama.cpp's C++ ``llama-server`` in the process: ``xllamacpp.Server(CommonParams)`` loads
the model and listens on loopback with the OpenAI-compatible API, continuous batching over
``n_parallel`` slots and llama.cpp's own harmony parsing. It offers no token-level decode
loop, so this adapter does not hand out a ``Session``: it *serves* the model
(``bench.engine.Serving``) and the suites measure it over HTTP with the endpoint machinery.
That is also what its users run, which is why the engine is called ``llama-server``.

llama.cpp's own fit (``--fit``, on by default in ``common_params``) projects the memory the
settings need per device while loading; the server logs it, with a per-device memory
breakdown, to the process's stderr. The log is redirected into a file while the server
starts (docs/design.md, "llama.cpp's own server") and parsed by ``parse_fit_log``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from gptoss_doctor import catalog
from gptoss_doctor.bench import endpoint, gguf_info, harmony, llama_engine, smoke, vocab
from gptoss_doctor.bench.engine import Progress, Served
from gptoss_doctor.bench.llama_engine import EngineError, expert_pattern
from gptoss_doctor.bench.records import (
    EngineConfig,
    EngineExtras,
    FitDevice,
    MemoryFigures,
    ModelFacts,
    SoftwareFacts,
)
from gptoss_doctor.bench.smoke import SmokeResult
from gptoss_doctor.bench.tool_run import STOP_NAMES, Sampling
from gptoss_doctor.load_settings import LoadSettings

HOST = "127.0.0.1"
LOG_VERBOSITY = 4  # llama.cpp logs its fit projection at this level, not at the default 3
LOG_WAIT_S = 5.0  # the log thread writes asynchronously: wait for "listening" to appear
MIB = 1024 * 1024
BREAKDOWN = re.compile(r"memory_breakdown_print: \|\s+-\s+(.+?)\s+\|\s+(?:(\d+)\s+=\s+)?"
                       r"(?:(\d+)\s+\+\s+\(\s*)?(\d+)\s+=\s+(\d+)\s+\+\s+(\d+)\s+\+\s+(\d+)")


def version() -> str | None:
    try:
        return metadata.version("xllamacpp")
    except metadata.PackageNotFoundError:
        return None


def parse_fit_log(text: str) -> tuple[FitDevice, ...]:
    """Per device, what llama.cpp's memory breakdown says the loaded model uses (MiB rows
    ``self = model + context + compute``), in the order logged; the last breakdown wins
    (the fit logs one for its trial load, the server one for the real load)."""
    rows: dict[str, FitDevice] = {}
    for line in text.splitlines():
        found = BREAKDOWN.search(line)
        if not found:
            continue
        name = found.group(1).strip()
        self_mib, model, context, compute = (int(found.group(i)) for i in (4, 5, 6, 7))
        rows[name] = FitDevice(name, self_mib * MIB, model * MIB, context * MIB,
                               compute * MIB)
    return tuple(rows.values())


def fit_summary(text: str) -> tuple[str, ...]:
    """llama.cpp's own fit verdict lines (``projected to use ...``, ``no changes needed``)."""
    keep = ("projected to use", "will leave", "successfully fit", "failed to fit",
            "cannot fit", "reducing", "setting")
    return tuple(line.split(": ", 1)[-1].strip() for line in text.splitlines()
                 if "params_fit" in line and any(k in line for k in keep))


def params_for(path: Path, settings: LoadSettings, n_parallel: int, port: int,
               parse_chat: bool = True) -> Any:
    """llama.cpp's ``common_params`` for serving ``path`` with the doctor's settings
    (``parse_chat`` False: answers stream as raw text, harmony markup included)."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.n_ctx = settings.n_ctx * n_parallel  # the server splits n_ctx across its slots
    params.n_batch, params.n_ubatch = settings.n_batch, settings.n_ubatch
    threads = settings.n_threads or max(1, os.cpu_count() or 2)
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = threads
    params.n_gpu_layers = settings.n_gpu_layers
    params.flash_attn_type = (xllamacpp.llama_flash_attn_type.LLAMA_FLASH_ATTN_TYPE_ENABLED
                              if settings.flash_attn else
                              xllamacpp.llama_flash_attn_type.LLAMA_FLASH_ATTN_TYPE_DISABLED)
    params.swa_full = settings.swa_full
    params.load_mode = (xllamacpp.llama_load_mode.LLAMA_LOAD_MODE_MMAP if settings.use_mmap
                        else xllamacpp.llama_load_mode.LLAMA_LOAD_MODE_NONE)
    if settings.n_cpu_moe:
        params.tensor_buft_overrides = f"{expert_pattern(settings.n_cpu_moe)}=CPU"
    params.n_parallel = n_parallel
    params.hostnames, params.port = [HOST], port
    params.verbosity = LOG_VERBOSITY
    params.endpoint_metrics = True
    params.force_pure_content_parser = not parse_chat
    return params


@contextmanager
def _stderr_into(log: Path) -> Iterator[None]:
    """Point file descriptor 2 (where llama.cpp logs) at ``log``; Python's own ``sys.stderr``
    keeps writing to the terminal through a duplicate of the old descriptor."""
    sys.stderr.flush()
    saved = os.dup(2)
    handle = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    python_stderr = sys.stderr
    sys.stderr = os.fdopen(os.dup(saved), "w", buffering=1, encoding="utf-8",
                           errors="replace")
    os.dup2(handle, 2)
    os.close(handle)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        sys.stderr.close()
        sys.stderr = python_stderr


def _discard_fd2() -> None:
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)


def _wait_for(log: Path, marker: str) -> str:
    deadline = time.monotonic() + LOG_WAIT_S
    text = ""
    while time.monotonic() < deadline:
        text = log.read_text(encoding="utf-8", errors="replace")
        if marker in text:
            break
        time.sleep(0.05)
    return text


def _last_error(log: Path) -> str:
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    return next((ln.strip() for ln in reversed(lines)
                 if " E " in ln or "error" in ln.lower()), "")


class LlamaServerAdapter:
    """llama.cpp's ``llama-server`` in-process through xllamacpp: GGUF files, served."""

    name = "llama-server"
    unsupported: tuple[str, ...] = ()
    synthetic_shapes: tuple[str, ...] = tuple(catalog.ARCHITECTURES)
    own_settings: str | None = None  # the doctor's llama.cpp plan decides
    plan_engine = "llama.cpp"  # whose plan it runs: the same llama.cpp, the same settings

    def owns(self, path: Path) -> bool:
        return False  # only when named: a GGUF goes to llama-cpp-python under --engine auto

    def read_model(self, path: Path, require_gpt_oss: bool) -> ModelFacts:
        return llama_engine.ADAPTER.read_model(path, require_gpt_oss)

    def content_files(self, path: Path) -> list[Path]:
        return [path]

    def synthetic_path(self, shape: str, folder: Path) -> Path:
        return llama_engine.ADAPTER.synthetic_path(shape, folder)

    def write_synthetic(self, shape: str, path: Path, progress: Progress) -> None:
        llama_engine.ADAPTER.write_synthetic(shape, path, progress)

    def gpu_offload(self) -> bool:
        import xllamacpp

        gpu = {xllamacpp.ggml_backend_dev_type.GGML_BACKEND_DEVICE_TYPE_GPU,
               xllamacpp.ggml_backend_dev_type.GGML_BACKEND_DEVICE_TYPE_IGPU}
        return any(device.get("type") in gpu for device in xllamacpp.get_device_info())

    def load(self, path: Path, settings: LoadSettings) -> ServedSession:
        """The model served with one slot, as a session whose turns the server samples
        (the tool suite's raw-completion path); it has no decode loop to time."""
        return ServedSession(self, path, settings)

    def model_path(self, files: Sequence[Path]) -> Path:
        return files[0]

    @contextmanager
    def serve(self, path: Path, settings: LoadSettings, n_parallel: int = 1,
              port: int = 0, parse_chat: bool = True) -> Iterator[Served]:
        """Start llama.cpp's server on loopback (``port`` 0: any free port) until the block
        ends; the fit and memory breakdown llama.cpp logged while loading come with it.
        ``parse_chat`` False turns llama.cpp's chat parsing off (speed runs: random weights
        produce no valid harmony, and tokens are what is counted)."""
        import xllamacpp

        built = settings.for_build(self.gpu_offload())
        with tempfile.TemporaryDirectory(prefix="gptoss-llama-server-") as folder:
            log = Path(folder) / "server.log"
            started = time.perf_counter()
            # The whole life of the server: llama.cpp logs every request at this verbosity.
            with _stderr_into(log):
                try:
                    server = xllamacpp.Server(params_for(path, built, n_parallel, port,
                                                          parse_chat))
                except RuntimeError:
                    why = _last_error(log) or "llama.cpp logged no reason"
                    raise EngineError(f"llama-server could not load {path.name}: {why}"
                                      ) from None
                text = _wait_for(log, "listening on")
                _discard_fd2()  # what it logs per request would grow the file without end
                try:
                    yield Served(f"{server.listening_address}/v1", str(path), built,
                                 n_parallel, time.perf_counter() - started,
                                 parse_fit_log(text), fit_summary(text), version())
                finally:
                    del server

    def smoke_test(self, path: Path, settings: LoadSettings) -> SmokeResult:
        """Serve ``path`` and ask one question over HTTP (``/v1/completions`` with the
        harmony prompt's token ids for gpt-oss, so a synthetic model's noise cannot trip
        the chat parser)."""
        gpt_oss = gguf_info.read_info(path).is_gpt_oss
        started = time.perf_counter()
        with self.serve(path, settings) as served:
            loaded = time.perf_counter() - started
            prompt: list[int] | str = harmony.chat_prompt(smoke.QUESTION) if gpt_oss \
                else f"Question: {smoke.QUESTION}\nAnswer:"
            answer = endpoint.post_json(endpoint.Endpoint(served.url), "/completions", {
                "model": served.model_id, "prompt": prompt, "max_tokens": smoke.SMOKE_TOKENS,
                "temperature": 0})
        return dataclasses.replace(smoke_result(answer, loaded, prompt),
                                   llama_cpp_memory=served.fit)


class ServedTurns:
    """One attempt's turns through llama.cpp's native ``/completion``: the harmony prompt
    as token ids in, the sampled ids out (``return_tokens``; a stop token is the last id).
    The server's sampler draws, seeded from the attempt's generator; only top-p and
    temperature are left on, as in the in-process sampler."""

    def __init__(self, root: str, n_ctx: int) -> None:
        self.root, self.n_ctx = root, n_ctx
        self.tokens: list[int] = []

    def feed(self, prompt: Sequence[int]) -> bool:
        if len(prompt) >= self.n_ctx:
            return False
        self.tokens = list(prompt)
        return True

    def generate(self, max_tokens: int, sampling: Sampling, rng: np.random.Generator,
                 deadline: float, clock: Any) -> tuple[list[int], str]:
        remaining = deadline - clock()
        if remaining <= 0:
            return [], "timeout"
        budget = min(max_tokens, self.n_ctx - len(self.tokens))
        body = {"prompt": self.tokens, "n_predict": budget, "return_tokens": True,
                "temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": 0,
                "min_p": 0.0, "seed": int(rng.integers(2**31)), "cache_prompt": True}
        try:
            answer = endpoint.post_json(endpoint.Endpoint(self.root, None, remaining),
                                        "/completion", body)
        except endpoint.EndpointError:
            if clock() > deadline:
                return [], "timeout"
            raise
        tokens = [int(t) for t in answer.get("tokens") or []]
        self.tokens.extend(tokens)
        if tokens and tokens[-1] in STOP_NAMES:
            return tokens, STOP_NAMES[tokens[-1]]
        if len(self.tokens) >= self.n_ctx:
            return tokens, "context_full"
        return tokens, "max_tokens"


class ServedSession:
    """A model llama.cpp's server serves in this process, with the facts results record."""

    warning: str | None = None

    def __init__(self, adapter: LlamaServerAdapter, path: Path, settings: LoadSettings
                 ) -> None:
        self._stack = ExitStack()
        self.served = self._stack.enter_context(adapter.serve(path, settings,
                                                              parse_chat=False))
        self.settings = self.served.settings
        self.n_ctx = self.settings.n_ctx
        self.n_vocab = vocab.N_VOCAB
        self.on_gpu = self.settings.n_gpu_layers > 0

    def generation(self) -> ServedTurns:
        return ServedTurns(self.served.url.removesuffix("/v1"), self.n_ctx)

    def reset(self) -> None:
        pass  # every request names its whole prompt; the server reuses its cache itself

    def decode(self, tokens: Sequence[int]) -> None:
        raise EngineError("llama-server samples whole turns: it has no decode loop to time",
                          "bench speed measures it over HTTP")

    def logits(self) -> Any:
        raise EngineError("llama-server does not hand out logits")

    def argmax_next(self) -> int:
        raise EngineError("llama-server does not hand out logits")

    def close(self) -> None:
        self._stack.close()

    def config(self, settings_source: str) -> EngineConfig:
        return EngineConfig.of_llama("llama-server", settings_source, self.settings,
                                     self.settings.n_threads)

    def software(self, python: str | None, backends: Sequence[str]) -> SoftwareFacts:
        import xllamacpp

        return SoftwareFacts(python=python, backends=tuple(
            str(d.get("name")) for d in xllamacpp.get_device_info()),
            gpu_offload=ADAPTER.gpu_offload(), system_info=xllamacpp.get_system_info())

    def memory(self, peak_rss_bytes: int, gpu_used_bytes: int | None) -> MemoryFigures:
        return MemoryFigures(peak_rss_bytes, gpu_used_bytes,
                             None if gpu_used_bytes is not None
                             else "no NVIDIA GPU readable through NVML")

    def extras(self) -> EngineExtras:
        return EngineExtras(llama_cpp_fit={
            "devices": [dataclasses.asdict(d) for d in self.served.fit],
            "notes": list(self.served.fit_notes), "xllamacpp": self.served.version})

    def engine_reported(self, prompt: Sequence[int], n_gen: int) -> dict[str, Any] | None:
        return None


def smoke_result(answer: dict[str, Any], load_s: float, prompt: list[int] | str
                 ) -> SmokeResult:
    """A ``/v1/completions`` answer as a smoke result (llama.cpp adds ``timings``)."""
    choice = (answer.get("choices") or [{}])[0]
    usage = answer.get("usage") or {}
    timings = answer.get("timings") or {}
    finish = choice.get("finish_reason")
    return SmokeResult(load_s, int(usage.get("prompt_tokens") or len(prompt)),
                       int(usage.get("completion_tokens") or 0),
                       float(timings.get("predicted_per_second") or 0.0),
                       "max_tokens" if finish == "length" else "<|return|>",
                       str(choice.get("text") or ""))


ADAPTER = LlamaServerAdapter()
