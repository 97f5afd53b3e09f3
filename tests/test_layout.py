"""The package's layout, read from its imports: subpackages by job in layers, imports running one way (from
the command line down to models and data), no circles, and no flat modules but the few named here."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "unetskip"
# Top to bottom: a unit may import units of lower layers only (and itself).
LAYERS = (
    ("unetskip.__main__",),
    ("unetskip.ablation", "unetskip.bench", "unetskip.evaluate"),
    ("unetskip.cli",),
    ("unetskip.deploy",),
    ("unetskip.training",),
    ("unetskip.predict", "unetskip.runs"),
    ("unetskip.data", "unetskip.models", "unetskip.compat", "unetskip"),
)
FLAT_MODULES = {"__init__.py", "__main__.py", "compat.py"}
MAX_LAYERS = 7


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that module `name` imports (relative imports resolved)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".")[: len(name.split(".")) - node.level + (path.name == "__init__.py")]
                base = ".".join([*parts, base] if base else parts)
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(name, path, set(found)) for name, path in found.items()}


def unit(name: str) -> str:
    """The subpackage a module belongs to (`unetskip.training.losses` -> `unetskip.training`), or the
    module itself at the top level."""
    parts = name.split(".")
    candidate = ".".join(parts[:2])
    return candidate if (PACKAGE / parts[1] if len(parts) > 1 else PACKAGE).is_dir() else name


def layer_of(name: str) -> int:
    return next(index for index, units in enumerate(LAYERS) if unit(name) in units)


def test_every_module_is_in_a_named_layer():
    unplaced = sorted(name for name in modules() if not any(unit(name) in units for units in LAYERS))
    assert not unplaced


def test_imports_go_down_the_layers_only():
    upward = [
        f"{source} -> {target}"
        for source, targets in graph().items()
        for target in targets
        if unit(source) != unit(target) and layer_of(target) <= layer_of(source)
    ]
    assert not upward


def test_no_import_circles():
    edges = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    circles = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(edges[name]):
            if state.get(target) == 1:
                circles.append(" -> ".join([*path[path.index(target) :], target]))
            elif target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(edges):
        if name not in state:
            visit(name, [name])
    assert not circles


def test_the_unit_graph_is_at_most_seven_layers_tall():
    edges: dict[str, set[str]] = {}
    for source, targets in graph().items():
        edges.setdefault(unit(source), set()).update(unit(t) for t in targets if unit(t) != unit(source))
    depth: dict[str, int] = {}

    def height(name: str) -> int:
        if name not in depth:
            depth[name] = 1 + max((height(target) for target in edges.get(name, ())), default=0)
        return depth[name]

    assert max(map(height, edges)) <= MAX_LAYERS


def test_only_the_named_modules_sit_at_the_top_level():
    assert {path.name for path in PACKAGE.glob("*.py")} == FLAT_MODULES
