"""The house's floors hold: each layer imports only the layers below it, and no module imports
another that imports it back (directly or round a longer circle).

Layers, from the ground up (DESIGN.md): ``appliance`` (records, the sealed log) → ``sync`` →
``web_ui`` / ``firmware_hooks`` (side by side, neither imports the other) → ``luutru`` (the
parts joined). Every import counts, inside functions and ``TYPE_CHECKING`` blocks too: a
deferred import is still a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYER = {"appliance": 0, "sync": 1, "web_ui": 2, "firmware_hooks": 2, "luutru": 3}


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in LAYER:
        for py in (ROOT / pkg).rglob("*.py"):
            parts = list(py.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = py
    return out


def _imports(name: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """Project modules that ``name`` imports, anywhere in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")
                up = up[: len(up) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        for t in targets:
            while t and t not in known:
                t = t.rpartition(".")[0]
            if t and t != name:
                yield t


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {name: set(_imports(name, path, known)) for name, path in known.items()}


def test_no_layer_imports_one_above_it_or_beside_it() -> None:
    bad = []
    for mod, deps in _graph().items():
        top = mod.split(".")[0]
        for dep in deps:
            other = dep.split(".")[0]
            if other != top and LAYER[other] >= LAYER[top]:
                bad.append(f"{mod} -> {dep}")
    assert sorted(bad) == []


def test_no_circle_of_imports() -> None:
    """Tarjan's strongly connected components: every component is a single module."""
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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
                circles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert circles == []
