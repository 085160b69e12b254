"""Priority that follows the current severity, flapping that goes quiet, maintenance
windows, planned stops and open periods, in the store, against every backend.

The clock is driven as ``minutes(n)`` after T0; the policy's flap_quiet is 5 minutes and
its stop_limit an hour.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from pathlib import Path

import asyncpg

from monitord.central.sla import report
from monitord.events import Event, new_id
from monitord.store.migrations import schema_files
from monitord.store.postgres import PostgresStore
from monitord.store.postgres_dialect import RECORD_VERSION, VERSION_TABLE
from monitord.store.protocol import SERVER_DOWN, Escalation, Incident, Maintenance, Store
from monitord.store.sqlite import SQLiteStore
from tests.central.conftest import (
    HOST,
    POLICY,
    T0,
    OpenStore,
    fresh_database,
    healed,
    heartbeat,
    minutes,
    problem,
    recovery,
)
from tests.central.test_store_notices import kinds

P1_SECONDS, P3_SECONDS = 900, 172800


async def only_incident(store: Store) -> Incident:
    [found] = await store.incidents(status=())
    return await store.incident(found.id)


def flapping(check: str = "web", priority: str = "P2", at: dt.datetime = T0) -> Event:
    return problem(check, priority, at=at).model_copy(update={"flapping": True})


def titled(check: str, priority: str, at: dt.datetime = T0, *, words: str = "down",
           suppressed_by: str | None = None) -> Event:
    """A problem whose title names its priority (an admin's template with it), as the
    agent sends it: the title at each priority beside its own."""
    event = problem(check, priority, at=at, suppressed_by=suppressed_by)
    titles = {p: f"[{p}] {HOST}/{check} {words}" for p in ("P1", "P2", "P3")}
    return event.model_copy(update={"title": titles[priority], "titles": titles})


def stopped(at: dt.datetime) -> Event:
    return Event(id=new_id(), kind="stopped", host=HOST, at=at)


def window(until: dt.datetime | None, check: str | None = None, at: dt.datetime = T0) -> Event:
    return Event(id=new_id(), kind="maintenance", host=HOST, check=check, at=at, until=until,
                 owner="root", reason="kernel upgrade")


# --- priority ---------------------------------------------------------------------------

async def test_p1_child_attached_to_a_p3_parent_makes_the_incident_p1(store: Store) -> None:
    await store.apply([problem("nginx", "P3")], minutes(0))
    await store.apply([problem("site", "P1", suppressed_by="nginx")], minutes(10))
    incident = await only_incident(store)
    assert (incident.key, incident.priority) == (f"{HOST}/nginx", "P1")
    assert incident.attached == (f"{HOST}/site",)
    assert incident.due_at == minutes(10) + dt.timedelta(seconds=P1_SECONDS)
    assert [k for _, k, _ in await kinds(store, 10)] == ["opened", "escalated"]


async def test_a_childs_recovery_lowers_the_priority_without_a_notice(store: Store) -> None:
    await store.apply([problem("nginx", "P3")], minutes(0))
    await store.apply([problem("site", "P1", suppressed_by="nginx")], minutes(1))
    assert len(await kinds(store, 1)) == 2
    await store.apply([recovery("site")], minutes(2))
    incident = await only_incident(store)
    assert (incident.priority, incident.status) == ("P3", "open")
    assert incident.due_at == minutes(0) + dt.timedelta(seconds=P3_SECONDS)
    assert incident.timeline[-1].kind == "priority"
    assert "lowered to P3" in incident.timeline[-1].text
    assert await kinds(store, 2) == []


async def test_a_milder_problem_lowers_the_priority_on_the_timeline_only(store: Store) -> None:
    await store.apply([problem("web", "P1")], minutes(0))
    await kinds(store, 0)
    await store.apply([problem("web", "P3", summary="slow answers")], minutes(5))
    incident = await only_incident(store)
    assert incident.priority == "P3"
    assert incident.title == f"{HOST}/web: slow answers"      # the title follows it
    assert await kinds(store, 5) == []


async def test_certificate_warning_plus_a_self_healed_crash_stays_p3(store: Store) -> None:
    await store.apply([problem("cert", "P3")], minutes(0))
    crash = healed("cert", at=minutes(1)).model_copy(update={"priority": "P1"})
    await store.apply([crash], minutes(1))
    incident = await only_incident(store)
    assert (incident.priority, incident.status) == ("P3", "open")
    assert incident.due_at == minutes(0) + dt.timedelta(seconds=P3_SECONDS)
    assert [k for _, k, _ in await kinds(store, 1)] == ["opened"]


# --- titles follow the priority ----------------------------------------------------------

async def test_a_title_naming_its_priority_follows_a_child_that_raises_and_recovers(
        store: Store) -> None:
    await store.apply([titled("nginx", "P3")], minutes(0))
    assert (await only_incident(store)).title == f"[P3] {HOST}/nginx down"
    await store.apply([problem("site", "P1", suppressed_by="nginx")], minutes(10))
    raised = await only_incident(store)
    assert (raised.priority, raised.title) == ("P1", f"[P1] {HOST}/nginx down")
    assert raised.due_at == minutes(10) + dt.timedelta(seconds=P1_SECONDS)
    await store.apply([recovery("site")], minutes(20))
    lowered = await only_incident(store)
    assert (lowered.priority, lowered.title) == ("P3", f"[P3] {HOST}/nginx down")
    assert lowered.due_at == minutes(0) + dt.timedelta(seconds=P3_SECONDS)


async def test_a_title_follows_its_own_checks_priority_under_a_raising_child(
        store: Store) -> None:
    await store.apply([titled("nginx", "P3")], minutes(0))
    await store.apply([problem("site", "P1", suppressed_by="nginx")], minutes(1))
    # Its own check gets worse, but the child keeps it P1: the new words, at P1.
    await store.apply([titled("nginx", "P2", words="refuses")], minutes(2))
    kept = await only_incident(store)
    assert (kept.priority, kept.title) == ("P1", f"[P1] {HOST}/nginx refuses")
    assert kept.due_at == minutes(1) + dt.timedelta(seconds=P1_SECONDS)
    await store.apply([recovery("site")], minutes(3))        # now its own P2 rules
    own = await only_incident(store)
    assert (own.priority, own.title) == ("P2", f"[P2] {HOST}/nginx refuses")
    # A repeat at the same priority keeps the title (the summary changes, not the title).
    await store.apply([titled("nginx", "P2", words="again")], minutes(4))
    assert (await only_incident(store)).title == f"[P2] {HOST}/nginx refuses"


async def test_a_milder_problem_takes_the_title_of_its_priority(store: Store) -> None:
    await store.apply([titled("disk", "P1")], minutes(0))
    await store.apply([titled("disk", "P3", words="filling")], minutes(5))
    incident = await only_incident(store)
    assert (incident.priority, incident.title) == ("P3", f"[P3] {HOST}/disk filling")
    assert incident.due_at == minutes(0) + dt.timedelta(seconds=P3_SECONDS)


async def test_a_reopened_incident_takes_the_new_problems_titles(store: Store) -> None:
    await store.apply([titled("web", "P1")], minutes(0))
    await store.apply([recovery("web")], minutes(1))
    await store.apply([titled("web", "P3", words="slow")], minutes(2))        # reopened
    await store.apply([problem("site", "P2", suppressed_by="web")], minutes(3))
    incident = await only_incident(store)
    assert (incident.priority, incident.title) == ("P2", f"[P2] {HOST}/web slow")


async def test_a_title_that_does_not_name_the_priority_stays(store: Store) -> None:
    await store.apply([problem("nginx", "P3")], minutes(0))
    before = (await only_incident(store)).title
    await store.apply([problem("site", "P1", suppressed_by="nginx")], minutes(1))
    incident = await only_incident(store)
    assert (incident.priority, incident.title) == ("P1", before)


# --- flapping ---------------------------------------------------------------------------

async def test_flapping_check_makes_one_notice_until_it_is_calm(store: Store) -> None:
    await store.apply([flapping("web")], minutes(0))
    for n in range(1, 4):         # the agent's own quiet aside: changes keep coming
        await store.apply([recovery("web", at=minutes(n))], minutes(n))
        await store.apply([problem("web", at=minutes(n + 0.5))], minutes(n + 0.5))
    await store.apply([recovery("web", at=minutes(4))], minutes(4))
    incident = await only_incident(store)
    assert (incident.status, incident.flapping) == ("open", True)
    assert await store.sweep(minutes(8.9)) == []                  # not calm for 5 min yet
    assert [k for _, k, _ in await kinds(store, 8.9)] == ["opened"]
    await store.sweep(minutes(9))
    incident = await only_incident(store)
    assert (incident.status, incident.flapping) == ("resolved", False)
    assert [k for _, k, _ in await kinds(store, 9)] == ["resolved"]


async def test_flapping_on_an_open_incident_says_so_once(store: Store) -> None:
    await store.apply([problem("web")], minutes(0))
    await store.apply([flapping("web", at=minutes(1))], minutes(1))
    await store.apply([flapping("web", at=minutes(2))], minutes(2))
    assert [k for _, k, _ in await kinds(store, 2)] == ["opened", "flapping"]


async def test_the_agents_word_after_the_calm_settles_a_flapping_incident(
        store: Store) -> None:
    await store.apply([flapping("web")], minutes(0))
    assert await store.sweep(minutes(30)) == []           # no held word: wait for the agent
    assert (await only_incident(store)).flapping is True
    await store.apply([problem("web", at=minutes(31))], minutes(31))   # steady, failing
    incident = await only_incident(store)
    assert (incident.status, incident.flapping) == ("open", False)
    assert [k for _, k, _ in await kinds(store, 31)] == ["opened", "escalated"]
    await store.apply([recovery("web", at=minutes(32))], minutes(32))
    assert (await only_incident(store)).status == "resolved"


# --- maintenance --------------------------------------------------------------------------

async def test_maintenance_set_by_a_person_silences_notices(store: Store) -> None:
    await store.set_maintenance(Maintenance(HOST, "", minutes(60), "alice", "disk swap",
                                            minutes(0)))
    await store.apply([problem("web", "P1")], minutes(1))
    assert await kinds(store, 1) == []
    incident = await only_incident(store)
    assert incident.timeline[-1].kind == "silenced"
    assert "in maintenance" in incident.timeline[-1].text and "alice" in incident.timeline[-1].text
    [listed] = await store.maintenance(minutes(1))
    assert (listed.host, listed.check, listed.owner, listed.until) == (
        HOST, "", "alice", minutes(60))
    assert await store.end_maintenance(HOST, "", minutes(2)) is True
    assert await store.end_maintenance(HOST, "", minutes(2)) is False
    await store.apply([recovery("web")], minutes(3))
    # Still open when the window ended: told then, so its end is told too.
    assert [k for _, k, _ in await kinds(store, 3)] == ["opened", "resolved"]


async def test_maintenance_events_of_the_agent_set_and_end_windows(store: Store) -> None:
    await store.apply([window(minutes(30), check="web")], minutes(0))
    await store.apply([problem("web"), problem("db")], minutes(1))
    assert [k for _, k, _ in await kinds(store, 1)] == ["opened"]          # db's only
    [listed] = await store.maintenance(minutes(1))
    assert (listed.check, listed.owner, listed.reason) == ("web", "root", "kernel upgrade")
    assert await store.maintenance(minutes(31)) == []                       # expired
    await store.apply([window(None, check="web")], minutes(2))
    assert await store.maintenance(minutes(2)) == []


async def test_an_expired_window_told_late_ends_only_itself(store: Store) -> None:
    await store.apply([window(minutes(30), check="web"), window(minutes(30))], minutes(0))
    await store.set_maintenance(Maintenance(HOST, "", minutes(90), "alice", "longer",
                                            minutes(20)))       # a person made it longer
    told = [window(minutes(30), check="web", at=minutes(40)), window(minutes(30),
                                                                     at=minutes(40))]
    await store.apply(told, minutes(40))           # the agent, starting: both expired
    [left] = await store.maintenance(minutes(40))
    assert (left.check, left.owner, left.until) == ("", "alice", minutes(90))
    await store.apply([window(minutes(30), check="web", at=minutes(41))],
                      minutes(41))                   # told again: nothing left to end
    assert len(await store.maintenance(minutes(41))) == 1


async def test_a_p1_in_a_two_hour_window_says_it_was_silenced_once(store: Store) -> None:
    await store.apply([window(minutes(120))], minutes(0))
    await store.apply([problem("web", "P1")], minutes(1))
    remind = Escalation(renotify_every=600.0)                # every 10 minutes
    for minute in range(11, 120, 10):                        # 11 reminders' worth
        assert await store.escalate(minutes(minute), remind) == []
    incident = await only_incident(store)
    silenced = [e for e in incident.timeline if e.kind == "silenced"]
    assert len(silenced) == 1 and "nobody told (opened)" in silenced[0].text
    assert await kinds(store, 120) == []


async def test_a_window_told_again_is_the_same_window(store: Store) -> None:
    await store.apply([window(minutes(120))], minutes(0))
    await store.apply([problem("web", "P1")], minutes(1))
    await store.apply([window(minutes(120), at=minutes(30))], minutes(30))   # said again
    assert await store.escalate(minutes(40), Escalation(renotify_every=600.0)) == []
    silenced = [e for e in (await only_incident(store)).timeline if e.kind == "silenced"]
    assert len(silenced) == 1
    [listed] = await store.maintenance(minutes(30))
    assert listed.set_at == minutes(0)


# --- planned stops --------------------------------------------------------------------------

async def test_a_stopped_host_is_not_down_until_the_stop_limit(store: Store) -> None:
    await store.apply([heartbeat(interval_seconds=60), stopped(minutes(1))], minutes(1))
    assert await store.sweep(minutes(30)) == []
    [host] = await store.hosts(minutes(30))
    assert (host.down, host.stopped_at) == (False, minutes(1))
    [down] = await store.sweep(minutes(62))
    assert down.key == f"{HOST}/{SERVER_DOWN}" and "stopped by an admin" in down.title


async def test_the_stop_limit_runs_on_the_stores_clock_when_the_agents_is_behind(
        store: Store) -> None:
    behind = dt.timedelta(days=2)                 # the agent's clock, two days slow
    await store.apply([heartbeat(interval_seconds=60, at=minutes(0) - behind),
                       stopped(minutes(1) - behind)], minutes(1))
    assert await store.sweep(minutes(30)) == []  # not down: stopped 29 minutes ago
    [host] = await store.hosts(minutes(30))
    assert (host.down, host.stopped_at) == (False, minutes(1))
    [down] = await store.sweep(minutes(62))
    assert "stopped by an admin 1h1m ago" in down.title


async def test_the_stop_limit_runs_on_the_stores_clock_when_the_agents_is_ahead(
        store: Store) -> None:
    ahead = dt.timedelta(hours=20)    # the agent's clock, 20 hours fast (the most the
                                      # store takes is a day)
    await store.apply([heartbeat(interval_seconds=60, at=minutes(0) + ahead),
                       stopped(minutes(1) + ahead)], minutes(1))
    assert await store.sweep(minutes(60)) == []
    [down] = await store.sweep(minutes(62))      # an hour after the store heard it
    assert down.key == f"{HOST}/{SERVER_DOWN}"
    # Its next heartbeat (made later by the same clock) ends the stop and the outage.
    await store.apply([heartbeat(interval_seconds=60, at=minutes(70) + ahead)], minutes(70))
    [host] = await store.hosts(minutes(70))
    assert (host.down, host.stopped_at) == (False, None)


async def test_a_stop_delivered_late_keeps_the_newer_one(store: Store) -> None:
    await store.apply([heartbeat(interval_seconds=60), stopped(minutes(10))], minutes(10))
    await store.apply([stopped(minutes(2))], minutes(11))             # an older one, late
    assert (await store.hosts(minutes(11)))[0].stopped_at == minutes(10)


async def test_a_heartbeat_made_after_the_stop_ends_it(store: Store) -> None:
    await store.apply([stopped(minutes(1)), heartbeat(interval_seconds=60, at=minutes(0.5))],
                      minutes(1))
    assert (await store.hosts(minutes(1)))[0].stopped_at == minutes(1)   # older: kept
    await store.apply([heartbeat(interval_seconds=60, at=minutes(5))], minutes(5))
    assert (await store.hosts(minutes(5)))[0].stopped_at is None
    assert len(await store.sweep(minutes(10))) == 1                       # silent again


# --- open periods -------------------------------------------------------------------------

async def test_a_reopened_incident_keeps_both_open_periods(open_store: OpenStore) -> None:
    store = await open_store()
    await store.apply([problem("web", "P2")], minutes(0))
    [incident] = await store.incidents()
    await store.acknowledge(incident.id, "alice", "", minutes(5))
    await store.apply([recovery("web")], minutes(10))
    await store.apply([problem("web", "P2")], minutes(20))            # reopened
    await store.acknowledge(incident.id, "bob", "", minutes(50))
    await store.acknowledge(incident.id, "carol", "", minutes(55))    # not the first
    first, second = await store.periods_between(minutes(-1), minutes(60))
    assert (first.started_at, first.acknowledged_by, first.resolved_at) == (
        minutes(0), "alice", minutes(10))
    assert (second.started_at, second.acknowledged_at, second.acknowledged_by) == (
        minutes(20), minutes(50), "bob")
    assert second.resolved_at is None and second.status == "acknowledged"



async def test_a_p1_that_eases_to_p3_unanswered_stays_a_p1_breach(store: Store) -> None:
    """A period keeps the most urgent priority it had and its earliest due time: a P1 left
    unacknowledged for 45 minutes (target 15) is a breached P1, eased or not."""
    await store.apply([problem("web", "P1")], minutes(0))
    await store.apply([problem("web", "P3", at=minutes(45))], minutes(45))   # eased
    assert (await only_incident(store)).priority == "P3"
    await store.apply([problem("web", "P2", at=minutes(50))], minutes(50))   # rises again
    [period] = await store.periods_between(minutes(-1), minutes(60))
    assert (period.priority, period.due_at) == ("P1", minutes(15))
    [p1, p2, p3] = report([period], minutes(60))
    assert (p1.opened, p1.breached, p2.opened, p3.opened) == (1, 1, 0, 0)


async def test_a_rise_brings_the_periods_due_time_forward(store: Store) -> None:
    await store.apply([problem("web", "P3")], minutes(0))
    await store.apply([problem("web", "P1", at=minutes(10))], minutes(10))
    [period] = await store.periods_between(minutes(-1), minutes(60))
    assert (period.priority, period.due_at) == ("P1", minutes(25))

# --- schema 3 over a store of schema 2 ------------------------------------------------------

V2_INCIDENT = """INSERT INTO incident (key, host, check_name, priority, status, title, summary,
    opened_at, due_at, last_seen_at, count, acknowledged_at, acknowledged_by)
    VALUES ('web1/nginx', 'web1', 'nginx', 'P2', 'acknowledged', 't', 's', {t0}, {due},
            {t0}, 1, {ack}, 'alice')"""


def _v2(t0: str, due: str, ack: str) -> list[str]:
    """The statements of a schema 2 store holding one acknowledged incident with a child."""
    return [V2_INCIDENT.format(t0=t0, due=due, ack=ack),
            "INSERT INTO attached (incident_id, key) VALUES (1, 'web1/shop')"]


async def _after_v2(store: Store) -> None:
    """What a schema 2 incident looks like once the store is at schema 3."""
    [period] = await store.periods_between(minutes(-1), minutes(1))
    assert (period.started_at, period.acknowledged_by, period.priority) == (T0, "alice", "P2")
    await store.apply([stopped(minutes(1)), window(minutes(60), at=minutes(1))], minutes(1))
    await store.apply([recovery("shop", at=minutes(2))], minutes(2))    # the child: P2 still
    incident = await only_incident(store)
    assert (incident.priority, incident.attached) == ("P2", (f"{HOST}/shop",))
    await store.apply([flapping("nginx", "P2", at=minutes(3))], minutes(3))
    assert (await only_incident(store)).flapping is True


async def test_a_schema_2_sqlite_file_takes_schema_3_with_its_incidents(
        tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        for number, _, script in schema_files("sqlite"):
            if number <= 2:
                db.executescript(script)
        for statement in _v2(str(T0.timestamp()), str(minutes(120).timestamp()),
                             str(minutes(5).timestamp())):
            db.execute(statement)
        db.execute("PRAGMA user_version = 2")
        db.commit()
    store = await SQLiteStore.open(path, POLICY)
    try:
        await _after_v2(store)
    finally:
        await store.close()


async def test_a_schema_2_postgres_database_takes_schema_3_with_its_incidents() -> None:
    async with fresh_database() as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(VERSION_TABLE.sql)
            for number, name, script in schema_files("postgres"):
                if number <= 2:
                    await conn.execute(script)
                    await conn.execute(RECORD_VERSION.sql, number, name)
            at = "'2026-11-25T17:{:02d}:00Z'::timestamptz"
            for statement in _v2(at.format(0), "'2026-11-25T19:00:00Z'::timestamptz",
                                 at.format(5)):
                await conn.execute(statement)
        finally:
            await conn.close()
        store = await PostgresStore.open(dsn, POLICY, pool_size=2)
        try:
            assert store.migrated == tuple(name for number, name, _ in schema_files("postgres")
                                           if number > 2)
            await _after_v2(store)
        finally:
            await store.close()
