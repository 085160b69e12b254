"""The web console over a real socket and every store backend: sign-in, sessions that end
when they should, forms that refuse forgeries and change nothing then, the pages' order,
marks and escaping, and HTML errors (while the API keeps answering JSON)."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from monitord.central.config import load_central_config
from monitord.central.console import common, pages, queue, sessions, state
from monitord.central.console.errors import FORGED
from monitord.central.console.render import SECURITY_HEADERS
from monitord.central.console.state import CONSOLE
from monitord.central.passwords import hash_password, verify_password
from monitord.errors import StateError
from monitord.store.protocol import Store
from monitord.store.sqlite import SQLiteStore
from tests.central.apiclient import T0, Api, heartbeat, problem, running
from tests.central.consoleclient import (
    PASSWORD,
    XSS,
    Page,
    Person,
    add_person,
    add_user,
    healed,
    signed_in,
    step,
)
from tests.central.test_server import write_config

MINUTE = 60.0


@pytest.fixture
async def api(store: Store) -> AsyncIterator[Api]:
    async with running(store) as started:
        yield started


async def open_incident(api: Api, check: str = "web", priority: str = "P2",
                        host: str = "web1", **fields: object) -> int:
    response = await api.post_events(problem(check, priority, host, **fields), host=host)
    assert response.status == 200, await response.text()
    [incident] = [i for i in await api.store.incidents() if i.check == check and i.host == host]
    return incident.id


def incident_ids(page: Page) -> list[int]:
    """The incidents a queue lists, top to bottom."""
    return [int(n) for n in re.findall(r'<td class="id"><a href="/console/incidents/(\d+)">',
                                       page.text)]


# --- signing in --------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/console/", "/console/hosts", "/console/fixes",
                                  "/console/incidents/1", "/console/?host=web1"])
async def test_pages_need_a_sign_in(api: Api, path: str) -> None:
    page = await Person(api).get(path)
    assert page.status == 303
    assert page.location.startswith("/console/login?next=")


async def test_sign_in_returns_to_the_page_asked_for(api: Api) -> None:
    await add_person(api, "carol")
    person = Person(api)
    bounced = await person.get("/console/hosts")
    login = await person.get(bounced.location)
    assert 'name="next" value="/console/hosts"' in login.text
    page = await person.post("/console/login", {"csrf": login.csrf(), "name": "carol",
                                                "password": PASSWORD, "next": "/console/hosts"})
    assert (page.status, page.location) == (303, "/console/hosts")
    assert (await person.get("/console/hosts")).status == 200


async def test_root_leads_to_the_console(api: Api) -> None:
    page = await Person(api).get("/")
    assert (page.status, page.location) == (303, "/console/")


async def test_good_password_gives_a_locked_down_session_cookie(api: Api) -> None:
    await add_person(api, "carol")
    person = Person(api)
    page = await person.sign_in("carol")
    assert (page.status, page.location) == (303, "/console/")
    cookie = page.set_cookies[sessions.SESSION_COOKIE]
    assert cookie["httponly"] == "True" and cookie["secure"] == "True"
    assert (cookie["samesite"], cookie["path"], cookie["max-age"]) == ("Strict", "/", "43200")
    assert cookie["value"].startswith("carol|") and PASSWORD not in cookie["value"]
    queue = await person.get("/console/")
    assert queue.status == 200
    assert "carol" in queue.text and "Sign out" in queue.text


@pytest.mark.parametrize("name", ["carol", "mallory"])
async def test_wrong_password_or_name_is_the_same_401(
    api: Api, name: str, caplog: pytest.LogCaptureFixture
) -> None:
    await add_person(api, "carol")
    person = Person(api)
    with caplog.at_level(logging.WARNING):
        page = await person.sign_in(name, "not the password at all")
    assert page.status == 401
    assert "Wrong name or password." in page.text
    assert sessions.SESSION_COOKIE not in person.cookies
    assert f"failed login as '{name}'" in caplog.text
    assert "not the password" not in caplog.text


async def test_five_failed_sign_ins_refuse_the_name_for_a_minute(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    await add_person(api, "carol")
    await add_person(api, "alice")
    person = Person(api)
    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            assert (await person.sign_in("carol", "not the password at all")).status == 401
        for _ in range(2):
            page = await person.sign_in("carol")          # the right password, too late
            assert page.status == 429
            assert "Too many failed sign-ins for this name; wait a minute." in page.text
            assert sessions.SESSION_COOKIE not in person.cookies
    assert caplog.text.count("refusing that name") == 1
    assert (await Person(api).sign_in("alice")).status == 303   # other names are not held
    api.clock.advance(61)
    page = await person.sign_in("carol")
    assert (page.status, page.location) == (303, "/console/")


async def test_unknown_name_is_refused_alike_after_five_failures(api: Api) -> None:
    person = Person(api)
    for _ in range(5):
        assert (await person.sign_in("mallory")).status == 401
    page = await person.sign_in("mallory")
    assert page.status == 429
    assert "Too many failed sign-ins for this name; wait a minute." in page.text


async def test_sign_in_waiting_too_long_for_a_hashing_slot_is_503(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    await add_person(api, "carol")
    monkeypatch.setattr(pages, "HASH_WAIT_SECONDS", 0.01)
    hashing = api.app[CONSOLE].hashing
    for _ in range(state.HASHES_AT_ONCE):                 # a flood holds every slot
        await hashing.acquire()
    person = Person(api)
    page = await person.sign_in("carol")
    assert page.status == 503
    assert "Too many sign-ins at once; try again in a moment." in page.text
    for _ in range(state.HASHES_AT_ONCE):
        hashing.release()
    assert (await person.sign_in("carol")).status == 303


async def test_sign_in_form_without_its_token_is_refused(api: Api) -> None:
    await add_person(api, "carol")
    person = Person(api)
    await person.get("/console/login")       # has the login cookie, forges the field
    page = await person.post("/console/login", {"csrf": "0" * 64, "name": "carol",
                                                "password": PASSWORD})
    assert page.status == 403 and "did not come from monitord" in page.text
    assert sessions.SESSION_COOKIE not in person.cookies
    stranger = Person(api)                   # no login cookie at all
    page = await stranger.post("/console/login", {"name": "carol", "password": PASSWORD})
    assert page.status == 403


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/console/",
                                    "/api/v1/incidents", "/console/\\evil"])
async def test_sign_in_goes_to_console_pages_only(api: Api, target: str) -> None:
    await add_person(api, "carol")
    page = await Person(api).sign_in("carol", next_page=target)
    assert (page.status, page.location) == (303, "/console/")


async def test_sign_out_deletes_the_cookie(api: Api) -> None:
    person = await signed_in(api)
    queue = await person.get("/console/")
    page = await person.post("/console/logout", {"csrf": queue.csrf()})
    assert (page.status, page.location) == (303, "/console/login")
    assert page.set_cookies[sessions.SESSION_COOKIE]["max-age"] == "0"
    assert (await person.get("/console/")).status == 303


async def test_sign_out_ends_the_session_on_the_server(api: Api) -> None:
    person = await signed_in(api)
    kept = person.cookies[sessions.SESSION_COOKIE]          # a copy, as a thief would keep
    other = Person(api)                                     # a second browser of carol's
    assert (await other.sign_in("carol")).status == 303
    queue = await person.get("/console/")
    await person.post("/console/logout", {"csrf": queue.csrf()})
    person.cookies[sessions.SESSION_COOKIE] = kept
    for browser in (person, other):
        page = await browser.get("/console/")
        assert page.status == 303 and page.location.startswith("/console/login")
    again = Person(api)                                     # signing in again works
    assert (await again.sign_in("carol")).status == 303
    assert (await again.get("/console/")).status == 200


async def test_a_new_password_ends_the_session_on_the_server(api: Api) -> None:
    person = await signed_in(api)
    await add_person(api, "carol", password="a brand new passphrase")
    page = await person.get("/console/")
    assert page.status == 303 and page.location.startswith("/console/login")


def test_session_cookie_is_host_prefixed() -> None:
    # __Host-: the browser keeps it only if it is Secure, with Path=/ and no Domain.
    assert sessions.SESSION_COOKIE.startswith("__Host-")


# --- sessions that must not work ---------------------------------------------------------

async def test_session_signed_with_another_key_is_refused(api: Api) -> None:
    person = await signed_in(api)
    stored = await api.store.password_hash("carol")
    assert stored is not None
    forged = sessions.make_session(b"another key", "carol",
                                   int(T0.timestamp() + 3600), stored, 0)
    person.cookies[sessions.SESSION_COOKIE] = forged.cookie
    page = await person.get("/console/")
    assert page.status == 303 and page.location.startswith("/console/login")


@pytest.mark.parametrize("mangle", [
    lambda c: c.replace("carol|", "alice|", 1),             # another person, same MAC
    lambda c: re.sub(r"\|(\d+)\|", lambda m: f"|{int(m[1]) + 86400}|", c),  # longer life
    lambda c: c[:-1] + ("0" if c[-1] != "0" else "1"),      # a bit of the MAC
    lambda c: "garbage",
])
async def test_tampered_session_is_refused(api: Api, mangle: Callable[[str], str]) -> None:
    person = await signed_in(api)
    await add_person(api, "alice")
    person.cookies[sessions.SESSION_COOKIE] = mangle(person.cookies[sessions.SESSION_COOKIE])
    assert (await person.get("/console/")).status == 303


async def test_session_ends_when_it_expires(api: Api) -> None:
    person = await signed_in(api)
    api.clock.advance(12 * 3600 - 1)
    assert (await person.get("/console/")).status == 200
    api.clock.advance(1)
    page = await person.get("/console/")
    assert page.status == 303 and page.location.startswith("/console/login")


async def test_new_password_ends_old_sessions(api: Api) -> None:
    person = await signed_in(api)
    await api.store.set_password("carol", hash_password("a brand new password"), T0)
    assert (await person.get("/console/")).status == 303
    again = Person(api)
    assert (await again.sign_in("carol", "a brand new password")).status == 303
    assert (await again.get("/console/")).status == 200


# --- the queue ---------------------------------------------------------------------------

async def test_queue_is_p1_first_then_by_due_time_with_overdue_marked(api: Api) -> None:
    person = await signed_in(api)
    web = await open_incident(api, "web", "P2")                  # due T0 + 2h
    api.clock.advance(10 * MINUTE)
    disk = await open_incident(api, "disk", "P3")                # due T0 + 48h10m
    db = await open_incident(api, "db", "P1")                    # due T0 + 25m
    api.clock.advance(10 * MINUTE)
    mail = await open_incident(api, "mail", "P1", host="web2")   # due T0 + 35m
    api.clock.advance(10 * MINUTE)                               # T0 + 30m
    page = await person.get("/console/")
    assert page.status == 200
    assert incident_ids(page) == [db, mail, web, disk]
    assert "every P1 above every P2" in page.text
    assert page.text.count('<span class="badge overdue">OVERDUE</span>') == 1
    assert "1 OVERDUE" in page.text                              # the header's count
    assert "overdue 5m" in page.text and "due in 5m" in page.text
    assert '<meta http-equiv="refresh" content="30">' in page.text
    only_web2 = await person.get("/console/?host=web2")
    assert incident_ids(only_web2) == [mail]
    assert "1 OVERDUE" in only_web2.text                         # still counts every host


async def test_acknowledged_incident_is_not_overdue(api: Api) -> None:
    person = await signed_in(api)
    incident_id = await open_incident(api, "db", "P1")
    api.clock.advance(20 * MINUTE)
    assert "1 OVERDUE" in (await person.get("/console/")).text
    assert (await person.act(incident_id, "acknowledge")).status == 303
    page = await person.get("/console/")
    assert "0 overdue" in page.text and "OVERDUE" not in page.text


async def test_a_flood_of_overdue_p3s_cannot_push_a_p1_off_the_queue(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in (common, queue):
        monkeypatch.setattr(module, "QUEUE_LIMIT", 3)
    p3s = [await open_incident(api, f"disk{n}", "P3") for n in range(4)]  # due T0 + 48h
    api.clock.advance(49 * 3600)
    db = await open_incident(api, "db", "P1")                            # due in 15m
    api.clock.advance(20 * MINUTE)
    person = await signed_in(api)
    page = await person.get("/console/")
    assert incident_ids(page) == [db, *p3s[:3]]
    assert "Only the 3 most urgent P3 incidents are shown; there may be more." in page.text
    assert "most urgent P1" not in page.text
    assert "4+ OVERDUE" in page.text          # at least: the fourth P3 was not read
    assert "4+ OVERDUE" in (await person.get("/console/hosts")).text


# --- an incident -------------------------------------------------------------------------

async def test_incident_page_shows_untrusted_text_as_text(api: Api) -> None:
    person = await signed_in(api)
    incident_id = await open_incident(
        api, summary=f"HTTP 502 {XSS}", body=f"probe said {XSS}",
        steps=[step("restart-service", output=f"nginx: {XSS}", argv=("restart", XSS))])
    page = await person.get(f"/console/incidents/{incident_id}")
    assert page.status == 200
    assert "<script" not in page.text
    assert page.text.count("&lt;script&gt;window.__xss = 1; alert(1)&lt;/script&gt;") >= 4
    assert "fix 1: <code>restart-service</code>:" in page.text
    assert "exit 1 in 1.5s" in page.text and "CRITICAL: HTTP 502" in page.text
    for name, value in SECURITY_HEADERS.items():
        assert page.headers[name] == value
    assert "script-src 'none'" in page.headers["Content-Security-Policy"]


async def test_a_flapping_incident_is_marked_in_the_queue_and_on_its_page(api: Api) -> None:
    person = await signed_in(api)
    steady = await open_incident(api, "db", "P2")
    flapping = await open_incident(api, "web", "P1", summary=f"HTTP 502 {XSS}",
                                   title=f"web {XSS}", flapping=True)
    badge = '<span class="badge flapping"'
    queue_page = await person.get("/console/")
    assert incident_ids(queue_page) == [flapping, steady]
    rows = queue_page.text.split('<td class="id">')[1:]
    assert [badge in row for row in rows] == [True, False]
    page = await person.get(f"/console/incidents/{flapping}")
    assert page.text.count(badge) == 1 and "keeps changing state" in page.text
    assert "<script" not in queue_page.text + page.text
    assert "&lt;script&gt;" in page.text
    assert badge not in (await person.get(f"/console/incidents/{steady}")).text


async def test_forms_acknowledge_comment_and_resolve(api: Api) -> None:
    person = await signed_in(api)
    incident_id = await open_incident(api)
    page = await person.act(incident_id, "acknowledge", note="looking")
    assert (page.status, page.location) == (303, f"/console/incidents/{incident_id}")
    page = await person.act(incident_id, "comment", text="nginx config broken <b>since</b>")
    assert page.status == 303
    shown = await person.get(page.location)
    assert "nginx config broken &lt;b&gt;since&lt;/b&gt;" in shown.text
    page = await person.act(incident_id, "resolve", note="fixed the config")
    assert page.status == 303
    incident = await api.store.incident(incident_id)
    assert (incident.status, incident.acknowledged_by, incident.resolved_by) == (
        "resolved", "carol", "carol")
    kinds = [(e.kind, e.who) for e in incident.timeline]
    assert ("comment", "carol") in kinds and ("acknowledged", "carol") in kinds
    assert '<td class="status resolved" id="status">resolved</td>' in (
        await person.get(f"/console/incidents/{incident_id}")).text


async def test_action_the_incident_cannot_take_is_409_on_its_page(api: Api) -> None:
    person = await signed_in(api)
    incident_id = await open_incident(api)
    assert (await person.act(incident_id, "resolve")).status == 303
    page = await person.act(incident_id, "acknowledge")
    assert page.status == 409
    assert f"incident {incident_id} is resolved: it cannot be acknowledged" in page.text
    assert f"#{incident_id}" in page.text                    # the incident page, not a bare error


async def test_empty_comment_is_400_and_changes_nothing(api: Api) -> None:
    person = await signed_in(api)
    incident_id = await open_incident(api)
    before = await api.store.incident(incident_id)
    page = await person.act(incident_id, "comment", text="   ")
    assert page.status == 400 and "The comment is empty." in page.text
    assert await api.store.incident(incident_id) == before


@pytest.mark.parametrize("token", [None, "", "0" * 64, "another session's"])
async def test_form_without_its_token_is_403_and_changes_nothing(
    api: Api, token: str | None
) -> None:
    person = await signed_in(api)
    incident_id = await open_incident(api)
    if token == "another session's":
        other = await signed_in(api, "dave")
        token = (await other.get("/console/")).csrf()
    before = await api.store.incident(incident_id)
    for action in ("acknowledge", "resolve", "comment"):
        form = {"note": "x", "text": "x"} | ({} if token is None else {"csrf": token})
        page = await person.post(f"/console/incidents/{incident_id}/{action}", form)
        assert page.status == 403, page.text
        assert FORGED in page.text
    assert await api.store.incident(incident_id) == before


async def test_post_without_a_session_changes_nothing(api: Api) -> None:
    incident_id = await open_incident(api)
    before = await api.store.incident(incident_id)
    page = await Person(api).post(f"/console/incidents/{incident_id}/resolve", {"note": "x"})
    assert page.status == 303 and page.location.startswith("/console/login")
    assert await api.store.incident(incident_id) == before


# --- hosts and fixes ---------------------------------------------------------------------

async def test_hosts_page_shows_heartbeats_down_hosts_and_open_incidents(api: Api) -> None:
    person = await signed_in(api)
    assert (await api.post_events(heartbeat("web1"))).status == 200
    await open_incident(api, "web", "P2", host="web2")
    api.clock.advance(10 * MINUTE)
    assert (await api.post_events(heartbeat("web2"), host="web2")).status == 200
    await api.store.sweep(api.clock.now)                    # web1: silent for 10 minutes
    page = await person.get("/console/hosts")
    assert page.status == 200
    rows = dict(re.findall(r'<td class="host"><a href="/console/hosts/web\d">(web\d)</a></td>'
                           r"\s*<td>(.*?)</td>", page.text))
    assert "DOWN" in rows["web1"] and "up" in rows["web2"]
    assert "10m ago" in page.text
    assert '<a href="/console/?host=web1">1</a>' in page.text   # its "server down"
    assert '<a href="/console/?host=web2">1</a>' in page.text
    assert '<meta http-equiv="refresh" content="30">' in page.text


async def test_fixes_page_counts_runs_and_how_often_each_worked(api: Api) -> None:
    person = await signed_in(api)
    failed = (step("reload-service"), step("restart-service"))
    await open_incident(api, "web", "P2", steps=list(failed))
    assert (await api.post_events(
        healed("web", steps=(step("reload-service"), step("restart-service", worked=True))),
    )).status == 200
    assert (await api.post_events(healed("web", host="web2"), host="web2")).status == 200
    page = await person.get("/console/fixes")
    assert page.status == 200
    rows = re.findall(r"<td>(\w+)</td>\s*<td><code>([\w-]+)</code></td>\s*"
                      r'<td class="num">(\d+)</td>\s*<td class="num">(\d+)</td>\s*'
                      r'<td class="num">([\d%-]+)</td>\s*<td>([\w, ]+)</td>', page.text)
    assert rows == [("web", "restart-service", "3", "2", "67%", "web1, web2"),
                    ("web", "reload-service", "2", "0", "0%", "web1")]


# --- errors ------------------------------------------------------------------------------

async def test_unknown_page_and_incident_are_html_404(api: Api) -> None:
    person = await signed_in(api)
    for path in ("/console/nothing-here", "/console/incidents/99999",
                 "/console/incidents/99999999999999999999"):
        page = await person.get(path)
        assert page.status == 404, path
        assert page.headers["Content-Type"].startswith("text/html")
        assert page.headers["Content-Security-Policy"] == SECURITY_HEADERS[
            "Content-Security-Policy"]


async def test_wrong_method_is_html_405(api: Api) -> None:
    page = await Person(api).request("DELETE", "/console/")
    assert page.status == 405 and "<html" in page.text
    assert "GET" in page.headers["Allow"]


async def test_store_down_is_a_503_page_and_the_api_still_answers_json(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    person = await signed_in(api)

    async def down(*args: object, **kwargs: object) -> None:
        raise StateError("the store is gone")

    monkeypatch.setattr(api.store, "incidents", down)
    page = await person.get("/console/")
    assert page.status == 503 and "not answering" in page.text
    assert "the store is gone" not in page.text
    response = await api.get("/api/v1/incidents")
    assert response.status == 503
    assert (await response.json())["error"] == "unavailable"


async def test_api_errors_stay_json(api: Api) -> None:
    response = await api.client.get("/api/v1/nothing")
    assert response.status == 404
    assert (await response.json())["error"] == "not_found"
    assert "Content-Security-Policy" not in response.headers


# --- monitord central add-user -----------------------------------------------------------

async def stored_hash(config: Path, name: str) -> str | None:
    loaded = load_central_config(config)
    store = await SQLiteStore.open(loaded.sqlite_path, loaded.store_policy)
    try:
        return await store.password_hash(name)
    finally:
        await store.close()


def test_add_user_reads_the_password_from_stdin_and_stores_its_hash(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    made = add_user(config, "carol", PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("password set for carol")
    assert PASSWORD not in made.stdout + made.stderr
    first = asyncio.run(stored_hash(config, "carol"))
    assert first is not None and first.startswith("scrypt$32768$8$1$")
    assert verify_password(PASSWORD, first) and PASSWORD not in first
    assert add_user(config, "carol", "another long password\r\n").returncode == 0
    second = asyncio.run(stored_hash(config, "carol"))
    assert second is not None and verify_password("another long password", second)


@pytest.mark.parametrize(("stdin", "message"), [
    ("", "the password is empty"),
    ("\n", "the password is empty"),
    ("eleven char\n", "the password is too short: use at least 12 characters"),
])
def test_add_user_refuses_a_weak_password_in_one_line(
    tmp_path: Path, stdin: str, message: str
) -> None:
    config = write_config(tmp_path)
    made = add_user(config, "carol", stdin)
    assert (made.returncode, made.stdout, made.stderr) == (2, "", f"monitord: {message}\n")
    assert asyncio.run(stored_hash(config, "carol")) is None


def test_add_user_refuses_a_bad_name_before_reading_a_password(tmp_path: Path) -> None:
    made = add_user(write_config(tmp_path), "carol smith", PASSWORD + "\n")
    assert made.returncode == 2
    assert made.stderr.startswith("monitord: user name 'carol smith': expected letters")
