"""The house rules of the code's layout, checked on the source (docs/architecture.md,
"Where things live"): no import cycle between Voxboard's modules, no import hidden in
a function to dodge one, and a short, deliberate list of app-wide modules."""

from __future__ import annotations

import ast
from pathlib import Path

from dashboard import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "dashboard"

# Modules at the top of `dashboard/` are shared by several areas. Adding one is a
# decision (is it really app-wide, or does it belong to an area?), so it is listed.
APP_WIDE = {
    "__init__",  # the factory
    "audio",
    "config",
    "database",
    "edge",
    "encryption",
    "errors",
    "extensions",
    "formatting",
    "forms",
    "health",
    "htmx",
    "keyset",
    "queue",
    "templating",
}

# A function-local import is allowed only where it isn't about a cycle; each says why.
LOCAL_IMPORTS_ALLOWED = {
    # The factory wires every area; importing them at its top would load the whole
    # app for `from dashboard import PROJECT_ROOT` (design.md: normal in the factory).
    ("dashboard", "*"): "the app factory",
    ("dashboard.cli", "*"): "command groups load when the CLI is built, like the factory",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources() -> dict[str, ast.Module]:
    return {module_name(p): ast.parse(p.read_text(), str(p)) for p in PACKAGE.rglob("*.py")}


def resolve(node: ast.ImportFrom | ast.Import, known: set[str]) -> set[str]:
    """The Voxboard modules an import statement loads (parents included, as Python does)."""
    names: set[str] = set()
    if isinstance(node, ast.Import):
        names = {alias.name for alias in node.names}
    elif node.module:
        names = {node.module}
        names |= {f"{node.module}.{alias.name}" for alias in node.names}
    loaded = set()
    for name in names:
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            candidate = ".".join(parts[:i])
            if candidate in known:
                loaded.add(candidate)
    return loaded


def top_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    found = []
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If):  # `if TYPE_CHECKING:` blocks don't run
            continue
    return found


def local_imports(tree: ast.Module) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Import | ast.ImportFrom):
                    found.append((node.name, inner.lineno))
    return found


def import_graph() -> dict[str, set[str]]:
    trees = sources()
    known = set(trees)
    graph = {}
    for name, tree in trees.items():
        edges = set()
        for node in top_level_imports(tree):
            edges |= resolve(node, known)
        # A module also loads its own parent packages first.
        parts = name.split(".")
        edges |= {".".join(parts[:i]) for i in range(1, len(parts))}
        edges.discard(name)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def without_package_edges(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """Drop `package → its own submodule` edges: a package's `__init__` re-exporting
    its submodules is its interface, and a submodule importing a sibling through the
    package is what Python resolves without a cycle once the package is initialised
    first (which `parts` above guarantees)."""
    return {
        name: {e for e in edges if not e.startswith(name + ".")} for name, edges in graph.items()
    }


def test_no_import_cycle_between_voxboard_modules():
    cycle = find_cycle(without_package_edges(import_graph()))
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_no_function_local_import_outside_the_factory():
    offenders = []
    for name, tree in sources().items():
        if (name, "*") in LOCAL_IMPORTS_ALLOWED:
            continue
        offenders += [f"{name}.{func} (line {line})" for func, line in local_imports(tree)]
    assert not offenders, "imports inside functions: " + ", ".join(offenders)


def test_top_level_modules_are_the_app_wide_ones():
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top == APP_WIDE, (
        f"new: {sorted(top - APP_WIDE)}, gone: {sorted(APP_WIDE - top)} — a module used by "
        "one area lives in that area; update APP_WIDE and docs/architecture.md if it is shared"
    )


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
