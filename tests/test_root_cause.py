"""One page per root cause, against a real nginx with 20 name-based vhosts and the daemon
as a real process: the sites wait on nginx's own check, whatever their place in the cycle.

The checks run every 2 s and confirm a failure every 200 ms; the parent (nginx's process)
is placed first, in the middle and last of the order the checks start in.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitord.store.policy import Policy
from monitord.store.protocol import Incident
from monitord.store.sqlite import SQLiteStore
from tests.nginx import Nginx
from tests.processes import LocalAgent, Processes, processes, stop, wait_for

SITES = 20
HOST = "web1"
RECOVERY_SECONDS = 40.0   # bounded wait for nginx to be healed and every site OK again

def parent_name(rank: int) -> str:
    """A name for nginx's check that starts ``rank``-th among the 21 checks (the scheduler
    orders first runs by the CRC-32 of the name)."""
    sites = sorted(zlib.crc32(f"site{i}".encode()) for i in range(SITES))
    for n in range(10000):
        name = f"nginx-{n}"
        if sum(crc < zlib.crc32(name.encode()) for crc in sites) == rank:
            return name
    raise AssertionError(f"no name ranks {rank}")


def write_config(directory: Path, nginx: Nginx, parent: str, status_port: int) -> Path:
    start = json.dumps(nginx.argv)
    checks = [f"""
[[check]]
name = "{parent}"
probe = "process"
pidfile = "{nginx.prefix / 'nginx.pid'}"
priority = "P1"
start = {start}
heal = [{{ run = "start", settle = "300ms" }}]
"""]
    for i, site in enumerate(nginx.sites):
        checks.append(f"""
[[check]]
name = "site{i}"
probe = "http"
url = "http://127.0.0.1:{nginx.port}/"
host_header = "{site}"
priority = "P1"
depends_on = ["{parent}"]
start = {start}
heal = [{{ run = "start", settle = "300ms" }}]
""")
    config = directory / "monitord.toml"
    config.write_text(f"""
[agent]
host = "{HOST}"
start_rate = 1000.0

[healer]
grace = "0s"

[status]
listen = "127.0.0.1:{status_port}"

[defaults]
every = "2s"
timeout = "1500ms"
retry_every = "200ms"
fail_after = 2
recover_after = 1
{''.join(checks)}""")
    return config


class Daemon(LocalAgent):
    def __init__(self, running: Processes, directory: Path, nginx: Nginx, parent: str) -> None:
        super().__init__(running, directory,
                         lambda port: write_config(directory, nginx, parent, port))

    def all_ok(self) -> bool:
        checks = self.checks()
        return len(checks) == SITES + 1 and all(c["phase"] == "ok" for c in checks.values())

    def wait_all_ok(self) -> None:
        wait_for(self.all_ok, "every check OK", limit=RECOVERY_SECONDS, alive=(self.proc,))

    def stop(self) -> None:
        stop(self.proc)


def store_rows(state: Path) -> tuple[list[Incident], list[tuple[str, str, str, int, int]]]:
    async def read() -> tuple[list[Incident], list[tuple[str, str, str, int, int]]]:
        store = await SQLiteStore.open(state / "incidents.db", Policy())
        try:
            everything = await store.incidents(status=("open", "acknowledged", "resolved"))
            return [await store.incident(i.id) for i in everything], await store.fix_runs()
        finally:
            await store.close()

    return asyncio.run(read())


@pytest.fixture
def running() -> Iterator[Processes]:
    with processes() as started:
        yield started


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Nginx]:
    server = Nginx(tmp_path / "nginx", vhosts=SITES)
    server.start()
    try:
        yield server
    finally:
        server.stop()


PLACES = {"first": 0, "middle": SITES // 2, "last": SITES}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("place", sorted(PLACES))
def test_killed_nginx_is_healed_once_and_nothing_is_filed(
        tmp_path: Path, nginx: Nginx, running: Processes, place: str) -> None:
    parent = parent_name(PLACES[place])
    daemon = Daemon(running, tmp_path, nginx, parent)
    daemon.wait_all_ok()
    nginx.kill(wait_down=False)
    wait_for(nginx.answers, "nginx serving again", limit=RECOVERY_SECONDS, alive=(daemon.proc,))
    daemon.wait_all_ok()
    daemon.stop()
    incidents, fix_runs = store_rows(daemon.state)
    log = daemon.logged()
    assert incidents == []
    assert [(check, fix) for _, check, fix, _, _ in fix_runs] == [(parent, "start")]
    assert log.count(f"{parent}: healed: fixed by start") == 1
    assert "site" not in "".join(line for line in log.splitlines() if "fix ladder" in line)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("place", sorted(PLACES))
def test_broken_nginx_is_one_p1_incident_listing_every_site(
        tmp_path: Path, nginx: Nginx, running: Processes, place: str) -> None:
    parent = parent_name(PLACES[place])
    daemon = Daemon(running, tmp_path, nginx, parent)
    daemon.wait_all_ok()
    nginx.write(broken=True)         # the start fix cannot bring it back
    nginx.kill(wait_down=False)

    def every_site_attached() -> list[Incident]:
        incidents, _ = store_rows(daemon.state)
        return incidents if incidents and len(incidents[0].attached) == SITES else []

    incidents = wait_for(every_site_attached, "every site attached to nginx's incident",
                         limit=RECOVERY_SECONDS, alive=(daemon.proc,))
    daemon.stop()
    incidents, fix_runs = store_rows(daemon.state)
    assert [(i.key, i.priority, i.status) for i in incidents] == [
        (f"{HOST}/{parent}", "P1", "open")]
    assert sorted(incidents[0].attached) == sorted(f"{HOST}/site{i}" for i in range(SITES))
    assert {check for _, check, _, _, _ in fix_runs} == {parent}
