"""The PostgreSQL incident store: the central deployment, shared by several processes.

Open it with ``store = await PostgresStore.open(dsn, policy)``: that makes a connection
pool and applies the schema (``migrate``). Every method runs its script (``rules``,
``queries``) whole in one transaction on one pooled connection, under a deadline
(``timeout_seconds``); the SQL (``postgres_dialect``) is plain, with named parameters.

Other processes write the same tables at the same time, so each race is closed inside
the database (READ COMMITTED, the default isolation), by this dialect's SQL for the
rules' statements:

- dedup (``CLAIM_EVENTS``): one ``INSERT ... ON CONFLICT (host, id) DO NOTHING
  RETURNING host, id`` over the batch's columns claims its ids in (host, id) order (so
  two batches sharing ids wait for each other instead of deadlocking); a process that
  loses the race waits for the winner's commit and then sees the ids as duplicates. Ids
  are unique per host. The batch is one transaction.
- one open incident per key: the upsert's target is the partial unique index
  (``ON CONFLICT (key) WHERE status <> 'resolved' DO UPDATE``), atomic under concurrency.
- reopen, priority raise and upsert of one key run after ``pg_advisory_xact_lock`` on
  the key (``LOCK_KEY``), held to the end of the transaction, so two processes never
  both reopen an incident, or one reopen while the other opens a new one.
- the sweeper claims silent hosts (``CLAIM_SILENT``) with one ``UPDATE ... down_since``
  on rows it locked (``SELECT ... FOR UPDATE``, re-checked after a wait), so of two
  concurrent sweeps only one opens "server down" for an outage.
- people's actions lock the incident row (``LOCK_INCIDENT``, ``FOR UPDATE``) before they
  check its status.
- a transaction the server aborts as a deadlock (or serialization failure) is retried
  with a fresh script, at most ``ATTEMPTS`` times in all.

Times are timestamptz (and come back in UTC), durations intervals, lists arrays, and JSON
is jsonb, with a codec on every pooled connection so that lists and dicts go in and come
out as they are.

Errors: NotFound, Conflict and ValueError as the rules raise them; anything the database
or the network does wrong, or a call past its deadline, raises StoreError naming the
database without its password.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import asyncpg

from monitord.durations import format_duration
from monitord.errors import StoreError, Taken
from monitord.net import redact_url
from monitord.store.base import RuleStore
from monitord.store.migrations import schema_files
from monitord.store.ops import Op, Query, Rows, Script, drive_async
from monitord.store.policy import Policy
from monitord.store.postgres_dialect import (
    CURRENT_VERSION,
    LOCK_MIGRATIONS,
    RECORD_VERSION,
    SQL,
    VERSION_TABLE,
)

log = logging.getLogger(__name__)

R = TypeVar("R")
Connection = Any     # asyncpg.Connection or a pool's proxy for one (asyncpg is untyped)
ATTEMPTS = 3
RETRYABLE = (asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.SerializationError)
DATABASE_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
MIGRATION_LOCK = 0x6D6F6E69746F7264    # "monitord": the advisory lock key of migrations


class PostgresStore(RuleStore):
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
                    timeout=timeout_seconds, init=_with_json,
                    server_settings={"application_name": "monitord-central"})
        except TimeoutError:
            raise StoreError(f"cannot open the incident store {name}: no answer within "
                             f"{format_duration(timeout_seconds)}") from None
        except (*DATABASE_ERRORS, ValueError) as e:
            raise StoreError(f"cannot open the incident store {name}: {e}") from None
        store = cls(pool, policy, name, timeout_seconds=timeout_seconds)
        try:
            store.migrated = tuple(await store._work(lambda conn: migrate(conn, name)))
        except BaseException:
            await store.close()
            raise
        return store

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

    # --- plumbing ---------------------------------------------------------------------

    async def _run(self, script: Callable[[], Script[R]], *, writes: bool) -> R:
        """The script in one transaction (every one is, reads too)."""
        return await self._work(
            lambda conn: drive_async(script(), lambda op: self._execute(conn, op)))

    async def _work(self, work: Callable[[Connection], Awaitable[R]]) -> R:
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
        """Run the transaction again when the server aborted it as a deadlock (``work``
        starts its script afresh each time)."""
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

    async def _execute(self, conn: Connection, op: Op) -> Rows:
        """The statement's rows: asyncpg's records, read by column name like any mapping,
        their timestamptz values aware datetimes in UTC already."""
        statement, params = op
        query = SQL[statement]
        try:
            rows: Rows = await conn.fetch(query.sql, *_args(query, params))
        except asyncpg.UniqueViolationError as e:
            raise Taken(f"the incident store {self.name} failed: {e}") from None
        return rows


# --- the schema --------------------------------------------------------------------------

async def migrate(conn: Connection, name: str) -> list[str]:
    """Apply the schema files newer than the database's version; the names it applied.

    Runs inside the caller's transaction, after taking the migrations' advisory lock: a
    second process migrating at the same moment waits, then finds nothing left to do.
    """
    migrations = schema_files("postgres")
    latest = migrations[-1][0]
    await conn.execute(LOCK_MIGRATIONS.sql, *_args(LOCK_MIGRATIONS, {"lock": MIGRATION_LOCK}))
    await conn.execute(VERSION_TABLE.sql)
    version = await conn.fetchval(CURRENT_VERSION.sql)
    if version > latest:
        raise StoreError(f"the incident store {name} has schema {version}, newer than "
                         f"this monitord knows ({latest}); upgrade monitord")
    applied = []
    for number, file_name, script in migrations:
        if number > version:
            await conn.execute(script)     # no parameters: several statements in one go
            await conn.execute(RECORD_VERSION.sql, *_args(
                RECORD_VERSION, {"version": number, "name": file_name}))
            applied.append(file_name)
    return applied


# --- types ----------------------------------------------------------------------------------

def _args(query: Query, params: Mapping[str, object]) -> list[object]:
    """The parameters in ``query``'s numbering; asyncpg takes the rules' values as they
    are (datetimes, timedeltas, lists; dicts and lists for jsonb through its codec)."""
    return [params[name] for name in query.names]


async def _with_json(conn: Connection) -> None:
    """jsonb in and out as Python values (asyncpg's default is text)."""
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads,
                              schema="pg_catalog")

