"""The write side never imports the read side (ledger/ must stay correct when they break)."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("projections", "api")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_ledger_never_imports_the_read_side() -> None:
    offenders = []
    files = sorted((ROOT / "ledger").rglob("*.py"))
    assert len(files) > 10
    for path in files:
        for name in imported_modules(path):
            if name.split(".")[0] in FORBIDDEN:
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offenders, offenders


def test_projections_never_import_the_api() -> None:
    offenders = [
        f"{p.relative_to(ROOT)} imports {n}"
        for p in sorted((ROOT / "projections").rglob("*.py"))
        for n in imported_modules(p)
        if n.split(".")[0] == "api"
    ]
    assert not offenders, offenders


def ledger_import_graph() -> dict[str, set[str]]:
    """Module -> the ledger modules it imports, counting imports inside functions too: a
    lazy import only postpones a cycle, it does not remove it."""
    modules: dict[str, Path] = {}
    for path in sorted((ROOT / "ledger").rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # ``from ledger.log import kafka`` imports a module, ``from x import f`` not
                targets.add(node.module)
                targets.update(f"{node.module}.{alias.name}" for alias in node.names)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def test_ledger_has_no_import_cycle() -> None:
    graph = ledger_import_graph()
    assert "ledger.findings" in graph["ledger.bundle_check"]  # the graph sees real imports
    try:
        list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        raise AssertionError(f"import cycle in ledger/: {' -> '.join(exc.args[1])}") from None


def test_test_module_basenames_are_unique() -> None:
    # pytest's default (prepend) import mode imports test modules by basename: two
    # tests/*/test_x.py files would break collection of the whole suite.
    names = [p.name for p in (ROOT / "tests").rglob("test_*.py")]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
