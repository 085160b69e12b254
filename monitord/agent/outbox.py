"""The outbox: events waiting for the store, durable, bounded, and never lost to a full disk.

Events live in the agent's state file (``statestore``), so the event of a transition and
the check state that made it are written in one transaction (``put(event, states)``).
Every event is committed (WAL, ``synchronous=FULL``) before ``put`` returns, and a row is
deleted only after the store accepted it: delivery is at-least-once across any crash,
SIGKILL included; the store applies each event id once.

Bounded by rows, bytes and a floor of free disk: when it is full, ``healed`` records are
dropped first (oldest first); problems, recoveries, maintenance and stop events are never
dropped, even past the bounds. Heartbeats never touch the disk: only the newest matters,
so it waits in memory. A problem or recovery that cannot be written (a full disk, a
failing file) waits in memory too (at most ``MAX_IN_MEMORY``, counted), is written again
at each ``put`` and ``peek``, and is handed to delivery meanwhile, so it reaches the store
as soon as the store answers, disk or no disk.

An event the store refuses for good is moved to ``dead_letter`` with the store's answer
(``bury``), where a person can read it; everything behind it goes on.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from monitord.agent.state import CheckState
from monitord.agent.statestore import (
    END_WINDOW,
    SAVE_STATE,
    SET_WINDOW,
    Maintenance,
    StateStore,
    state_rows,
    window_row,
)
from monitord.errors import OutboxError
from monitord.events import Event
from monitord.sqlitefile import immediate

log = logging.getLogger(__name__)

DROPPABLE = ("healed",)            # what may be dropped when the outbox is full
MAX_IN_MEMORY = 10_000             # events kept in memory while they cannot be written
MEMORY_SEQ = -1                    # memory events get seq numbers below zero
HEARTBEAT_SEQ = 0


@dataclass(frozen=True)
class Limits:
    max_rows: int = 100_000
    max_bytes: int = 64 * 2**20
    min_free_bytes: int = 100 * 2**20


@dataclass
class Counters:
    dropped: dict[str, int] = field(default_factory=dict)
    in_memory: int = 0             # events kept in memory because the disk refused them
    dead: int = 0                  # events the store refused for good

    def count(self, kind: str, n: int) -> None:
        self.dropped[kind] = self.dropped.get(kind, 0) + n


class Outbox:
    """Blocking methods: the daemon calls them through ``asyncio.to_thread``."""

    def __init__(self, store: StateStore | Path, limits: Limits | None = None) -> None:
        self._owned = not isinstance(store, StateStore)
        self.states = store if isinstance(store, StateStore) else StateStore(store)
        self.path = self.states.path
        self.limits = limits or Limits()
        self.counters = Counters()
        self._lock = self.states.lock
        self._db = self.states.connection
        self._memory: list[tuple[int, Event]] = []
        self._next_memory = MEMORY_SEQ
        self._heartbeat: Event | None = None

    def put(self, event: Event, states: list[CheckState] | None = None,
            now: float = 0.0) -> bool:
        """Keep ``event`` (and the ``states`` of the same transition) durably: True when
        both are on disk. What the disk refuses waits in memory (the states then stay the
        caller's to save). Raises OutboxError only for an event that may be dropped
        (healed) and could not be written."""
        if event.kind == "heartbeat":
            self._heartbeat = event           # only the newest matters; never on disk
            return True
        with self._lock:
            self._write_memory()
            try:
                if self._memory:             # older events wait: keep the order
                    raise sqlite3.OperationalError("older events still wait in memory")
                self._insert(event, states or [], now)
                return True
            except sqlite3.Error as e:
                if event.kind in DROPPABLE:
                    raise OutboxError(f"cannot write to the outbox {self.path}: {e}") from None
                self._keep_in_memory(event, str(e))
                return False

    def put_window(self, event: Event, window: Maintenance | None, scope: str) -> bool:
        """Set ``window`` (or, with None, end ``scope``'s) and put its ``maintenance``
        event in the outbox in one transaction: both are written, or neither. False when
        there was no window of ``scope`` to end (nothing is written). Raises OutboxError
        when the file refuses the write (a full or read-only disk): then nothing changed,
        so the store is never left with a window the host no longer has."""
        with self._lock:
            try:
                with immediate(self._db):
                    if window is not None:
                        self._db.execute(SET_WINDOW, window_row(window))
                    elif not self._db.execute(END_WINDOW, {"scope": scope}).rowcount:
                        return False
                    # Never dropped, and small: no room to make (deleting rows frees no
                    # disk within the transaction anyway).
                    self._row(event, event.model_dump_json())
            except sqlite3.Error as e:
                raise OutboxError(f"cannot write the state file {self.path}: {e}") from None
        return True

    def _insert(self, event: Event, states: list[CheckState], now: float) -> None:
        with immediate(self._db):
            self._add(event)
            if states:
                self._db.executemany(SAVE_STATE, state_rows(states, now))

    def _add(self, event: Event) -> None:
        """The event's row, in the caller's transaction (unless it is dropped for room)."""
        body = event.model_dump_json()
        if self._make_room(event.kind, len(body)):
            self._row(event, body)

    def _row(self, event: Event, body: str) -> None:
        self._db.execute("INSERT INTO outbox (kind, body, size) VALUES (:kind, :body, :size)",
                         {"kind": event.kind, "body": body, "size": len(body)})

    def _keep_in_memory(self, event: Event, why: str) -> None:
        if len(self._memory) >= MAX_IN_MEMORY:
            self.counters.count(event.kind, 1)
            log.error("outbox: cannot write (%s) and %d events already wait in memory: "
                      "dropped a %s event", why, MAX_IN_MEMORY, event.kind)
            return
        if not self._memory:
            log.error("outbox: cannot write to %s (%s); events wait in memory and go to "
                      "the store directly until it can be written again", self.path, why)
        self._memory.append((self._next_memory, event))
        self._next_memory -= 1
        self.counters.in_memory += 1

    def _write_memory(self) -> None:
        """Move the events waiting in memory to the disk, in order, as far as it goes."""
        while self._memory:
            _, event = self._memory[0]
            try:
                self._insert(event, [], 0.0)
            except sqlite3.Error:
                return
            self._memory.pop(0)
            if not self._memory:
                log.info("outbox: %s can be written again; the events that waited in "
                         "memory are on disk", self.path)

    def _make_room(self, incoming_kind: str, incoming: int) -> bool:
        """Drop what may be dropped until ``incoming`` bytes fit; False to refuse it."""
        for kind in DROPPABLE:
            while self._why_full(incoming):
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
        log.warning("outbox full (%s) with only events that are never dropped; keeping "
                    "them", why)
        return True

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
        """The oldest ``limit`` events with their sequence numbers: the disk's rows, then
        those waiting in memory, then the newest heartbeat."""
        with self._lock:
            self._write_memory()
            try:
                rows = self._db.execute(
                    "SELECT seq, body FROM outbox ORDER BY seq LIMIT :limit", {"limit": limit}
                ).fetchall()
            except sqlite3.Error as e:
                log.error("outbox: cannot read %s (%s); sending what waits in memory", self.path,
                          e)
                rows = []
        events = self._readable(rows)
        events += self._memory[: max(limit - len(events), 0)]
        if self._heartbeat is not None and len(events) < limit:
            events.append((HEARTBEAT_SEQ, self._heartbeat))
        return events

    def _readable(self, rows: list[tuple[int, str]]) -> list[tuple[int, Event]]:
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
        gone = set(seqs)
        if HEARTBEAT_SEQ in gone:
            self._heartbeat = None
        with self._lock:
            self._memory = [(seq, e) for seq, e in self._memory if seq not in gone]
            try:
                with immediate(self._db):
                    self._db.executemany("DELETE FROM outbox WHERE seq = :seq",
                                         [{"seq": s} for s in seqs if s > 0])
            except sqlite3.Error as e:
                raise OutboxError(f"cannot write to the outbox {self.path}: {e}") from None

    def bury(self, seq: int, event: Event, answer: str, now: float) -> None:
        """Move an event the store refused for good to the dead letters, with its answer."""
        self.counters.dead += 1
        with self._lock:
            self._memory = [(s, e) for s, e in self._memory if s != seq]
            try:
                with immediate(self._db):
                    self._db.execute(
                        "INSERT OR REPLACE INTO dead_letter (seq, kind, body, answer, at) "
                        "VALUES (:seq, :kind, :body, :answer, :at)",
                        {"seq": seq, "kind": event.kind, "body": event.model_dump_json(),
                         "answer": answer[:2000], "at": now})
                    self._db.execute("DELETE FROM outbox WHERE seq = :seq", {"seq": seq})
            except sqlite3.Error as e:
                raise OutboxError(f"cannot write to the outbox {self.path}: {e}") from None

    def dead_letters(self) -> list[tuple[Event, str]]:
        """The events the store refused, with its answers, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT body, answer FROM dead_letter ORDER BY seq").fetchall()
        return [(Event.model_validate_json(body), answer) for body, answer in rows]

    def depth(self) -> int:
        with self._lock:
            try:
                (rows,) = self._db.execute("SELECT count(*) FROM outbox").fetchone()
            except sqlite3.Error:
                rows = 0
        return int(rows) + len(self._memory)

    def close(self) -> None:
        if self._owned:
            self.states.close()


def _free_bytes(directory: Path) -> int | None:
    try:
        st = os.statvfs(directory)
    except OSError:
        return None
    return st.f_bavail * st.f_frsize


def migrate_outbox(old: Path, outbox: Outbox) -> int:
    """Move the events of an outbox file of an earlier version (its own ``outbox.db``)
    into ``outbox``, in order, then remove that file; how many were moved."""
    if not old.exists():
        return 0
    try:
        with contextlib.closing(sqlite3.connect(old, timeout=10.0)) as db:
            rows = db.execute("SELECT body FROM outbox ORDER BY seq").fetchall()
    except sqlite3.Error as e:
        log.error("outbox: cannot read the earlier outbox %s (%s); it is left where it is",
                  old, e)
        return 0
    for (body,) in rows:
        try:
            outbox.put(Event.model_validate_json(body))
        except ValueError as e:
            log.error("outbox: an event of %s is unreadable (%s); dropped", old, str(e)[:200])
    for suffix in ("", "-wal", "-shm"):
        Path(f"{old}{suffix}").unlink(missing_ok=True)
    log.info("outbox: %d events moved from %s into %s", len(rows), old, outbox.path)
    return len(rows)
