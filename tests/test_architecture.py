"""The write side never imports the read side (ledger/ must stay correct when they break)."""

from __future__ import annotations

import ast
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


def test_test_module_basenames_are_unique() -> None:
    # pytest's default (prepend) import mode imports test modules by basename: two
    # tests/*/test_x.py files would break collection of the whole suite.
    names = [p.name for p in (ROOT / "tests").rglob("test_*.py")]
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)
