"""The daemon as a real process over a real nginx with 300 vhosts, two PHP-FPM pools and
an upstream: the admin writes only the site rules.

Checks run every 2 s; the watcher polls every 300 ms and re-reads at least every 3 s.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from monitord.store.policy import Policy
from monitord.store.protocol import Incident
from monitord.store.sqlite import SQLiteStore
from tests.discover.conftest import SITES
from tests.discover.servers import SiteNginx, kind
from tests.processes import LocalAgent, Processes, processes, stop, wait_for

HOST = "web1"
TLS_SITES = SITES // 10
CHECKS = SITES + 2 * TLS_SITES + 2 + 2 + 1    # sites, https and cert, nginx, pools, upstream
LIMIT = 60.0


def write_config(directory: Path, nginx: SiteNginx, status_port: int) -> Path:
    pool_files = json.dumps([str(p.pool_file) for p in nginx.pools.values()])
    config = directory / "monitord.toml"
    config.write_text(f"""
[agent]
host = "{HOST}"
start_rate = 200.0

[healer]
grace = "0s"

[status]
listen = "127.0.0.1:{status_port}"

[sites]
discover = ["nginx"]
every = "2s"
timeout = "1500ms"
retry_every = "300ms"
fail_after = 2
recover_after = 1
ca_file = "{nginx.ca.ca_file}"
poll_every = "300ms"
rescan_every = "3s"
nginx = {{ command = {json.dumps([*nginx.argv, "-T"])} }}
php_fpm = {{ pool_files = {pool_files} }}
down = {{ gather = "3s" }}

