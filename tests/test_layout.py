"""The house's shape: no import cycle among kbqa's modules, and nothing imports the CLI."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, modules: dict[str, Path]) -> set[str]:
    """The kbqa modules a module imports when it runs (imports inside functions included,
    those only for type checkers left out)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kbqa"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in modules else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("kbqa"))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle, as the modules around it, or []."""
    state: dict[str, int] = {}
    path: list[str] = []

    def walk(module: str) -> list[str]:
        state[module] = 1
        path.append(module)
        for other in sorted(graph.get(module, ())):
            if state.get(other) == 1:
                return [*path[path.index(other) :], other]
            if other not in state and (found := walk(other)):
                return found
        state[module] = 2
        path.pop()
        return []

    for module in sorted(graph):
        if module not in state and (found := walk(module)):
            return found
    return []


def test_no_module_imports_another_that_imports_it_back():
    modules = _modules()
    graph = {
        name: {m for m in _imports(ast.parse(path.read_text()), modules) if m in modules}
        for name, path in modules.items()
    }
    assert _cycle(graph) == []
    # Only `python -m kbqa` runs the CLI; no layer imports it.
    assert [name for name, deps in graph.items() if "kbqa.cli" in deps] == ["kbqa.__main__"]


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) == []
