"""No import cycle among triage's modules, lazy imports included.

Every ``import triage.x`` and ``from triage.x import y`` anywhere in a module
-- at the top, inside a function, under ``if TYPE_CHECKING:`` -- is an edge
from that module to ``triage.x`` (or to ``triage.x.y`` when ``y`` is a
submodule). Importing a submodule also runs its package's ``__init__``, but
that is not counted: a package may re-export its submodules' names.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "triage"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The triage modules ``name`` imports anywhere in its source."""

    def owner(dotted: str) -> str:  # the module a dotted name lives in
        while dotted and dotted not in known:
            dotted = dotted.rpartition(".")[0]
        return dotted

    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(owner(a.name) for a in node.names if a.name.split(".")[0] == "triage")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from ..store import y
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
            if base.split(".")[0] != "triage":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else owner(base))
    found.discard(name)
    found.discard("")
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None when the graph is acyclic."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_graph_sees_every_kind_of_import() -> None:
    edges = graph()
    assert "triage.rulefile" in edges["triage.config"]  # a top-level from-import
    assert "triage.detect.engine" in edges["triage.ruleset"]  # inside a function
    assert "triage.store" in edges["triage.pipeline"]  # a package
    assert "triage.web.security" in edges["triage.web"]  # "from triage.web import security": a submodule
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles() -> None:
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_rulefile_imports_nothing_of_triage_but_errors() -> None:
    assert graph()["triage.rulefile"] == {"triage.errors"}
