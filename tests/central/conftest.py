"""The store suite's fixtures: every backend behind one ``store`` fixture, and event makers.

A backend is a name in BACKENDS and an ``open`` function that opens that backend's store
at the test's own location (a file under tmp_path for SQLite; a fresh database or schema
for PostgreSQL, in time). Opening twice opens the same data, which is how the suite
checks that incidents survive a restart.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from monitord.central.sqlite_store import SQLiteStore
from monitord.central.store import Policy, Store
from monitord.events import Event, PriorityName, Step, new_id

BACKENDS = ["sqlite"]
POLICY = Policy()                     # P1 15 min, P2 2 h, P3 48 h; reopen 1 h; 3 x interval
T0 = dt.datetime(2026, 11, 25, 17, 0, tzinfo=dt.UTC)
HOST = "web1"

OpenStore = Callable[..., Awaitable[Store]]


def minutes(n: float) -> dt.datetime:
    """T0 plus ``n`` minutes: the tests drive the store's clock with these."""
    return T0 + dt.timedelta(minutes=n)


async def _open_sqlite(location: Path, policy: Policy) -> Store:
    return await SQLiteStore.open(location / "store.db", policy, timeout_seconds=30.0)


OPENERS: dict[str, Callable[[Path, Policy], Awaitable[Store]]] = {"sqlite": _open_sqlite}


@pytest.fixture(params=BACKENDS)
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[OpenStore]:
    """Opens the backend's store at this test's location; closes every one it opened."""
    opened: list[Store] = []

    async def open_(policy: Policy = POLICY) -> Store:
        store = await OPENERS[request.param](tmp_path, policy)
        opened.append(store)
        return store

    yield open_
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


def problem(check: str = "web", priority: PriorityName = "P2", *, host: str = HOST,
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
