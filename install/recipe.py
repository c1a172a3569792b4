"""The recipe: how to run the installed model, reused by ``bench`` and ``report``.

A small versioned JSON with the model files, engine and settings, and the commands to serve
it: llama-cpp-python's (mlx-lm's, or llama.cpp's own through ``gptoss-doctor serve``)
OpenAI-compatible server on 127.0.0.1:1234 (LM Studio's port) and a Python snippet using
the OpenAI SDK against it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from gptoss_doctor.files import write_text
from gptoss_doctor.install.install_plan import InstallPlan
from gptoss_doctor.load_settings import LoadSettings
from gptoss_doctor.serde import to_json

RECIPE_KIND = "gptoss-doctor/recipe"
RECIPE_SCHEMA_VERSION = 1
PORT = 1234


def build_recipe(plan: InstallPlan, files: list[str]) -> dict[str, Any]:
    loaded = plan.verdict.load_settings or LoadSettings()
    settings = {k: v for k, v in to_json(loaded).items() if v is not None}
    # An MLX model is its folder (config, weights, tokenizer); a GGUF is its first file.
    model_path = str(Path(files[0]).parent) if plan.engine.engine == "mlx" else files[0]
    serve: list[str] = []
    if plan.engine.engine == "mlx":
        serve = [sys.executable, "-m", "mlx_lm.server", "--model", model_path,
                 "--host", "127.0.0.1", "--port", str(PORT)]
    if plan.engine.engine == "llama.cpp":
        serve = [sys.executable, "-m", "llama_cpp.server", "--model", model_path,
                 "--host", "127.0.0.1", "--port", str(PORT),
                 "--n_ctx", str(settings.get("n_ctx", 4096)),
                 "--n_gpu_layers", str(settings.get("n_gpu_layers", 0)),
                 "--flash_attn", "true", "--use_mmap", str(settings.get("use_mmap", False))
                 .lower()]
    if plan.engine.engine == "llama-server":  # llama.cpp's own server, the doctor's plan
        serve = [sys.executable, "-m", "gptoss_doctor", "serve", "--model", model_path,
                 "--port", str(PORT), "--ctx", str(settings.get("n_ctx", 4096))]
    snippet = (
        "from openai import OpenAI\n"
        f"client = OpenAI(base_url='http://127.0.0.1:{PORT}/v1', api_key='unused')\n"
        f"reply = client.chat.completions.create(model='{plan.model}', messages=[\n"
        "    {'role': 'user', 'content': 'Say hello in five words.'}])\n"
        "print(reply.choices[0].message.content)\n")
    return {"kind": RECIPE_KIND, "schema_version": RECIPE_SCHEMA_VERSION, "model": plan.model,
            "key": plan.key, "files": files, "model_path": model_path,
            "engine": plan.engine.engine, "backend": plan.engine.backend,
            "load_settings": settings, "serve_command": serve, "openai_sdk_snippet": snippet}


def write_recipe(recipe: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(recipe, indent=2) + "\n")
