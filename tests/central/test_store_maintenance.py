"""Maintenance windows in the store, against every backend: an incident a window holds
climbs no level and is not reminded (its clock waits); when the window ends (ended by the
agent or a person, or found expired by the sweep or the escalation round) an open one
people never heard of is told "opened" once, at its first level, and its clock restarts
from the window's end; the acknowledgement and resolution of one people were told of go
out even in a window; and each source ends only its own window, but a person any.

The clock is driven as ``minutes(n)`` after T0: a P1's target is 15 minutes, a P2's 2
hours.
"""

from __future__ import annotations

import datetime as dt

from monitord.events import Event, new_id
from monitord.store.protocol import Escalation, Incident, Maintenance, Store
from tests.central.conftest import HOST, T0, minutes, problem, recovery
from tests.central.test_store_notices import kinds

# A level every quarter of the response target: 30 minutes for a P2.
CLIMB = Escalation(escalate_at=0.25, max_level=3)


def window(until: dt.datetime | None, check: str | None = None,
           at: dt.datetime = T0) -> Event:
    """The agent's window (``monitord maintenance on``), or its end (``until`` None)."""
    return Event(id=new_id(), kind="maintenance", host=HOST, check=check, at=at, until=until,
                 owner="root", reason="kernel upgrade")


def persons(until: dt.datetime, check: str = "", at: dt.datetime = T0) -> Maintenance:
    return Maintenance(HOST, check, until, "alice", "moving racks", at)


async def only_incident(store: Store) -> Incident:
    [found] = await store.incidents(status=())
    return await store.incident(found.id)


async def climb_through(store: Store, first: int, last: int, every: int = 5) -> None:
    """Escalation rounds from minute ``first`` to ``last``: none may make a notice."""
    for minute in range(first, last + 1, every):
        assert await store.escalate(minutes(minute), CLIMB) == [], minute


# --- the clock waits -------------------------------------------------------------------

async def test_a_failure_in_a_window_climbs_nothing_and_is_told_when_it_ends(
        store: Store) -> None:
    await store.apply([window(minutes(60))], minutes(0))
    await store.apply([problem("web", "P2", at=minutes(1))], minutes(1))
    await climb_through(store, 5, 55)                         # past two levels' worth
    assert (await only_incident(store)).escalation_level == 0
    assert await kinds(store, 55) == []
    await store.apply([window(None, at=minutes(60))], minutes(60))          # agent: off
    [(incident_id, kind, level)] = await kinds(store, 60)
    assert (kind, level) == ("opened", 0)
    # Its clock restarted at the window's end: the next level 30 minutes later.
    assert await store.escalate(minutes(89), CLIMB) == []
    [climbed] = await store.escalate(minutes(90), CLIMB)
    assert (climbed.incident_id, climbed.kind, climbed.level) == (incident_id, "escalated", 1)
    told = [e for e in (await only_incident(store)).timeline if e.kind == "maintenance"]
    assert len(told) == 1 and "people are told now" in told[0].text


async def test_a_window_that_expires_is_found_by_the_escalation_round(store: Store) -> None:
    await store.apply([window(minutes(60))], minutes(0))
    await store.apply([problem("web", "P2", at=minutes(1))], minutes(1))
    assert await store.escalate(minutes(70), CLIMB) == []     # the window is over: restart
    assert [(k, lvl) for _, k, lvl in await kinds(store, 70)] == [("opened", 0)]
    assert await store.escalate(minutes(89), CLIMB) == []     # counted from 60, not 70
    assert len(await store.escalate(minutes(90), CLIMB)) == 1
    assert await store.maintenance(minutes(70)) == []


async def test_without_escalation_the_sweep_tells_what_a_window_held(store: Store) -> None:
    """escalate_at = 0: no round climbs, so only the sweep finds the window over."""
    await store.apply([window(minutes(60))], minutes(0))
    await store.apply([problem("web", "P1", at=minutes(1))], minutes(1))
    await store.sweep(minutes(30))
    assert await kinds(store, 30) == []
    await store.sweep(minutes(61))
    await store.sweep(minutes(62))                            # once
    assert [(k, lvl) for _, k, lvl in await kinds(store, 62)] == [("opened", 0)]


