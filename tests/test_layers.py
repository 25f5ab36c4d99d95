"""The layers import only downward, and no two files import each other in a circle.

    model (flatview, minus flatview.cli and flatview.testing)  <-  backend (kvm_backend)
        <-  listeners (listeners)  <-  CLI and tools (flatview.cli, flatview.testing)

Two checks: a static one over every import statement of every file (including
``TYPE_CHECKING`` blocks and imports inside functions), and the one the layering
promises at run time: each layer's modules import in a fresh interpreter in which
every layer above it is made unimportable by a meta-path finder.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("model", "backend", "listeners", "cli")
PACKAGES = ("flatview", "kvm_backend", "listeners")


def layer_of(module: str) -> str | None:
    if module == "flatview.__main__" or module.startswith(("flatview.cli", "flatview.testing")):
        return "cli"
    top = module.split(".")[0]
    return {"flatview": "model", "kvm_backend": "backend", "listeners": "listeners"}.get(top)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            out[module_name(path)] = path
    return out


MODULES = project_modules()


def imports_of(name: str, path: Path) -> set[str]:
    """Project modules that ``path`` imports (resolved to the module, not the package,
    where ``from package import module`` names one)."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        else:
            continue
        for t in targets:
            while t and t not in MODULES:
                t = t.rpartition(".")[0]
            if t and t != name:
                found.add(t)
    return found


GRAPH = {name: imports_of(name, path) for name, path in MODULES.items()}


def test_every_library_module_belongs_to_a_layer() -> None:
    assert all(layer_of(m) in LAYERS for m in MODULES)
    assert len(MODULES) > 30


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = [
        f"{m} ({layer_of(m)}) imports {t} ({layer_of(t)})"
        for m, targets in GRAPH.items()
        for t in sorted(targets)
        if LAYERS.index(str(layer_of(t))) > LAYERS.index(str(layer_of(m)))
    ]
    assert upward == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_between_files() -> None:
    # a package's __init__ re-exporting its modules is not a cycle of concepts:
    # only edges between modules (and from a module to its own package) count
    edges = {m: {t for t in ts if MODULES[t].name != "__init__.py"} for m, ts in GRAPH.items()}
    assert _cycles(edges) == []


def test_cycle_detector_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


_FENCE = """
import importlib, importlib.abc, sys
BLOCKED = {blocked!r}
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            raise ImportError(f"layer fence: {{name}} is above the layer under test")
        return None
sys.meta_path.insert(0, Refuse())
for m in {modules!r}:
    importlib.import_module(m)
print("imported", len({modules!r}))
"""


@pytest.mark.parametrize("layer", LAYERS[:-1])
def test_layer_imports_with_the_layers_above_made_unimportable(layer: str) -> None:
    above = LAYERS[LAYERS.index(layer) + 1 :]
    blocked = sorted(
        {"flatview.cli", "flatview.__main__", "examples", "benchmarks"}
        | {p for p, lay in (("kvm_backend", "backend"), ("listeners", "listeners")) if lay in above}
    )
    modules = [m for m in MODULES if layer_of(m) == layer]
    code = _FENCE.format(blocked=blocked, modules=modules)
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"imported {len(modules)}" in r.stdout


def test_fence_refuses_an_upward_import() -> None:
    code = _FENCE.format(blocked=["listeners"], modules=["listeners.planner"])
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert r.returncode != 0 and "layer fence" in r.stderr
