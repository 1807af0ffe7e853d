"""The layer rules of fedapp, checked on the source: parsed with ``ast``, never imported.

From the bottom up (each layer may import those below it, as MAY_IMPORT lists)::

    base        fedapp/__init__.py, fedapp.errors
    settings    fedapp.settings, fedapp.registry        runs: fedapp.runs (base only)
    domain      fedapp.data, fedapp.learning, fedapp.protection
    flower      fedapp.flower                           strategies: the plugins
    drivers     fedapp.simulation, fedapp.tuning, fedapp.deploy
    ui          fedapp_ui (not flower, not simulation)
    cli         fedapp.cli, fedapp.__main__

Only fedapp.flower, fedapp.simulation and the plugins import ``flwr`` at run time.
"""

from __future__ import annotations

import ast
import io
import itertools
import tokenize
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Import name of each first-party package -> its folder (see package-dir in pyproject.toml).
PACKAGES: dict[str, str] = {
    "fedapp": "fedapp",
    "fedapp_strategies": "strategies",
    "fedapp_ui": "ui",
}

# The layer of a module is that of the longest key equal to its name or to a
# dotted prefix of it. A package's own ``__init__`` is looked up first as
# ``<package>.__init__``, so that ``fedapp/__init__.py`` is base without every
# other ``fedapp.*`` module being base too. ``python -m fedapp`` runs the CLI,
# so ``fedapp.__main__`` belongs to the cli layer.
LAYER_OF: dict[str, str] = {
    "fedapp.__init__": "base",
    "fedapp.errors": "base",
    "fedapp.settings": "settings",
    "fedapp.registry": "settings",
    "fedapp.runs": "runs",
    "fedapp.data": "data",
    "fedapp.learning": "learning",
    "fedapp.protection": "protection",
    "fedapp.flower": "flower",
    "fedapp_strategies": "strategies",
    "fedapp.simulation": "simulation",
    "fedapp.tuning": "simulation",
    "fedapp.deploy": "deploy",
    "fedapp_ui": "ui",
    "fedapp.cli": "cli",
    "fedapp.__main__": "cli",
}

# A layer may import only layers of its own rank or below; MAY_IMPORT says
# which of those exactly.
RANK: dict[str, int] = {
    "base": 0,
    "settings": 1,
    "runs": 1,
    "data": 2,
    "learning": 2,
    "protection": 2,
    "flower": 3,
    "strategies": 3,
    "simulation": 4,
    "deploy": 4,
    "ui": 5,
    "cli": 6,
}

_CORE = frozenset({"base", "settings", "runs"})
_DOMAIN = frozenset({"data", "learning", "protection"})
MAY_IMPORT: dict[str, frozenset[str]] = {
    "base": frozenset({"base"}),
    "settings": frozenset({"base", "settings"}),
    "runs": frozenset({"base", "runs"}),
    "data": _CORE | _DOMAIN,
    "learning": _CORE | _DOMAIN,
    "protection": _CORE | _DOMAIN,
    "flower": _CORE | _DOMAIN | {"flower"},
    # Plugins use the plugin API (registry) like a third-party one would.
    "strategies": _CORE | _DOMAIN | {"strategies"},
    "simulation": _CORE | _DOMAIN | {"flower", "simulation", "deploy"},
    "deploy": _CORE | _DOMAIN | {"flower", "simulation", "deploy"},
    # The UI starts runs as processes; it never runs Flower in its own.
    "ui": _CORE | _DOMAIN | {"strategies", "deploy", "ui"},
    "cli": frozenset(RANK),
}

# Modules that may import flwr at run time: a module name or a package prefix.
FLWR_ALLOWED: tuple[str, ...] = ("fedapp.flower", "fedapp.simulation", "fedapp_strategies")

# Third-party packages slow enough to import that a function-local import of
# them (to keep them off the import path of e.g. ``fedapp --help``) is a
# decision worth a comment.
HEAVY: frozenset[str] = frozenset(
    {
        "tensorflow",
        "keras",
        "ray",
        "pandas",
        "flwr",
        "sklearn",
        "dp_accounting",
        "pyarrow",
        "plotly",
        "streamlit",
        "optuna",
    }
)


@dataclass(frozen=True)
class Module:
    """One first-party source file."""

    name: str
    path: Path
    is_package: bool
    where: str  # the path relative to the repository, for messages


