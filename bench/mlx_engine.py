"""The MLX engine (Apple silicon; Linux CPU for testing): the only module importing mlx.

An MLX model folder (``config.json``, ``*.safetensors``, a tokenizer — e.g.
``mlx-community/gpt-oss-20b-MXFP4-Q8``) is checked without importing mlx first, so a folder
that is not a model, has no tokenizer, or is an unquantized bf16 MoE on a CPU (mlx's
``GatherMM`` only runs float32 there) fails in one line instead of a stack trace.

``MlxEngine`` offers what the speed suite and the tool runner use on llama.cpp — ``reset``,
``decode``, ``logits``, ``argmax_next`` — over mlx-lm's model and KV cache, prefilling in
``prefill_step_size`` chunks like mlx-lm does; prompts come from openai-harmony, so both
engines see the same token ids. ``stream`` generates with mlx-lm's ``stream_generate``,
stopping on ``<|return|>`` and ``<|call|>`` (mlx-lm stops only on the tokenizer's EOS, so
both are added), with optional logits processors, and returns mlx-lm's own prompt and
generation rates and peak memory.

Metal: the GPU may wire at most ``max_recommended_working_set_size`` (read with ``.get()``:
on Linux ``mx.device_info()`` has only ``architecture`` and ``device_name``); like mlx-lm
the wired limit is raised to that figure while the model is loaded, and restored on close.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from gptoss_doctor.bench import vocab
from gptoss_doctor.catalog import ARCHITECTURES
from gptoss_doctor.errors import DoctorError

SYNTHETIC_KEY = "gptoss_doctor_synthetic"  # in config.json, like the GGUFs' metadata key
PREFILL_STEP = 2048  # mlx-lm's default prefill_step_size
WORKING_SET_KEY = "max_recommended_working_set_size"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model")
# A tiny gpt-oss in mlx-lm's own architecture: real vocabulary, 2 layers, 4 experts.
TINY = ARCHITECTURES["tiny"]
TINY_CONFIG: dict[str, Any] = {
    "model_type": "gpt_oss", "num_hidden_layers": TINY.n_layer,
    "num_local_experts": TINY.n_expert, "num_experts_per_tok": TINY.n_expert_used,
    "vocab_size": vocab.N_VOCAB, "rms_norm_eps": 1e-5, "hidden_size": TINY.n_embd,
    "intermediate_size": TINY.n_ff, "head_dim": TINY.head_dim,
    "num_attention_heads": TINY.n_head, "num_key_value_heads": TINY.n_head_kv,
    "sliding_window": 128, "rope_theta": 150000,
    "layer_types": ["sliding_attention", "full_attention"]}
MXFP4 = {"group_size": 32, "bits": 4, "mode": "mxfp4"}


class MlxError(DoctorError):
    """The MLX engine or an MLX model folder cannot be used."""


def versions() -> dict[str, str | None]:
    """Installed mlx, mlx-lm and backend package versions (None when absent)."""
    found: dict[str, str | None] = {}
    for name in ("mlx", "mlx-lm", "mlx-metal", "mlx-cpu"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


@dataclass(frozen=True, slots=True)
class MlxModelInfo:
    """What an MLX model folder holds, read from its files alone."""

    path: str
    file_name: str  # the folder's name
    name: str
    architecture: str
    size_bytes: int
    n_layers: int | None
    n_experts: int | None
    quantization: str | None  # e.g. "mxfp4 4-bit, group 32"; None: unquantized
    dtype: str | None  # torch_dtype of unquantized weights, when the config says
    synthetic: bool
    is_gpt_oss: bool


def read_model_dir(path: Path) -> MlxModelInfo:
    """Check an MLX model folder; one-line errors for what mlx would fail on later."""
    hint = "give the folder that holds config.json, *.safetensors and tokenizer.json"
    if not path.is_dir():
        raise MlxError(f"{path} is not an MLX model folder", hint)
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except OSError:
        raise MlxError(f"{path} is not an MLX model folder (no config.json)", hint) from None
    except ValueError:
        raise MlxError(f"{path}/config.json is not JSON", hint) from None
    if not isinstance(config, dict) or "model_type" not in config:
        raise MlxError(f"{path}/config.json names no model_type", hint)
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        raise MlxError(f"{path} has no weights (*.safetensors)", hint)
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise MlxError(f"{path} has no tokenizer (tokenizer.json)",
                       "copy the tokenizer files of the model's repository into the folder")
    quant = config.get("quantization") or config.get("quantization_config")
    quantization = None
    if isinstance(quant, dict):
        quantization = (f"{quant.get('mode', 'affine')} {quant.get('bits')}-bit, group "
                        f"{quant.get('group_size')}")
    synthetic = bool(config.get(SYNTHETIC_KEY))
    kind = str(config["model_type"])
    name = path.name + (" (synthetic random weights)" if synthetic else "")
    return MlxModelInfo(str(path), path.name, name, kind,
                        sum(f.stat().st_size for f in weights), config.get("num_hidden_layers"),
                        config.get("num_local_experts"), quantization,
                        config.get("torch_dtype") or config.get("dtype"), synthetic,
                        kind == "gpt_oss")


def cpu_problem(info: MlxModelInfo, on_gpu: bool) -> str | None:
    """Why mlx cannot run this model on a CPU, if it cannot (docs/design.md, "MLX on Linux")."""
    if on_gpu or info.quantization or not info.n_experts:
        return None
    if info.dtype in (None, "float32"):
        return None
    return (f"{info.file_name} is an unquantized {info.dtype} mixture-of-experts model: mlx's "
            "CPU backend runs such experts only in float32 ([GatherMM] supports float32 only)")


def working_set_bytes(device_info: Mapping[str, Any]) -> int | None:
    """Metal's recommended working set, or None (Linux, or an mlx without the key)."""
    value = device_info.get(WORKING_SET_KEY)
    return int(value) if isinstance(value, int) and value > 0 else None


