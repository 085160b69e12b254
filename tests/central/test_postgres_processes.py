"""Several ``monitord central`` processes on one PostgreSQL database: the races the store
closes inside the database, driven by real processes (and, for the sweeper, by two stores
with their own connection pools, where the test controls the clock).

Every process listens on 127.0.0.1 only, readiness is /healthz polled in a bounded loop,
and the processes are killed and reaped in teardown whatever happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import subprocess
import sys
import tomllib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from monitord.store.migrations import schema_files
from monitord.store.policy import Policy
from monitord.store.postgres import PostgresStore
from monitord.store.protocol import SERVER_DOWN, Incident
from tests.central.apiclient import heartbeat, problem
from tests.central.conftest import fresh_database
from tests.central.conftest import heartbeat as heartbeat_event
from tests.central.test_server import ROOT, central, free_port, wait_healthy

T0 = dt.datetime(2026, 11, 25, 17, 0, tzinfo=dt.UTC)
ROUNDS = 5


@pytest.fixture
async def database() -> AsyncIterator[str]:
    async with fresh_database() as dsn:
        yield dsn


@pytest.fixture
async def observer(database: str) -> AsyncIterator[PostgresStore]:
    """A store of the test's own on the shared database, to look at what the services did."""
    opened = await PostgresStore.open(database, Policy())
    yield opened
    await opened.close()


def write_config(path: Path, dsn: str, port: int, policy: str = "") -> Path:
    path.write_text(f'[central]\nlisten = "127.0.0.1:{port}"\nstore_url = "{dsn}"\n'
                    f'sweep_every = "50ms"\n[policy]\n{policy}')
    return path


def _base(config: Path) -> str:
    listen = tomllib.loads(config.read_text())["central"]["listen"]
    return f"http://{listen}"


@contextlib.contextmanager
def services(tmp_path: Path, configs: list[Path],
             listens: list[str] | None = None) -> Iterator[list[str]]:
    """``monitord central -c config`` for each config (or, given ``listens``, one process
    per address, all on the one config, with ``--listen``), started at once; their base
    URLs. All migrate the empty database as they start; killed and reaped in teardown."""
    runs = ([(configs[0], ["--listen", listen], f"http://{listen}") for listen in listens]
            if listens else [(config, [], _base(config)) for config in configs])
    with contextlib.ExitStack() as stack:
        procs, bases = [], []
        for n, (config, extra, base) in enumerate(runs):
            log = stack.enter_context((tmp_path / f"central{n}.log").open("wb"))
            proc = stack.enter_context(subprocess.Popen(
                [sys.executable, "-m", "monitord", "central", "-c", str(config), *extra],
                cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log))
            stack.callback(proc.kill)          # runs before Popen's exit reaps it
            procs.append(proc)
            bases.append(base)
        for base, proc in zip(bases, procs, strict=True):
            wait_healthy(base, proc)
        yield bases


async def post_at_once(session: aiohttp.ClientSession, token: str,
                       sends: list[tuple[str, list[dict[str, Any]]]]) -> list[dict[str, int]]:
    """POST each (service, batch) at the same time; every answer must be 200."""
    async def post(base: str, batch: list[dict[str, Any]]) -> dict[str, int]:
        async with session.post(f"{base}/api/v1/events", json={"events": batch},
                                headers={"Authorization": f"Bearer {token}"}) as response:
            assert response.status == 200, await response.text()
            answer: dict[str, int] = await response.json()
            return answer

    return await asyncio.gather(*(post(base, batch) for base, batch in sends))


async def add_agent(config: Path, host: str) -> str:
    made = await asyncio.to_thread(central, "add-agent", host, "-c", str(config))
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def counts(incidents: list[Incident]) -> dict[str, tuple[int, int]]:
    """key → (how many incidents, total count), over every status."""
    found: dict[str, tuple[int, int]] = {}
    for incident in incidents:
        number, total = found.get(incident.key, (0, 0))
        found[incident.key] = (number + 1, total + incident.count)
    return found


async def test_two_services_given_the_same_batches_open_one_incident_per_key_counted_once(
        tmp_path: Path, database: str, observer: PostgresStore) -> None:
    config = write_config(tmp_path / "c.toml", database, free_port())
    listens = [f"127.0.0.1:{free_port()}" for _ in (0, 1)]     # one config, two processes
    with services(tmp_path, [config], listens) as bases:
        token = await add_agent(config, "web1")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            for _ in range(ROUNDS):
                batch = [problem("web"), problem("db"), problem("web"), heartbeat(),
                         problem("mail", "P1"), problem("web", "P1"), problem("db")]
                answers = await post_at_once(session, token, [(b, batch) for b in bases])
                assert sorted(a["applied"] for a in answers) == [0, len(batch)]
                assert sum(a["duplicates"] for a in answers) == len(batch)
    assert counts(await observer.incidents(status=())) == {
        "web1/web": (1, 3 * ROUNDS), "web1/db": (1, 2 * ROUNDS), "web1/mail": (1, ROUNDS)}
    priorities = {i.key: i.priority for i in await observer.incidents()}
    assert priorities == {"web1/web": "P1", "web1/db": "P2", "web1/mail": "P1"}