[sites.slow]       # judged on the sites alone: the machine's load is the test suite's
judge_every = "1s"
min_seconds = "300ms"
load_per_cpu = 1000.0
iowait_ratio = 1.0
memory_available_ratio = 0.0
""")
    return config


class Daemon(LocalAgent):
    def __init__(self, running: Processes, directory: Path, nginx: SiteNginx) -> None:
        super().__init__(running, directory, lambda port: write_config(directory, nginx, port))

    def wait(self, condition: Any, what: str) -> Any:
        return wait_for(condition, what, limit=LIMIT, alive=(self.proc,))

    def wait_all_ok(self, count: int = CHECKS) -> None:
        def all_ok() -> bool:
            checks = self.checks()
            return len(checks) == count and all(c["phase"] == "ok" for c in checks.values())

        self.wait(all_ok, f"{count} checks, all OK")

    def incidents(self) -> list[Incident]:
        return incidents(self.state)


def incidents(state: Path) -> list[Incident]:
    async def read() -> list[Incident]:
        store = await SQLiteStore.open(state / "incidents.db", Policy())
        try:
            found = await store.incidents(status=("open", "acknowledged", "resolved"))
            return [await store.incident(i.id) for i in found]
        finally:
            await store.close()

    if not (state / "incidents.db").exists():
        return []
    return asyncio.run(read())


@pytest.fixture
def running() -> Iterator[Processes]:
    with processes() as started:
        yield started


@pytest.fixture
def daemon(running: Processes, tmp_path: Path, nginx: SiteNginx) -> Iterator[Daemon]:
    started = Daemon(running, tmp_path, nginx)
    started.wait_all_ok()
    yield started
    stop(started.proc)


@pytest.mark.timeout(180)
def test_a_new_vhost_is_watched_and_a_removed_one_retired_with_its_incident(
        daemon: Daemon, nginx: SiteNginx) -> None:
    nginx.extra = {
        "new": f"server {{ listen 127.0.0.1:{nginx.port}; server_name new.example; "
               'return 200 "new\\n"; }',
        "broken": f"server {{ listen 127.0.0.1:{nginx.port}; server_name broken.example; "
                  'return 500 "broken\\n"; }'}
    nginx.write()
    nginx.reload()
    daemon.wait(lambda: {"new.example", "broken.example"} <= set(daemon.checks()),
                "the new vhosts watched")
    assert "2 added (broken.example, new.example); reloading" in daemon.logged()
    daemon.wait(lambda: any(i.key == f"{HOST}/broken.example" for i in daemon.incidents()),
                "broken.example's incident")
    for name in nginx.extra:
        (nginx.prefix / "sites" / f"{name}.conf").unlink()
    nginx.extra = {}
    nginx.reload()
    daemon.wait(lambda: not {"new.example", "broken.example"} & set(daemon.checks()),
                "the removed vhosts retired")
    [incident] = daemon.wait(
        lambda: [i for i in daemon.incidents() if i.status == "resolved"], "resolved")
    assert incident.key == f"{HOST}/broken.example"
    assert "site removed from the web server" in incident.timeline[-1].text
    assert "2 removed (broken.example, new.example); reloading" in daemon.logged()
    daemon.wait_all_ok()


@pytest.mark.timeout(180)
def test_a_config_nginx_refuses_keeps_the_last_set_and_nginx_config_says_why(
        daemon: Daemon, nginx: SiteNginx) -> None:
    nginx.write(broken=True)

    def config_warns_and_the_set_is_kept() -> bool:
        check = daemon.checks().get("nginx-config", {})
        kept = "keeping the last good set of its sites" in daemon.logged()
        return check.get("status") == "WARNING" and kept

    daemon.wait(config_warns_and_the_set_is_kept, "nginx-config to warn, the set kept")
    checks = daemon.checks()
    assert 'unknown directive "this_is_not_a_directive"' in checks["nginx-config"]["summary"]
    assert len(checks) == CHECKS
    assert "reloading" not in daemon.logged()     # the first discovery came before the start
    nginx.write()
    daemon.wait(lambda: "nginx: its config reads again" in daemon.logged(), "config good")


@pytest.mark.timeout(180)
def test_a_stopped_pool_is_one_incident_listing_its_sites(daemon: Daemon,
                                                          nginx: SiteNginx) -> None:
    pool_sites = {f"{HOST}/site{i}.example" for i in range(SITES) if kind(i) == "php-a"}
    nginx.pools["a"].stop()

    def all_attached() -> list[Incident]:
        found = daemon.incidents()
        return found if found and set(found[0].attached) == pool_sites else []

    daemon.wait(all_attached, "every site of pool a attached to its incident")
    [incident] = daemon.incidents()
    assert (incident.key, incident.priority) == (f"{HOST}/php-fpm-pool-poola", "P1")


@pytest.mark.timeout(180)
def test_most_sites_slowed_down_is_one_p2_server_slow(daemon: Daemon,
                                                      nginx: SiteNginx) -> None:
    daemon.wait(lambda: "server-slow: the usual times of" in daemon.logged(),
                "every site to have a baseline")
    nginx.upstream.delay = 0.6
    [incident] = daemon.wait(lambda: daemon.incidents(), "the server-slow incident")
    assert (incident.key, incident.priority) == (f"{HOST}/server-slow", "P2")
    text = "\n".join(entry.text for entry in incident.timeline)
    assert "sites at 3x or more of their usual time" in incident.title
    assert "Slowest sites" in text and "Top processes by CPU" in text
    assert "Top processes by I/O" in text
    nginx.upstream.delay = 0.0
    daemon.wait(lambda: all(i.status == "resolved" for i in daemon.incidents()),
                "server-slow resolved")
    assert len(daemon.incidents()) == 1


@pytest.mark.timeout(180)
def test_many_sites_down_with_no_failing_parent_are_one_incident(daemon: Daemon,
                                                               nginx: SiteNginx) -> None:
    nginx.upstream.status = 503      # the upstream still accepts: its check stays OK
    behind = {f"{HOST}/site{i}.example" for i in range(SITES) if kind(i) == "upstream"}

    def gathered() -> list[Incident]:
        found = daemon.incidents()
        return found if found and behind <= set(found[0].attached) else []

    daemon.wait(gathered, "the sites behind the upstream attached to one incident")
    [incident] = daemon.incidents()
    assert incident.key == f"{HOST}/sites-down"
    assert "sites down on web1" in incident.title