def wired_limit_plan(device_info: Mapping[str, Any], model_bytes: int
                     ) -> tuple[int | None, str | None]:
    """(the wired limit to set, a warning) the way mlx-lm decides them: the limit is the
    recommended working set; a model above 90 % of it will be slow."""
    limit = working_set_bytes(device_info)
    if limit is None:
        return None, None
    warning = None
    if model_bytes > 0.9 * limit:
        warning = (f"the model needs {model_bytes // 2**20} MiB, close to Metal's recommended "
                   f"working set of {limit // 2**20} MiB: generation will be slow (raise it "
                   "with `sudo sysctl iogpu.wired_limit_mb=N`)")
    return limit, warning


WEIGHTS = ("mxfp4", "float32", "bfloat16")


def apply_wired_limit(device_info: Mapping[str, Any], model_bytes: int, on_gpu: bool,
                      set_limit: Callable[[int], int]
                      ) -> tuple[int | None, str | None, int | None]:
    """Raise the wired limit to Metal's working set on a Metal device, like mlx-lm's
    ``wired_limit``; (the limit set, a warning, the previous limit to restore)."""
    limit, warning = wired_limit_plan(device_info, model_bytes)
    if limit is None or not on_gpu:
        return None, warning, None
    return limit, warning, int(set_limit(limit))


def write_synthetic(output: Path, seed: int = 0, weights: str = "mxfp4") -> MlxModelInfo:
    """A tiny random gpt-oss MLX folder, marked synthetic: mxfp4-quantized like the
    mlx-community releases, or unquantized float32 or bfloat16 (the last cannot run on a
    CPU, which is what its tests check)."""
    import mlx.core as mx
    import mlx.nn as nn
    from mlx.utils import tree_flatten
    from mlx_lm.models import gpt_oss

    if output.exists():
        raise MlxError(f"{output} already exists", "choose another folder")
    config = dict(TINY_CONFIG)
    mx.random.seed(seed)
    model = gpt_oss.Model(gpt_oss.ModelArgs.from_dict(config))
    if weights not in WEIGHTS:
        raise MlxError(f"unknown weights {weights!r}: one of {', '.join(WEIGHTS)}")
    if weights == "mxfp4":
        nn.quantize(model, group_size=MXFP4["group_size"], bits=MXFP4["bits"],
                    mode=MXFP4["mode"])
        config["quantization"] = dict(MXFP4)
    else:
        model.set_dtype(getattr(mx, weights))
        config["torch_dtype"] = weights
    config[SYNTHETIC_KEY] = True
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    mx.save_safetensors(str(tmp / "model.safetensors"), dict(tree_flatten(model.parameters())),
                        metadata={"format": "mlx"})
    (tmp / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    (tmp / "tokenizer.json").write_text(json.dumps(vocab.hf_tokenizer_json()),
                                        encoding="utf-8")
    (tmp / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|startoftext|>",
        "eos_token": "<|return|>", "pad_token": "<|endoftext|>",
        "model_max_length": 131072}), encoding="utf-8")
    tmp.replace(output)  # a folder appears whole or not at all
    return read_model_dir(output)


@dataclass(frozen=True, slots=True)
class Streamed:
    """One ``stream_generate`` run: the tokens (stop token included) and mlx-lm's numbers."""

    tokens: tuple[int, ...]
    stopped_on: str  # "<|return|>" | "<|call|>" | "max_tokens"
    ttft_s: float
    prompt_tps: float
    generation_tps: float
    peak_memory_bytes: int


