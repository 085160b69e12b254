"""Fixtures: the upstream, two PHP-FPM pools and nginx with 300 vhosts, all started."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.discover.servers import PhpPool, SiteNginx, Upstream

SITES = 300


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.close()


@pytest.fixture
def pools(tmp_path: Path) -> Iterator[dict[str, PhpPool]]:
    started = {name: PhpPool(tmp_path / f"php-{name}", f"pool{name}") for name in "ab"}
    try:
        for pool in started.values():
            pool.start()
        yield started
    finally:
        for pool in started.values():
            pool.stop()


@pytest.fixture
def nginx(tmp_path: Path, upstream: Upstream, pools: dict[str, PhpPool]) -> Iterator[SiteNginx]:
    server = SiteNginx(tmp_path / "nginx", SITES, upstream, pools)
    server.start()
    try:
        yield server
    finally:
        server.stop()
