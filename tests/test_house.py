"""House rules that hold for the whole checkout, read from the source with ``ast``.

1. Nothing outside tests/ imports the test tree or pytest, or changes ``sys.path``: the product,
   the stand-ins, the demo and the benchmarks run from the installed (editable) packages.
2. The product packages import each other without cycles at import time (the imports a module
   runs when it is loaded: not those inside functions nor under ``if TYPE_CHECKING:``), and
   ``shared`` depends on no other package of ours, at import time or inside functions.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

from standins import REPO_ROOT

OUTSIDE_TESTS = ("deploy", "bench", "uploader", "reporter", "trigger", "shared", "standins")
PRODUCT = ("shared", "uploader", "reporter", "trigger", "standins")
SHARED_MUST_NOT_IMPORT = ("uploader", "reporter", "trigger", "standins")


def python_files(*tops: str) -> list[pathlib.Path]:
    return sorted(p for top in tops for p in (REPO_ROOT / top).rglob("*.py"))


def load_time_nodes(tree: ast.AST) -> list[ast.AST]:
    """The nodes Python runs when it loads the module: not function bodies, not TYPE_CHECKING."""
    out: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                todo.extend(child.orelse)
                continue
            todo.append(child)
    return out


def imported_names(tree: ast.AST, module: str, is_package: bool,
                   load_time_only: bool = False) -> list[tuple[int, str]]:
    """(line, absolute dotted name) of the imports in ``tree``; ``from a import b`` gives a.b.

    Relative imports are resolved against ``module``. ``load_time_only``: only the imports that
    run when the module is loaded.
    """
    out = []
    nodes = load_time_nodes(tree) if load_time_only else list(ast.walk(tree))
    for node in sorted(nodes, key=lambda n: getattr(n, "lineno", 0)):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")
                keep = len(parts) - node.level + (1 if is_package else 0)
                base = ".".join(parts[:keep] + ([base] if base else []))
            out += [(node.lineno, f"{base}.{alias.name}" if base else alias.name)
                    for alias in node.names]
    return out


def touches_sys_path(tree: ast.AST) -> list[int]:
    """Lines that read or change ``sys.path`` (attribute access or ``from sys import path``)."""
    def is_sys_path(node: ast.AST) -> bool:
        if isinstance(node, ast.Attribute):
            return (node.attr == "path" and isinstance(node.value, ast.Name)
                    and node.value.id == "sys")
        if isinstance(node, ast.ImportFrom):
            return node.module == "sys" and any(a.name == "path" for a in node.names)
        return False

    return sorted(node.lineno for node in ast.walk(tree) if is_sys_path(node))


def module_name(path: pathlib.Path) -> tuple[str, bool]:
    rel = path.relative_to(REPO_ROOT).with_suffix("")
    parts = list(rel.parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


@pytest.mark.parametrize("path", python_files(*OUTSIDE_TESTS),
                         ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_no_test_tree_pytest_or_sys_path_outside_tests(path: pathlib.Path) -> None:
    tree = ast.parse(path.read_text(), str(path))
    module, is_package = module_name(path)
    bad = [f"line {line}: imports {name}" for line, name in imported_names(tree, module, is_package)
           if name.split(".")[0] in ("tests", "pytest", "_pytest")]
    bad += [f"line {line}: touches sys.path" for line in touches_sys_path(tree)]
    assert not bad, f"{path.relative_to(REPO_ROOT)}: " + "; ".join(bad)


def import_graph(load_time_only: bool) -> dict[str, set[str]]:
    """module -> the modules of the product packages it imports."""
    files = python_files(*PRODUCT)
    modules = dict(module_name(p) for p in files)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for path in files:
        module, is_package = module_name(path)
        tree = ast.parse(path.read_text(), str(path))
        for _line, name in imported_names(tree, module, is_package, load_time_only):
            # ``from pkg import name``: the submodule pkg.name if there is one, else pkg itself
            target = name if name in modules else name.rpartition(".")[0]
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != module:
                graph[module].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_product_modules_import_each_other_without_cycles() -> None:
    graph = import_graph(load_time_only=True)
    assert "shared.config" in graph and "standins.local_stack" in graph  # the walk saw them
    assert cycles(graph) == []


def test_shared_imports_no_other_package_of_ours() -> None:
    graph = import_graph(load_time_only=False)
    bad = sorted(f"{m} -> {t}" for m, targets in graph.items() if m.split(".")[0] == "shared"
                 for t in targets if t.split(".")[0] in SHARED_MUST_NOT_IMPORT)
    assert bad == []


def test_checkers_see_what_they_look_for() -> None:
    tree = ast.parse("import sys\nfrom tests.harness import amqp\nsys.path.insert(0, '.')\n"
                     "from . import sibling\nif TYPE_CHECKING:\n    import typed\n"
                     "def f():\n    import late\n")
    assert touches_sys_path(tree) == [3]
    assert imported_names(tree, "uploader.cli", False) == [
        (1, "sys"), (2, "tests.harness.amqp"), (4, "uploader.sibling"), (6, "typed"),
        (8, "late")]
    assert imported_names(tree, "uploader.cli", False, load_time_only=True) == [
        (1, "sys"), (2, "tests.harness.amqp"), (4, "uploader.sibling")]
