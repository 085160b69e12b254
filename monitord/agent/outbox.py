"""The outbox: events waiting for the store, in SQLite under state_dir, durable and bounded.

Every event is committed (WAL, ``synchronous=FULL``) before ``put`` returns, and a row is
deleted only after the store accepted it, so delivery is at-least-once across any crash,
SIGKILL included; the store applies each event id once. The outbox is bounded by rows,
bytes and a floor of free disk: when it is full, ``healed`` records are dropped first
(oldest first), then older heartbeats (only the newest one matters); ``problem`` and
``recovery`` events are never dropped, even past the bounds. What is dropped is logged
and counted.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path

from monitord.errors import OutboxError
from monitord.events import Event
from monitord.sqlitefile import connect, immediate

log = logging.getLogger(__name__)

SCHEMA = """CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    size INTEGER NOT NULL)"""
DROPPABLE = ("healed", "heartbeat")   # in the order they are dropped when full


@dataclass(frozen=True)
class Limits:
    max_rows: int = 100_000
    max_bytes: int = 64 * 2**20
    min_free_bytes: int = 100 * 2**20


@dataclass
class Counters:
    dropped: dict[str, int] = field(default_factory=dict)

    def count(self, kind: str, n: int) -> None:
        self.dropped[kind] = self.dropped.get(kind, 0) + n


class Outbox:
    """Blocking methods: the daemon calls them through ``asyncio.to_thread``."""

    def __init__(self, path: Path, limits: Limits | None = None) -> None:
        self.path = path
        self.limits = limits or Limits()
        self.counters = Counters()
        self._lock = threading.Lock()
        self._db = connect(path, "the outbox", error=OutboxError, synchronous="FULL",
                           busy_seconds=10.0)
        try:
            self._db.execute(SCHEMA)
        except sqlite3.Error as e:
            self._db.close()
            raise OutboxError(f"cannot open the outbox {path}: {e}") from None

    def put(self, event: Event) -> None:
        """Store ``event`` durably, making room first if the outbox is full."""
        body = event.model_dump_json()
        with self._lock:
            try:
                with immediate(self._db):
                    if event.kind == "heartbeat":  # only the newest heartbeat matters
                        self._db.execute("DELETE FROM outbox WHERE kind = 'heartbeat'")
                    if self._make_room(event.kind, len(body)):
                        self._db.execute(
                            "INSERT INTO outbox (kind, body, size) "
                            "VALUES (:kind, :body, :size)",
                            {"kind": event.kind, "body": body, "size": len(body)},
                        )
            except sqlite3.Error as e:
                raise OutboxError(f"cannot write to the outbox {self.path}: {e}") from None

    def _make_room(self, incoming_kind: str, incoming: int) -> bool:
        """Drop what may be dropped until ``incoming`` bytes fit; False to refuse it."""
        for kind in DROPPABLE:
            while self._over(incoming):
                row = self._db.execute(
                    "SELECT seq FROM outbox WHERE kind = :kind ORDER BY seq LIMIT 1",
                    {"kind": kind}).fetchone()
                if row is None:
                    break
                self._db.execute("DELETE FROM outbox WHERE seq = :seq", {"seq": row[0]})
                self.counters.count(kind, 1)
                log.warning("outbox full (%s): dropped a %s event", self._why_full(incoming),
                            kind)
        why = self._why_full(incoming)
        if not why:
            return True
        if incoming_kind in DROPPABLE:
            self.counters.count(incoming_kind, 1)
            log.warning("outbox full (%s): dropped a new %s event", why, incoming_kind)
            return False
        log.warning("outbox full (%s) with only problems and recoveries; keeping them", why)
        return True

    def _over(self, incoming: int) -> bool:
        return bool(self._why_full(incoming))

    def _why_full(self, incoming: int) -> str:
        rows, size = self._db.execute(
            "SELECT count(*), coalesce(sum(size), 0) FROM outbox").fetchone()
        if rows + 1 > self.limits.max_rows:
            return f"{rows} rows, limit {self.limits.max_rows}"
        if size + incoming > self.limits.max_bytes:
            return f"{size} bytes, limit {self.limits.max_bytes}"
        free = _free_bytes(self.path.parent)
        if free is not None and free - incoming < self.limits.min_free_bytes:
            return f"{free} bytes free on disk, floor {self.limits.min_free_bytes}"
        return ""

    def peek(self, limit: int) -> list[tuple[int, Event]]:
        """The oldest ``limit`` events, with their sequence numbers."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, body FROM outbox ORDER BY seq LIMIT :limit", {"limit": limit}
            ).fetchall()
        events, unreadable = [], []
        for seq, body in rows:
            try:
                events.append((seq, Event.model_validate_json(body)))
            except ValueError as e:  # written by another version, or damaged: cannot be sent
                log.error("outbox: dropping unreadable event #%d: %s", seq, str(e)[:200])
                unreadable.append(seq)
        if unreadable:
            self.counters.count("unreadable", len(unreadable))
            self.remove(unreadable)
        return events

    def remove(self, seqs: list[int]) -> None:
        """Forget events the store accepted."""
        with self._lock:
            try:
                with immediate(self._db):
                    self._db.executemany("DELETE FROM outbox WHERE seq = :seq",
                                         [{"seq": s} for s in seqs])
            except sqlite3.Error as e:
                raise OutboxError(f"cannot write to the outbox {self.path}: {e}") from None

    def depth(self) -> int:
        with self._lock:
            (rows,) = self._db.execute("SELECT count(*) FROM outbox").fetchone()
        return int(rows)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _free_bytes(directory: Path) -> int | None:
    try:
        st = os.statvfs(directory)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize
