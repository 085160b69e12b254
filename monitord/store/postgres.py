"""The PostgreSQL incident store: the central deployment, shared by several processes.

Open it with ``store = await PostgresStore.open(dsn, policy)``: that makes a connection
pool and applies the schema (``migrate``). Every method runs in one transaction on a
pooled connection, under a deadline (``timeout_seconds``); the SQL is plain, with
``:name`` parameters (turned into asyncpg's ``$n`` once, when the module loads).

It keeps every rule of ``store.py`` and every choice ``sqlite_store.py`` documents. What
differs is that other processes write the same tables at the same time, so each race is
closed inside the database (READ COMMITTED, the default isolation):

- dedup: one ``INSERT ... ON CONFLICT (id) DO NOTHING RETURNING id`` claims the whole
  batch's ids, in id order (so two batches sharing ids wait for each other instead of
  deadlocking); a process that loses the race waits for the winner's commit and then
  sees the ids as duplicates. The batch is one transaction: all of it, or none.
- one open incident per key: the upsert's target is the partial unique index
  (``ON CONFLICT (key) WHERE status <> 'resolved' DO UPDATE``), atomic under concurrency.
- reopen, priority raise and upsert of one key run after ``pg_advisory_xact_lock`` on
  the key, held to the end of the transaction, so two processes never both reopen an
  incident, or one reopen while the other opens a new one.
- the sweeper claims silent hosts with one ``UPDATE ... down_since`` on rows it locked
  (``SELECT ... FOR UPDATE``, re-checked after a wait), so of two concurrent sweeps only
  one opens "server down" for an outage.
- people's actions lock the incident row (``FOR UPDATE``) before they check its status.
- a transaction the server aborts as a deadlock (or serialization failure) is retried,
  at most ``ATTEMPTS`` times in all.

Errors: NotFound, Conflict and ValueError as the SQLite store raises them; anything the
database or the network does wrong, or a call past its deadline, raises StoreError
naming the database without its password.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import asyncpg

from monitord.durations import format_duration
from monitord.errors import Conflict, NotFound, StoreError
from monitord.events import Event
from monitord.model import Priority
from monitord.net import redact_url
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

log = logging.getLogger(__name__)

R = TypeVar("R")
Connection = Any     # asyncpg.Connection or a pool's proxy for one (asyncpg is untyped)
Row = Any            # asyncpg.Record
MONITORD = "monitord"
ATTEMPTS = 3
RETRYABLE = (asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.SerializationError)
DATABASE_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
MIGRATION_LOCK = 0x6D6F6E69746F7264    # "monitord": the advisory lock key of migrations
HEARTBEAT_MEMORY = dt.timedelta(days=7)


@dataclass(frozen=True)
class Query:
    """A statement written with ``:name`` parameters, numbered for asyncpg."""

    sql: str
    names: tuple[str, ...]

    def args(self, params: Mapping[str, object]) -> list[object]:
        return [params[name] for name in self.names]


_PARAMETER = re.compile(r"(?<![:\w]):([a-z_]+)\b")


def query(text: str) -> Query:
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    return Query(_PARAMETER.sub(number, text), tuple(names))


# --- statements (plain SQL, named parameters) -------------------------------------------

CLAIM = query("""INSERT INTO event (id, kind, host, check_name, at, received_at)
    SELECT e.id, e.kind, e.host, e.check_name, e.at, :now
    FROM unnest(:ids::text[], :kinds::text[], :hosts::text[], :checks::text[],
                :ats::timestamptz[]) AS e (id, kind, host, check_name, at)
    ORDER BY e.id
    ON CONFLICT (id) DO NOTHING RETURNING id""")
NOTE_HOST = query("INSERT INTO host (host) VALUES (:host) ON CONFLICT (host) DO NOTHING")
LOCK_KEY = query("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
# The key's last incident, if resolved within the window, opens again.
REOPEN = query("""UPDATE incident SET status = 'open', priority = :priority,
        due_at = :due_at, acknowledged_at = NULL, acknowledged_by = NULL,
        resolved_at = NULL, resolved_by = NULL, reopened = reopened + 1,
        escalation_level = 0, notified_at = :now, reopened_at = :now
    WHERE id = (SELECT max(id) FROM incident WHERE key = :key)
      AND status = 'resolved' AND resolved_at > :since RETURNING id""")
RAISE_PRIORITY = query("""UPDATE incident SET priority = :priority,
        due_at = least(due_at, :due_at), notified_at = :now
    WHERE key = :key AND status <> 'resolved' AND priority > :priority RETURNING due_at""")
# One open incident per key: the partial unique index is the upsert's target.
UPSERT = query("""INSERT INTO incident (key, host, check_name, priority, status, title,
        summary, opened_at, due_at, last_seen_at, count, notified_at)
    VALUES (:key, :host, :check, :priority, 'open', :title, :summary, :now, :due_at, :now, 1,
            :now)
    ON CONFLICT (key) WHERE status <> 'resolved' DO UPDATE SET count = incident.count + 1,
        last_seen_at = excluded.last_seen_at, summary = excluded.summary
    RETURNING id, count""")
OPEN_FOR_KEY = query("SELECT id FROM incident WHERE key = :key AND status <> 'resolved'")
RESOLVE_KEY = query("""UPDATE incident SET status = 'resolved', resolved_at = :now,
        resolved_by = :who
    WHERE key = :key AND status <> 'resolved' RETURNING id""")
ATTACH = query("""INSERT INTO attached (incident_id, key) VALUES (:id, :key)
    ON CONFLICT (incident_id, key) DO NOTHING""")
ADD_ENTRY = query("""INSERT INTO timeline (incident_id, at, kind, who, text, event_id, steps)
    VALUES (:id, :at, :kind, :who, :text, :event_id, :steps::jsonb)""")
COUNT_HEALED = query("""INSERT INTO healed (host, check_name, fix, count, last_at)
    VALUES (:host, :check, :fix, 1, :now) ON CONFLICT (host, check_name, fix)
    DO UPDATE SET count = healed.count + 1, last_at = excluded.last_at""")
HEARTBEAT = query("""UPDATE host SET last_heartbeat = :now, interval_seconds = :interval,
    down_since = NULL WHERE host = :host""")
# A host is silent when its last heartbeat is older than its allowed silence.
SILENT = """(h.last_heartbeat IS NOT NULL
    AND :now::timestamptz - h.last_heartbeat > make_interval(secs => greatest(
        :min_silence::float8, :missed::float8 * h.interval_seconds)))"""
# The sweep's claim: rows locked in host order; a row another sweep changed meanwhile is
# checked again after the wait (READ COMMITTED), and then no longer matches.
CLAIM_SILENT = query(f"""WITH silent AS (
        SELECT h.host FROM host h WHERE h.down_since IS NULL AND {SILENT}
        ORDER BY h.host FOR UPDATE)
    UPDATE host h SET down_since = :now FROM silent WHERE h.host = silent.host
    RETURNING h.host, h.last_heartbeat, h.interval_seconds""")
FORGET_HEARTBEATS = query(
    "DELETE FROM event WHERE kind = 'heartbeat' AND received_at < :before")
HOSTS = query(f"""SELECT h.host, h.last_heartbeat, h.interval_seconds,
        (h.down_since IS NOT NULL OR {SILENT}) AS down,
        (SELECT count(*) FROM incident i WHERE i.host = h.host AND i.status <> 'resolved')
            AS open_incidents
    FROM host h ORDER BY h.host""")
INCIDENT = """SELECT i.*, ARRAY(SELECT a.key FROM attached a WHERE a.incident_id = i.id
        ORDER BY a.key) AS attached_keys FROM incident i"""
ONE_INCIDENT = query(f"{INCIDENT} WHERE i.id = :id")
LOCK_INCIDENT = query("SELECT status, key FROM incident WHERE id = :id FOR UPDATE")
INCIDENTS = query(f"""{INCIDENT}
    WHERE (cardinality(:statuses::text[]) = 0 OR i.status = ANY (:statuses::text[]))
      AND (cardinality(:priorities::text[]) = 0 OR i.priority = ANY (:priorities::text[]))
      AND (:host::text IS NULL OR i.host = :host::text)
    ORDER BY i.due_at, i.priority, i.id LIMIT :limit""")
TIMELINE = query("""SELECT at, kind, who, text, event_id, steps::text AS steps
    FROM timeline WHERE incident_id = :id ORDER BY id""")
# A second acknowledgement keeps the first one's time and name (the SLA counts the first).
ACKNOWLEDGE = query("""UPDATE incident SET status = 'acknowledged',
        acknowledged_at = coalesce(acknowledged_at, :now),
        acknowledged_by = coalesce(acknowledged_by, :who)
    WHERE id = :id AND status <> 'resolved' RETURNING id""")
RESOLVE = query("""UPDATE incident SET status = 'resolved', resolved_at = :now,
    resolved_by = :who WHERE id = :id AND status <> 'resolved' RETURNING id""")
COUNT_FIX_RUNS = query("""INSERT INTO fix_run (host, check_name, fix, runs, worked, last_at)
    VALUES (:host, :check, :fix, 1, :worked, :now)
    ON CONFLICT (host, check_name, fix) DO UPDATE SET runs = fix_run.runs + 1,
        worked = fix_run.worked + excluded.worked, last_at = excluded.last_at""")
FIX_RUNS = query("""SELECT host, check_name, fix, runs, worked FROM fix_run
    ORDER BY host, check_name, fix""")
HEALED_COUNTS = query(
    "SELECT host, check_name, fix, count FROM healed ORDER BY host, check_name, fix")
ADD_AGENT = query("""INSERT INTO agent (host, token_hash, added_at)
    VALUES (:host, :token_hash, :now)
    ON CONFLICT (host) DO UPDATE SET token_hash = excluded.token_hash,
        added_at = excluded.added_at""")
AGENT_FOR = query("SELECT host FROM agent WHERE token_hash = :token_hash")
OPENED = "coalesce(i.reopened_at, i.opened_at)"
OPENED_BETWEEN = query(f"""{INCIDENT} WHERE {OPENED} >= :since AND {OPENED} < :until
    ORDER BY {OPENED}, i.id""")

# Notices: made beside the change they tell of, at the incident's current level.
NOTICE_COLUMNS = "id, incident_id, kind, level, created_at, attempts, done"
ADD_NOTICE = query(f"""INSERT INTO notice (incident_id, kind, level, created_at, next_at)
    SELECT id, :kind, escalation_level, :now, :now FROM incident WHERE id = :id
    RETURNING {NOTICE_COLUMNS}""")
# An open incident goes one level up each time another share of its response target
# passes: level n+1 is due at (due_at - target) + (n + 1) * share * target. Under READ
# COMMITTED a second process's UPDATE waits for the first and re-checks the row, so a
# level is reached (and told) once.
TARGET = """(CASE priority WHEN 'P1' THEN :p_one::interval WHEN 'P2' THEN :p_two::interval
    ELSE :p_three::interval END)"""
ESCALATE = query(f"""UPDATE incident SET escalation_level = escalation_level + 1,
        notified_at = :now
    WHERE status = 'open' AND escalation_level < :max_level
      AND :now >= due_at - (1.0 - (escalation_level + 1) * :share::float8) * {TARGET}
    RETURNING id""")
RENOTIFY = query("""UPDATE incident SET notified_at = :now
    WHERE status = 'open' AND priority = 'P1'
      AND coalesce(notified_at, opened_at) <= :now::timestamptz - :every::interval
      AND NOT EXISTS (SELECT 1 FROM notice n WHERE n.incident_id = incident.id
                      AND n.kind = 'renotify' AND n.finished_at IS NULL)
    RETURNING id""")
# Due, not leased to anyone, and not behind an older notice of its incident that is on
# its first round (people hear of an incident's changes in the order they happened; one
# that waits for a retry holds back nothing). SKIP LOCKED: two processes claiming at
# once take different notices.
CLAIM_NOTICES = query(f"""UPDATE notice SET claimed_until = :until,
        attempts = attempts + 1
    WHERE id IN (SELECT n.id FROM notice n
        WHERE n.finished_at IS NULL AND n.next_at <= :now
          AND (n.claimed_until IS NULL OR n.claimed_until <= :now)
          AND NOT EXISTS (SELECT 1 FROM notice o WHERE o.incident_id = n.incident_id
                          AND o.finished_at IS NULL AND o.id < n.id
                          AND (o.attempts = 0 OR o.claimed_until > :now))
        ORDER BY n.id LIMIT :limit FOR UPDATE OF n SKIP LOCKED)
    RETURNING {NOTICE_COLUMNS}""")
FINISH_NOTICE = query("""UPDATE notice SET done = :done::text[], claimed_until = NULL,
        last_error = :error, next_at = coalesce(:retry_at::timestamptz, next_at),
        finished_at = CASE WHEN :retry_at::timestamptz IS NULL THEN :now::timestamptz END
    WHERE id = :id AND attempts = :attempts AND finished_at IS NULL
    RETURNING incident_id""")

# People and shared secrets.
SET_PASSWORD = query("""INSERT INTO person (name, password_hash, added_at)
    VALUES (:name, :hash, :now)
    ON CONFLICT (name) DO UPDATE SET password_hash = excluded.password_hash""")
PASSWORD_HASH = query("SELECT password_hash FROM person WHERE name = :name")
SET_PERSON_TOKEN = query("""INSERT INTO person (name, token_hash, added_at)
    VALUES (:name, :hash, :now)
    ON CONFLICT (name) DO UPDATE SET token_hash = excluded.token_hash""")
PERSON_FOR = query("SELECT name FROM person WHERE token_hash = :hash")
OFFER_SECRET = query("""INSERT INTO secret (name, value) VALUES (:name, :value)
    ON CONFLICT (name) DO NOTHING""")
SECRET = query("SELECT value FROM secret WHERE name = :name")

# Migrations: the lock makes a second process wait, then find the work done.
LOCK_MIGRATIONS = query("SELECT pg_advisory_xact_lock(:lock)")
VERSION_TABLE = query("""CREATE TABLE IF NOT EXISTS schema_version (
    version integer PRIMARY KEY, name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now())""")
CURRENT_VERSION = query("SELECT coalesce(max(version), 0) FROM schema_version")
RECORD_VERSION = query("INSERT INTO schema_version (version, name) VALUES (:version, :name)")


@dataclass(frozen=True)
class _Entry:
    at: dt.datetime
    kind: str
    who: str
    text: str
    event_id: str | None = None
    steps: str = "[]"


class PostgresStore:
    """The Store Protocol on one PostgreSQL database (see the module docstring)."""

    def __init__(self, pool: asyncpg.Pool, policy: Policy, name: str, *,
                 timeout_seconds: float = 30.0, migrated: Sequence[str] = ()) -> None:
        self._pool = pool
        self.policy = policy
        self.name = name                       # the DSN without its password
        self.timeout_seconds = timeout_seconds
        self.migrated = tuple(migrated)        # schema files this open applied
        self._closed = False

    @classmethod
    async def open(cls, dsn: str, policy: Policy, *, password: str | None = None,
                   timeout_seconds: float = 30.0, pool_size: int = 10) -> PostgresStore:
        """Connect a pool and bring the schema up to date."""
        name = redact_url(dsn)
        try:
            async with asyncio.timeout(timeout_seconds):
                pool = await asyncpg.create_pool(
                    dsn, password=password, min_size=1, max_size=pool_size,
                    timeout=timeout_seconds,
                    server_settings={"application_name": "monitord-central"})
        except TimeoutError:
            raise StoreError(f"cannot open the incident store {name}: no answer within "
                             f"{format_duration(timeout_seconds)}") from None
        except (*DATABASE_ERRORS, ValueError) as e:
            raise StoreError(f"cannot open the incident store {name}: {e}") from None
        store = cls(pool, policy, name, timeout_seconds=timeout_seconds)
        try:
            store.migrated = tuple(await store._run(lambda conn: migrate(conn, name)))
        except BaseException:
            await store.close()
            raise
        return store

    # --- the Protocol ---------------------------------------------------------------

    async def apply(self, events: Sequence[Event], now: dt.datetime) -> ApplyReport:
        _aware(now)
        return await self._run(lambda conn: self._apply(conn, events, now))

    async def incidents(
        self,
        status: Sequence[IncidentStatus] = ("open", "acknowledged"),
        priority: Sequence[str] = (),
        host: str | None = None,
        limit: int = 500,
    ) -> list[Incident]:
        """Ordered by due time, then priority, then id."""
        params = {"statuses": list(status), "priorities": list(priority), "host": host,
                  "limit": limit}
        rows = await self._run(lambda conn: _fetch(conn, INCIDENTS, params))
        return [_incident(row) for row in rows]

    async def incident(self, incident_id: int) -> Incident:
        """With its timeline; raises NotFound."""
        return await self._run(lambda conn: self._incident(conn, incident_id))

    async def acknowledge(self, incident_id: int, who: str, note: str,
                          now: dt.datetime) -> Incident:
        entry = _Entry(_aware(now), "acknowledged", who, note)
        return await self._run(lambda conn: self._act(conn, incident_id, ACKNOWLEDGE, entry))

    async def resolve(self, incident_id: int, who: str, note: str,
                      now: dt.datetime) -> Incident:
        entry = _Entry(_aware(now), "resolved", who, note)
        return await self._run(lambda conn: self._act(conn, incident_id, RESOLVE, entry))

    async def comment(self, incident_id: int, who: str, text: str,
                      now: dt.datetime) -> Incident:
        entry = _Entry(_aware(now), "comment", who, text)
        return await self._run(lambda conn: self._act(conn, incident_id, None, entry))

    async def hosts(self, now: dt.datetime) -> list[HostInfo]:
        params = {"now": _aware(now), **self._silence()}
        rows = await self._run(lambda conn: _fetch(conn, HOSTS, params))
        return [_host(row) for row in rows]

    async def sweep(self, now: dt.datetime) -> list[Incident]:
        """Open "server down" incidents for silent hosts; returns those it opened."""
        _aware(now)
        return await self._run(lambda conn: self._sweep(conn, now))

    async def healed_counts(self) -> list[tuple[str, str, str, int]]:
        """(host, check, fix, times it healed) for every fix that healed something."""
        rows = await self._run(lambda conn: _fetch(conn, HEALED_COUNTS, {}))
        return [(r["host"], r["check_name"], r["fix"], r["count"]) for r in rows]

    async def fix_runs(self) -> list[tuple[str, str, str, int, int]]:
        rows = await self._run(lambda conn: _fetch(conn, FIX_RUNS, {}))
        return [(r["host"], r["check_name"], r["fix"], r["runs"], r["worked"]) for r in rows]

    async def opened_between(self, since: dt.datetime, until: dt.datetime) -> list[Incident]:
        params = {"since": _aware(since), "until": _aware(until)}
        rows = await self._run(lambda conn: _fetch(conn, OPENED_BETWEEN, params))
        return [_incident(row) for row in rows]

    async def escalate(self, now: dt.datetime, rules: Escalation) -> list[Notice]:
        _aware(now)
        return await self._run(lambda conn: self._escalate(conn, now, rules))

    async def claim_notices(self, now: dt.datetime, lease_seconds: float,
                            limit: int = 50) -> list[Notice]:
        params = {"now": _aware(now), "until": now + dt.timedelta(seconds=lease_seconds),
                  "limit": limit}
        rows = await self._run(lambda conn: _fetch(conn, CLAIM_NOTICES, params))
        return sorted((_notice_of(row) for row in rows), key=lambda n: n.id)

    async def finish_notice(self, notice: Notice, done: Sequence[str], now: dt.datetime,
                            retry_at: dt.datetime | None, error: str = "",
                            text: str = "") -> bool:
        params = {"id": notice.id, "attempts": notice.attempts, "done": list(done),
                  "now": _aware(now), "retry_at": retry_at, "error": error}

        async def finish(conn: Connection) -> bool:
            rows = await _fetch(conn, FINISH_NOTICE, params)
            if rows and text:
                await _add_entry(conn, int(rows[0]["incident_id"]),
                                 _Entry(now, "notified", MONITORD, text))
            return bool(rows)

        return await self._run(finish)

    async def set_password(self, name: str, password_hash: str, now: dt.datetime) -> None:
        params = {"name": name, "hash": password_hash, "now": _aware(now)}
        await self._run(lambda conn: _execute(conn, SET_PASSWORD, params))

    async def password_hash(self, name: str) -> str | None:
        rows = await self._run(lambda conn: _fetch(conn, PASSWORD_HASH, {"name": name}))
        return rows[0]["password_hash"] if rows else None

    async def set_person_token(self, name: str, token_hash: str, now: dt.datetime) -> None:
        params = {"name": name, "hash": token_hash, "now": _aware(now)}
        await self._run(lambda conn: _add_token(conn, SET_PERSON_TOKEN, params))

    async def person_for(self, token_hash: str) -> str | None:
        rows = await self._run(lambda conn: _fetch(conn, PERSON_FOR, {"hash": token_hash}))
        return str(rows[0]["name"]) if rows else None

    async def secret(self, name: str, candidate: str) -> str:
        async def offer(conn: Connection) -> str:
            await _execute(conn, OFFER_SECRET, {"name": name, "value": candidate})
            return str((await _fetch(conn, SECRET, {"name": name}))[0]["value"])

        return await self._run(offer)

    async def add_agent(self, host: str, token_hash: str, now: dt.datetime) -> None:
        """Register (or re-key) an agent; only the token's hash is stored."""
        params = {"host": host, "token_hash": token_hash, "now": _aware(now)}
        await self._run(lambda conn: _add_token(conn, ADD_AGENT, params))

    async def agent_for(self, token_hash: str) -> str | None:
        """The host a token belongs to, or None."""
        rows = await self._run(lambda conn: _fetch(conn, AGENT_FOR, {"token_hash": token_hash}))
        return str(rows[0]["host"]) if rows else None

    async def close(self) -> None:
        """Wait for the calls in progress, then close the pool; closing twice is fine."""
        if self._closed:
            return
        self._closed = True
        try:
            async with asyncio.timeout(self.timeout_seconds):
                await self._pool.close()
        except TimeoutError:
            log.warning("central: the incident store %s did not close within %s; "
                        "dropping its connections", self.name,
                        format_duration(self.timeout_seconds))
            self._pool.terminate()

    # --- plumbing -------------------------------------------------------------------

    async def _run(self, work: Callable[[Connection], Awaitable[R]]) -> R:
        """``work`` in one transaction under the deadline; database errors → StoreError."""
        if self._closed:
            raise StoreError(f"the incident store {self.name} is closed")
        try:
            async with asyncio.timeout(self.timeout_seconds):
                return await self._retrying(work)
        except TimeoutError:
            raise StoreError(f"the incident store {self.name} did not answer within "
                             f"{format_duration(self.timeout_seconds)}; is the database "
                             "overloaded or unreachable?") from None
        except DATABASE_ERRORS as e:
            raise StoreError(f"the incident store {self.name} failed: {e}") from None

    async def _retrying(self, work: Callable[[Connection], Awaitable[R]]) -> R:
        """Run the transaction again when the server aborted it as a deadlock."""
        for attempt in range(1, ATTEMPTS):
            try:
                return await self._transaction(work)
            except RETRYABLE as e:
                log.info("central: transaction %d of %d aborted (%s); retrying",
                         attempt, ATTEMPTS, e)
        return await self._transaction(work)

    async def _transaction(self, work: Callable[[Connection], Awaitable[R]]) -> R:
        async with self._pool.acquire() as conn, conn.transaction():
            return await work(conn)

    def _silence(self) -> dict[str, object]:
        return {"min_silence": self.policy.min_silence,
                "missed": float(self.policy.missed_heartbeats)}

    def _target(self, priority: str) -> dt.timedelta:
        return dt.timedelta(seconds=self.policy.target(priority))

    # --- events ---------------------------------------------------------------------

    async def _apply(self, conn: Connection, events: Sequence[Event],
                     now: dt.datetime) -> ApplyReport:
        claimed = await _claim(conn, events, now)
        applied = 0
        for event in events:
            if event.id in claimed:
                claimed.discard(event.id)      # a repeat of the id in this batch is a duplicate
                await self._dispatch(conn, event, now)
                applied += 1
        return ApplyReport(applied=applied, duplicates=len(events) - applied)

    async def _dispatch(self, conn: Connection, event: Event, now: dt.datetime) -> None:
        await _execute(conn, NOTE_HOST, {"host": event.host})
        for step in ran(event):
            await _execute(conn, COUNT_FIX_RUNS, {
                "host": event.host, "check": event.check, "now": now, "fix": step.fix,
                "worked": int(step.reprobe_status == "OK")})
        if event.kind == "problem":
            await self._problem(conn, event, now)
        elif event.kind == "healed":
            await self._healed(conn, event, now)
        elif event.kind == "recovery":
            await _resolve_key(conn, event.key, now, _event_entry(event, "recovery"))
        else:
            await self._heartbeat(conn, event, now)

    async def _problem(self, conn: Connection, event: Event, now: dt.datetime) -> None:
        entry = _event_entry(event, "problem")
        if event.suppressed_by is not None:
            parent = await _open_id(conn, f"{event.host}/{event.suppressed_by}")
            if parent is not None:
                await _execute(conn, ATTACH, {"id": parent, "key": event.key})
                await _add_entry(conn, parent, replace(entry, kind="attached"))
                return
        assert event.check is not None and event.priority is not None  # Event validates
        trouble = Trouble(event.key, event.host, event.check, event.priority,
                           event.title or event.summary or event.key, event.summary)
        await self._open(conn, trouble, now, entry)

    async def _healed(self, conn: Connection, event: Event, now: dt.datetime) -> None:
        fix = event.steps[-1].fix if event.steps else "unknown"
        await _execute(conn, COUNT_HEALED, {"host": event.host, "check": event.check,
                                            "fix": fix, "now": now})
        incident_id = await _open_id(conn, event.key)
        if incident_id is not None:
            await _add_entry(conn, incident_id, _event_entry(event, "healed"))

    async def _heartbeat(self, conn: Connection, event: Event, now: dt.datetime) -> None:
        await _execute(conn, HEARTBEAT, {"host": event.host, "now": now,
                                         "interval": event.interval_seconds})
        entry = _Entry(event.at, "recovery", event.host, "heartbeats resumed", event.id)
        await _resolve_key(conn, f"{event.host}/{SERVER_DOWN}", now, entry)

    async def _open(self, conn: Connection, trouble: Trouble, now: dt.datetime,
                    entry: _Entry) -> tuple[int, bool]:
        """Open, reopen or update the incident for the key: (its id, whether it is new)."""
        due_at = now + self._target(trouble.priority)
        params = {"key": trouble.key, "host": trouble.host, "check": trouble.check,
                  "priority": trouble.priority, "title": trouble.title,
                  "summary": trouble.summary, "now": now, "due_at": due_at,
                  "since": now - dt.timedelta(seconds=self.policy.reopen_window)}
        await _execute(conn, LOCK_KEY, {"key": trouble.key})
        reopened = bool(await _fetch(conn, REOPEN, params))
        raised = await _fetch(conn, RAISE_PRIORITY, params)
        [(incident_id, count)] = await _fetch(conn, UPSERT, params)
        await _add_entry(conn, incident_id,
                         replace(entry, kind="reopened") if reopened else entry)
        if raised:
            await _add_entry(conn, incident_id, _Entry(
                now, "priority", MONITORD, f"priority raised to {trouble.priority}; now due "
                f"by {raised[0]['due_at']:%Y-%m-%d %H:%M:%S} UTC", entry.event_id))
            await _notice(conn, incident_id, "escalated", now)
        new = reopened or count == 1
        if new:
            await _notice(conn, incident_id, "opened", now)
        return incident_id, new

    # --- notices --------------------------------------------------------------------

    async def _escalate(self, conn: Connection, now: dt.datetime,
                        rules: Escalation) -> list[Notice]:
        made = []
        if rules.escalate_at > 0 and rules.max_level > 0:
            params = {"now": now, "share": rules.escalate_at, "max_level": rules.max_level,
                      "p_one": self._target("P1"), "p_two": self._target("P2"),
                      "p_three": self._target("P3")}
            for row in await _fetch(conn, ESCALATE, params):
                made.append(await _notice(conn, int(row["id"]), "escalated", now))
        if rules.renotify_every > 0:
            every = dt.timedelta(seconds=rules.renotify_every)
            for row in await _fetch(conn, RENOTIFY, {"now": now, "every": every}):
                made.append(await _notice(conn, int(row["id"]), "renotify", now))
        return made

    # --- heartbeats -----------------------------------------------------------------

    async def _sweep(self, conn: Connection, now: dt.datetime) -> list[Incident]:
        await _execute(conn, FORGET_HEARTBEATS, {"before": now - HEARTBEAT_MEMORY})
        silent = await _fetch(conn, CLAIM_SILENT, {"now": now, **self._silence()})
        opened = []
        for row in sorted(silent, key=lambda r: str(r["host"])):
            trouble, text = server_down(row["host"], row["last_heartbeat"],
                                        row["interval_seconds"], now)
            incident_id, new = await self._open(conn, trouble, now, _Entry(
                now, "problem", MONITORD, text))
            if new:
                opened.append(await self._incident(conn, incident_id, with_timeline=False))
        return opened

    # --- people ---------------------------------------------------------------------

    async def _incident(self, conn: Connection, incident_id: int,
                        with_timeline: bool = True) -> Incident:
        rows = await _fetch(conn, ONE_INCIDENT, {"id": incident_id})
        if not rows:
            raise NotFound(f"no incident {incident_id}")
        if not with_timeline:
            return _incident(rows[0])
        timeline = await _fetch(conn, TIMELINE, {"id": incident_id})
        return _incident(rows[0], tuple(_entry(r) for r in timeline))

    async def _act(self, conn: Connection, incident_id: int, sql: Query | None,
                   entry: _Entry) -> Incident:
        """Change the incident (``sql``, if any) and add ``entry`` to its timeline."""
        current = await _fetch(conn, LOCK_INCIDENT, {"id": incident_id})
        if not current:
            raise NotFound(f"no incident {incident_id}")
        params = {"id": incident_id, "now": entry.at, "who": entry.who}
        if sql is not None and not await _fetch(conn, sql, params):
            raise Conflict(f"incident {incident_id} is {current[0]['status']}: it cannot be "
                           f"{entry.kind} (a new problem on {current[0]['key']} reopens it)")
        await _add_entry(conn, incident_id, entry)
        if entry.kind == "resolved" or (entry.kind == "acknowledged"
                                        and current[0]["status"] == "open"):
            await _notice(conn, incident_id, entry.kind, entry.at)
        return await self._incident(conn, incident_id)