@dataclass(frozen=True)
class Import:
    """One imported module, as a statement of ``importer`` resolves it."""

    importer: str
    target: str
    line: int
    end_line: int
    in_function: bool
    type_checking: bool


def discover_modules(root: Path = ROOT) -> dict[str, Module]:
    """Every ``.py`` file of the first-party packages, by module name."""
    modules: dict[str, Module] = {}
    for package, folder in PACKAGES.items():
        base = root / folder
        for path in sorted(base.rglob("*.py")):
            parts = path.relative_to(base).with_suffix("").parts
            if "__pycache__" in parts:
                continue
            is_package = parts[-1] == "__init__"
            name = ".".join((package, *(parts[:-1] if is_package else parts)))
            where = path.relative_to(root).as_posix()
            modules[name] = Module(name, path, is_package, where)
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _walk_imports(
    nodes: Iterable[ast.AST], in_function: bool, type_checking: bool
) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool, bool]]:
    for node in nodes:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, in_function, type_checking
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _walk_imports(node.body, in_function, True)
            # The else branch of ``if TYPE_CHECKING:`` is what runs.
            yield from _walk_imports(node.orelse, in_function, type_checking)
        else:
            inner = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            yield from _walk_imports(ast.iter_child_nodes(node), inner, type_checking)


def _resolve_from(module: Module, node: ast.ImportFrom) -> str | None:
    if node.level == 0:
        return node.module
    package = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
    if node.level - 1 >= len(package):
        return None  # beyond the top-level package: Python refuses it too
    anchor = package[: len(package) - (node.level - 1)]
    return ".".join([*anchor, node.module] if node.module else anchor)


def parse_imports(module: Module, known: Iterable[str]) -> list[Import]:
    """Every module that ``module`` imports, anywhere in the file.

    ``from pkg import name`` imports ``pkg.name`` when that is a module in
    ``known``, else ``pkg`` itself; ``import a.b`` imports ``a.b`` only.
    """
    known = set(known)
    tree = ast.parse(module.path.read_text(encoding="utf-8"), filename=str(module.path))
    found: list[Import] = []
    for node, in_function, type_checking in _walk_imports(tree.body, False, False):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = _resolve_from(module, node)
            if base is None:
                continue
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        for target in dict.fromkeys(targets):
            found.append(
                Import(
                    module.name,
                    target,
                    node.lineno,
                    node.end_lineno or node.lineno,
                    in_function,
                    type_checking,
                )
            )
    return sorted(found, key=lambda imp: imp.line)


def is_first_party(name: str) -> bool:
    """Whether ``name`` is (inside) one of the first-party packages."""
    return name.split(".")[0] in PACKAGES


def is_within(name: str, prefixes: Iterable[str]) -> bool:
    """Whether ``name`` is one of ``prefixes`` or a module inside one of them."""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def layer_of(name: str, is_package: bool) -> str | None:
    """The layer of module ``name`` in :data:`LAYER_OF`, or None when it has none."""
    if is_package and f"{name}.__init__" in LAYER_OF:
        return LAYER_OF[f"{name}.__init__"]
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        layer = LAYER_OF.get(".".join(parts[:end]))
        if layer is not None:
            return layer
    return None


def runtime_graph(imports: Iterable[Import], modules: Iterable[str]) -> dict[str, dict[str, int]]:
    """importer -> first-party module it imports at run time -> line of the first import."""
    modules = set(modules)
    graph: dict[str, dict[str, int]] = {name: {} for name in sorted(modules)}
    for imp in imports:
        # A module importing a name of its own package's __init__ is not a cycle.
        if imp.type_checking or imp.target not in modules or imp.target == imp.importer:
            continue
        graph[imp.importer].setdefault(imp.target, imp.line)
    return graph


def strongly_connected_components(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively; components in no particular order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(graph.get(start, ())))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for nxt in successors:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(graph.get(nxt, ()))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return components


def shortest_cycle(start: str, graph: Mapping[str, Iterable[str]]) -> list[str] | None:
    """The shortest path ``start -> ... -> start`` (breadth first), or None."""
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in graph.get(node, ()):
            if nxt == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if nxt not in previous:
                previous[nxt] = node
                queue.append(nxt)
    return None


