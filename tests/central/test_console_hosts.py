"""A host's console page over a real socket and every store backend: its facts, its open
incidents with the queue's row buttons (coming back to the page), what was fixed there,
and its maintenance windows."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator

import pytest

from monitord.central.console.hosts import PAGE_SIZE
from monitord.store.protocol import Maintenance, Store
from tests.central.apiclient import Api, heartbeat, running
from tests.central.conftest import healed as store_healed
from tests.central.conftest import heartbeat as store_heartbeat
from tests.central.consoleclient import XSS, healed, signed_in, step
from tests.central.test_console import MINUTE, incident_ids, open_incident


@pytest.fixture
async def api(store: Store) -> AsyncIterator[Api]:
    async with running(store) as started:
        yield started


def heal_rows(text: str) -> list[tuple[str, ...]]:
    return re.findall(r'<td class="check">([\w-]+)</td>\s*<td><code>([\w-]+)</code></td>\s*'
                      r'<td class="num" data-label="runs">(\d+)</td>\s*'
                      r'<td class="num" data-label="worked">(\d+)</td>\s*'
                      r'<td class="num" data-label="success">([\d%-]+)</td>\s*'
                      r'<td data-label="last run" title="[^"]+">([^<]+)</td>', text)


async def test_host_page_shows_its_incidents_heals_and_maintenance_place(api: Api) -> None:
    person = await signed_in(api)
    assert (await api.post_events(heartbeat("web1"))).status == 200
    web = await open_incident(api, "web", "P2", steps=[step("reload-service")])
    await open_incident(api, "mail", "P1", host="web2", steps=[step("restart-service")])
    for event, host in ((healed("php", steps=(step("restart-service", worked=True),)), "web1"),
                        (healed("php", steps=(step("restart-service", worked=True),)), "web1"),
                        (healed("php", host="web2"), "web2")):
        assert (await api.post_events(event, host=host)).status == 200
    api.clock.advance(MINUTE)
    db = await open_incident(api, "db", "P1", steps=[step("restart-service")],
                             at=api.clock.now.isoformat())      # a run a minute later
    api.clock.advance(MINUTE)
    page = await person.get("/console/hosts/web1")
    assert page.status == 200, page.text
    assert "<h1>web1</h1>" in page.text and '<span class="up">up</span>' in page.text
    assert "2m ago, every 1m" in page.text
    assert incident_ids(page) == [db, web]
    assert page.text.count('name="next" value="/console/hosts/web1"') == 4   # 2 rows x 2
    assert heal_rows(page.text) == [("db", "restart-service", "1", "0", "0%", "1m ago"),
                                    ("php", "restart-service", "2", "2", "100%", "2m ago"),
                                    ("web", "reload-service", "1", "0", "0%", "2m ago")]
    assert 'id="maintenance"' in page.text and "Not in maintenance." in page.text
    await api.store.set_maintenance(Maintenance(
        "web1", "", api.clock.now + dt.timedelta(hours=2), "carol", f"disk swap {XSS}",
        api.clock.now))
    await api.store.set_maintenance(Maintenance(
        "web2", "", api.clock.now + dt.timedelta(hours=1), "carol", "other host",
        api.clock.now))
    windowed = await person.get("/console/hosts/web1")
    assert "the whole host" in windowed.text and "2h" in windowed.text
    assert "carol" in windowed.text and "other host" not in windowed.text
    assert XSS not in windowed.text and "disk swap &lt;script&gt;" in windowed.text
    api.clock.advance(7 * 86400 - 90)            # the first runs are now older than a week
    later = await (await signed_in(api, "dave")).get("/console/hosts/web1")
    assert heal_rows(later.text) == [("db", "restart-service", "1", "0", "0%", "6d23h ago")]
    assert '<a href="/console/?host=web1">This host in the queue</a>' in page.text


async def test_host_row_button_comes_back_to_the_host_page(api: Api) -> None:
    person = await signed_in(api)
    web = await open_incident(api, "web", "P2")
    page = await person.get("/console/hosts/web1")
    answer = await person.post(f"/console/incidents/{web}/resolve",
                               {"csrf": page.csrf(), "next": "/console/hosts/web1"})
    assert (answer.status, answer.location) == (
        303, "/console/hosts/web1?done=resolved&count=1")
    shown = await person.get(answer.location)
    assert "Resolved 1 incident." in shown.text and "Nothing open on web1." in shown.text
    incident = await api.store.incident(web)
    assert (incident.status, incident.timeline[-1].who) == ("resolved", "carol")


async def test_hosts_list_links_each_host_to_its_page(api: Api) -> None:
    person = await signed_in(api)
    assert (await api.post_events(heartbeat("web1"))).status == 200
    page = await person.get("/console/hosts")
    assert '<td class="host"><a href="/console/hosts/web1">web1</a></td>' in page.text


@pytest.mark.parametrize("path", ["/console/hosts/web9", "/console/hosts/web%201",
                                  "/console/hosts/%3Cscript%3E"])
async def test_unknown_host_is_an_html_404(api: Api, path: str) -> None:
    person = await signed_in(api)
    await open_incident(api, "web", "P2")
    page = await person.get(path)
    assert page.status == 404
    assert "monitord has not heard of a host by that name." in page.text
    assert "<script>" not in page.text


async def test_host_page_shows_untrusted_text_as_text(api: Api) -> None:
    person = await signed_in(api)
    await open_incident(api, "web", "P1", summary=f"HTTP 502 {XSS}")
    page = await person.get("/console/hosts/web1")
    assert page.status == 200 and "<script" not in page.text
    assert "HTTP 502 &lt;script&gt;window.__xss = 1; alert(1)&lt;/script&gt;" in page.text


def host_names(text: str) -> list[str]:
    return re.findall(r'<td class="host"><a href="/console/hosts/[^"]+">([^<]+)</a></td>', text)


async def test_hosts_list_comes_a_page_at_a_time(api: Api) -> None:
    person = await signed_in(api)
    names = [f"web{n:03}" for n in range(PAGE_SIZE + 5)]
    await api.store.apply([store_heartbeat(name) for name in names], api.clock.now)
    first = await person.get("/console/hosts")
    assert host_names(first.text) == names[:PAGE_SIZE]
    assert f"1-{PAGE_SIZE} of {PAGE_SIZE + 5}, page 1 of 2" in first.text
    assert '<a href="/console/hosts?page=2" rel="next">' in first.text
    second = await person.get("/console/hosts?page=2")
    assert host_names(second.text) == names[PAGE_SIZE:]
    assert '<a href="/console/hosts" rel="prev">' in second.text
    past = await person.get("/console/hosts?page=9")
    assert host_names(past.text) == [] and "go to page 2" in past.text
    for bad in ("/console/hosts?page=0", "/console/hosts?page=x", "/console/hosts?pgae=2"):
        assert (await person.get(bad)).status == 400


async def test_host_page_reads_only_its_own_heals(api: Api) -> None:
    person = await signed_in(api)
    await api.store.apply([store_healed("web", host="web2", at=api.clock.now)], api.clock.now)
    await api.store.apply([store_healed("php", host="web1", at=api.clock.now)], api.clock.now)
    page = await person.get("/console/hosts/web1")
    assert [row[0] for row in heal_rows(page.text)] == ["php", "php"]
