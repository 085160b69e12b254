"""Notices under an escalation policy: each step's people are resolved when the notice is
sent (who is on call for a schedule at that moment, each person's contact methods), the
steps come at the policy's shares of the response target, and channels the policy does
not name keep hearing what they heard before. Real API, real store (every backend), real
webhook receivers on 127.0.0.1; the test moves the app's clock."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import ipaddress
import logging
import socket
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from monitord.central.notify.settings import Notifications
from monitord.model import Priority
from monitord.store.people import Contact, EscalationPolicy, PolicyStep, Schedule, Target
from monitord.store.policy import Policy
from monitord.store.protocol import Store
from monitord.store.sqlite import SQLiteStore
from tests.central.apiclient import T0, problem
from tests.central.receivers import receiving
from tests.central.test_notify import (
    act,
    central,
    hook,
    notified,
    open_incident,
    round_at,
)
from tests.central.test_notify import settings as channels_only

# T0 is Wed 25 Nov 2026 17:00 UTC, 18:00 in Berlin: bob's shift, until alice's at 18:30.
PRIMARY = Schedule("primary", "Europe/Berlin", "daily", dt.time(18, 30),
                   dt.date(2026, 11, 23), ("alice", "bob"))
POLICY_OF_TESTS = Policy()
POLICY = EscalationPolicy("default", (Priority.P2,), (
    PolicyStep(0.0, (Target("schedule", "primary"),)),
    PolicyStep(0.25, (Target("person", "carol"), Target("channel", "ops")))))


def settings(*channels: dict[str, Any], **keys: Any) -> Notifications:
    """The test's channels, and people's webhooks allowed on 127.0.0.1, where the
    receivers listen (``[notify] allow_internal_webhooks``)."""
    return dataclasses.replace(channels_only(*channels, **keys),
                               internal_webhooks=(ipaddress.ip_network("127.0.0.1/32"),))


async def people(store: Store, url: str) -> None:
    for name in ("alice", "bob", "carol"):
        await store.add_person(name, T0)
        await store.add_contact(name, Contact("webhook", f"{url}/{name}"), T0)
    await store.set_schedule(PRIMARY, T0)
    await store.set_policy(POLICY, T0)


def kinds(hooks: object, path: str) -> list[str]:
    return [body["kind"] for body in hooks.at(path)]  # type: ignore[attr-defined]


async def test_a_policy_tells_whoever_is_on_call_then_its_next_step(store: Store) -> None:
    async with receiving() as hooks:
        await people(store, hooks.url)
        notify = settings(hook("ops", hooks.url + "/ops"), hook("room", hooks.url + "/room"),
                          hook("lead", hooks.url + "/lead"), chain=("lead",))
        async with central(store, notify) as api:
            incident_id = await open_incident(api, "P2")
            [opened] = await round_at(api, 0)
            assert sorted(opened.told) == ["bob:webhook", "room"]
            assert await round_at(api, 29) == []
            [escalated] = await round_at(api, 30)           # a quarter of P2's 2 hours
            assert (escalated.notice.kind, escalated.notice.level) == ("escalated", 1)
            assert sorted(escalated.told) == ["carol:webhook", "ops", "room"]
            await act(api, incident_id, "acknowledge", 31)   # alice's shift since 30
            [acknowledged] = await round_at(api, 31)
            assert sorted(acknowledged.told) == ["alice:webhook", "carol:webhook", "ops",
                                                 "room"]
    assert kinds(hooks, "/bob") == ["opened"]
    assert kinds(hooks, "/alice") == ["acknowledged"]
    assert kinds(hooks, "/carol") == ["escalated", "acknowledged"]
    assert kinds(hooks, "/ops") == ["escalated", "acknowledged"]
    assert kinds(hooks, "/lead") == []                  # the chain is not this priority's
    [body] = hooks.at("/bob")
    assert body["incident"]["id"] == incident_id
    assert (await notified(store, incident_id))[0] == "opened: told room, bob:webhook"


async def test_a_priority_without_a_policy_is_routed_by_the_chain_as_before(
        store: Store) -> None:
    async with receiving() as hooks:
        await people(store, hooks.url)
        notify = settings(hook("lead", hooks.url + "/lead"), hook("room", hooks.url + "/room"),
                          chain=("lead",))
        async with central(store, notify) as api:
            await open_incident(api, "P1")
            [opened] = await round_at(api, 0)
    assert sorted(opened.told) == ["lead", "room"]
    assert hooks.at("/bob") == []


async def test_an_override_takes_the_page_and_a_person_without_contacts_is_logged(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    async with receiving() as hooks:
        await people(store, hooks.url)
        await store.add_person("dave", T0)
        await store.add_override("primary", "carol", T0, T0 + dt.timedelta(minutes=10),
                                 "alice", T0)
        async with central(store, settings(hook("ops", hooks.url + "/ops"))) as api:
            incident_id = await open_incident(api, "P2")
            [opened] = await round_at(api, 0)
            assert opened.told == ["carol:webhook"]
            await store.add_override("primary", "dave", T0, T0 + dt.timedelta(hours=1),
                                     "alice", T0)
            await act(api, incident_id, "acknowledge", 5)
            with caplog.at_level(logging.WARNING):
                [acknowledged] = await round_at(api, 5)
    assert acknowledged.told == []          # step 0 only: dave, the newest override
    assert "central: dave has no contact method" in caplog.text
    assert hooks.at("/bob") == [] and hooks.at("/ops") == []


async def test_channels_are_told_when_the_on_call_tables_cannot_be_read(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # A store file whose on-call tables are gone (as in a file migrated past their schema
    # version before it existed): the channels still hear of incidents.
    store = await SQLiteStore.open(tmp_path / "store.db", POLICY_OF_TESTS)
    try:
        with contextlib.closing(sqlite3.connect(tmp_path / "store.db")) as db:
            db.execute("DROP TABLE policy_target")
            db.commit()
        async with receiving() as hooks:
            async with central(store, settings(hook("room", hooks.url + "/room"))) as api:
                await open_incident(api, "P2")
                with caplog.at_level(logging.ERROR):
                    [opened] = await round_at(api, 0)
    finally:
        await store.close()
    assert opened.told == ["room"]
    assert "cannot read the people, schedules and escalation policies" in caplog.text


async def test_a_persons_webhook_reaches_no_internal_address_unless_allowed(
        store: Store) -> None:
    # Contacts kept from before the rule (the store takes any URL; the forms do not): a
    # literal loopback address, and this machine's own name, which resolves to one here.
    name = socket.gethostname()
    try:
        resolved = {info[4][0] for info in socket.getaddrinfo(name, 80)}
    except OSError:
        pytest.skip(f"this machine's name {name!r} does not resolve")
    if any(ipaddress.ip_address(a.split("%")[0]).is_global for a in resolved):
        pytest.skip(f"this machine's name {name!r} resolves to a global address")
    async with receiving() as hooks:
        port = hooks.url.rsplit(":", 1)[1]
        await people(store, hooks.url)
        await store.add_contact("carol", Contact("webhook", f"http://{name}:{port}/name"), T0)
        await store.add_override("primary", "carol", T0, T0 + dt.timedelta(hours=1), "alice",
                                 T0)
        async with central(store, channels_only()) as api:
            await open_incident(api, "P2")
            [opened] = await round_at(api, 0)
    assert (opened.told, opened.failed, len(opened.refused)) == ([], {}, 2)   # for good
    reasons = " ".join(opened.refused.values())
    assert "its host is an internal address" in reasons               # the literal one
    assert "resolves only to an internal address" in reasons          # the name
    assert hooks.at("/carol") == [] and hooks.at("/name") == []


async def test_a_round_claims_only_what_its_sends_to_people_can_finish(store: Store) -> None:
    # bob (on call now) has four contact methods, carol (the next step) one, and the
    # config's one channel is slow: a notice may be six sends. 240 s a round, 61 s a send
    # at worst: 3 waves of 8 sends, so a round takes 24 // 6 = 4 notices (it took all six
    # when only the channel was counted).
    async with receiving() as hooks:
        await people(store, hooks.url)
        for n in range(3):
            await store.add_contact("bob", Contact("webhook", f"{hooks.url}/bob{n}"), T0)
        notify = settings(hook("ops", hooks.url + "/ops", timeout="60s"))
        async with central(store, notify) as api:
            for n in range(6):
                response = await api.post_events(problem(f"shop{n}", "P2"))
                assert response.status == 200, await response.text()
            first = await round_at(api, 0)
            second = await round_at(api, 0)
    assert (len(first), len(second)) == (4, 2)
    for delivery in [*first, *second]:
        assert len(delivery.told) == 4 and all(n.startswith("bob:") for n in delivery.told)
    assert len(hooks.at("/bob")) == 6 and hooks.at("/ops") == []
