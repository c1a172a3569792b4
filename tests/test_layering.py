"""Architecture rules: layers import downwards only; third-party imports stay fenced."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"probe": 1, "install": 2, "bench": 3, "reports": 4}
# module prefix -> the only file (relative to ROOT) allowed to import it
FENCES = {
    "pynvml": {"probe/nvml.py"},
    "huggingface_hub": {"install/hub.py"},
    "llama_cpp": {"bench/llama_engine.py"},
    "mlx": {"bench/mlx_engine.py"},
    "mlx_lm": {"bench/mlx_engine.py"},
    "jinja2": {"reports/html.py"},
    "gguf": {"bench/synth.py", "bench/gguf_info.py"},
    "openai_harmony": {"bench/harmony.py"},
    "httpx": {"bench/endpoint.py"},
}


def _sources() -> list[Path]:
    files = []
    for folder in (*LAYERS, "src/gptoss_doctor"):
        files.extend(sorted((ROOT / folder).rglob("*.py")))
    return files


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _rank(path: Path) -> int:
    top = path.relative_to(ROOT).parts[0]
    if top == "src":
        return 5 if path.name == "__main__.py" else 0  # shared core; __main__ is the entry
    return LAYERS[top]


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_imports_only_lower_or_equal_layers(path: Path) -> None:
    rank = _rank(path)
    for name in _imports(path):
        parts = name.split(".")
        if parts[0] == "gptoss_doctor" and len(parts) > 1 and parts[1] in LAYERS:
            assert LAYERS[parts[1]] <= rank, f"{path.name} imports higher layer {name}"


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_third_party_engines_and_libraries_are_fenced(path: Path) -> None:
    relative = path.relative_to(ROOT).as_posix()
    for name in _imports(path):
        for fenced, allowed in FENCES.items():
            if name == fenced or name.startswith(fenced + "."):
                assert relative in allowed, f"{relative} imports {name}; only {allowed} may"


def test_no_module_imports_bare_layer_packages() -> None:
    for path in _sources():
        for name in _imports(path):
            assert name.split(".")[0] not in LAYERS, f"{path} imports bare {name}"


def test_importing_the_cli_does_not_import_an_engine() -> None:
    code = ("import sys, gptoss_doctor.reports.cli; "
            "print(sorted(m for m in ('llama_cpp', 'mlx', 'mlx_lm', 'huggingface_hub') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
