"""Architecture rules, from the real import graph (docs/architecture.md).

Every import form is resolved to the module it names: ``import a.b``, ``from a import b``
(module or name), relative imports, package-level imports, and imports inside functions.
Then: each layer imports only the layers below it, no module imports another's private
name, the module graph has no cycle (lazy imports included), third-party libraries stay in
the one module fenced for each, and commands stay thin.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "gptoss_doctor"
FOLDERS = {"probe": ROOT / "probe", "install": ROOT / "install", "bench": ROOT / "bench",
           "reports": ROOT / "reports"}
SRC = ROOT / "src" / PACKAGE
# Who may import whom (docs/architecture.md). "core" is src/gptoss_doctor's own modules.
ALLOWED = {
    "core": {"core"},
    "probe": {"core", "probe"},
    "install": {"core", "probe", "install"},
    "bench": {"core", "bench"},
    "app": {"core", "probe", "install", "bench", "app"},
    "reports": {"core", "probe", "install", "bench", "app", "reports"},
    "cli": {"core", "probe", "install", "bench", "app", "reports", "cli"},
    "main": {"cli"},
}
# third-party module prefix -> the only files (relative to ROOT) allowed to import it
FENCES = {
    "pynvml": {"probe/nvml.py"},
    "huggingface_hub": {"install/hub.py"},
    "llama_cpp": {"bench/llama_engine.py"},
    "xllamacpp": {"bench/xllamacpp_engine.py"},
    "mlx": {"bench/mlx_engine.py"},
    "mlx_lm": {"bench/mlx_engine.py"},
    "jinja2": {"reports/html.py"},
    "gguf": {"bench/synth.py", "bench/gguf_info.py"},
    "openai_harmony": {"bench/harmony.py"},
    "httpx": {"bench/endpoint.py"},
    "mcp": {"bench/mcp_client.py", "bench/mcp_reference.py"},
    "anyio": {"bench/mcp_client.py"},  # the MCP SDK's async runtime, driven from the loop
    "httpx2": {"bench/mcp_client.py"},  # the MCP SDK's HTTP client (headers for url servers)
}
# presentation and command-line libraries: never below them
UI_FENCES = {"click": {"cli"}, "rich": {"reports", "cli"}}
MAX_COMMAND_LINES = 40


def _modules() -> dict[str, Path]:
    """Every module of the package -> its file."""
    found: dict[str, Path] = {}
    for name, folder in FOLDERS.items():
        for path in sorted(folder.rglob("*.py")):
            found[_dotted(f"{PACKAGE}.{name}", path, folder)] = path
    for path in sorted(SRC.rglob("*.py")):
        found[_dotted(PACKAGE, path, SRC)] = path
    return found


def _dotted(prefix: str, path: Path, folder: Path) -> str:
    parts = list(path.relative_to(folder).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([prefix, *parts])


MODULES = _modules()


def _layer(module: str) -> str:
    parts = module.split(".")
    if module == f"{PACKAGE}.__main__":
        return "main"
    if len(parts) > 1 and parts[1] in (*FOLDERS, "app", "cli"):
        return parts[1]
    return "core"


def _package_of(module: str) -> str:
    path = MODULES[module]
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _imports(module: str) -> Iterator[tuple[str, ast.AST]]:
    """(absolute module or ``module.name`` imported, node) for every import in ``module``."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = _package_of(module).split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                yield f"{base}.{alias.name}", node


def _target(name: str) -> str | None:
    """The package module ``name`` refers to (a module, or the module a name lives in)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _internal_edges(module: str) -> set[str]:
    return {t for name, _ in _imports(module)
            if name.startswith(PACKAGE) and (t := _target(name)) and t != module}


GRAPH = {module: _internal_edges(module) for module in MODULES}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_imports_only_allowed_layers(module: str) -> None:
    layer = _layer(module)
    for target in GRAPH[module]:
        if target == PACKAGE:  # the package root: __version__
            continue
        assert _layer(target) in ALLOWED[layer], f"{module} ({layer}) imports {target}"


def test_the_resolver_sees_relative_and_package_level_imports() -> None:
    """The forms an older check missed resolve to their real targets."""
    assert _target("gptoss_doctor.reports") == "gptoss_doctor.reports"
    assert _target("gptoss_doctor.bench.speed.run_suite") == "gptoss_doctor.bench.speed"
    code = "from . import cpu\nfrom ..reports import html\nfrom gptoss_doctor import app\n"
    tree = ast.parse(code)
    module = "gptoss_doctor.probe.snapshot"
    resolved = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            anchor = _package_of(module).split(".")
            anchor = anchor[:len(anchor) - (node.level - 1)] if node.level else []
            base = ".".join([*anchor, node.module] if node.module else anchor) \
                if node.level else node.module or ""
            resolved.update(_target(f"{base}.{a.name}") for a in node.names)
    assert resolved == {"gptoss_doctor.probe.cpu", "gptoss_doctor.reports.html",
                        "gptoss_doctor.app"}
    assert "reports" not in ALLOWED[_layer(module)] and "app" not in ALLOWED["probe"]


def test_no_import_cycles_lazy_imports_included() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(GRAPH[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    # A package's __init__ importing its own submodules is how packages work, not a cycle.
    real = [c for c in cycles if not all(m.startswith(c[0] + ".") or m == c[0] for m in c)]
    assert real == [], f"import cycles: {real}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_imports_another_modules_private_name(module: str) -> None:
    for name, _node in _imports(module):
        if not name.startswith(PACKAGE):
            continue
        last = name.rpartition(".")[2]
        if last.startswith("_") and not last.startswith("__") and name not in MODULES:
            pytest.fail(f"{module} imports the private name {name}")


@pytest.mark.parametrize("module", sorted(MODULES))
def test_third_party_engines_and_libraries_are_fenced(module: str) -> None:
    relative = MODULES[module].relative_to(ROOT).as_posix()
    for name, _node in _imports(module):
        top = name.split(".")[0]
        for fenced, allowed in FENCES.items():
            if top == fenced.split(".")[0] and (name == fenced or name.startswith(fenced + ".")):
                assert relative in allowed, f"{relative} imports {name}; only {allowed} may"
        if top in UI_FENCES:
            assert _layer(module) in UI_FENCES[top], f"{module} imports {top}"


def test_no_module_imports_bare_layer_packages() -> None:
    for module in MODULES:
        for name, _node in _imports(module):
            assert name.split(".")[0] not in FOLDERS, f"{module} imports bare {name}"


def _functions(path: Path) -> Iterator[ast.FunctionDef]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef):
            yield node


@pytest.mark.parametrize("module", sorted(m for m in MODULES if _layer(m) == "cli"))
def test_commands_are_thin(module: str) -> None:
    for function in _functions(MODULES[module]):
        length = (function.end_lineno or function.lineno) - function.lineno + 1
        assert length <= MAX_COMMAND_LINES, f"{module}.{function.name}: {length} lines"


def test_importing_the_cli_does_not_import_an_engine() -> None:
    code = ("import sys, gptoss_doctor.cli; "
            "print(sorted(m for m in ('llama_cpp', 'mlx', 'mlx_lm', 'huggingface_hub', "
            "'xllamacpp', 'mcp') if m in sys.modules))")  # mcp: only the mcp cases start it
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
