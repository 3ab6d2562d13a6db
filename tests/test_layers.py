"""Layers only look down: the import graph of nnapi_compiler (lazy and TYPE_CHECKING imports
included) has no cycle between modules, and the shared reference kernels and the passes import
neither the device runtime nor the backend."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

import nnapi_compiler

ROOT = Path(nnapi_compiler.__file__).parent


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every nnapi_compiler module ``path`` imports, wherever the import statement is."""
    package = _module(path) if path.name == "__init__.py" else _module(path).rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")
            base = base[: len(base) - node.level + 1] if node.level else []
            mod = ".".join([*base, *(node.module.split(".") if node.module else [])])
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m.startswith("nnapi_compiler")}


def _graph() -> nx.DiGraph:
    files = {_module(p): p for p in ROOT.rglob("*.py")}
    g = nx.DiGraph()
    for mod, path in files.items():
        g.add_node(mod)
        g.add_edges_from((mod, dep) for dep in _imports(path) if dep in files and dep != mod)
    return g


def test_no_import_cycle_between_modules() -> None:
    g = _graph()
    # A package's __init__ importing its own modules is not a layering cycle.
    g.remove_edges_from([(a, b) for a, b in list(g.edges) if b.startswith(a + ".")])
    assert list(nx.simple_cycles(g)) == []


def test_reference_and_passes_do_not_import_runtime_or_backend() -> None:
    g = _graph()
    for mod in g.nodes:
        if mod.startswith(("nnapi_compiler.reference", "nnapi_compiler.passes")):
            lower = ("nnapi_compiler.runtime", "nnapi_compiler.backend")
            bad = [d for d in g.successors(mod) if d.startswith(lower)]
            assert not bad, f"{mod} imports {bad}"
