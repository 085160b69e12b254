"""The console's on-call pages (monitord/central/console/oncall.py): schedules with who is
on call now and next, people with their contact methods, escalation policies; their forms
change the store only with the form's token, answer one escaped line when the input is
bad, and never show a webhook's secret URL."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from collections.abc import AsyncIterator

import pytest

from monitord.central.console.errors import FORGED
from monitord.central.console.oncall import digest
from monitord.store.people import Contact, Schedule
from monitord.store.people import Person as OnCallPerson
from monitord.store.protocol import Store
from tests.central.apiclient import T0, Api, config, running
from tests.central.consoleclient import XSS, Person, signed_in
from tests.central.test_notify import hook, settings

HOOK = "http://127.0.0.1:9/hooks/XXXXsecretXXXX"
# T0 is Wed 25 Nov 2026 17:00 UTC, 18:00 in Berlin: bob's shift, until alice's at 18:30.
PRIMARY = Schedule("primary", "Europe/Berlin", "daily", dt.time(18, 30),
                   dt.date(2026, 11, 23), ("alice", "bob"))


@pytest.fixture
async def api(store: Store) -> AsyncIterator[Api]:
    async with running(store) as started:
        yield started


async def team(api: Api) -> Person:
    person = await signed_in(api, "carol")       # alice is the API tests' operator
    await api.store.add_person("bob", T0)
    await api.store.set_schedule(PRIMARY, T0)
    return person


def text_of(page: str) -> str:
    """The page's text, tags dropped and whitespace folded."""
    return " ".join(re.sub(r"<[^>]+>", " ", page).split())


@pytest.mark.parametrize("path", ["/console/schedules", "/console/people",
                                  "/console/policies"])
async def test_on_call_pages_need_a_sign_in(api: Api, path: str) -> None:
    page = await Person(api).get(path)
    assert page.status == 303 and page.location.startswith("/console/login?next=")


async def test_schedules_show_who_is_on_call_now_and_next_in_local_time(api: Api) -> None:
    person = await team(api)
    page = await person.get("/console/schedules")
    assert page.status == 200, page.text
    shown = text_of(page.text)
    assert "Now: bob, since Tue 24 Nov 2026 18:30 CET" in shown
    assert "Next: alice, from Wed 25 Nov 2026 18:30 CET" in shown
    assert "Daily hand-off at 18:30 Europe/Berlin, from 2026-11-23; in turn: alice, bob" in shown
    assert 'http-equiv="refresh"' not in page.text          # a half-typed form stays


async def test_an_override_from_the_form_takes_over_at_once(api: Api) -> None:
    person = await team(api)
    form = {"csrf": (await person.get("/console/schedules")).csrf(), "do": "override",
            "schedule": "primary", "person": "carol", "from": "2026-11-25 17:00",
            "until": "2026-11-26 09:00"}
    page = await person.post("/console/schedules", form)
    assert (page.status, page.location) == (303, "/console/schedules")
    shown = text_of((await person.get("/console/schedules")).text)
    assert "Now: carol (override), since Wed 25 Nov 2026 17:00 CET" in shown
    assert "Next: alice, from Thu 26 Nov 2026 09:00 CET" in shown
    [override] = (await api.store.roster(T0)).schedules[0].overrides
    assert (override.person, override.added_by) == ("carol", "carol")
    page = await person.post("/console/schedules", {
        "csrf": form["csrf"], "do": "remove-override", "schedule": "primary",
        "id": str(override.id)})
    assert page.status == 303
    assert "Now: bob, since" in text_of((await person.get("/console/schedules")).text)
    page = await person.post("/console/schedules", {
        "csrf": form["csrf"], "do": "remove-override", "schedule": "primary", "id": "x1"})
    assert page.status == 400 and "id: expected a number." in page.text
    page = await person.post("/console/schedules", {
        "csrf": form["csrf"], "do": "remove", "schedule": "primary"})
    assert page.status == 303 and (await api.store.roster(T0)).schedules == ()


