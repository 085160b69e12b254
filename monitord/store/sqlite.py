"""The SQLite incident store: one file, one connection, one worker thread.

Open it from the event loop with ``store = await SQLiteStore.open(path, policy)``: that
creates the file and applies the schema off the loop. ``SQLiteStore(path, policy)`` does
the same work blocking, for callers that are not on a loop. Every method then runs its
SQL on the store's own thread under a deadline (``timeout_seconds``), so a slow disk
delays only the caller, and the connection is never used by two threads at once. The
file is in WAL mode with ``synchronous=FULL``: an applied batch survives a power cut,
and a reader (``monitord incidents``) never waits for the writer.

The schema is ``schema/sqlite/NNN_name.sql``, applied in order, each file in one
transaction; ``PRAGMA user_version`` holds the number of the last one applied. Times are
stored as UTC epoch seconds (REAL) and come back as timezone-aware datetimes.

Where the rules in ``store.py`` leave a choice, this store:

- takes its clock from the ``now`` each call is given (opened, seen, due and heartbeat
  times); a timeline entry made from an event carries the event's own ``at``;
- never lowers a priority or changes a title on a repeat; a reopened incident takes the
  new problem's priority and a due time counted from the reopening;
- counts a host as down from the sweep that found it silent until its next heartbeat
  (``down_since``), so one outage opens one incident, even if a person resolves it early;
- reads an empty ``status`` or ``priority`` filter as "any".

Errors: NotFound and Conflict as the Protocol says; a file that cannot be opened, read or
written, or a call past its deadline, raises StoreError with the file's name.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

from monitord.durations import format_duration
from monitord.errors import Conflict, NotFound, StoreError
from monitord.events import Event
from monitord.model import Priority
from monitord.store.common import Trouble, event_text, ran, schema_files, server_down
from monitord.store.policy import Policy
from monitord.store.protocol import (
    SERVER_DOWN,
    ApplyReport,
    Escalation,
    HostInfo,
    Incident,
    IncidentStatus,
    Notice,
    TimelineEntry,
)

R = TypeVar("R")
MONITORD = "monitord"
BUSY_TIMEOUT_MS = 5000
PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
           f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}", "PRAGMA foreign_keys=ON")

# --- statements (plain SQL, named parameters) -------------------------------------------

CLAIM = """INSERT INTO event (id, kind, host, check_name, at, received_at)
    VALUES (:id, :kind, :host, :check, :at, :now) ON CONFLICT (id) DO NOTHING"""
NOTE_HOST = "INSERT INTO host (host) VALUES (:host) ON CONFLICT (host) DO NOTHING"
# The key's last incident, if resolved within the window, opens again.
REOPEN = """UPDATE incident SET status = 'open', priority = :priority, due_at = :due_at,
        acknowledged_at = NULL, acknowledged_by = NULL, resolved_at = NULL,
        resolved_by = NULL, reopened = reopened + 1, escalation_level = 0, notified_at = :now,
        reopened_at = :now
    WHERE id = (SELECT max(id) FROM incident WHERE key = :key)
      AND status = 'resolved' AND resolved_at > :since"""
RAISE_PRIORITY = """UPDATE incident SET priority = :priority, due_at = min(due_at, :due_at),
        notified_at = :now
    WHERE key = :key AND status != 'resolved' AND priority > :priority RETURNING due_at"""
# One open incident per key: the partial unique index is the upsert's target.
UPSERT = """INSERT INTO incident (key, host, check_name, priority, status, title, summary,
        opened_at, due_at, last_seen_at, count, notified_at)
    VALUES (:key, :host, :check, :priority, 'open', :title, :summary, :now, :due_at, :now, 1,
            :now)
    ON CONFLICT (key) WHERE status != 'resolved' DO UPDATE SET count = count + 1,
        last_seen_at = excluded.last_seen_at, summary = excluded.summary
    RETURNING id, count"""
OPEN_FOR_KEY = "SELECT id FROM incident WHERE key = :key AND status != 'resolved'"
RESOLVE_KEY = """UPDATE incident SET status = 'resolved', resolved_at = :now, resolved_by = :who
    WHERE key = :key AND status != 'resolved' RETURNING id"""
ATTACH = """INSERT INTO attached (incident_id, key) VALUES (:id, :key)
    ON CONFLICT (incident_id, key) DO NOTHING"""
ADD_ENTRY = """INSERT INTO timeline (incident_id, at, kind, who, text, event_id, steps)
    VALUES (:id, :at, :kind, :who, :text, :event_id, :steps)"""
COUNT_HEALED = """INSERT INTO healed (host, check_name, fix, count, last_at)
    VALUES (:host, :check, :fix, 1, :now) ON CONFLICT (host, check_name, fix)
    DO UPDATE SET count = count + 1, last_at = excluded.last_at"""
HEARTBEAT = """UPDATE host SET last_heartbeat = :now, interval_seconds = :interval,
    down_since = NULL WHERE host = :host"""
# A host is silent when its last heartbeat is older than its allowed silence.
SILENT = """(h.last_heartbeat IS NOT NULL
    AND :now - h.last_heartbeat > max(:min_silence, :missed * h.interval_seconds))"""
SILENT_HOSTS = f"""SELECT h.host, h.last_heartbeat, h.interval_seconds FROM host h
    WHERE h.down_since IS NULL AND {SILENT} ORDER BY h.host"""
MARK_DOWN = "UPDATE host SET down_since = :now WHERE host = :host"
FORGET_HEARTBEATS = "DELETE FROM event WHERE kind = 'heartbeat' AND received_at < :before"
HEARTBEAT_MEMORY_SECONDS = 7 * 86400.0
HOSTS = f"""SELECT h.host, h.last_heartbeat, h.interval_seconds,
        (h.down_since IS NOT NULL OR {SILENT}) AS down,
        (SELECT count(*) FROM incident i WHERE i.host = h.host AND i.status != 'resolved')
            AS open_incidents
    FROM host h ORDER BY h.host"""
INCIDENT = """SELECT i.*, (SELECT json_group_array(a.key) FROM attached a
        WHERE a.incident_id = i.id) AS attached_keys FROM incident i"""
ONE_INCIDENT = f"{INCIDENT} WHERE i.id = :id"
# json_each keeps the statement fixed whatever the number of values filtered on.
INCIDENTS = f"""{INCIDENT}
    WHERE (json_array_length(:statuses) = 0
           OR i.status IN (SELECT value FROM json_each(:statuses)))
      AND (json_array_length(:priorities) = 0
           OR i.priority IN (SELECT value FROM json_each(:priorities)))
      AND (:host IS NULL OR i.host = :host)
    ORDER BY i.due_at, i.priority, i.id LIMIT :limit"""
TIMELINE = """SELECT at, kind, who, text, event_id, steps FROM timeline
    WHERE incident_id = :id ORDER BY id"""
# A second acknowledgement keeps the first one's time and name (the SLA counts the first).
ACKNOWLEDGE = """UPDATE incident SET status = 'acknowledged',
        acknowledged_at = coalesce(acknowledged_at, :now),
        acknowledged_by = coalesce(acknowledged_by, :who)
    WHERE id = :id AND status != 'resolved'"""
RESOLVE = """UPDATE incident SET status = 'resolved', resolved_at = :now, resolved_by = :who
    WHERE id = :id AND status != 'resolved'"""
COUNT_FIX_RUNS = """INSERT INTO fix_run (host, check_name, fix, runs, worked, last_at)
    VALUES (:host, :check, :fix, 1, :worked, :now) ON CONFLICT (host, check_name, fix)
    DO UPDATE SET runs = runs + 1, worked = worked + excluded.worked,
        last_at = excluded.last_at"""
FIX_RUNS = """SELECT host, check_name, fix, runs, worked FROM fix_run
    ORDER BY host, check_name, fix"""
HEALED_COUNTS = "SELECT host, check_name, fix, count FROM healed ORDER BY host, check_name, fix"
ADD_AGENT = """INSERT INTO agent (host, token_hash, added_at) VALUES (:host, :token_hash, :now)
    ON CONFLICT (host) DO UPDATE SET token_hash = excluded.token_hash,
        added_at = excluded.added_at"""
AGENT_FOR = "SELECT host FROM agent WHERE token_hash = :token_hash"
OPENED = "coalesce(i.reopened_at, i.opened_at)"
OPENED_BETWEEN = f"""{INCIDENT} WHERE {OPENED} >= :since AND {OPENED} < :until
    ORDER BY {OPENED}, i.id"""

# Notices: made beside the change they tell of, at the incident's current level.
ADD_NOTICE = """INSERT INTO notice (incident_id, kind, level, created_at, next_at)
    SELECT id, :kind, escalation_level, :now, :now FROM incident WHERE id = :id
    RETURNING id, incident_id, kind, level, created_at, attempts, done"""
# An open incident goes one level up each time another share of its response target
# passes: level n+1 is due at (due_at - target) + (n + 1) * share * target.
TARGET = "(CASE priority WHEN 'P1' THEN :p1 WHEN 'P2' THEN :p2 ELSE :p3 END)"
ESCALATE = f"""UPDATE incident SET escalation_level = escalation_level + 1, notified_at = :now
    WHERE status = 'open' AND escalation_level < :max_level
      AND :now >= due_at - (1.0 - (escalation_level + 1) * :share) * {TARGET}
    RETURNING id"""
RENOTIFY = """UPDATE incident SET notified_at = :now
    WHERE status = 'open' AND priority = 'P1'
      AND coalesce(notified_at, opened_at) <= :now - :every
      AND NOT EXISTS (SELECT 1 FROM notice n WHERE n.incident_id = incident.id
                      AND n.kind = 'renotify' AND n.finished_at IS NULL)
    RETURNING id"""
# Due, not leased to anyone, and not behind an older notice of its incident that is on
# its first round (people hear of an incident's changes in the order they happened; one
# that waits for a retry holds back nothing).
CLAIM_NOTICES = """UPDATE notice SET claimed_until = :until, attempts = attempts + 1
    WHERE id IN (SELECT n.id FROM notice n
        WHERE n.finished_at IS NULL AND n.next_at <= :now
          AND (n.claimed_until IS NULL OR n.claimed_until <= :now)
          AND NOT EXISTS (SELECT 1 FROM notice o WHERE o.incident_id = n.incident_id
                          AND o.finished_at IS NULL AND o.id < n.id
                          AND (o.attempts = 0 OR o.claimed_until > :now))
        ORDER BY n.id LIMIT :limit)
    RETURNING id, incident_id, kind, level, created_at, attempts, done"""
FINISH_NOTICE = """UPDATE notice SET done = :done, claimed_until = NULL, last_error = :error,
        next_at = coalesce(:retry_at, next_at),
        finished_at = CASE WHEN :retry_at IS NULL THEN :now END
    WHERE id = :id AND attempts = :attempts AND finished_at IS NULL RETURNING incident_id"""

# People and shared secrets.
SET_PASSWORD = """INSERT INTO person (name, password_hash, added_at) VALUES (:name, :hash, :now)
    ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash"""
PASSWORD_HASH = "SELECT password_hash FROM person WHERE name = :name"
SET_PERSON_TOKEN = """INSERT INTO person (name, token_hash, added_at) VALUES (:name, :hash, :now)
    ON CONFLICT (name) DO UPDATE SET token_hash = excluded.token_hash"""
PERSON_FOR = "SELECT name FROM person WHERE token_hash = :hash"
OFFER_SECRET = """INSERT INTO secret (name, value) VALUES (:name, :value)
    ON CONFLICT (name) DO NOTHING"""
SECRET = "SELECT value FROM secret WHERE name = :name"


@dataclass(frozen=True)
class _Entry:
    at: float
    kind: str
    who: str
    text: str
    event_id: str | None = None
    steps: str = "[]"


class SQLiteStore:
    """The Store Protocol on one SQLite file (see the module docstring)."""

    def __init__(self, path: Path, policy: Policy, *, timeout_seconds: float = 30.0) -> None:
        self.path = path
        self.policy = policy
        self.timeout_seconds = timeout_seconds
        self._db = _connect(path)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-store")
        self._closed = False

    @classmethod
    async def open(cls, path: Path, policy: Policy, *,
                   timeout_seconds: float = 30.0) -> SQLiteStore:
        """Open (creating and migrating) the file off the event loop."""
        try:
            async with asyncio.timeout(timeout_seconds):
                return await asyncio.to_thread(cls, path, policy,
                                               timeout_seconds=timeout_seconds)
        except TimeoutError:
            raise StoreError(f"cannot open the incident store {path}: no answer within "
                             f"{format_duration(timeout_seconds)}") from None

    # --- the Protocol ---------------------------------------------------------------

    async def apply(self, events: Sequence[Event], now: dt.datetime) -> ApplyReport:
        clock = _epoch(now)
        return await self._run(lambda: self._apply(events, clock))

    async def incidents(
        self,
        status: Sequence[IncidentStatus] = ("open", "acknowledged"),
        priority: Sequence[str] = (),
        host: str | None = None,
        limit: int = 500,
    ) -> list[Incident]:
        """Ordered by due time, then priority, then id."""
        params = {"statuses": json.dumps(list(status)), "priorities": json.dumps(list(priority)),
                  "host": host, "limit": limit}
        return await self._run(lambda: [_incident(row) for row in self._rows(INCIDENTS, params)])

    async def incident(self, incident_id: int) -> Incident:
        """With its timeline; raises NotFound."""
        return await self._run(lambda: self._incident(incident_id))

    async def acknowledge(self, incident_id: int, who: str, note: str,
                          now: dt.datetime) -> Incident:
        entry = _Entry(_epoch(now), "acknowledged", who, note)
        return await self._run(lambda: self._act(incident_id, ACKNOWLEDGE, entry))

    async def resolve(self, incident_id: int, who: str, note: str,
                      now: dt.datetime) -> Incident:
        entry = _Entry(_epoch(now), "resolved", who, note)
        return await self._run(lambda: self._act(incident_id, RESOLVE, entry))

    async def comment(self, incident_id: int, who: str, text: str,
                      now: dt.datetime) -> Incident:
        entry = _Entry(_epoch(now), "comment", who, text)
        return await self._run(lambda: self._act(incident_id, None, entry))

    async def hosts(self, now: dt.datetime) -> list[HostInfo]:
        params = {"now": _epoch(now), **self._silence()}
        return await self._run(lambda: [_host(row) for row in self._rows(HOSTS, params)])

    async def sweep(self, now: dt.datetime) -> list[Incident]:
        """Open "server down" incidents for silent hosts; returns those it opened."""
        return await self._run(lambda: self._sweep(_epoch(now)))

    async def healed_counts(self) -> list[tuple[str, str, str, int]]:
        """(host, check, fix, times it healed) for every fix that healed something."""
        rows = await self._run(lambda: self._rows(HEALED_COUNTS, {}))
        return [(r["host"], r["check_name"], r["fix"], r["count"]) for r in rows]

    async def fix_runs(self) -> list[tuple[str, str, str, int, int]]:
        rows = await self._run(lambda: self._rows(FIX_RUNS, {}))
        return [(r["host"], r["check_name"], r["fix"], r["runs"], r["worked"]) for r in rows]

    async def opened_between(self, since: dt.datetime, until: dt.datetime) -> list[Incident]:
        params = {"since": _epoch(since), "until": _epoch(until)}
        rows = await self._run(lambda: self._rows(OPENED_BETWEEN, params))
        return [_incident(row) for row in rows]

    async def escalate(self, now: dt.datetime, rules: Escalation) -> list[Notice]:
        return await self._run(lambda: self._escalate(_epoch(now), rules))

    async def claim_notices(self, now: dt.datetime, lease_seconds: float,
                            limit: int = 50) -> list[Notice]:
        params = {"now": _epoch(now), "until": _epoch(now) + lease_seconds, "limit": limit}

        def claim() -> list[Notice]:
            with self._transaction():
                rows = self._rows(CLAIM_NOTICES, params)
                return sorted((_notice(row) for row in rows), key=lambda n: n.id)

        return await self._run(claim)

    async def finish_notice(self, notice: Notice, done: Sequence[str], now: dt.datetime,
                            retry_at: dt.datetime | None, error: str = "",
                            text: str = "") -> bool:
        params = {"id": notice.id, "attempts": notice.attempts,
                  "done": json.dumps(list(done)), "now": _epoch(now),
                  "retry_at": None if retry_at is None else _epoch(retry_at), "error": error}
        return await self._run(lambda: self._finish_notice(params, _epoch(now), text))

    async def set_password(self, name: str, password_hash: str, now: dt.datetime) -> None:
        params = {"name": name, "hash": password_hash, "now": _epoch(now)}
        await self._run(lambda: self._write(SET_PASSWORD, params))

    async def password_hash(self, name: str) -> str | None:
        rows = await self._run(lambda: self._rows(PASSWORD_HASH, {"name": name}))
        return rows[0]["password_hash"] if rows else None

    async def set_person_token(self, name: str, token_hash: str, now: dt.datetime) -> None:
        params = {"name": name, "hash": token_hash, "now": _epoch(now)}
        await self._run(lambda: self._add_token(SET_PERSON_TOKEN, params))

    async def person_for(self, token_hash: str) -> str | None:
        rows = await self._run(lambda: self._rows(PERSON_FOR, {"hash": token_hash}))
        return str(rows[0]["name"]) if rows else None

    async def secret(self, name: str, candidate: str) -> str:
        def offer() -> str:
            with self._transaction():
                self._db.execute(OFFER_SECRET, {"name": name, "value": candidate})
                return str(self._db.execute(SECRET, {"name": name}).fetchone()["value"])

        return await self._run(offer)

    async def add_agent(self, host: str, token_hash: str, now: dt.datetime) -> None:
        """Register (or re-key) an agent; only the token's hash is stored."""
        params = {"host": host, "token_hash": token_hash, "now": _epoch(now)}
        await self._run(lambda: self._add_token(ADD_AGENT, params))

    async def agent_for(self, token_hash: str) -> str | None:
        """The host a token belongs to, or None."""
        rows = await self._run(lambda: self._rows(AGENT_FOR, {"token_hash": token_hash}))
        return str(rows[0]["host"]) if rows else None

    async def close(self) -> None:
        """Wait for the calls already queued, then close the file; closing twice is fine."""
        if self._closed:
            return
        self._closed = True
        try:
            async with asyncio.timeout(self.timeout_seconds):
                await asyncio.get_running_loop().run_in_executor(self._thread, self._db.close)
        finally:
            self._thread.shutdown(wait=False)

    # --- plumbing -------------------------------------------------------------------

    async def _run(self, call: Callable[[], R]) -> R:
        """Run ``call`` on the store's thread under the deadline; sqlite errors → StoreError."""
        if self._closed:
            raise StoreError(f"the incident store {self.path} is closed")
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout_seconds):
                return await loop.run_in_executor(self._thread, self._guarded, call)
        except TimeoutError:
            raise StoreError(f"the incident store {self.path} did not answer within "
                             f"{format_duration(self.timeout_seconds)}; is its disk slow, "
                             "full or locked by another process?") from None

    def _guarded(self, call: Callable[[], R]) -> R:
        try:
            return call()
        except sqlite3.Error as e:
            raise StoreError(f"the incident store {self.path} failed: {e}") from None

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction, taken at once (BEGIN IMMEDIATE): all of it, or none."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        finally:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")

    def _rows(self, sql: str, params: Mapping[str, object]) -> list[sqlite3.Row]:
        return self._db.execute(sql, params).fetchall()

    def _silence(self) -> dict[str, object]:
        return {"min_silence": self.policy.min_silence, "missed": self.policy.missed_heartbeats}

    def _target(self, priority: str) -> float:
        return self.policy.target(priority)

    # --- events ---------------------------------------------------------------------

    def _apply(self, events: Sequence[Event], now: float) -> ApplyReport:
        applied = 0
        with self._transaction():
            for event in events:
                if self._claim(event, now):
                    self._dispatch(event, now)
                    applied += 1
        return ApplyReport(applied=applied, duplicates=len(events) - applied)

    def _claim(self, event: Event, now: float) -> bool:
        """Record the event's id; False if it was applied before (the dedup)."""
        params = {"id": event.id, "kind": event.kind, "host": event.host,
                  "check": event.check, "at": _epoch(event.at), "now": now}
        return self._db.execute(CLAIM, params).rowcount == 1

    def _dispatch(self, event: Event, now: float) -> None:
        self._db.execute(NOTE_HOST, {"host": event.host})
        for step in ran(event):
            self._db.execute(COUNT_FIX_RUNS, {"host": event.host, "check": event.check,
                                              "fix": step.fix, "now": now,
                                              "worked": int(step.reprobe_status == "OK")})
        if event.kind == "problem":
            self._problem(event, now)
        elif event.kind == "healed":
            self._healed(event, now)
        elif event.kind == "recovery":
            self._recovery(event, now)
        else:
            self._heartbeat(event, now)

    def _problem(self, event: Event, now: float) -> None:
        entry = _event_entry(event, "problem")
        if event.suppressed_by is not None:
            parent = self._open_id(f"{event.host}/{event.suppressed_by}")
            if parent is not None:
                self._db.execute(ATTACH, {"id": parent, "key": event.key})
                self._add_entry(parent, replace(entry, kind="attached"))
                return
        assert event.check is not None and event.priority is not None  # Event validates
        trouble = Trouble(event.key, event.host, event.check, event.priority,
                           event.title or event.summary or event.key, event.summary)
        self._open(trouble, now, entry)

    def _healed(self, event: Event, now: float) -> None:
        fix = event.steps[-1].fix if event.steps else "unknown"
        self._db.execute(COUNT_HEALED, {"host": event.host, "check": event.check,
                                        "fix": fix, "now": now})
        incident_id = self._open_id(event.key)
        if incident_id is not None:
            self._add_entry(incident_id, _event_entry(event, "healed"))

    def _recovery(self, event: Event, now: float) -> None:
        self._resolve_key(event.key, now, _event_entry(event, "recovery"))

    def _heartbeat(self, event: Event, now: float) -> None:
        self._db.execute(HEARTBEAT, {"host": event.host, "now": now,
                                     "interval": event.interval_seconds})
        entry = _Entry(_epoch(event.at), "recovery", event.host, "heartbeats resumed",
                       event.id)
        self._resolve_key(f"{event.host}/{SERVER_DOWN}", now, entry)

    def _open(self, trouble: Trouble, now: float, entry: _Entry) -> tuple[int, bool]:
        """Open, reopen or update the incident for the key: (its id, whether it is new)."""
        due_at = now + self._target(trouble.priority)
        params = {"key": trouble.key, "host": trouble.host, "check": trouble.check,
                  "priority": trouble.priority, "title": trouble.title,
                  "summary": trouble.summary, "now": now, "due_at": due_at,
                  "since": now - self.policy.reopen_window}
        reopened = self._db.execute(REOPEN, params).rowcount == 1
        raised = self._db.execute(RAISE_PRIORITY, params).fetchall()
        [(incident_id, count)] = self._db.execute(UPSERT, params).fetchall()
        self._add_entry(incident_id, replace(entry, kind="reopened") if reopened else entry)
        if raised:
            self._add_entry(incident_id, _Entry(
                now, "priority", MONITORD, f"priority raised to {trouble.priority}; now due "
                f"by {_time(raised[0]['due_at']):%Y-%m-%d %H:%M:%S} UTC", entry.event_id))
            self._notice(incident_id, "escalated", now)
        new = reopened or count == 1
        if new:
            self._notice(incident_id, "opened", now)
        return incident_id, new

    def _open_id(self, key: str) -> int | None:
        row = self._db.execute(OPEN_FOR_KEY, {"key": key}).fetchone()
        return None if row is None else int(row["id"])

    def _resolve_key(self, key: str, now: float, entry: _Entry) -> None:
        params = {"key": key, "now": now, "who": MONITORD}
        for row in self._db.execute(RESOLVE_KEY, params).fetchall():
            self._add_entry(int(row["id"]), entry)
            self._notice(int(row["id"]), "resolved", now)

    def _add_entry(self, incident_id: int, entry: _Entry) -> None:
        self._db.execute(ADD_ENTRY, {"id": incident_id, "at": entry.at, "kind": entry.kind,
                                     "who": entry.who, "text": entry.text,
                                     "event_id": entry.event_id, "steps": entry.steps})

    # --- heartbeats -----------------------------------------------------------------

    def _sweep(self, now: float) -> list[Incident]:
        opened = []
        with self._transaction():
            self._db.execute(FORGET_HEARTBEATS, {"before": now - HEARTBEAT_MEMORY_SECONDS})
            for row in self._rows(SILENT_HOSTS, {"now": now, **self._silence()}):
                self._db.execute(MARK_DOWN, {"host": row["host"], "now": now})
                trouble, text = server_down(row["host"], _time(row["last_heartbeat"]),
                                            row["interval_seconds"], _time(now))
                incident_id, new = self._open(trouble, now, _Entry(now, "problem", MONITORD,
                                                                   text))
                if new:
                    opened.append(self._incident(incident_id, with_timeline=False))
        return opened

    # --- people ---------------------------------------------------------------------

    def _incident(self, incident_id: int, with_timeline: bool = True) -> Incident:
        row = self._db.execute(ONE_INCIDENT, {"id": incident_id}).fetchone()
        if row is None:
            raise NotFound(f"no incident {incident_id}")
        if not with_timeline:
            return _incident(row)
        timeline = tuple(_entry(r) for r in self._rows(TIMELINE, {"id": incident_id}))
        return _incident(row, timeline)

    def _act(self, incident_id: int, sql: str | None, entry: _Entry) -> Incident:
        """Change the incident (``sql``, if any) and add ``entry`` to its timeline."""
        with self._transaction():
            current = self._incident(incident_id, with_timeline=False)
            params = {"id": incident_id, "now": entry.at, "who": entry.who}
            if sql is not None and self._db.execute(sql, params).rowcount == 0:
                raise Conflict(f"incident {incident_id} is {current.status}: it cannot be "
                               f"{entry.kind} (a new problem on {current.key} reopens it)")
            self._add_entry(incident_id, entry)
            if entry.kind == "resolved" or (entry.kind == "acknowledged"
                                            and current.status == "open"):
                self._notice(incident_id, entry.kind, entry.at)
            return self._incident(incident_id)

    def _add_token(self, sql: str, params: dict[str, object]) -> None:
        with self._transaction():
            try:
                self._db.execute(sql, params)
            except sqlite3.IntegrityError:
                raise Conflict("that token is already registered to someone else; "
                               "make a new token") from None

    def _write(self, sql: str, params: Mapping[str, object]) -> None:
        with self._transaction():
            self._db.execute(sql, params)

    # --- notices --------------------------------------------------------------------

    def _notice(self, incident_id: int, kind: str, now: float) -> Notice:
        row = self._db.execute(ADD_NOTICE, {"id": incident_id, "kind": kind,
                                            "now": now}).fetchone()
        return _notice(row)

    def _escalate(self, now: float, rules: Escalation) -> list[Notice]:
        made = []
        with self._transaction():
            if rules.escalate_at > 0 and rules.max_level > 0:
                params = {"now": now, "share": rules.escalate_at,
                          "max_level": rules.max_level, **self._targets()}
                for row in self._rows(ESCALATE, params):
                    made.append(self._notice(int(row["id"]), "escalated", now))
            if rules.renotify_every > 0:
                for row in self._rows(RENOTIFY, {"now": now, "every": rules.renotify_every}):
                    made.append(self._notice(int(row["id"]), "renotify", now))
        return made

    def _targets(self) -> dict[str, float]:
        return {"p1": self._target("P1"), "p2": self._target("P2"), "p3": self._target("P3")}

    def _finish_notice(self, params: Mapping[str, object], now: float, text: str) -> bool:
        with self._transaction():
            row = self._db.execute(FINISH_NOTICE, params).fetchone()
            if row is not None and text:
                self._add_entry(int(row["incident_id"]), _Entry(now, "notified", MONITORD, text))
            return row is not None


