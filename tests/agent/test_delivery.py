"""Delivery from the outbox to a real central service on loopback: a batch the service
refuses is taken apart so one bad event cannot hold back the rest."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from monitord.agent.delivery import Deliverer, HttpSender
from monitord.agent.outbox import Outbox
from monitord.events import Event, new_id, utc_now
from monitord.model import Priority
from monitord.store.policy import Policy
from monitord.store.sqlite import SQLiteStore
from tests.central.apiclient import Api, config, running

SMALL_BODY_LIMIT = 4096        # the central service refuses any request larger than this


def problem(check: str, body: str = "") -> Event:
    return Event(id=new_id(), kind="problem", host="web1", check=check, at=utc_now(),
                 priority=Priority.P1, status="CRITICAL", title=f"{check} failing",
                 summary=f"{check}: HTTP 502", body=body)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    store = await SQLiteStore.open(tmp_path / "central.db", Policy())
    try:
        async with running(store, config(max_body_bytes=SMALL_BODY_LIMIT)) as api:
            api.clock.now = utc_now()   # the events are made now: the service's clock too
            yield api
    finally:
        await store.close()


@pytest.fixture
async def sender(api: Api) -> AsyncIterator[HttpSender]:
    async with aiohttp.ClientSession() as session:
        yield HttpSender(str(api.client.make_url("/")), api.agents["web1"], session)


async def test_a_refused_event_goes_to_the_dead_letters_and_the_rest_in_order(
        tmp_path: Path, api: Api, sender: HttpSender, caplog: pytest.LogCaptureFixture) -> None:
    outbox = Outbox(tmp_path / "state.db")
    poison = problem("huge", body="x" * (SMALL_BODY_LIMIT * 2))   # too large on its own
    for event in (problem("first"), problem("second"), poison, problem("last")):
        outbox.put(event)
    told: list[tuple[Event, str]] = []

    async def on_dead(event: Event, answer: str) -> None:
        told.append((event, answer))

    deliverer = Deliverer(outbox, sender, batch=10, on_dead=on_dead)
    for _ in range(5):                                  # bounded: four rows at most
        if not await deliverer.deliver_once():
            break
    assert outbox.depth() == 0
    opened = [i.check for i in sorted(await api.store.incidents(), key=lambda i: i.id)]
    assert opened == ["first", "second", "last"]        # the rest, in order
    [(dead, answer)] = outbox.dead_letters()
    assert dead.id == poison.id and "413" in answer
    assert [(e.id, a) for e, a in told] == [(poison.id, answer)]
    assert deliverer.sent == 3 and outbox.counters.dead == 1
    assert caplog.text.count(f"refused event {poison.id}") == 1   # logged once


async def test_a_batch_that_only_fails_for_a_while_is_kept_whole(
        tmp_path: Path, sender: HttpSender) -> None:
    """A service that is down is not a bad event: nothing is dropped, nothing split off."""
    outbox = Outbox(tmp_path / "state.db")
    for check in ("a", "b"):
        outbox.put(problem(check))
    async with aiohttp.ClientSession() as session:
        down = HttpSender("http://127.0.0.1:9/", "token", session)   # discard port: refused
        deliverer = Deliverer(outbox, down, batch=10)
        with pytest.raises(Exception, match="cannot reach"):
            await deliverer.deliver_once()
    assert outbox.depth() == 2


def test_an_unreadable_row_is_dropped_counted_and_the_rest_comes_out(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    path = tmp_path / "state.db"
    outbox = Outbox(path)
    outbox.put(problem("before"))
    # A row another version wrote, or a damaged one: not an event any more.
    outbox._db.execute("INSERT INTO outbox (kind, body, size) VALUES ('problem', '{', 1)")
    outbox.put(problem("after"))
    events = outbox.peek(10)
    assert [e.check for _, e in events] == ["before", "after"]
    assert outbox.counters.dropped == {"unreadable": 1}
    assert "dropping unreadable event" in caplog.text
    assert outbox.depth() == 2                     # the damaged row is gone for good
