"""The import graph of synaray's modules has no circle but the ones listed here.

Every `import` counts, at module level or inside a function (a function-level import is
still a dependency; it only runs later); imports under `if TYPE_CHECKING:` do not (they
never run). Modules depend downwards: `data`, `saving`, `program_payload` (rebuilding a
saved program without importing `synaray.programs`), `lm`, `modules` below `engines`,
below `trainers`, below `programs` (whose `Program.fit` calls the trainer), below `config`
and `cli`. The check reads the source files and imports nothing.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

#: Circles left to their owners' work (each entry: the modules of one circle). A new
#: circle fails the test; an entry that disappears only needs deleting from here.
KNOWN_CIRCLES = [
    {"synaray.lm.language_model", "synaray.lm.local.server"},
]


def _modules() -> dict[str, tuple[Path, bool]]:
    found = {}
    for path in (SRC / "synaray").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _statements(body: list[ast.stmt]) -> list[ast.stmt]:
    """Every statement in `body`, nested ones included (functions, classes, try, with...),
    except the bodies of `if TYPE_CHECKING:`. Imports are statements: expressions are not
    visited."""
    found: list[ast.stmt] = []
    todo = list(body)
    while todo:
        node = todo.pop()
        found.append(node)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        for field in ("body", "orelse", "finalbody", "handlers", "cases"):
            todo.extend(getattr(node, field, None) or [])
    return found


def _imported(node: ast.AST, package: str, modules: set[str]) -> set[str]:
    """The synaray modules an import statement names (a name imported from a package is its
    submodule when it is one, else the package itself)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in modules}
    if not isinstance(node, ast.ImportFrom):
        return set()
    base = node.module or ""
    if node.level:
        parts = package.split(".")
        base = ".".join(parts[: len(parts) - (node.level - 1)]) + (
            f".{node.module}" if node.module else "")
    named = {f"{base}.{alias.name}" for alias in node.names}
    return {n if n in modules else base for n in named} & modules


@functools.cache
def import_graph() -> dict[str, set[str]]:
    """module -> the synaray modules it imports, at module level or in a function."""
    modules = _modules()
    names = set(modules)
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        package = name if is_package else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in _statements(tree.body):
            targets |= _imported(node, package, names)
        graph[name] = targets - {name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def test_the_graph_sees_function_level_imports() -> None:
    graph = import_graph()
    # `Program.fit` imports the trainer inside the method: an edge all the same.
    assert "synaray.trainers" in graph["synaray.programs.training"]
    assert "synaray.program_payload" in graph["synaray.engines.evaluation"]


def test_no_import_circle_but_the_known_ones() -> None:
    new = [sorted(c) for c in circles(import_graph()) if c not in KNOWN_CIRCLES]
    assert new == []


def test_engines_and_trainers_do_not_import_programs() -> None:
    graph = import_graph()
    below_programs = [m for m in graph if m.startswith(("synaray.engines", "synaray.trainers",
                                                         "synaray.callbacks"))]
    for module in below_programs:
        assert not {t for t in graph[module] if t.startswith("synaray.programs")}, module


def test_circles_finds_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [{"a", "b", "c"}]