# --- helpers ------------------------------------------------------------------------------

def _connect(path: Path) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                             timeout=BUSY_TIMEOUT_MS / 1000)
    except OSError as e:
        raise StoreError(f"cannot open the incident store {path}: {e.strerror}") from None
    except sqlite3.Error as e:
        raise StoreError(f"cannot open the incident store {path}: {e}") from None
    try:
        db.row_factory = sqlite3.Row
        for pragma in PRAGMAS:
            db.execute(pragma)
        _migrate(db, path)
    except sqlite3.Error as e:
        db.close()
        raise StoreError(f"cannot open the incident store {path}: {e}") from None
    except BaseException:
        db.close()
        raise
    return db


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    """Apply the schema files newer than the file's user_version, in one transaction."""
    migrations = [(number, script) for number, _, script in schema_files("sqlite")]
    latest = migrations[-1][0]
    db.execute("BEGIN IMMEDIATE")   # a second process opening the file waits here
    try:
        (version,) = db.execute("PRAGMA user_version").fetchone()
        if version > latest:
            raise StoreError(f"the incident store {path} has schema {version}, newer than "
                             f"this monitord knows ({latest}); upgrade monitord")
        for number, script in migrations:
            if number > version:
                for statement in _statements(script):
                    db.execute(statement)
                # PRAGMA takes no parameters; number is an int parsed from a file name.
                db.execute(f"PRAGMA user_version = {int(number)}")
        db.execute("COMMIT")
    finally:
        if db.in_transaction:
            db.execute("ROLLBACK")


