"""The on-call code shares only public names: no module of it imports a name with a leading
underscore from another module (a private helper is its own module's to change)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "monitord"
ON_CALL = sorted([
    *(ROOT / "central" / "oncall").glob("*.py"),
    *(ROOT / "central" / "notify" / name for name in ("people.py", "rotation.py",
                                                        "pagerduty.py", "settings.py"
                                                        )),
    *(ROOT / "store").glob("people*.py"),
    ROOT / "central" / "console" / "oncall.py",
])


def private_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    return [f"{node.module}.{alias.name}" for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom)
            for alias in node.names if alias.name.startswith("_") and alias.name != "__future__"]


@pytest.mark.parametrize("path", ON_CALL, ids=lambda p: str(p.relative_to(ROOT)))
def test_on_call_modules_import_no_private_names(path: Path) -> None:
    assert path.exists()
    assert private_imports(path) == []
