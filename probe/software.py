"""Software already on the machine: engines, LM Studio, and gpt-oss weights on disk."""

from __future__ import annotations

import json
import re
from typing import Any

from gptoss_doctor.probe.model import LlamaCppBuild, Note, WeightsFound
from gptoss_doctor.probe.sources import Sources

# GGUF and MLX repositories whose files we recognise, by Hub cache folder name.
HF_REPOS = {
    "models--ggml-org--gpt-oss-20b-GGUF": ("gpt-oss-20b", "gguf"),
    "models--ggml-org--gpt-oss-120b-GGUF": ("gpt-oss-120b", "gguf"),
    "models--lmstudio-community--gpt-oss-20b-GGUF": ("gpt-oss-20b", "gguf"),
    "models--lmstudio-community--gpt-oss-120b-GGUF": ("gpt-oss-120b", "gguf"),
    "models--unsloth--gpt-oss-20b-GGUF": ("gpt-oss-20b", "gguf"),
    "models--unsloth--gpt-oss-120b-GGUF": ("gpt-oss-120b", "gguf"),
    "models--mlx-community--gpt-oss-20b-MXFP4-Q8": ("gpt-oss-20b", "mlx"),
    "models--mlx-community--gpt-oss-120b-MXFP4-Q8": ("gpt-oss-120b", "mlx"),
}
_SHARD = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$")
_BACKENDS = ("CUDA", "Metal", "Vulkan", "ROCm", "HIP", "SYCL", "OpenCL", "BLAS")


def parse_system_info(text: str) -> tuple[str, ...]:
    """Backends named in ``llama_print_system_info()`` ("CUDA : ARCHS = 890 | ...")."""
    found = []
    for backend in _BACKENDS:
        if re.search(rf"(^|\|)\s*{backend}\s*:", text):
            found.append("ROCm" if backend == "HIP" else backend)
    found.append("CPU")
    return tuple(dict.fromkeys(found))


def parse_llama_cpp_info(
    info: dict[str, Any] | None,
) -> tuple[LlamaCppBuild | None, tuple[Note, ...]]:
    """The child process's report on an installed llama-cpp-python."""
    if info is None:
        return None, ()
    if "error" in info:
        return None, (Note("llama-cpp-python", f"installed but failed to load: {info['error']}",
                           "warning"),)
    system_info = info.get("system_info")
    backends = parse_system_info(system_info) if isinstance(system_info, str) else ()
    offload = info.get("gpu_offload")
    return (
        LlamaCppBuild(version=str(info.get("version") or "unknown"),
                      gpu_offload=offload if isinstance(offload, bool) else None,
                      backends=backends, system_info=system_info),
        (),
    )


def parse_nvcc_version(text: str) -> str | None:
    """``nvcc --version`` -> "12.4" (from "Cuda compilation tools, release 12.4, V12.4.131")."""
    match = re.search(r"release (\d+\.\d+)", text)
    return match.group(1) if match else None


MAX_MODELS = 256  # ids kept from a server's model list
MAX_MODEL_ID = 256  # characters of one id


def parse_openai_models(text: str | None) -> tuple[str, ...] | None:
    """``GET /v1/models`` JSON -> model ids; ``None`` if it is not such a response."""
    if text is None:
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # whatever listens on the port: nested past limits
        return None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        return None
    return tuple(str(item.get("id"))[:MAX_MODEL_ID] for item in data["data"]
                 if isinstance(item, dict))[:MAX_MODELS]


def _model_of(filename: str) -> str | None:
    lowered = filename.lower()
    if "gpt-oss-120b" in lowered:
        return "gpt-oss-120b"
    if "gpt-oss-20b" in lowered:
        return "gpt-oss-20b"
    return None


def _gguf_sets(sources: Sources, folder: str, location: str,
               model_hint: str | None = None) -> list[WeightsFound]:
    """gpt-oss GGUFs in one folder; shards of one file count as one set."""
    names = sources.list_dir(folder) or ()
    found: list[WeightsFound] = []
    groups: dict[str, list[str]] = {}
    for name in names:
        if not name.lower().endswith(".gguf") or (_model_of(name) or model_hint) is None:
            continue
        shard = _SHARD.search(name)
        key = name[: shard.start()] if shard else name
        groups.setdefault(key, []).append(name)
    for key, members in sorted(groups.items()):
        sizes = [sources.file_size(f"{folder}/{member}") for member in members]
        shard = _SHARD.search(members[0])
        expected = int(shard.group(2)) if shard else 1
        model = _model_of(key) or model_hint
        assert model is not None
        found.append(WeightsFound(
            model=model, format="gguf", path=f"{folder}/{sorted(members)[0]}",
            size_bytes=sum(size or 0 for size in sizes), location=location,
            complete=len(members) == expected and all(size for size in sizes)))
    return found


def find_weights(sources: Sources, hf_home: str, lmstudio_home: str,
                 models_dir: str) -> tuple[WeightsFound, ...]:
    """gpt-oss weights in the Hub cache, LM Studio's models folder and our models folder."""
    found: list[WeightsFound] = []
    hub = f"{hf_home}/hub"
    for repo_dir in sources.list_dir(hub) or ():
        if repo_dir not in HF_REPOS:
            continue
        model, fmt = HF_REPOS[repo_dir]
        for revision in sources.list_dir(f"{hub}/{repo_dir}/snapshots") or ():
            folder = f"{hub}/{repo_dir}/snapshots/{revision}"
            if fmt == "gguf":
                found.extend(_gguf_sets(sources, folder, "hf-cache", model))
                continue
            files = sources.list_dir(folder) or ()
            tensors = [name for name in files if name.endswith(".safetensors")]
            if tensors:
                size = sum(sources.file_size(f"{folder}/{name}") or 0 for name in files)
                found.append(WeightsFound(model=model, format="mlx", path=folder,
                                          size_bytes=size, location="hf-cache",
                                          complete="config.json" in files))
    # LM Studio keeps models at <home>/models/<publisher>/<repo>/<file>.
    lms_models = f"{lmstudio_home}/models"
    for publisher in sources.list_dir(lms_models) or ():
        for repo in sources.list_dir(f"{lms_models}/{publisher}") or ():
            found.extend(_gguf_sets(sources, f"{lms_models}/{publisher}/{repo}", "lmstudio"))
    found.extend(_gguf_sets(sources, models_dir, "models-dir"))
    return tuple(found)
