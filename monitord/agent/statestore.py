"""Check state kept in SQLite under state_dir, so a restart resumes where it stopped."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from monitord.agent.state import CheckState
from monitord.errors import StateError

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS check_state (
    name TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    updated_at REAL NOT NULL
)
"""


class StateStore:
    """A small SQLite file; every method blocks, so callers run them off the event loop."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except OSError as e:
            raise StateError(f"cannot open the state file {path}: {e.strerror}") from None
        except sqlite3.Error as e:
            raise StateError(f"cannot open the state file {path}: {e}") from None

    def _migrate(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise StateError(f"{self.path} was written by a newer monitord (schema {version})")
        self._db.execute(SCHEMA)
        self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def load(self) -> dict[str, CheckState]:
        rows = self._db.execute("SELECT name, data FROM check_state").fetchall()
        states = {}
        for name, data in rows:
            try:
                states[name] = CheckState.from_dict(json.loads(data))
            except (ValueError, TypeError):
                continue  # an unreadable row is dropped: the check starts afresh
        return states

    def save(self, states: list[CheckState], now: float) -> None:
        rows = [{"name": s.name, "data": json.dumps(s.to_dict()), "now": now} for s in states]
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT INTO check_state (name, data, updated_at) VALUES (:name, :data, :now) "
                "ON CONFLICT (name) DO UPDATE SET data = excluded.data, "
                "updated_at = excluded.updated_at",
                rows,
            )
            self._db.execute("COMMIT")
        except sqlite3.Error as e:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise StateError(f"cannot write the state file {self.path}: {e}") from None

    def forget(self, keep: set[str]) -> None:
        """Drop the state of checks no longer configured."""
        names = [r[0] for r in self._db.execute("SELECT name FROM check_state")]
        gone = [{"name": n} for n in names if n not in keep]
        self._db.executemany("DELETE FROM check_state WHERE name = :name", gone)

    def close(self) -> None:
        self._db.close()
