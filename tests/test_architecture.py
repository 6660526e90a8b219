"""The package's shape: short modules, no import circle, and imports that only run downwards."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "smart_agent"
MAX_LINES = 400
# A package (or top-level module) may import its own layer and the ones below it, never above:
# the core knows nothing of the features built on it, and nothing imports the front doors.
LAYERS: dict[str, int] = {
    "errors": 0,
    "values": 0,
    "urls": 0,
    "setting": 0,
    "config": 0,
    "oauth": 0,
    "data_dir": 0,
    "child_env": 0,
    "streaming": 1,
    "llm": 1,
    "agent": 2,
    "attachments": 2,
    "team": 3,
    "runs": 3,
    "metrics": 3,
    "history": 3,
    "api": 4,
    "web": 5,
    "cli": 6,
    "settings_reference": 6,
    "__main__": 6,
    "__init__": 6,
}


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (Alembic's migrations and the app root aside)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if "migrations" in parts or "app_root" in parts:
            continue
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


class _Imports(ast.NodeVisitor):
    """The package's modules one module imports anywhere (functions included), TYPE_CHECKING aside."""

    def __init__(self, name: str, is_package: bool, known: set[str]) -> None:
        self.base = name.split(".") if is_package else name.split(".")[:-1]
        self.known = known
        self.found: set[str] = set()

    def visit_If(self, node: ast.If) -> None:
        if "TYPE_CHECKING" not in ast.unparse(node.test):
            self.generic_visit(node)
        else:
            for child in node.orelse:
                self.visit(child)

    def visit_Import(self, node: ast.Import) -> None:
        self.found.update(alias.name for alias in node.names if alias.name in self.known)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level:
            base = self.base[: len(self.base) - node.level + 1]
            module = ".".join([*base, module] if module else base)
        for alias in node.names:
            full = f"{module}.{alias.name}"
            if full in self.known:
                self.found.add(full)
            elif module in self.known:
                self.found.add(module)


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports."""
    found = modules()
    graph = {}
    for name, path in found.items():
        visitor = _Imports(name, path.name == "__init__.py", set(found))
        visitor.visit(ast.parse(path.read_text(encoding="utf-8")))
        graph[name] = visitor.found - {name}
    return graph


def layer(module: str) -> int:
    """The layer of a module: its top-level package's (or top-level module's)."""
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    assert top in LAYERS, f"{top!r} has no layer: add it to LAYERS in {Path(__file__).name}"
    return LAYERS[top]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_modules_when_counted_then_none_is_over_400_lines() -> None:
    long = {
        name: lines
        for name, path in modules().items()
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_imports_when_followed_then_no_module_comes_back_to_itself() -> None:
    assert cycles(import_graph()) == []


def test_imports_when_layered_then_none_runs_from_the_core_up_into_a_feature() -> None:
    upward = sorted(
        f"{source} -> {target}"
        for source, targets in import_graph().items()
        for target in targets
        if layer(target) > layer(source)
    )
    assert upward == []


def test_checker_when_given_a_circle_and_an_upward_import_then_finds_both() -> None:
    graph = {"smart_agent.llm.a": {"smart_agent.web.b"}, "smart_agent.web.b": {"smart_agent.llm.a"}}
    assert cycles(graph) == [["smart_agent.llm.a", "smart_agent.web.b"]]
    assert layer("smart_agent.web.b") > layer("smart_agent.llm.a")
