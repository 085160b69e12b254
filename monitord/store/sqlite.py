"""The SQLite incident store: one file, one connection, one worker thread.

Open it from the event loop with ``store = await SQLiteStore.open(path, policy)``: that
creates the file and applies the schema off the loop. ``SQLiteStore(path, policy)`` does
the same work blocking, for callers that are not on a loop. Every method then runs its
script (``rules``, ``queries``) whole on the store's own thread under a deadline
(``timeout_seconds``): a slow disk delays only the caller, the connection is never used
by two threads at once, and a batch is one transaction with no hop to the event loop per
statement. A script that writes runs in one ``BEGIN IMMEDIATE`` transaction, which takes
the file's write lock at once: writers, in this process or another, run one at a time,
so the rules' per-key lock (``LOCK_KEY``) is nothing here. The file is in WAL mode with
``synchronous=FULL``: an applied batch survives a power cut, and a reader (``monitord
incidents``) never waits for the writer.

The schema is ``schema/sqlite/NNN_name.sql``, applied in order, each file in one
transaction; ``PRAGMA user_version`` holds the number of the last one applied. Times are
stored as UTC epoch seconds (REAL) and durations as seconds; lists and dicts as JSON text.

Errors: NotFound and Conflict as the rules raise them; a file that cannot be opened, read
or written, or a call past its deadline, raises StoreError with the file's name.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from monitord.durations import format_duration
from monitord.errors import StoreError, Taken
from monitord.store.base import RuleStore
from monitord.store.migrations import schema_files
from monitord.store.ops import Op, Row, Rows, Script, drive
from monitord.store.ops import Statement as S
from monitord.store.policy import Policy
from monitord.store.sqlite_dialect import CLAIM_EVENT, SQL, epoch

R = TypeVar("R")
BUSY_TIMEOUT_MS = 5000
PRAGMAS = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL",
           f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}", "PRAGMA foreign_keys=ON")
UNIQUE = (sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)


class SQLiteStore(RuleStore):
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

    # --- plumbing ---------------------------------------------------------------------

    async def _run(self, script: Callable[[], Script[R]], *, writes: bool) -> R:
        """The script, whole, on the store's thread under the deadline."""
        if self._closed:
            raise StoreError(f"the incident store {self.path} is closed")
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.timeout_seconds):
                return await loop.run_in_executor(self._thread, self._guarded, script, writes)
        except TimeoutError:
            raise StoreError(f"the incident store {self.path} did not answer within "
                             f"{format_duration(self.timeout_seconds)}; is its disk slow, "
                             "full or locked by another process?") from None

    def _guarded(self, script: Callable[[], Script[R]], writes: bool) -> R:
        """On the store's thread: a writing script in one transaction; sqlite errors become
        StoreError."""
        try:
            if not writes:
                return drive(script(), self._execute)
            with self._transaction():
                return drive(script(), self._execute)
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

    def _execute(self, op: Op) -> Rows:
        statement, params = op
        bound = SQL[statement]
        if bound is None:
            return self._claim_events(params) if statement == S.CLAIM_EVENTS else ()
        try:
            cursor = self._db.execute(bound.sql, bound.args(params))
        except sqlite3.IntegrityError as e:
            if e.sqlite_errorcode in UNIQUE:
                raise Taken(f"the incident store {self.path} failed: {e}") from None
            raise
        if cursor.description is None:    # no columns, so no rows: fetchall would still
            return ()                     # cost a few microseconds, on most statements
        found = cursor.fetchall()
        return bound.rows(cursor, found) if found else ()

    def _claim_events(self, params: Mapping[str, Any]) -> Rows:
        """Each event's host and id, one INSERT each (bound by position, in CLAIM_COLUMNS
        order: a batch claims hundreds). Those inserted are the ones not seen before."""
        now = epoch(params["now"])
        claimed: list[Row] = []
        for id_, kind, host, check, at in zip(params["ids"], params["kinds"], params["hosts"],
                                              params["checks"], params["ats"], strict=True):
            cursor = self._db.execute(CLAIM_EVENT.sql, (id_, kind, host, check, epoch(at), now))
            if cursor.rowcount == 1:
                claimed.append({"host": host, "id": id_})
        return claimed


# --- the file -----------------------------------------------------------------------------

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
