"""The store's bounded reads, on every backend: one host, a page of hosts, one host's
maintenance windows, fix statistics filtered by host or check and capped, and the
scrapers' tokens."""

from __future__ import annotations

import datetime as dt

import pytest

from monitord.errors import Conflict
from monitord.store.protocol import FixRuns, Maintenance, Store
from tests.central.conftest import T0, healed, heartbeat, minutes

DAY = dt.timedelta(days=1)


async def test_one_host_is_read_as_the_list_shows_it(store: Store) -> None:
    await store.apply([heartbeat("web1"), heartbeat("web2", interval_seconds=30.0)], T0)
    listed = {h.host: h for h in await store.hosts(minutes(1))}
    assert await store.host("web2", minutes(1)) == listed["web2"]
    assert await store.host("web3", minutes(1)) is None
    silent = await store.host("web1", minutes(10))
    assert silent is not None and silent.down


async def test_hosts_come_a_page_at_a_time_with_their_number(store: Store) -> None:
    await store.apply([heartbeat(f"web{n:02}") for n in range(7)], T0)
    first, total = await store.hosts_page(T0, limit=3)
    last, again = await store.hosts_page(T0, limit=3, offset=6)
    past, _ = await store.hosts_page(T0, limit=3, offset=9)
    assert (total, again) == (7, 7)
    assert [h.host for h in first] == ["web00", "web01", "web02"]
    assert [h.host for h in last] == ["web06"]
    assert past == []


async def test_maintenance_is_read_for_one_host(store: Store) -> None:
    for host in ("web1", "web2"):
        await store.set_maintenance(Maintenance(host, "", T0 + DAY, "alice", "racks", T0))
    await store.set_maintenance(Maintenance("web1", "shop", T0 + DAY, "bob", "upgrade", T0))
    mine = await store.maintenance(T0, host="web1")
    assert [(w.host, w.check) for w in mine] == [("web1", ""), ("web1", "shop")]
    assert await store.maintenance(T0 + 2 * DAY, host="web1") == []
    assert len(await store.maintenance(T0)) == 3


async def test_fix_stats_are_filtered_by_host_and_check(store: Store) -> None:
    await store.apply([healed("web", at=T0 - 10 * DAY)], T0 - 10 * DAY)
    await store.apply([healed("web"), healed("db", fixes=("restart-service",)),
                       healed("web", host="web2")], T0)
    since = T0 - 7 * DAY
    assert await store.fix_stats(since, host="web1") == [
        FixRuns("web1", "db", "restart-service", 1, 1, T0),
        FixRuns("web1", "web", "reload-service", 1, 0, T0),
        FixRuns("web1", "web", "restart-service", 1, 1, T0)]
    assert [(r.host, r.fix) for r in await store.fix_stats(since, host="web1", check="db")] \
        == [("web1", "restart-service")]
    assert {r.host for r in await store.fix_stats(since, check="web")} == {"web1", "web2"}
    assert await store.fix_stats(since, host="web9") == []


async def test_capped_fix_stats_keep_the_busiest(store: Store) -> None:
    await store.apply([healed("web", fixes=("restart-service",), at=minutes(-n))
                       for n in range(3)], T0)
    await store.apply([healed("db", fixes=("restart-service",))], T0)
    await store.apply([healed("mail", fixes=("restart-service",), at=minutes(-1)),
                       healed("mail", fixes=("restart-service",), at=minutes(-2))], T0)
    capped = await store.fix_stats(T0 - DAY, limit=2)
    assert [(r.check, r.runs) for r in capped] == [("web", 3), ("mail", 2)]
    assert len(await store.fix_stats(T0 - DAY)) == 3


async def test_a_scraper_token_names_its_scraper_only(store: Store) -> None:
    await store.add_scraper("prometheus", "a" * 64, T0)
    assert await store.scraper_for("a" * 64) == "prometheus"
    assert await store.agent_for("a" * 64) is None
    assert await store.person_for("a" * 64) is None
    await store.add_scraper("prometheus", "b" * 64, T0)        # re-keyed: the old one is gone
    assert await store.scraper_for("a" * 64) is None
    with pytest.raises(Conflict):
        await store.add_scraper("other", "b" * 64, T0)
