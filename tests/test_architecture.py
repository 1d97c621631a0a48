"""The layers of the package, checked from the source: imports go downwards only, no import circles, a pure core.

Every ``import`` and ``from ... import`` counts, also those inside functions and under ``TYPE_CHECKING``: a circle
hidden in a function is still a circle a reader has to untangle.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "conformance"

#: Each layer and the layers it may import (itself included). Mirrors the docstring of each package.
ALLOWED: dict[str, set[str]] = {
    "core": {"core"},
    "inside": {"inside"},
    "wire": {"wire", "core"},
    "targets": {"targets", "wire", "core", "inside"},
    "reporters": {"reporters", "core"},
    "run": {"run", "reporters", "targets", "wire", "core", "inside"},
    "": {"run", ""},  # conformance/__init__.py, __main__.py
}

#: What the sans-IO core must never import: no sockets, processes, threads, waiting or clocks.
IMPURE = {
    "socket",
    "subprocess",
    "threading",
    "multiprocessing",
    "asyncio",
    "select",
    "selectors",
    "signal",
    "time",
    "concurrent",
    "_thread",
    "scapy",
    "pyroute2",
    "fcntl",
    "ctypes",
}


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """The absolute names of every module `path` imports (relative imports resolved)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            found.add(stem)
            # `from . import codec` imports the module conformance.wire.codec
            for alias in node.names:
                found.add(f"{stem}.{alias.name}")
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges[name] = {m for m in imports_of(path) if m in modules and m != name}
    return edges


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in ALLOWED) else ""


def test_every_module_belongs_to_a_layer() -> None:
    for name in graph():
        parts = name.split(".")
        if len(parts) == 2 and parts[1] not in ("__main__",):
            assert parts[1] in ALLOWED, f"{name}: a module outside the layers; put it in one of {sorted(ALLOWED)}"


def test_imports_go_downwards_only() -> None:
    wrong = []
    for name, targets in graph().items():
        for target in targets:
            if target == "conformance":
                continue
            if layer(target) not in ALLOWED[layer(name)]:
                wrong.append(f"{name} imports {target}")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(wrong))


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import circle of `edges` (as a path that ends where it began), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_find_cycle_finds_a_circle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_no_import_circles() -> None:
    edges = graph()
    # A package's __init__ re-exporting its modules is not a circle with them: drop init -> own-module edges.
    for name in list(edges):
        if (PACKAGE.parent / name.replace(".", "/") / "__init__.py").exists():
            edges[name] = {t for t in edges[name] if not t.startswith(name + ".")}
    cycle = find_cycle(edges)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


@pytest.mark.parametrize("path", sorted((PACKAGE / "core").rglob("*.py")), ids=lambda p: p.name)
def test_the_core_does_no_io(path: Path) -> None:
    bad = sorted(m for m in imports_of(path) if m.split(".")[0] in IMPURE)
    assert not bad, f"{module_name(path)} imports {bad}: the core takes segments and time as arguments"


@pytest.mark.parametrize("path", sorted((PACKAGE / "inside").rglob("*.py")), ids=lambda p: p.name)
def test_what_runs_inside_a_target_needs_the_standard_library_only(path: Path) -> None:
    stdlib = sys.stdlib_module_names
    own = "conformance.inside"  # its sibling modules: they run there too
    bad = sorted(
        m for m in imports_of(path) if m.split(".")[0] not in stdlib | {"__future__"} and not m.startswith(own)
    )
    assert not bad, f"{module_name(path)} imports {bad}: it runs in targets that have only Python's standard library"


def test_each_package_says_what_it_may_import() -> None:
    for pkg in ALLOWED:
        if not pkg:
            continue
        doc = ast.get_docstring(ast.parse((PACKAGE / pkg / "__init__.py").read_text())) or ""
        assert "May import" in doc, f"conformance/{pkg}/__init__.py: its docstring must say what the layer may import"
