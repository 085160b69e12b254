"""The last good discovery, kept in the state directory: a broken web server config, or a
restart during one, keeps the set of sites that was watched.

Beside the sites it keeps the names of the sites the last change removed, so that the
checks they had are retired with the right words ("site removed from the web server").
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from monitord.discover.model import Discovery

FILE = "discovered.json"
MAX_BYTES = 256 * 2**20


def path_in(state_dir: str) -> Path:
    return Path(state_dir) / FILE


def load(state_dir: str) -> tuple[Discovery | None, list[str]]:
    """The last good discovery and the sites its change removed; (None, []) if there is
    none or it cannot be read (discovery then starts afresh)."""
    try:
        with open(path_in(state_dir), "rb") as f:
            data = json.loads(f.read(MAX_BYTES))
        return Discovery.from_json(data["discovery"]), list(data.get("removed", []))
    except (OSError, ValueError, KeyError, TypeError):
        return None, []


def save(state_dir: str, found: Discovery, removed: list[str]) -> None:
    """Replace the kept discovery atomically (a crash leaves the old one or the new one)."""
    target = path_in(state_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".tmp")
    with open(temporary, "w", encoding="utf-8") as f:
        json.dump({"discovery": found.to_json(), "removed": removed}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, target)
