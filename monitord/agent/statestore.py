"""The agent's SQLite file under state_dir: check states, heal runs, maintenance windows,
and the outbox's tables (``agent/outbox.py`` writes them on this same connection).

One file, so that a check's state and the event of the same transition are written in
one transaction (``Outbox.put(event, states)``): no kill can separate them. The daemon
and the ``monitord maintenance`` command share the file (WAL mode, a busy timeout), so a
maintenance window set from the shell is seen by the next decision.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ParamSpec, TypeVar

from monitord.agent.state import CheckState
from monitord.errors import StateError
from monitord.probes.base import CheckBase
from monitord.sqlitefile import connect, immediate

SCHEMA_VERSION = 3
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS check_state (
        name TEXT PRIMARY KEY,
        data TEXT NOT NULL,
        updated_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS heal_run (
        check_name TEXT NOT NULL,
        at REAL NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS heal_run_by_check ON heal_run (check_name, at)",
    """CREATE TABLE IF NOT EXISTS maintenance (
        scope TEXT PRIMARY KEY,          -- a check name, or '*' for the whole host
        until REAL NOT NULL,
        reason TEXT NOT NULL,
        owner TEXT NOT NULL,
        set_at REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        size INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS dead_letter (
        seq INTEGER PRIMARY KEY,         -- the event's place in the outbox, kept
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        answer TEXT NOT NULL,            -- what the store said when it refused it
        at REAL NOT NULL)""",
)
HOST_SCOPE = "*"
SET_WINDOW = """INSERT INTO maintenance (scope, until, reason, owner, set_at)
    VALUES (:scope, :until, :reason, :owner, :set_at)
    ON CONFLICT (scope) DO UPDATE SET until = excluded.until, reason = excluded.reason,
        owner = excluded.owner, set_at = excluded.set_at"""
END_WINDOW = "DELETE FROM maintenance WHERE scope = :scope"
SAVE_STATE = """INSERT INTO check_state (name, data, updated_at) VALUES (:name, :data, :now)
    ON CONFLICT (name) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at"""

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class Maintenance:
    scope: str
    until: float
    reason: str
    owner: str
    set_at: float

    @property
    def what(self) -> str:
        return "the whole host" if self.scope == HOST_SCOPE else f"check {self.scope}"


def _locked(method: Callable[P, R]) -> Callable[P, R]:
    """Serialise calls: the daemon calls from several worker threads on one connection."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with args[0]._lock:  # type: ignore[attr-defined]
            return method(*args, **kwargs)

    return wrapper


class StateStore:
    """A small SQLite file; every method blocks, so the daemon runs them off its loop."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        # FULL: a committed outbox row must survive a power cut.
        self._db = connect(path, "the state file", synchronous="FULL", busy_seconds=10.0)
        try:
            self._migrate()
        except sqlite3.Error as e:
            self._db.close()
            raise StateError(f"cannot open the state file {path}: {e}") from None

    def _migrate(self) -> None:
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise StateError(f"{self.path} was written by a newer monitord (schema {version})")
        if version == SCHEMA_VERSION:
            return          # nothing written: a full disk can still be read (and told so)
        for statement in SCHEMA:
            self._db.execute(statement)
        self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _write(self, sql: str, rows: list[dict[str, object]]) -> None:
        try:
            with immediate(self._db):
                self._db.executemany(sql, rows)
        except sqlite3.Error as e:
            raise StateError(f"cannot write the state file {self.path}: {e}") from None

    # --- check states ---------------------------------------------------------------

    @_locked
    def load(self) -> dict[str, CheckState]:
        rows = self._db.execute("SELECT name, data FROM check_state").fetchall()
        states = {}
        for name, data in rows:
            try:
                states[name] = CheckState.from_dict(json.loads(data))
            except (ValueError, TypeError):
                continue  # an unreadable row is dropped: the check starts afresh
        return states

    @_locked
    def save(self, states: list[CheckState], now: float) -> None:
        self._write(SAVE_STATE, state_rows(states, now))

    @_locked
    def forget(self, keep: set[str]) -> None:
        """Drop the state of checks no longer configured."""
        names = [r[0] for r in self._db.execute("SELECT name FROM check_state")]
        gone: list[dict[str, object]] = [{"name": n} for n in names if n not in keep]
        self._write("DELETE FROM check_state WHERE name = :name", gone)

    # --- heal budget ----------------------------------------------------------------

    @_locked
    def heal_runs_since(self, check: str, since: float) -> list[float]:
        rows = self._db.execute(
            "SELECT at FROM heal_run WHERE check_name = :check AND at >= :since ORDER BY at",
            {"check": check, "since": since},
        )
        return [r[0] for r in rows]

    @_locked
    def record_heal_run(self, check: str, at: float, keep_since: float) -> None:
        """Count a ladder run, and drop runs too old to matter to any budget."""
        self._write("INSERT INTO heal_run (check_name, at) VALUES (:check, :at)",
                    [{"check": check, "at": at}])
        self._write("DELETE FROM heal_run WHERE at < :since", [{"since": keep_since}])

    # --- maintenance ----------------------------------------------------------------

    @_locked
    def set_maintenance(self, window: Maintenance) -> None:
        """Set a window alone (the store is not told: ``Outbox.put_window`` does both)."""
        self._write(SET_WINDOW, [window_row(window)])

    @_locked
    def end_maintenance(self, scope: str) -> bool:
        found = self._db.execute("SELECT 1 FROM maintenance WHERE scope = :scope",
                                 {"scope": scope}).fetchone()
        self._write(END_WINDOW, [{"scope": scope}])
        return found is not None

    @_locked
    def maintenance(self, now: float) -> list[Maintenance]:
        """Windows still running at ``now``. Expired ones are ignored, and kept until the
        daemon, starting, has told the store that they ended (``windows``, ``forget``)."""
        rows = self._db.execute(
            "SELECT scope, until, reason, owner, set_at FROM maintenance "
            "WHERE until > :now ORDER BY scope", {"now": now})
        return [Maintenance(*row) for row in rows]

    @_locked
    def windows(self) -> list[Maintenance]:
        """Every window in the file, running or expired."""
        rows = self._db.execute(
            "SELECT scope, until, reason, owner, set_at FROM maintenance ORDER BY scope")
        return [Maintenance(*row) for row in rows]

    @_locked
    def forget_window(self, window: Maintenance) -> None:
        """Drop an expired ``window`` (not one set again since with another end)."""
        self._write("DELETE FROM maintenance WHERE scope = :scope AND until = :until",
                    [{"scope": window.scope, "until": window.until}])

    def maintenance_of(self, check: str, now: float) -> Maintenance | None:
        """The window ``check`` is in at ``now`` (its own, or the whole host's), if any."""
        return next((w for w in self.maintenance(now) if w.scope in (check, HOST_SCOPE)),
                    None)

    @_locked
    def budgets_left(self, checks: Sequence[CheckBase], now: float) -> dict[str, int]:
        """Ladder runs each check may still make in its heal window."""
        return {c.name: max(c.heal_budget - len(self.heal_runs_since(
            c.name, now - c.heal_window)), 0) for c in checks}

    @property
    def connection(self) -> sqlite3.Connection:
        """The file's connection, for the outbox's tables; use it under ``lock``."""
        return self._db

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    @_locked
    def close(self) -> None:
        self._db.close()


def window_row(window: Maintenance) -> dict[str, object]:
    return {"scope": window.scope, "until": window.until, "reason": window.reason,
            "owner": window.owner, "set_at": window.set_at}


def state_rows(states: list[CheckState], now: float) -> list[dict[str, object]]:
    return [{"name": s.name, "data": json.dumps(s.to_dict()), "now": now} for s in states]
