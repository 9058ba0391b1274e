"""The package layering of compiler/: no import cycles, the core never imports the CLI, each stage imports
only the stages below it (README, "Module map"). Every import counts, including those inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support import REPO

# Rank of each top-level part of compiler/: a part may import parts of lower rank (and itself) only.
RANKS = {
    "errors": 0, "paths": 0, "escape": 0, "progress": 0, "background": 1, "fingerprint": 1,
    "catalog": 1, "git": 1, "github": 1, "mermaid": 1, "cache": 1,
    "spec": 2,
    "build": 4,
    "render": 5, "bootstrap": 5,
    "diff": 6, "validate": 6, "runbook": 6,
    "bot": 7, "importenv": 7,
    "commands": 8,
    "main": 9, "__main__": 10,
}


def module_graph(package: Path) -> dict[str, set[str]]:
    """module → modules of the package it imports (dotted names, `pkg.sub` for pkg/sub.py)."""
    name = package.name
    files = {".".join(p.relative_to(package.parent).with_suffix("").parts): p for p in package.rglob("*.py")}
    modules = {m.removesuffix(".__init__"): p for m, p in files.items()}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in modules.items():
        pkg = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = pkg.split(".")[: len(pkg.split(".")) - node.level + 1]
                    base = ".".join([*parts, base] if base else parts)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for target in targets:
                while target not in modules and "." in target:
                    target = target.rpartition(".")[0]
                if target in modules and target != mod and target.startswith(name):
                    graph[mod].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(found)


def part(module: str) -> str:
    return module.split(".")[1] if "." in module else module


def violations(graph: dict[str, set[str]]) -> list[str]:
    """Imports that go up (or sideways into another part of the same rank), and core → CLI imports."""
    out = []
    for mod, targets in sorted(graph.items()):
        here = part(mod)
        for target in sorted(targets):
            there = part(target)
            if there == here or here not in RANKS or there not in RANKS:
                continue
            if RANKS[there] >= RANKS[here]:
                out.append(f"{mod} imports {target} ({here} may import only parts below it)")
    return out


def test_compiler_has_no_import_cycle() -> None:
    assert cycles(module_graph(REPO / "compiler")) == []


def test_every_part_is_ranked() -> None:
    parts = {part(m) for m in module_graph(REPO / "compiler") if m != "compiler"}
    assert parts <= set(RANKS), f"rank the new parts in RANKS and the README's module map: {parts - set(RANKS)}"


def test_core_imports_only_downwards() -> None:
    assert violations(module_graph(REPO / "compiler")) == []


def test_checker_sees_a_cycle_and_an_upward_import(tmp_path: Path) -> None:
    pkg = tmp_path / "compiler"
    (pkg / "spec").mkdir(parents=True)
    (pkg / "commands").mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "spec" / "__init__.py").write_text("")
    (pkg / "commands" / "__init__.py").write_text("")
    (pkg / "spec" / "a.py").write_text("def f():\n    from compiler.spec import b\n")
    (pkg / "spec" / "b.py").write_text("from compiler.spec.a import f\nfrom compiler.commands import build\n")
    (pkg / "commands" / "build.py").write_text("from . import x\n")
    graph = module_graph(pkg)
    assert cycles(graph) == [["compiler.spec.a", "compiler.spec.b"]]
    assert violations(graph) == [
        "compiler.spec.b imports compiler.commands.build (spec may import only parts below it)"
    ]
