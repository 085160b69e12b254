"""The store's versioned schema files, which both backends apply in order as they open."""

from __future__ import annotations

import re
from importlib import resources

from monitord.errors import StoreError


def schema_files(backend: str) -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of ``schema/BACKEND/NNN_name.sql``, oldest first."""
    folder = resources.files("monitord.store") / "schema" / backend
    found = []
    for item in folder.iterdir():
        match = re.fullmatch(r"(\d+)_\w+\.sql", item.name)
        if match:
            found.append((int(match[1]), item.name, item.read_text(encoding="utf-8")))
    if not found:
        raise StoreError(f"no schema files in {folder}; the monitord install is incomplete")
    return sorted(found)
