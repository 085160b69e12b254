"""The console's queue over a real socket and every store backend: filters kept in the URL
(and refused in one line when they cannot be), pages that keep them, each row's acknowledge
and resolve buttons, and the bulk form: its token, its checks before anything is written,
and one timeline entry by the person per incident it changes."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import AsyncIterator

import pytest
from multidict import MultiDict

from monitord.central.console import queue
from monitord.central.console.errors import FORGED
from monitord.central.console.filters import (
    FilterError,
    QueueFilter,
    done_text,
    parse_filter,
)
from monitord.model import Priority
from monitord.store.protocol import Store
from tests.central.apiclient import Api, running
from tests.central.consoleclient import XSS, Page, signed_in
from tests.central.test_console import MINUTE, incident_ids, open_incident


@pytest.fixture
async def api(store: Store) -> AsyncIterator[Api]:
    async with running(store) as started:
        yield started


async def seeded(api: Api) -> dict[str, int]:
    """Five open incidents on two hosts, by name."""
    made = {
        "db": await open_incident(api, "db", "P1", summary="db: too many connections"),
        "web": await open_incident(api, "web", "P2", summary="web: HTTP 502 from nginx"),
        "disk": await open_incident(api, "disk", "P3", summary="/var at 91%"),
        "mail": await open_incident(api, "mail", "P1", host="web2", summary="smtp refused"),
        "web2": await open_incident(api, "web", "P2", host="web2", summary="HTTP 503"),
    }
    api.clock.advance(MINUTE)
    return made


def form_value(page: Page, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page.text)
    assert found, f"no {name} field"
    return html.unescape(found[1])


def ticked(page: Page, name: str) -> list[str]:
    return re.findall(rf'name="{name}" value="(\w+)" checked', page.text)


# --- filters -----------------------------------------------------------------------------

@pytest.mark.parametrize(("query", "expected"), [
    ("host=web2", ["mail", "web2"]),
    ("priority=P1", ["db", "mail"]),
    ("priority=P1&priority=P3", ["db", "mail", "disk"]),
    ("check=web", ["web", "web2"]),
    ("check=web&host=web1", ["web"]),
    ("text=HTTP+50", ["web", "web2"]),
    ("text=NGINX", ["web"]),                      # any case
    ("text=web2%2Fmail", ["mail"]),              # the key, host/check
    ("state=acknowledged", ["db"]),
    ("state=open&priority=P1", ["mail"]),
    ("host=&check=&text=&priority=P2", ["web", "web2"]),   # empty fields are "any"
    ("host=web3", []),
])
async def test_queue_filters_by_host_priority_state_check_and_text(
    api: Api, query: str, expected: list[str]
) -> None:
    person = await signed_in(api)
    made = await seeded(api)
    await api.store.acknowledge(made["db"], "dave", "", api.clock.now)
    page = await person.get(f"/console/?{query}")
    assert page.status == 200, page.text
    assert incident_ids(page) == [made[name] for name in expected]
    if not expected:
        assert "Nothing open that matches" in page.text


async def test_filter_form_shows_what_the_url_asks_for(api: Api) -> None:
    person = await signed_in(api)
    await seeded(api)
    page = await person.get("/console/?host=web1&check=web&text=a%26b+%22c%22"
                            "&priority=P2&priority=P3&state=open")
    assert page.status == 200
    assert (form_value(page, "host"), form_value(page, "check")) == ("web1", "web")
    assert form_value(page, "text") == 'a&b "c"'
    assert ticked(page, "priority") == ["P2", "P3"] and ticked(page, "state") == ["open"]
    assert '<form class="filters" method="get" action="/console/"' in page.text
    # The row buttons come back to this queue, its filters in canonical order.
    page = await person.get("/console/?state=open&text=HTTP+502&check=web&host=web1")
    assert form_value(page, "next") == "/console/?host=web1&check=web&state=open&text=HTTP+502"


def test_a_filter_round_trips_through_its_url() -> None:
    wanted = QueueFilter("web1", "web", (Priority.P1, Priority.P3), ("acknowledged",),
                         "HTTP 502 & <b>", 3)
    query = MultiDict(wanted.query(wanted.page))
    assert parse_filter(query) == wanted
    assert parse_filter(MultiDict()) == QueueFilter()
    assert QueueFilter().url() == "/console/"


@pytest.mark.parametrize(("query", "message"), [
    ("priority=P9", "priority: expected P1, P2 or P3, got 'P9'."),
    ("state=resolved", "state: expected open or acknowledged, got 'resolved'."),
    ("host=web+1", "host: expected a host name like web1, got 'web 1'."),
    ("check=%3Cscript%3E", "check: expected a check name like web, got '<script>'."),
    ("page=0", "page: expected a page number from 1, got '0'."),
    ("page=" + "9" * 5000, "page: expected a page number from 1, got '9999999999"),
    ("text=" + "x" * 201, "text: at most 200 characters, got 201."),
    ("text=a%00b", "text: expected printable characters."),
    ("hots=web1", 'unknown filter "hots"; did you mean "host"?'),
    ("host=web1&host=web2", "host: given more than once."),
    ("priority=P0&page=x", "priority: expected P1, P2 or P3, got 'P0'; page: expected a "
                           "page number from 1, got 'x'."),
])
async def test_bad_filter_is_a_400_with_one_line_naming_it(
    api: Api, query: str, message: str
) -> None:
    person = await signed_in(api)
    await seeded(api)
    page = await person.get(f"/console/?{query}")
    assert page.status == 400
    error = re.search(r'<p class="error" id="filter-error">(.*?)</p>', page.text)
    assert error is not None and "\n" not in error[1]
    assert html.unescape(error[1]).startswith(message)
    assert "<script>" not in page.text                 # what was typed, escaped
    assert incident_ids(page) == []
    assert '<form class="filters"' in page.text       # to put it right


def test_bad_filter_is_refused_before_the_store_is_asked() -> None:
    with pytest.raises(FilterError, match="priority"):
        parse_filter(MultiDict([("priority", "P4")]))


async def test_pages_of_the_queue_keep_the_filters(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue, "PAGE_SIZE", 2)
    person = await signed_in(api)
    made = [await open_incident(api, f"site{n}", "P2", summary=f"site{n}: HTTP 502")
            for n in range(5)]
    await open_incident(api, "db", "P1", summary="db down")
    first = await person.get("/console/?priority=P2&text=502")
    assert incident_ids(first) == made[:2]
    assert "1-2 of 5, page 1 of 3" in first.text
    following = html.unescape(re.findall(r'<a href="([^"]+)" rel="next">', first.text)[0])
    assert following == "/console/?priority=P2&text=502&page=2"
    second = await person.get(following)
    assert incident_ids(second) == made[2:4]
    assert '<a href="/console/?priority=P2&amp;text=502" rel="prev">' in second.text
    last = await person.get("/console/?priority=P2&text=502&page=3")
    assert incident_ids(last) == made[4:] and 'rel="next"' not in last.text
    beyond = await person.get("/console/?priority=P2&text=502&page=9")
    assert beyond.status == 200 and incident_ids(beyond) == []
    assert "Page 9 is past the end" in beyond.text
    assert '<a href="/console/?priority=P2&amp;text=502&amp;page=3">go to page 3</a>' in (
        beyond.text)


# --- a row's buttons ---------------------------------------------------------------------

async def test_row_buttons_act_and_come_back_to_the_queue_as_it_was(api: Api) -> None:
    person = await signed_in(api)
    made = await seeded(api)
    page = await person.get("/console/?host=web1")
    token = page.csrf()
    assert f'action="/console/incidents/{made["web"]}/acknowledge"' in page.text
    acked = await person.post(f"/console/incidents/{made['web']}/acknowledge",
                              {"csrf": token, "next": form_value(page, "next")})
    assert (acked.status, acked.location) == (
        303, "/console/?host=web1&done=acknowledged&count=1")
    shown = await person.get(acked.location)
    assert "Acknowledged 1 incident." in shown.text
    # Its reload goes to the queue itself, so the line is said once.
    assert '<meta http-equiv="refresh" content="30; url=/console/?host=web1">' in shown.text
    resolved = await person.post(f"/console/incidents/{made['db']}/resolve",
                                 {"csrf": token, "next": "/console/?host=web1"})
    assert "Resolved 1 incident." in (await person.get(resolved.location)).text
    web, db = await api.store.incident(made["web"]), await api.store.incident(made["db"])
    assert (web.status, web.acknowledged_by) == ("acknowledged", "carol")
    assert (db.status, db.resolved_by) == ("resolved", "carol")
    assert [(e.kind, e.who) for e in web.timeline][-1] == ("acknowledged", "carol")
    assert [(e.kind, e.who) for e in db.timeline][-1] == ("resolved", "carol")


async def test_acknowledged_row_offers_only_resolve(api: Api) -> None:
    person = await signed_in(api)
    made = await seeded(api)
    await api.store.acknowledge(made["db"], "dave", "", api.clock.now)
    page = await person.get("/console/")
    assert f'action="/console/incidents/{made["db"]}/acknowledge"' not in page.text
    assert f'action="/console/incidents/{made["db"]}/resolve"' in page.text


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/console/",
                                    "/api/v1/incidents"])
async def test_row_button_goes_back_to_console_pages_only(api: Api, target: str) -> None:
    person = await signed_in(api)
    made = await seeded(api)
    token = (await person.get("/console/")).csrf()
    page = await person.post(f"/console/incidents/{made['web']}/acknowledge",
                             {"csrf": token, "next": target})
    assert (page.status, page.location) == (303, "/console/?done=acknowledged&count=1")


def test_done_line_is_made_from_known_words_and_numbers_only() -> None:
    assert done_text({"done": "resolved", "count": "3", "skipped": "1"}) == (
        "Resolved 3 incidents. 1 could not be resolved: already resolved, or gone.")
    for query in ({"done": "<b>pwned</b>", "count": "1"}, {"done": "resolved", "count": "x"},
                  {"done": "resolved", "count": "1" * 9}, {}):
        assert done_text(query) == ""


# --- selecting, and the bulk form --------------------------------------------------------

async def test_selecting_shows_boxes_for_the_bulk_form_and_stops_reloading(api: Api) -> None:
    person = await signed_in(api)
    made = await seeded(api)
    plain = await person.get("/console/?priority=P1")
    assert 'form="bulk"' not in plain.text and 'href="/console/?priority=P1&amp;select=none"' in (
        plain.text)
    selecting = await person.get("/console/?priority=P1&select=none")
    assert selecting.status == 200
    assert '<form id="bulk" class="bulk" method="post" action="/console/bulk">' in selecting.text
    assert re.findall(r'name="id" value="(\d+)" form="bulk"', selecting.text) == [
        str(made["db"]), str(made["mail"])]
    assert " checked>" not in selecting.text.split('<table class="queue')[1]
    assert 'http-equiv="refresh"' not in selecting.text
    everything = await person.get("/console/?priority=P1&select=all")
    assert everything.text.count('form="bulk" aria-label') == 2
    assert len(re.findall(r'form="bulk" aria-label="select #\d+" checked>', everything.text)) == 2


async def test_bulk_resolve_resolves_each_with_its_own_timeline_entry(api: Api) -> None:
    person = await signed_in(api)
    made = await seeded(api)
    page = await person.get("/console/?priority=P1&select=all")
    chosen = [made["db"], made["mail"], made["disk"]]
    answer = await person.request("POST", "/console/bulk", MultiDict([
        ("csrf", page.csrf()), ("next", form_value(page, "next")), ("do", "resolve"),
        ("note", "datacentre power back"), *[("id", str(i)) for i in chosen]]))
    assert (answer.status, answer.location) == (
        303, "/console/?priority=P1&done=resolved&count=3")
    assert "Resolved 3 incidents." in (await person.get(answer.location)).text
    for incident_id in chosen:
        incident = await api.store.incident(incident_id)
        assert (incident.status, incident.resolved_by) == ("resolved", "carol")
        last = incident.timeline[-1]
        assert (last.kind, last.who, last.text) == ("resolved", "carol", "datacentre power back")
    assert (await api.store.incident(made["web"])).status == "open"


async def test_bulk_acknowledge_skips_what_cannot_take_it(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    person = await signed_in(api)
    made = await seeded(api)
    await api.store.resolve(made["web"], "dave", "", api.clock.now)
    token = (await person.get("/console/")).csrf()
    with caplog.at_level(logging.INFO):
        answer = await person.request("POST", "/console/bulk", MultiDict([
            ("csrf", token), ("do", "acknowledge"), ("id", str(made["db"])),
            ("id", str(made["web"])), ("id", "999999"), ("id", str(made["db"]))]))
    assert (f"carol: acknowledge 1 incidents (2 skipped): {made['db']}, {made['web']}, "
            "999999") in caplog.text
    assert token not in caplog.text
    assert (answer.status, answer.location) == (
        303, "/console/?done=acknowledged&count=1&skipped=2")
    shown = await person.get(answer.location)
    assert "Acknowledged 1 incident. 2 could not be acknowledged" in shown.text
    db = await api.store.incident(made["db"])
    assert (db.status, db.acknowledged_by) == ("acknowledged", "carol")
    assert [e.kind for e in db.timeline].count("acknowledged") == 1   # ticked twice, once
    assert (await api.store.incident(made["web"])).resolved_by == "dave"


@pytest.mark.parametrize("token", [None, "", "0" * 64, "another session's"])
async def test_bulk_form_without_its_token_is_403_and_changes_nothing(
    api: Api, token: str | None
) -> None:
    person = await signed_in(api)
    made = await seeded(api)
    if token == "another session's":
        token = (await (await signed_in(api, "dave")).get("/console/")).csrf()
    before = await api.store.incidents()
    for action in ("acknowledge", "resolve"):
        form = MultiDict([("do", action), *[("id", str(i)) for i in made.values()]])
        if token is not None:
            form.add("csrf", token)
        page = await person.request("POST", "/console/bulk", form)
        assert page.status == 403 and FORGED in page.text
    assert await api.store.incidents() == before


@pytest.mark.parametrize(("fields", "message"), [
    ([("do", "resolve")], "Nothing was selected: tick the incidents first."),
    ([("do", "delete"), ("id", "1")], "Choose &#34;Acknowledge selected&#34; or"),
    ([("do", "resolve"), ("id", "1"), ("id", "1; DROP")], "id: expected incident numbers, got"),
    ([("do", "resolve"), ("id", "9" * 30)], "id: expected incident numbers"),
    ([("do", "resolve"), ("id", "1"), ("note", "x" * 2001)], "The note is too long"),
])
async def test_bad_bulk_form_is_a_400_and_changes_nothing(
    api: Api, fields: list[tuple[str, str]], message: str
) -> None:
    person = await signed_in(api)
    await seeded(api)
    token = (await person.get("/console/")).csrf()
    before = await api.store.incidents()
    page = await person.request("POST", "/console/bulk", MultiDict([("csrf", token), *fields]))
    assert page.status == 400 and message in page.text
    assert await api.store.incidents() == before


async def test_too_many_at_once_is_refused(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(queue, "BULK_LIMIT", 2)
    person = await signed_in(api)
    made = await seeded(api)
    token = (await person.get("/console/")).csrf()
    page = await person.request("POST", "/console/bulk", MultiDict(
        [("csrf", token), ("do", "resolve"), *[("id", str(i)) for i in made.values()]]))
    assert page.status == 400 and "at most 2" in page.text
    assert len(await api.store.incidents()) == len(made)


# --- untrusted text ----------------------------------------------------------------------

async def test_queue_shows_untrusted_text_as_text(api: Api) -> None:
    person = await signed_in(api)
    await open_incident(api, "web", "P1", summary=f"HTTP 502 {XSS}", title=f"title {XSS}")
    page = await person.get("/console/?text=" + "%3Cscript%3E")
    assert page.status == 200 and len(incident_ids(page)) == 1
    assert "<script" not in page.text
    assert "HTTP 502 &lt;script&gt;window.__xss = 1; alert(1)&lt;/script&gt;" in page.text
    assert 'value="&lt;script&gt;"' in page.text       # the filter typed, as typed
