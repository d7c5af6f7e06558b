"""Storage sits at the bottom of the one-way flow: it imports nothing from the layers above it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

STORAGE = Path(__file__).resolve().parents[2] / "storage"


def _imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", sorted(STORAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(STORAGE)))
def test_no_storage_module_imports_the_sidecar_package(path: Path) -> None:
    assert [name for name in _imported_modules(path) if name.split(".")[0] == "sidecar"] == []