def import_cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """For every module on a cycle, the shortest cycle through it, without repeats.

    Each cycle is rotated to start at its smallest module name.
    """
    cycles: set[tuple[str, ...]] = set()
    for component in strongly_connected_components(graph):
        if len(component) < 2:
            continue
        inside = {n: [m for m in graph[n] if m in component] for n in component}
        for node in component:
            cycle = shortest_cycle(node, inside)
            if cycle is not None:
                ring = cycle[:-1]
                first = ring.index(min(ring))
                ring = ring[first:] + ring[:first]
                cycles.add((*ring, ring[0]))
    return [list(c) for c in sorted(cycles)]


def comment_lines(source: str) -> set[int]:
    """Line numbers (1-based) that carry a ``#`` comment."""
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {tok.start[0] for tok in tokens if tok.type == tokenize.COMMENT}


def is_explained(
    imp: Import, lines: Sequence[str], comments: set[int], import_lines: set[int]
) -> bool:
    """Whether the import has a comment on its own line(s) or on the line just above.

    ``import_lines`` are the lines of the file's import statements: the climb
    to the line above skips the imports (and the blank lines between their
    groups) directly above, so one comment can explain a block of imports.
    """
    if any(n in comments for n in range(imp.line, imp.end_line + 1)):
        return True
    above = imp.line - 1
    while above >= 1 and (
        above in import_lines or (not lines[above - 1].strip() and above - 1 in import_lines)
    ):
        above -= 1
    return above in comments and lines[above - 1].lstrip().startswith("#")


def is_heavy_or_first_party(target: str) -> bool:
    """Whether a function-local import of ``target`` needs a comment."""
    return is_first_party(target) or target.split(".")[0] in HEAVY


def unexplained_local_imports(imports: Sequence[Import], source: str) -> list[Import]:
    """The function-local imports of first-party or heavy modules no comment explains.

    ``imports`` are those of the one file whose text is ``source``.
    """
    lines = source.splitlines()
    comments = comment_lines(source)
    import_lines = {n for imp in imports for n in range(imp.line, imp.end_line + 1)}
    return [
        imp
        for imp in imports
        if imp.in_function
        and is_heavy_or_first_party(imp.target)
        and not is_explained(imp, lines, comments, import_lines)
    ]


def module_layer(name: str, modules: Mapping[str, Module]) -> str | None:
    """:func:`layer_of` for a module of the tree, or for a name it does not have."""
    module = modules.get(name)
    return layer_of(name, module is not None and module.is_package)


def layer_violations(imports: Iterable[Import], modules: Mapping[str, Module]) -> list[str]:
    """``file:line importer (layer) imports target (layer)`` for each import MAY_IMPORT denies.

    Importers in no layer are left to the list of unknown modules; a target in
    no layer (a module that does not exist, or a new one) is a violation.
    """
    found = []
    for imp in imports:
        source = module_layer(imp.importer, modules)
        if source is None or not is_first_party(imp.target):
            continue
        target = module_layer(imp.target, modules)
        if target not in MAY_IMPORT[source]:
            found.append(
                f"{_location(modules, imp)} {imp.importer} ({source}) imports "
                f"{imp.target} ({target or 'no layer'})"
            )
    return found


def _location(modules: Mapping[str, Module], imp: Import) -> str:
    return f"{modules[imp.importer].where}:{imp.line}"


# --- The tree under test -----------------------------------------------------


@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    return discover_modules()


@pytest.fixture(scope="module")
def imports(modules: dict[str, Module]) -> list[Import]:
    return [imp for m in modules.values() for imp in parse_imports(m, modules)]


# --- The rules ---------------------------------------------------------------


def test_no_import_cycles(modules: dict[str, Module], imports: list[Import]) -> None:
    # Prepare
    graph = runtime_graph(imports, modules)

    # Execute
    cycles = import_cycles(graph)

    # Assert
    described = [
        " -> ".join(cycle)
        + "  ("
        + ", ".join(f"{modules[a].where}:{graph[a][b]}" for a, b in itertools.pairwise(cycle))
        + ")"
        for cycle in cycles
    ]
    assert not cycles, "import cycles (module-level or function-local):\n" + "\n".join(described)


def test_only_the_flower_layer_imports_flwr(imports: list[Import]) -> None:
    # Execute
    offenders = [
        f"{imp.importer}:{imp.line}"
        for imp in imports
        if not imp.type_checking
        and imp.target.split(".")[0] == "flwr"
        and not is_within(imp.importer, FLWR_ALLOWED)
    ]

    # Assert
    assert not offenders, (
        f"flwr imported at run time outside {', '.join(FLWR_ALLOWED)}:\n" + "\n".join(offenders)
    )


