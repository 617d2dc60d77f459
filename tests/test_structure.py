"""The package's shape: no import cycle between its modules, no import at the bottom of a
file, and intra-package imports inside functions only where they are needed.

The import graph is read from the source with :mod:`ast` (every ``from .x import y`` and
``from llm4cell.x import y``, at module level and inside functions), not by importing,
so a cycle that only closes at run time (a function-level import) is found too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import llm4cell

PKG = Path(llm4cell.__file__).parent


def _name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _target(module: str, is_init: bool, node: ast.ImportFrom) -> str | None:
    if not node.level:
        return node.module if (node.module or "").startswith("llm4cell") else None
    base = module.split(".") if is_init else module.split(".")[:-1]
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str) -> list[tuple[ast.ImportFrom, str]]:
    """Every intra-package ``from ... import`` of ``module`` with the module it loads."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only = {  # `if TYPE_CHECKING:` imports never run
        id(n) for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for stmt in block.body for n in ast.walk(stmt)
    }
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or id(node) in typing_only:
            continue
        target = _target(module, path.name == "__init__.py", node)
        if target is None:
            continue
        for alias in node.names:
            sub = f"{target}.{alias.name}"
            out.append((node, sub if sub in MODULES else target))
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (with their parent packages, except its
    own ancestors, which Python imports first anyway)."""
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        deps: set[str] = set()
        for _, target in _imports(module):
            parts = target.split(".")
            for i in range(2, len(parts) + 1):
                dep = ".".join(parts[:i])
                if dep in MODULES and dep != module and not module.startswith(dep + "."):
                    deps.add(dep)
        graph[module] = deps
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
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
    return found


def test_the_checker_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_inside_the_package() -> None:
    assert cycles(import_graph()) == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_after_code(module: str) -> None:
    """Imports sit at the top of a module (after the docstring), never below code."""
    body = ast.parse(MODULES[module].read_text(encoding="utf-8")).body
    seen_code = False
    for node in body:
        is_import = isinstance(node, (ast.Import, ast.ImportFrom))
        is_doc = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        if is_import and seen_code:
            pytest.fail(f"{module}: import on line {node.lineno} after code")
        if not (is_import or is_doc or isinstance(node, ast.If | ast.Try)):
            seen_code = True


def test_function_level_package_imports_say_why() -> None:
    """An intra-package import inside a function must carry a comment saying why (a
    heavy optional dependency behind it, or a genuine cycle it breaks)."""
    bare = []
    for module, path in MODULES.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        tree = ast.parse("\n".join(lines))
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom) and node.level:
                    above = lines[node.lineno - 2].strip() if node.lineno > 1 else ""
                    here = lines[node.lineno - 1]
                    if "#" not in here and not above.startswith("#"):
                        bare.append(f"{module}:{node.lineno}")
    assert bare == []