def _statements(script: str) -> Iterator[str]:
    """The script's statements one by one (executescript would commit our transaction)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending
            pending = ""


def _epoch(moment: dt.datetime) -> float:
    if moment.tzinfo is None:
        raise ValueError(f"expected a timezone-aware time, got {moment.isoformat()}")
    return moment.timestamp()


def _time(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


def _maybe_time(epoch: float | None) -> dt.datetime | None:
    return None if epoch is None else _time(epoch)


def _incident(row: sqlite3.Row, timeline: tuple[TimelineEntry, ...] = ()) -> Incident:
    return Incident(
        id=row["id"], key=row["key"], host=row["host"], check=row["check_name"],
        priority=Priority(row["priority"]), status=row["status"], title=row["title"],
        summary=row["summary"], opened_at=_time(row["opened_at"]),
        due_at=_time(row["due_at"]), last_seen_at=_time(row["last_seen_at"]),
        count=row["count"], acknowledged_at=_maybe_time(row["acknowledged_at"]),
        acknowledged_by=row["acknowledged_by"], resolved_at=_maybe_time(row["resolved_at"]),
        resolved_by=row["resolved_by"], reopened=row["reopened"],
        attached=tuple(sorted(json.loads(row["attached_keys"]))), timeline=timeline,
        escalation_level=row["escalation_level"], reopened_at=_maybe_time(row["reopened_at"]))


def _notice(row: sqlite3.Row) -> Notice:
    return Notice(id=row["id"], incident_id=row["incident_id"], kind=row["kind"],
                  level=row["level"], created_at=_time(row["created_at"]),
                  attempts=row["attempts"], done=tuple(json.loads(row["done"])))


def _entry(row: sqlite3.Row) -> TimelineEntry:
    return TimelineEntry(at=_time(row["at"]), kind=row["kind"], who=row["who"],
                         text=row["text"], event_id=row["event_id"],
                         steps=tuple(json.loads(row["steps"])))


def _host(row: sqlite3.Row) -> HostInfo:
    return HostInfo(host=row["host"], last_heartbeat=_maybe_time(row["last_heartbeat"]),
                    interval_seconds=row["interval_seconds"],
                    open_incidents=row["open_incidents"], down=bool(row["down"]))


def _event_entry(event: Event, kind: str) -> _Entry:
    text, steps = event_text(event, kind)
    return _Entry(_epoch(event.at), kind, event.host, text, event.id, steps)
