"""The package layout: no import cycles inside lvss (module level or inside functions), and the
server imports lvss, never the reverse (but for ``lvss serve``)."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _modules(pkg: Path) -> dict[str, Path]:
    mods = {}
    for p in pkg.rglob("*.py"):
        if "_proto" in p.parts:  # generated protobuf code
            continue
        name = ".".join(p.relative_to(pkg.parent).with_suffix("").parts)
        mods[name.removesuffix(".__init__")] = p
    return mods


def _imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """The lvss modules that ``name`` imports anywhere in its body (the nearest module for a name)."""
    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = ".".join(here[: len(here) - node.level + 1] + ([node.module] if node.module else [])) \
                if node.level else (node.module or "")
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        for t in targets:
            while t and t not in mods:
                t = t.rpartition(".")[0]
            # a package's own __init__ runs before any of its submodules: not an edge of a cycle
            if t and t != name and not name.startswith(t + "."):
                out.add(t)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_lvss_has_no_import_cycles():
    mods = _modules(ROOT / "lvss")
    graph = {m: _imports(m, p, mods) for m, p in mods.items()}
    assert _cycles(graph) == []


def test_a_cycle_is_found():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_lvss_never_imports_the_server():
    """Only the command line reaches the server, to register ``lvss serve`` (lazily)."""
    mods = _modules(ROOT / "lvss")
    for name, path in mods.items():
        if name == "lvss.cli.main":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and not node.level:
                assert not (node.module or "").split(".")[0] in ("server", "lvss_server"), name
            elif isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] not in ("server", "lvss_server") for a in node.names), name