async def test_overlapping_batches_for_one_key_count_each_event_once(
        tmp_path: Path, database: str, observer: PostgresStore) -> None:
    configs = [write_config(tmp_path / f"c{n}.toml", database, free_port()) for n in (0, 1)]
    with services(tmp_path, configs) as bases:
        token = await add_agent(configs[1], "web1")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            for round_ in range(ROUNDS):
                events = [problem("shop") for _ in range(10)]
                first, second = events[:6], events[3:]      # three ids in both batches
                answers = await post_at_once(session, token,
                                             [(bases[0], first), (bases[1], second)])
                assert sum(a["applied"] for a in answers) == len(events)
                assert sum(a["duplicates"] for a in answers) == 3
                [shop] = await observer.incidents()
                assert (shop.key, shop.count) == ("web1/shop", 10 * (round_ + 1))
                timeline = (await observer.incident(shop.id)).timeline
                assert len({e.event_id for e in timeline}) == len(timeline)


async def test_two_services_sweeping_a_silent_host_open_one_server_down(
        tmp_path: Path, database: str, observer: PostgresStore) -> None:
    # Both services sweep every 50 ms; the host is silent after 1 s without a heartbeat.
    policy = 'missed_heartbeats = 1\nmin_silence = "1s"\n'
    configs = [write_config(tmp_path / f"c{n}.toml", database, free_port(), policy)
               for n in (0, 1)]
    with services(tmp_path, configs) as bases:
        token = await add_agent(configs[0], "web1")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            await post_at_once(session, token, [(bases[0], [heartbeat(interval_seconds=1)])])
        down = await wait_for_incident(observer, f"web1/{SERVER_DOWN}")
    assert counts(await observer.incidents(status=())) == {f"web1/{SERVER_DOWN}": (1, 1)}
    timeline = (await observer.incident(down.id)).timeline
    assert [e.kind for e in timeline] == ["problem"]
    logged = "".join((tmp_path / f"central{n}.log").read_text() for n in (0, 1))
    assert logged.count("central: server down: web1") == 1
    assert "Traceback" not in logged


async def wait_for_incident(store: PostgresStore, key: str, limit_seconds: float = 30.0,
                            ) -> Incident:
    """The first open incident for ``key``, polled for at most ``limit_seconds``."""
    async with asyncio.timeout(limit_seconds):
        while True:
            found = [i for i in await store.incidents() if i.key == key]
            if found:
                return found[0]
            await asyncio.sleep(0.05)      # between polls, not instead of them


async def test_two_stores_sweeping_at_once_open_one_server_down_per_host(
        database: str) -> None:
    hosts = [f"web{n}" for n in range(20)]
    first = await PostgresStore.open(database, Policy())
    second = await PostgresStore.open(database, Policy())
    try:
        for round_ in range(ROUNDS):
            at = T0 + dt.timedelta(hours=2 * round_)
            await first.apply([heartbeat_event(host, at=at) for host in hosts], at)
            later = at + dt.timedelta(minutes=10)
            opened = await asyncio.gather(first.sweep(later), second.sweep(later),
                                          first.sweep(later), second.sweep(later))
            assert sorted(i.host for batch in opened for i in batch) == sorted(hosts)
        everything = await first.incidents(status=())
        assert {key: n for key, (n, _) in counts(everything).items()} == {
            f"{host}/{SERVER_DOWN}": 1 for host in hosts}       # reopened, never doubled
        assert all(i.reopened == ROUNDS - 1 for i in everything)
    finally:
        await first.close()
        await second.close()


def test_migrate_run_twice_at_once_applies_the_schema_once(
        tmp_path: Path, database: str) -> None:
    config = write_config(tmp_path / "c.toml", database, free_port())
    argv = [sys.executable, "-m", "monitord", "central", "migrate", "-c", str(config)]
    runs = [subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True) for _ in range(2)]
    try:
        outputs = sorted(run.communicate(timeout=60)[0] for run in runs)
    finally:
        for run in runs:
            run.kill()
            run.wait()
    assert [run.returncode for run in runs] == [0, 0]
    name = database.rpartition("/")[2]
    applied = ", ".join(file_name for _, file_name, _ in schema_files("postgres"))
    assert outputs == [f"postgresql://postgres@127.0.0.1:5432/{name}: applied {applied}\n",
                       f"postgresql://postgres@127.0.0.1:5432/{name}: the schema is up to date; "
                       "nothing to do\n"]
