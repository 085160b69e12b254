"""Discovery from a real Apache httpd (Debian's apache2) with name-based vhosts and
aliases, and the generated checks run against it."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitord.agent.runner import run_check
from monitord.discover.expand import expand_found
from monitord.discover.rules import Sites
from monitord.discover.run import discover
from monitord.model import Status
from monitord.probes.base import ProbeContext, Shared
from tests.discover.servers import Apache

NAMES = ["alpha.example", "beta.example", "gamma.example"]


@pytest.fixture
def apache(tmp_path: Path) -> Iterator[Apache]:
    # Apache's workers run as www-data: the documents live where they can read them.
    with tempfile.TemporaryDirectory(prefix="monitord-apache-") as docs:
        server = Apache(tmp_path / "apache", Path(docs) / "www", NAMES)
        Path(docs).chmod(0o755)
        server.start()
        try:
            yield server
        finally:
            server.stop()


def rules(apache: Apache) -> Sites:
    return Sites.model_validate({"discover": ["apache2"],
                                 "apache2": {"command": [*apache.argv, "-S"]},
                                 "php_fpm": {"pool_files": []}})


async def test_name_based_vhosts_are_found_with_their_aliases(apache: Apache) -> None:
    found = await discover(rules(apache))
    assert found.errors == {}
    sites = {s.name: s for s in found.sites}
    assert sorted(sites) == NAMES
    alpha = sites["alpha.example"]
    assert alpha.aliases == ("www.alpha.example", "alias0.example")
    assert (alpha.address, alpha.port, alpha.tls) == ("127.0.0.1", apache.port, False)
    assert alpha.source.endswith("sites/001.conf:1")
    beta = sites["beta.example"]
    assert (beta.redirect_status, beta.redirect_to) == (301, "https://beta.example/")
    assert found.servers == {"apache2": str(apache.root / "apache2.pid")}


async def test_the_catch_all_vhost_and_wildcard_aliases_are_skipped(apache: Apache) -> None:
    found = await discover(rules(apache))
    reasons = {s.name: s.reason for s in found.skipped}
    assert reasons["*.wild0.example"] == "a wildcard name: no one name to ask for"
    assert [r for r in reasons.values() if r.startswith("no ServerName")]


async def test_the_generated_checks_pass_against_apache(apache: Apache) -> None:
    found = await discover(rules(apache))
    checks = expand_found(found, [], rules(apache), set()).checks
    shared = Shared()
    try:
        results = await asyncio.gather(*(run_check(c, ProbeContext(shared)) for c in checks))
    finally:
        await shared.close()
    assert {c.name: r.summary for c, r in zip(checks, results, strict=True)
            if r.status is not Status.OK} == {}
    assert {c.name for c in checks} == {*NAMES, "apache2-server", "apache2-config"}