# --- the schema --------------------------------------------------------------------------

async def migrate(conn: Connection, name: str) -> list[str]:
    """Apply the schema files newer than the database's version; the names it applied.

    Runs inside the caller's transaction, after taking the migrations' advisory lock: a
    second process migrating at the same moment waits, then finds nothing left to do.
    """
    migrations = schema_files("postgres")
    latest = migrations[-1][0]
    await _execute(conn, LOCK_MIGRATIONS, {"lock": MIGRATION_LOCK})
    await _execute(conn, VERSION_TABLE, {})
    version = await conn.fetchval(CURRENT_VERSION.sql)
    if version > latest:
        raise StoreError(f"the incident store {name} has schema {version}, newer than "
                         f"this monitord knows ({latest}); upgrade monitord")
    applied = []
    for number, file_name, script in migrations:
        if number > version:
            await conn.execute(script)     # no parameters: several statements in one go
            await _execute(conn, RECORD_VERSION, {"version": number, "name": file_name})
            applied.append(file_name)
    return applied


# --- helpers ------------------------------------------------------------------------------

async def _fetch(conn: Connection, sql: Query, params: Mapping[str, object]) -> list[Row]:
    rows: list[Row] = await conn.fetch(sql.sql, *sql.args(params))
    return rows


async def _execute(conn: Connection, sql: Query, params: Mapping[str, object]) -> None:
    await conn.execute(sql.sql, *sql.args(params))


