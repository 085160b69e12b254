"""The console's maintenance page: the windows listed, a host put in maintenance by a
person (its notices silenced), a window ended, and the form's token required."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitord.central.console.errors import FORGED
from monitord.store.protocol import Store
from tests.central.apiclient import Api, heartbeat, problem, running
from tests.central.consoleclient import XSS, Page, Person, signed_in

PAGE = "/console/maintenance"


@pytest.fixture
async def api(store: Store) -> AsyncIterator[Api]:
    async with running(store) as started:
        yield started


async def set_window(person: Person, **form: str) -> Page:
    page = await person.get(PAGE)
    assert page.status == 200, page.text
    return await person.post(PAGE, {"csrf": page.csrf(), **form})


async def test_a_person_puts_a_host_in_maintenance_and_nobody_is_told(api: Api) -> None:
    person = await signed_in(api)
    page = await set_window(person, host="web1", reason="moving racks", **{"for": "2h"})
    assert (page.status, page.location) == (303, PAGE)
    [window] = await api.store.maintenance(api.clock())
    assert (window.host, window.owner, window.reason) == ("web1", "carol", "moving racks")
    assert (window.until - api.clock()).total_seconds() == 7200
    shown = (await person.get(PAGE)).text
    assert re.search(r"<td>web1</td>\s*<td>the whole host</td>", shown)
    assert "moving racks" in shown and "<td>carol</td>" in shown
    await api.post_events(problem("web", "P1"))
    assert await api.store.claim_notices(api.clock(), 60.0) == []


async def test_ending_a_window_from_the_page(api: Api) -> None:
    person = await signed_in(api)
    await set_window(person, host="web1", reason="moving racks", **{"for": "30m"})
    page = await person.get(PAGE)
    ended = await person.post(PAGE + "/end", {"csrf": page.csrf(), "host": "web1"})
    assert (ended.status, ended.location) == (303, PAGE)
    assert await api.store.maintenance(api.clock()) == []
    again = await person.post(PAGE + "/end", {"csrf": page.csrf(), "host": "web1"})
    assert again.status == 404 and "web1 is not in maintenance." in again.text



async def test_the_page_shows_who_set_a_window_and_ends_the_agents_too(api: Api) -> None:
    person = await signed_in(api)
    until = (api.clock() + dt.timedelta(hours=1)).isoformat()
    await api.post_events({"id": uuid.uuid4().hex, "kind": "maintenance", "host": "web1",
                           "at": api.clock().isoformat(), "until": until, "owner": "root",
                           "reason": "kernel upgrade"})
    page = await person.get(PAGE)
    assert re.search(r"<td>root</td>\s*<td>the agent</td>", page.text)
    ended = await person.post(PAGE + "/end", {"csrf": page.csrf(), "host": "web1"})
    assert (ended.status, ended.location) == (303, PAGE)
    assert await api.store.maintenance(api.clock()) == []

@pytest.mark.parametrize(("form", "message"), [
    ({"host": "web1", "reason": "x", "for": "two hours"}, "for: expected a duration"),
    ({"host": "web1", "reason": "x", "for": "8d"}, "until: expected at most 7d"),
    ({"host": "web1", "reason": " ", "for": "1h"}, "reason: say why"),
    ({"host": "<b>web1", "reason": "x", "for": "1h"}, "host: expected a host name"),
])
async def test_a_bad_window_is_400_on_the_page_and_sets_nothing(
        api: Api, form: dict[str, str], message: str) -> None:
    person = await signed_in(api)
    page = await set_window(person, **form)
    assert page.status == 400 and message in page.text
    assert "<b>web1" not in page.text
    assert await api.store.maintenance(api.clock()) == []



async def test_a_window_too_long_for_a_date_is_400_not_500(api: Api) -> None:
    person = await signed_in(api)
    page = await set_window(person, host="web1", reason="x", **{"for": "99999999999d"})
    assert page.status == 400 and "until: expected at most 7d" in page.text
    assert await api.store.maintenance(api.clock()) == []


LASTING = st.one_of(st.text(max_size=40), st.from_regex(
    r"\A[0-9]{1,30}(\.[0-9]{1,5})?(ms|s|m|h|d)\Z"))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lasting=LASTING)
async def test_any_length_typed_in_the_form_is_answered_never_500(
        api: Api, lasting: str) -> None:
    person = await signed_in(api)
    page = await set_window(person, host="web1", reason="x", **{"for": lasting})
    assert page.status in (303, 400), (lasting, page.status, page.text[-500:])
    shown = await person.get(PAGE)
    assert shown.status == 200

async def test_untrusted_reason_is_shown_as_text(api: Api) -> None:
    person = await signed_in(api)
    await set_window(person, host="web1", reason=XSS, **{"for": "1h"})
    shown = (await person.get(PAGE)).text
    assert XSS not in shown and "&lt;script&gt;" in shown


async def test_the_form_needs_its_token(api: Api) -> None:
    person = await signed_in(api)
    page = await person.post(PAGE, {"host": "web1", "reason": "x", "for": "1h"})
    assert page.status == 403 and FORGED in page.text
    assert await api.store.maintenance(api.clock()) == []


async def test_hosts_page_shows_a_host_stopped_by_an_admin(api: Api) -> None:
    person = await signed_in(api)
    stopped = {"id": uuid.uuid4().hex, "kind": "stopped", "host": "web1",
               "at": api.clock().isoformat()}
    assert (await api.post_events(heartbeat("web1"), stopped)).status == 200
    api.clock.advance(10 * 60.0)
    await api.store.sweep(api.clock())                  # silent for 10 minutes: not down
    page = await person.get("/console/hosts")
    row = re.search(r'<td class="host"><a [^>]*>web1</a></td>\s*<td>(.*?)</td>', page.text)
    assert row is not None and "stopped by an admin" in row[1] and "DOWN" not in row[1]
    assert await api.store.incidents() == []
