"""The store suite's fixtures: every backend behind one ``store`` fixture, and event makers.

A backend is a name in BACKENDS and an ``open`` function that opens that backend's store
at the test's own location (a file under tmp_path for SQLite; a fresh database, made
for the test and dropped after it, for PostgreSQL). Opening twice opens the same data,
which is how the suite checks that incidents survive a restart.

PostgreSQL is the server at $MONITORD_TEST_POSTGRES (an admin DSN; default the local
server's ``postgres`` database over 127.0.0.1); if it does not answer, the PostgreSQL
half of the suite is ``unavailable`` (skipped locally, failed in CI).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from monitord.events import Event, Step, new_id
from monitord.model import Priority
from monitord.store.policy import Policy
from monitord.store.postgres import PostgresStore
from monitord.store.protocol import Store
from monitord.store.sqlite import SQLiteStore
from tests.conftest import unavailable

BACKENDS = ["sqlite", "postgres"]
POSTGRES_ADMIN = os.environ.get("MONITORD_TEST_POSTGRES",
                                "postgresql://postgres@127.0.0.1:5432/postgres")
POSTGRES_TIMEOUT_SECONDS = 10.0
POLICY = Policy()                     # P1 15 min, P2 2 h, P3 48 h; reopen 1 h; 3 x interval
T0 = dt.datetime(2026, 11, 25, 17, 0, tzinfo=dt.UTC)
HOST = "web1"

OpenStore = Callable[..., Awaitable[Store]]


def minutes(n: float) -> dt.datetime:
    """T0 plus ``n`` minutes: the tests drive the store's clock with these."""
    return T0 + dt.timedelta(minutes=n)


@contextlib.asynccontextmanager
async def fresh_database(linguistic: bool = False) -> AsyncIterator[str]:
    """A new, empty PostgreSQL database for one test (its DSN); dropped afterwards.
    ``linguistic``: its text sorts by ICU's root collation (as most installations' locales
    do: "a-" after "a_", "b" before "B"), not by bytes."""
    name = f"monitord_test_{uuid.uuid4().hex[:16]}"
    # CREATE DATABASE takes no parameters; the name is made here, from hex digits only.
    icu = (" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'und' LOCALE 'C.UTF-8'"
           if linguistic else "")
    await _admin(f'CREATE DATABASE "{name}"{icu}')
    try:
        yield urlsplit(POSTGRES_ADMIN)._replace(path=f"/{name}").geturl()
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _admin(statement: str) -> None:
    try:
        async with asyncio.timeout(POSTGRES_TIMEOUT_SECONDS):
            conn = await asyncpg.connect(POSTGRES_ADMIN)
    except (OSError, TimeoutError, asyncpg.PostgresError) as e:
        unavailable(f"PostgreSQL at {POSTGRES_ADMIN} does not answer: {e or 'timeout'}")
    try:
        async with asyncio.timeout(POSTGRES_TIMEOUT_SECONDS):
            await conn.execute(statement)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def _location(backend: str, tmp_path: Path) -> AsyncIterator[str]:
    if backend == "postgres":
        async with fresh_database() as dsn:
            yield dsn
    else:
        yield str(tmp_path / "store.db")


async def _open_sqlite(location: str, policy: Policy) -> Store:
    return await SQLiteStore.open(Path(location), policy, timeout_seconds=30.0)


async def _open_postgres(location: str, policy: Policy) -> Store:
    return await PostgresStore.open(location, policy, timeout_seconds=30.0, pool_size=4)


OPENERS: dict[str, Callable[[str, Policy], Awaitable[Store]]] = {
    "sqlite": _open_sqlite, "postgres": _open_postgres}


@pytest.fixture(params=BACKENDS)
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OpenStore]:
    """Opens the backend's store at this test's location; closes every one it opened."""
    async with _location(request.param, tmp_path) as location:
        opened: list[Store] = []

        async def open_(policy: Policy = POLICY) -> Store:
            store = await OPENERS[request.param](location, policy)
            opened.append(store)
            return store

        try:
            yield open_
        finally:
            for store in opened:
                await store.close()


@pytest.fixture
async def store(open_store: OpenStore) -> Store:
    return await open_store()


# --- event makers ----------------------------------------------------------------------

def step(fix: str = "restart-service", ok: bool = False) -> Step:
    return Step(fix=fix, argv=[fix, "nginx"], exit_code=0, duration_seconds=1.5,
                output="done", ended="exit 0 in 1.5s",
                reprobe_status="OK" if ok else "CRITICAL", reprobe_summary="HTTP 502")


def problem(check: str = "web", priority: Priority | str = "P2", *, host: str = HOST,
            summary: str = "HTTP 502 from http://127.0.0.1/", at: dt.datetime = T0,
            suppressed_by: str | None = None, steps: tuple[Step, ...] = ()) -> Event:
    return Event(id=new_id(), kind="problem", host=host, check=check, at=at,
                 priority=priority, status="CRITICAL", title=f"{host}/{check}: {summary}",
                 summary=summary, reason="the fixes did not help",
                 suppressed_by=suppressed_by, steps=list(steps))


def healed(check: str = "web", *, host: str = HOST, at: dt.datetime = T0,
           fixes: tuple[str, ...] = ("reload-service", "restart-service")) -> Event:
    steps = [step(fix, ok=i == len(fixes) - 1) for i, fix in enumerate(fixes)]
    return Event(id=new_id(), kind="healed", host=host, check=check, at=at, status="CRITICAL",
                 summary="HTTP 502 from http://127.0.0.1/", reason="healed", steps=steps)


def recovery(check: str = "web", *, host: str = HOST, at: dt.datetime = T0) -> Event:
    return Event(id=new_id(), kind="recovery", host=host, check=check, at=at, status="OK",
                 summary="HTTP 200 from http://127.0.0.1/")


def heartbeat(host: str = HOST, *, interval_seconds: float = 60.0,
              at: dt.datetime = T0) -> Event:
    return Event(id=new_id(), kind="heartbeat", host=host, at=at,
                 interval_seconds=interval_seconds)