async def _claim(conn: Connection, events: Sequence[Event], now: dt.datetime) -> set[str]:
    """Record the events' ids; the set of those not applied before (the dedup)."""
    params = {"now": now, "ids": [e.id for e in events], "kinds": [e.kind for e in events],
              "hosts": [e.host for e in events], "checks": [e.check for e in events],
              "ats": [_aware(e.at) for e in events]}
    return {row["id"] for row in await _fetch(conn, CLAIM, params)}


async def _open_id(conn: Connection, key: str) -> int | None:
    rows = await _fetch(conn, OPEN_FOR_KEY, {"key": key})
    return int(rows[0]["id"]) if rows else None


async def _resolve_key(conn: Connection, key: str, now: dt.datetime, entry: _Entry) -> None:
    for row in await _fetch(conn, RESOLVE_KEY, {"key": key, "now": now, "who": MONITORD}):
        await _add_entry(conn, int(row["id"]), entry)
        await _notice(conn, int(row["id"]), "resolved", now)


async def _notice(conn: Connection, incident_id: int, kind: str, now: dt.datetime) -> Notice:
    [row] = await _fetch(conn, ADD_NOTICE, {"id": incident_id, "kind": kind, "now": now})
    return _notice_of(row)


async def _add_entry(conn: Connection, incident_id: int, entry: _Entry) -> None:
    await _execute(conn, ADD_ENTRY, {"id": incident_id, "at": entry.at, "kind": entry.kind,
                                     "who": entry.who, "text": entry.text,
                                     "event_id": entry.event_id, "steps": entry.steps})