def test_the_layer_table_points_one_way() -> None:
    # Execute
    upward = [
        f"{layer} (rank {RANK[layer]}) may import {dep} (rank {RANK[dep]})"
        for layer, deps in MAY_IMPORT.items()
        for dep in sorted(deps)
        if RANK[dep] > RANK[layer]
    ]
    unranked = (set(LAYER_OF.values()) | set(MAY_IMPORT)) ^ set(RANK)

    # Assert
    assert not unranked, f"layers missing from RANK or MAY_IMPORT: {sorted(unranked)}"
    assert not upward, "\n".join(upward)


def test_layers_point_one_way(modules: dict[str, Module], imports: list[Import]) -> None:
    # Execute
    unknown = sorted(m.where for m in modules.values() if module_layer(m.name, modules) is None)
    violations = layer_violations(imports, modules)

    # Assert
    problems = []
    if unknown:
        problems.append("modules in no layer (add them to LAYER_OF):\n" + "\n".join(unknown))
    if violations:
        problems.append("imports against the layers (MAY_IMPORT):\n" + "\n".join(violations))
    assert not problems, "\n\n".join(problems)


def test_function_local_imports_are_explained(
    modules: dict[str, Module], imports: list[Import]
) -> None:
    # Prepare
    by_module: dict[str, list[Import]] = {name: [] for name in modules}
    for imp in imports:
        by_module[imp.importer].append(imp)

    # Execute
    offenders = [
        _location(modules, imp)
        for name, module in modules.items()
        for imp in unexplained_local_imports(
            by_module[name], module.path.read_text(encoding="utf-8")
        )
    ]

    # Assert
    assert not offenders, (
        "function-local imports of first-party or heavy modules without a comment saying "
        "why they are local:\n" + "\n".join(dict.fromkeys(offenders))
    )


# --- The helpers, on small cases -------------------------------------------------


def test_cycles_are_found_and_told_as_chains() -> None:
    # Prepare
    graph = {"a": ["b"], "b": ["c", "a"], "c": ["b"], "d": ["a"]}

    # Execute
    cycles = import_cycles(graph)

    # Assert
    assert cycles == [["a", "b", "a"], ["b", "c", "b"]]


def test_from_package_import_submodule_is_an_edge_to_the_submodule(tmp_path: Path) -> None:
    # Prepare
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "from . import sub, NAME\n"
        "if TYPE_CHECKING:\n"
        "    import flwr\n"
        "def f():\n"
        "    import fedapp.x.y\n",
        encoding="utf-8",
    )
    module = Module("fedapp.x.m", source, is_package=False, where="m.py")

    # Execute
    found = parse_imports(module, {"fedapp.x", "fedapp.x.sub", "fedapp.x.m", "fedapp.x.y"})

    # Assert
    assert [(i.target, i.in_function, i.type_checking) for i in found] == [
        ("typing", False, False),
        ("fedapp.x.sub", False, False),
        ("fedapp.x", False, False),
        ("flwr", False, True),
        ("fedapp.x.y", True, False),
    ]


@pytest.mark.parametrize(
    ("name", "is_package", "layer"),
    [
        ("fedapp", True, "base"),
        ("fedapp.settings.config", False, "settings"),
        ("fedapp.flower", True, "flower"),
        ("fedapp_ui.app_pages.run", False, "ui"),
        ("fedapp.config", False, None),
    ],
)
def test_a_module_takes_the_layer_of_its_longest_listed_prefix(
    name: str, is_package: bool, layer: str | None
) -> None:
    # Execute / Assert
    assert layer_of(name, is_package) == layer


def test_a_comment_just_above_explains_a_block_of_imports(tmp_path: Path) -> None:
    # Prepare
    source = (
        "def f():\n"
        "    x = 1\n"
        "    import pandas\n"
        "    # TensorFlow takes seconds to import; only this command needs it.\n"
        "    import keras\n"
        "\n"
        "    from fedapp import data\n"
        "    y = 2\n"
        "    import ray  # only here\n"
        "    import json\n"
    )
    path = tmp_path / "m.py"
    path.write_text(source, encoding="utf-8")
    imports = parse_imports(Module("fedapp.m", path, False, "m.py"), {"fedapp.data"})

    # Execute
    unexplained = unexplained_local_imports(imports, source)

    # Assert
    assert [imp.target for imp in unexplained] == ["pandas"]