async def test_bad_input_is_one_escaped_line_and_changes_nothing(api: Api) -> None:
    person = await team(api)
    token = (await person.get("/console/schedules")).csrf()
    before = await api.store.roster(T0)
    page = await person.post("/console/schedules", {
        "csrf": token, "do": "override", "schedule": "primary", "person": "carol",
        "from": XSS, "until": "2026-11-26 09:00"})
    assert page.status == 400
    assert "<script>" not in page.text and "&lt;script&gt;" in page.text
    assert "bad time" in text_of(page.text)
    page = await person.post("/console/schedules", {
        "csrf": token, "do": "add", "name": "night", "zone": "Mars/Olympus",
        "rotation": "weekly", "handoff": "09:00", "members": "bob"})
    assert page.status == 400
    assert 'unknown time zone "Mars/Olympus"' in page.text.replace("&#34;", '"')
    page = await person.post("/console/schedules", {
        "csrf": token, "do": "add", "name": "night", "zone": "UTC", "rotation": "weekly",
        "handoff": "09:00", "members": "bob dave"})
    assert page.status == 404 and "unknown person &#39;dave&#39;" in page.text
    page = await person.post("/console/schedules", {
        "csrf": token, "do": "add", "name": "night", "zone": "UTC", "rotation": "weekly",
        "handoff": "25:00", "members": "bob"})
    assert page.status == 400 and "bad hand-off time" in page.text
    assert await api.store.roster(T0) == before


async def test_a_schedule_added_from_the_form(api: Api) -> None:
    person = await team(api)
    page = await person.post("/console/schedules", {
        "csrf": (await person.get("/console/schedules")).csrf(), "do": "add",
        "name": "night", "zone": "America/New_York", "rotation": "weekly", "handoff": "20:00",
        "starts": "2026-11-23", "members": "bob, carol"})
    assert page.status == 303, page.text
    night = (await api.store.roster(T0)).schedule("night")
    assert night is not None and night.members == ("bob", "carol")
    assert "Weekly hand-off Mondays at 20:00 America/New_York" in text_of(
        (await person.get("/console/schedules")).text)


async def test_people_and_contacts_without_showing_a_secret_url(api: Api) -> None:
    person = await team(api)
    await api.store.add_contact("bob", Contact("webhook", HOOK), T0)
    await api.store.add_contact("bob", Contact("mail", "bob@example.com"), T0)
    page = await person.get("/console/people")
    assert page.status == 200
    assert "XXXXsecretXXXX" not in page.text
    shown = text_of(page.text)
    assert "bob mail bob@example.com Remove webhook http://127.0.0.1/... Remove primary" in shown
    assert "carol no contact method: cannot be paged - can sign in" in shown
    digest = re.findall(r'name="contact" value="([0-9a-f]+)"', page.text)[1]   # the webhook
    removed = await person.post("/console/people", {"csrf": page.csrf(),
                                                    "do": "remove-contact", "person": "bob",
                                                    "contact": digest})
    assert removed.status == 303, removed.text
    bob = (await api.store.roster(T0)).person("bob")
    assert bob is not None and bob.contacts == (Contact("mail", "bob@example.com"),)
    again = await person.post("/console/people", {"csrf": page.csrf(), "do": "remove-contact",
                                                  "person": "bob", "contact": digest})
    assert again.status == 404 and "bob has no such contact method" in again.text


async def test_people_added_and_reached_from_the_forms(api: Api) -> None:
    person = await team(api)
    token = (await person.get("/console/people")).csrf()
    assert (await person.post("/console/people", {"csrf": token, "do": "add-person",
                                                  "person": "dave"})).status == 303
    page = await person.post("/console/people", {"csrf": token, "do": "add-person",
                                                 "person": "dave"})
    assert page.status == 409 and "dave is already a person." in page.text
    page = await person.post("/console/people", {"csrf": token, "do": "add-contact",
                                                 "person": "dave", "kind": "slack",
                                                 "address": "ftp://x/XXXXsecretXXXX"})
    assert page.status == 400 and "XXXXsecretXXXX" not in page.text
    page = await person.post("/console/people", {"csrf": token, "do": "add-contact",
                                                 "person": "dave", "kind": "mail",
                                                 "address": "dave@example.com"})
    assert page.status == 303
    dave = (await api.store.roster(T0)).person("dave")
    assert dave is not None and dave.contacts == (Contact("mail", "dave@example.com"),)
    page = await person.post("/console/people", {"csrf": token, "do": "add-person",
                                                 "person": XSS})
    assert page.status == 400 and "<script>" not in page.text