class MlxEngine:
    """A loaded MLX model with one KV cache, driven token by token like the llama engine."""

    kind = "mlx"

    def __init__(self, path: Path, n_ctx: int, prefill_step_size: int = PREFILL_STEP) -> None:
        self.info = read_model_dir(path)
        try:
            import mlx.core as mx
            from mlx_lm import load
        except ImportError:
            raise MlxError("mlx-lm is not installed",
                           "gptoss-doctor install --engine mlx (on Linux: pip install "
                           "'mlx-lm[cpu]', a testing path only)") from None
        self.device_info = dict(mx.device_info())
        self.on_gpu = bool(mx.metal.is_available())
        problem = cpu_problem(self.info, self.on_gpu)
        if problem:
            raise MlxError(problem, "use an mxfp4- or affine-quantized MLX model, or a float32 "
                           "one, on this CPU")
        try:
            self._model, self._tokenizer = load(str(path))
        except (ValueError, OSError, KeyError) as exc:
            raise MlxError(f"mlx-lm cannot load {path.name}: {str(exc).splitlines()[0]}"
                           ) from None
        for stop in (vocab.RETURN_ID, vocab.CALL_ID):  # mlx-lm stops only on its EOS ids
            self._tokenizer.add_eos_token(vocab.special_name(stop))
        self.n_vocab = int(self._model.args.vocab_size)
        self.n_ctx = n_ctx
        self.threads: int | None = None  # mlx schedules its own threads
        self.prefill_step_size = prefill_step_size
        self.model_bytes = self.info.size_bytes
        self.wired_limit_bytes, self.warning, self._old_limit = apply_wired_limit(
            self.device_info, self.model_bytes, self.on_gpu, mx.set_wired_limit)
        self._mx = mx
        self.reset()

    def reset(self) -> None:
        from mlx_lm.models.cache import make_prompt_cache

        self._cache = make_prompt_cache(self._model)
        self._last: Any = None

    def decode(self, tokens: Sequence[int]) -> None:
        """Run ``tokens`` through the model, extending the cache (``prefill_step_size`` at a
        time); synchronous, so a clock around it measures the work."""
        mx = self._mx
        inner, head = getattr(self._model, "model", None), getattr(self._model, "lm_head", None)
        for start in range(0, len(tokens), self.prefill_step_size):
            chunk = mx.array([list(tokens[start:start + self.prefill_step_size])])
            last = start + self.prefill_step_size >= len(tokens)
            if inner is None or head is None:  # not gpt-oss's layout: the model's own call
                self._last = self._model(chunk, cache=self._cache)[0, -1]
                mx.eval(self._last)
                continue
            hidden = inner(chunk, cache=self._cache)
            if not last:  # like mlx-lm's prefill: fill the cache, skip the vocabulary head
                mx.eval([c.state for c in self._cache])
                continue
            # Only the last position's logits, as llama.cpp computes them: the head over
            # every prompt position would cost more than the rest of a small model.
            self._last = head(hidden[:, -1:, :])[0, -1]
            mx.eval(self._last)

    def logits(self) -> Any:
        """The next-token logits after the last decode, as float32 numpy."""
        return np.array(self._last.astype(self._mx.float32), copy=True)

    def argmax_next(self) -> int:
        return int(self._mx.argmax(self._last).item())

    def stream(self, prompt: Sequence[int], max_tokens: int,
               logits_processors: Sequence[Callable[[Any, Any], Any]] = (),
               clock: Callable[[], float] = time.perf_counter) -> Streamed:
        """Generate with mlx-lm's ``stream_generate`` from a fresh cache (greedy unless a
        processor steers it), stopping on ``<|return|>``/``<|call|>`` or ``max_tokens``."""
        from mlx_lm import stream_generate

        self.reset()
        tokens: list[int] = []
        start = clock()
        first = 0.0
        response: Any = None
        for response in stream_generate(self._model, self._tokenizer, list(prompt),
                                        max_tokens=max_tokens, prompt_cache=self._cache,
                                        prefill_step_size=self.prefill_step_size,
                                        logits_processors=list(logits_processors) or None):
            if not tokens:
                first = clock() - start
            tokens.append(int(response.token))
        self.reset()  # the cache now holds this generation, not a prompt anyone asked for
        if response is None:
            raise MlxError("mlx-lm generated nothing")
        stopped = {vocab.RETURN_ID: "<|return|>", vocab.CALL_ID: "<|call|>"}.get(
            tokens[-1], "max_tokens")
        return Streamed(tuple(tokens), stopped, first, float(response.prompt_tps),
                        float(response.generation_tps), int(response.peak_memory * 1e9))

    def peak_memory_bytes(self) -> int:
        return int(self._mx.get_peak_memory())

    def close(self) -> None:
        if self._old_limit is not None:
            self._mx.synchronize()
            self._mx.set_wired_limit(self._old_limit)
            self._old_limit = None
        self._model = None
        self._mx.clear_cache()