async def _add_token(conn: Connection, sql: Query, params: Mapping[str, object]) -> None:
    try:
        await _execute(conn, sql, params)
    except asyncpg.UniqueViolationError:
        raise Conflict("that token is already registered to someone else; "
                       "make a new token") from None


def _aware(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        raise ValueError(f"expected a timezone-aware time, got {moment.isoformat()}")
    return moment


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    return None if moment is None else moment.astimezone(dt.UTC)


def _incident(row: Row, timeline: tuple[TimelineEntry, ...] = ()) -> Incident:
    return Incident(
        id=row["id"], key=row["key"], host=row["host"], check=row["check_name"],
        priority=Priority(row["priority"]), status=row["status"], title=row["title"],
        summary=row["summary"], opened_at=row["opened_at"].astimezone(dt.UTC),
        due_at=row["due_at"].astimezone(dt.UTC),
        last_seen_at=row["last_seen_at"].astimezone(dt.UTC), count=row["count"],
        acknowledged_at=_utc(row["acknowledged_at"]), acknowledged_by=row["acknowledged_by"],
        resolved_at=_utc(row["resolved_at"]), resolved_by=row["resolved_by"],
        reopened=row["reopened"], attached=tuple(sorted(row["attached_keys"])),
        timeline=timeline, escalation_level=row["escalation_level"],
        reopened_at=_utc(row["reopened_at"]))


def _notice_of(row: Row) -> Notice:
    return Notice(id=row["id"], incident_id=row["incident_id"], kind=row["kind"],
                  level=row["level"], created_at=row["created_at"].astimezone(dt.UTC),
                  attempts=row["attempts"], done=tuple(row["done"]))


def _entry(row: Row) -> TimelineEntry:
    return TimelineEntry(at=row["at"].astimezone(dt.UTC), kind=row["kind"], who=row["who"],
                         text=row["text"], event_id=row["event_id"],
                         steps=tuple(json.loads(row["steps"])))


def _host(row: Row) -> HostInfo:
    return HostInfo(host=row["host"], last_heartbeat=_utc(row["last_heartbeat"]),
                    interval_seconds=row["interval_seconds"],
                    open_incidents=row["open_incidents"], down=bool(row["down"]))


def _event_entry(event: Event, kind: str) -> _Entry:
    text, steps = event_text(event, kind)
    return _Entry(_aware(event.at), kind, event.host, text, event.id, steps)