async def test_what_was_told_before_a_window_waits_and_resumes_from_its_end(
        store: Store) -> None:
    remind = Escalation(renotify_every=600.0)                 # every 10 minutes
    await store.apply([problem("web", "P1")], minutes(0))
    assert [k for _, k, _ in await kinds(store, 0)] == ["opened"]
    await store.apply([window(minutes(60), at=minutes(5))], minutes(5))
    for minute in range(11, 60, 10):
        assert await store.escalate(minutes(minute), remind) == [], minute
    assert await store.escalate(minutes(69), remind) == []    # no "opened" again: told
    assert [n.kind for n in await store.escalate(minutes(70), remind)] == ["renotify"]
    assert [k for _, k, _ in await kinds(store, 70)] == ["renotify"]


async def test_a_window_still_running_keeps_holding(store: Store) -> None:
    await store.set_maintenance(persons(minutes(90)))                      # the host
    await store.apply([window(minutes(30), check="web")], minutes(0))      # the check
    await store.apply([problem("web", "P2", at=minutes(1))], minutes(1))
    await store.apply([window(None, check="web", at=minutes(20))], minutes(20))
    assert await kinds(store, 20) == []                       # the person's still runs
    assert await store.end_maintenance(HOST, "", minutes(40)) is True
    assert [k for _, k, _ in await kinds(store, 40)] == ["opened"]
    await store.sweep(minutes(100))
    assert await kinds(store, 100) == []


# --- the end of what people heard of ------------------------------------------------------

async def test_acknowledged_and_resolved_of_an_announced_incident_go_out_in_a_window(
        store: Store) -> None:
    await store.apply([problem("web", "P1"), problem("db", "P1")], minutes(0))
    assert [k for _, k, _ in await kinds(store, 0)] == ["opened", "opened"]
    await store.set_maintenance(persons(minutes(60), at=minutes(1)))
    [web] = [i for i in await store.incidents() if i.check == "web"]
    await store.acknowledge(web.id, "bob", "", minutes(2))
    await store.apply([recovery("db", at=minutes(3))], minutes(3))
    assert sorted(k for _, k, _ in await kinds(store, 3)) == ["acknowledged", "resolved"]


async def test_an_incident_nobody_heard_of_ends_unheard_in_its_window(store: Store) -> None:
    await store.apply([window(minutes(60))], minutes(0))
    await store.apply([problem("web", "P1", at=minutes(1))], minutes(1))
    await store.apply([recovery("web", at=minutes(10))], minutes(10))
    await store.sweep(minutes(61))
    assert await kinds(store, 61) == []


# --- sources ------------------------------------------------------------------------------

async def test_the_agents_off_does_not_end_a_persons_window(store: Store) -> None:
    await store.set_maintenance(persons(minutes(90)))
    await store.apply([window(minutes(30))], minutes(0))
    listed = await store.maintenance(minutes(1))
    assert sorted((w.source, w.owner) for w in listed) == [("agent", "root"),
                                                            ("person", "alice")]
    await store.apply([window(None, at=minutes(5))], minutes(5))           # agent: off
    [left] = await store.maintenance(minutes(5))
    assert (left.source, left.owner, left.until) == ("person", "alice", minutes(90))
    await store.apply([window(None, at=minutes(6))], minutes(6))           # again: no-op
    assert len(await store.maintenance(minutes(6))) == 1


async def test_a_person_sets_their_own_window_beside_the_agents(store: Store) -> None:
    await store.apply([window(minutes(30))], minutes(0))
    await store.set_maintenance(persons(minutes(20)))         # shorter, and the person's
    await store.apply([problem("web", "P2", at=minutes(25))], minutes(25))
    assert await kinds(store, 25) == []                       # the agent's still runs


async def test_a_person_may_end_any_window_of_the_host(store: Store) -> None:
    await store.apply([window(minutes(30))], minutes(0))
    await store.set_maintenance(persons(minutes(90)))
    assert await store.end_maintenance(HOST, "", minutes(5)) is True       # both
    assert await store.maintenance(minutes(5)) == []
    assert await store.end_maintenance(HOST, "", minutes(5)) is False