async def test_policies_set_shown_and_removed_from_the_forms(store: Store) -> None:
    notify = settings(hook("ops", "http://127.0.0.1:9/ops"))
    async with running(store, dataclasses.replace(config(), notify=notify)) as api:
        person = await team(api)
        token = (await person.get("/console/policies")).csrf()
        form = {"csrf": token, "do": "set", "name": "default", "priority": "P1",
                "steps": "0: schedule:primary\r\n50%: person:bob, channel:ops\r\n"}
        page = await person.post("/console/policies", form)
        assert page.status == 303, page.text
        shown = text_of((await person.get("/console/policies")).text)
        assert ("default (P1) at once: schedule:primary after 50% of the response target "
                "(P1 7m30s): person:bob, channel:ops") in shown
        assert "P2, P3: no policy, routed by the config's chain" in shown
        page = await person.post("/console/policies", {**form, "name": "other"})
        assert page.status == 409 and "P1 is covered by policy" in page.text
        page = await person.post("/console/policies", {**form, "steps": "0: channel:pager"})
        assert page.status == 400 and "unknown channel" in page.text
        page = await person.post("/console/policies", {"csrf": token, "do": "remove",
                                                       "name": "default"})
        assert page.status == 303
        assert (await api.store.roster(T0)).policies == ()


async def test_on_call_forms_without_their_token_are_403_and_change_nothing(
        api: Api) -> None:
    person = await team(api)
    before = await api.store.roster(T0)
    for path, form in (("/console/people", {"do": "add-person", "person": "dave"}),
                       ("/console/schedules", {"do": "override", "schedule": "primary",
                                               "person": "bob", "from": "2026-11-25 17:00",
                                               "until": "2026-11-26 17:00"}),
                       ("/console/policies", {"do": "set", "name": "x", "priority": "P1",
                                              "steps": "0: person:bob"})):
        for token in ({}, {"csrf": "0" * 64}):
            page = await person.post(path, {**form, **token})
            assert page.status == 403 and FORGED in page.text
    assert await api.store.roster(T0) == before


async def test_an_override_for_ever_is_refused_and_an_old_one_still_shows(api: Api) -> None:
    person = await team(api)
    token = (await person.get("/console/schedules")).csrf()
    for until in ("9999-12-31 23:59", "2027-11-27 09:00"):
        page = await person.post("/console/schedules", {
            "csrf": token, "do": "override", "schedule": "primary", "person": "carol",
            "from": "2026-11-25 17:00", "until": until})
        assert page.status == 400, page.text
        assert "an override ends at most 366 days ahead" in page.text
    assert (await api.store.roster(T0)).schedules[0].overrides == ()
    # One kept from before the bound (added, as it were, in the year 9999): the page
    # shows it, and who is on call.
    forever = dt.datetime(9999, 12, 31, 23, 59, tzinfo=dt.UTC)
    await api.store.add_override("primary", "carol", T0, forever, "carol", forever)
    page = await person.get("/console/schedules")
    assert page.status == 200, page.text
    shown = text_of(page.text)
    assert "Now: carol (override), since Wed 25 Nov 2026 18:00 CET" in shown
    assert "Fri 31 Dec 9999 23:59 UTC" in shown


async def test_a_contact_reaching_inside_is_refused_and_changes_are_logged_without_secrets(
        api: Api, caplog: pytest.LogCaptureFixture) -> None:
    person = await team(api)
    token = (await person.get("/console/people")).csrf()
    for address in (HOOK, "http://169.254.169.254/latest/XXXXsecretXXXX",
                    "https://localhost/XXXXsecretXXXX"):
        page = await person.post("/console/people", {"csrf": token, "do": "add-contact",
                                                     "person": "bob", "kind": "webhook",
                                                     "address": address})
        assert page.status == 400, page.text
        assert "internal address" in page.text and "XXXXsecretXXXX" not in page.text
    page = await person.post("/console/people", {"csrf": token, "do": "add-contact",
                                                 "person": "bob", "kind": "pagerduty",
                                                 "address": "/etc/passwd"})
    assert page.status == 400 and "expected a file directly in" in page.text
    with caplog.at_level(logging.INFO, logger="monitord.central.console.oncall"):
        page = await person.post("/console/people", {
            "csrf": token, "do": "add-contact", "person": "bob", "kind": "slack",
            "address": "https://hooks.example/XXXXsecretXXXX"})
        assert page.status == 303, page.text
        bob = (await api.store.roster(T0)).person("bob")
        assert bob is not None
        page = await person.post("/console/people", {
            "csrf": token, "do": "remove-contact", "person": "bob",
            "contact": digest(bob.contacts[0])})
        assert page.status == 303, page.text
    assert "central: console: carol added a slack contact for bob" in caplog.text
    assert "central: console: carol removed a slack contact of bob" in caplog.text
    assert "XXXXsecretXXXX" not in caplog.text
    assert (await api.store.roster(T0)).person("bob") == OnCallPerson("bob")
