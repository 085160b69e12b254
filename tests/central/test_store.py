"""The store's rules (decided in monitord/store/rules.py), checked against every backend.

Each test gets a fresh store from the ``store`` fixture and drives its clock: ``now`` is
always passed in, as ``minutes(n)`` after T0.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable

import pytest

from monitord.errors import Conflict, NotFound
from monitord.store.policy import Policy
from monitord.store.protocol import SERVER_DOWN, Incident, Store
from tests.central.conftest import (
    HOST,
    T0,
    OpenStore,
    healed,
    heartbeat,
    minutes,
    problem,
    recovery,
    step,
)

P1_SECONDS, P2_SECONDS, P3_SECONDS = 900, 7200, 172800


async def only_incident(store: Store, **filters: object) -> Incident:
    found = await store.incidents(status=(), **filters)  # type: ignore[arg-type]
    assert len(found) == 1, found
    return await store.incident(found[0].id)


# --- exactly once ------------------------------------------------------------------------

async def test_same_batch_applied_three_times_opens_one_incident_counted_once(
        store: Store) -> None:
    batch = [heartbeat(), problem("web", steps=(step(),)), healed("disk"), recovery("mail")]
    reports = [await store.apply(batch, minutes(i)) for i in range(3)]
    assert [(r.applied, r.duplicates) for r in reports] == [(4, 0), (0, 4), (0, 4)]
    incident = await only_incident(store)
    assert incident.count == 1
    assert [e.kind for e in incident.timeline] == ["problem"]
    assert await store.healed_counts() == [(HOST, "disk", "restart-service", 1)]


async def test_duplicate_id_inside_one_batch_is_applied_once(store: Store) -> None:
    event = problem()
    report = await store.apply([event, event], T0)
    assert (report.applied, report.duplicates) == (1, 1)
    assert (await only_incident(store)).count == 1


async def test_batch_with_an_event_the_store_cannot_apply_applies_nothing(
        open_store: OpenStore) -> None:
    store = await open_store(Policy(targets={"P1": 900.0, "P2": 7200.0}))  # no P3 target
    batch = [heartbeat(), problem("web", "P1"), healed("disk"), problem("db", "P3")]
    with pytest.raises(ValueError, match="P3 has no response target"):
        await store.apply(batch, T0)
    assert await store.incidents(status=()) == []
    assert await store.healed_counts() == []
    assert await store.hosts(T0) == []
    report = await store.apply(batch[:3], T0)   # their ids were not used up
    assert report.applied == 3


async def test_two_tasks_applying_the_same_events_at_once_open_one_incident(
        store: Store) -> None:
    batch = [problem("web"), problem("web"), healed("web")]
    reports = await asyncio.gather(store.apply(batch, T0), store.apply(batch, T0))
    assert sorted(r.applied for r in reports) == [0, 3]
    assert (await only_incident(store)).count == 2
    assert await store.healed_counts() == [(HOST, "web", "restart-service", 1)]


async def test_two_connections_applying_the_same_events_at_once_open_one_incident(
        open_store: OpenStore) -> None:
    first, second = await open_store(), await open_store()
    batch = [problem("web"), problem("db"), problem("web")]
    reports = await asyncio.gather(first.apply(batch, T0), second.apply(batch, T0))
    assert sorted(r.applied for r in reports) == [0, 3]
    assert sorted((i.key, i.count) for i in await first.incidents()) == [
        ("web1/db", 1), ("web1/web", 2)]


# --- problems ----------------------------------------------------------------------------

async def test_problem_opens_incident_due_at_opened_plus_target(store: Store) -> None:
    await store.apply([problem("web", "P2", at=minutes(-1))], T0)
    incident = await only_incident(store)
    assert (incident.key, incident.host, incident.check) == ("web1/web", HOST, "web")
    assert (incident.status, incident.priority, incident.count) == ("open", "P2", 1)
    assert incident.opened_at == incident.last_seen_at == T0
    assert incident.due_at == T0 + dt.timedelta(seconds=P2_SECONDS)
    assert incident.title == "web1/web: HTTP 502 from http://127.0.0.1/"
    assert incident.timeline[0].at == minutes(-1)   # when the agent saw it
    assert incident.opened_at.tzinfo is not None
    assert incident.opened_at.utcoffset() == dt.timedelta(0)


async def test_repeated_problem_updates_the_open_incident(store: Store) -> None:
    await store.apply([problem("web", summary="HTTP 502")], T0)
    await store.apply([problem("web", summary="HTTP 503")], minutes(5))
    await store.apply([problem("web", summary="HTTP 504")], minutes(9))
    incident = await only_incident(store)
    assert incident.count == 3
    assert incident.opened_at == T0
    assert incident.last_seen_at == minutes(9)
    assert incident.summary == "HTTP 504"
    assert [e.kind for e in incident.timeline] == ["problem"] * 3


async def test_acknowledged_incident_still_takes_the_repeats(store: Store) -> None:
    await store.apply([problem("web")], T0)
    opened = await only_incident(store)
    await store.acknowledge(opened.id, "alice", "looking", minutes(1))
    await store.apply([problem("web")], minutes(2))
    incident = await only_incident(store)
    assert (incident.id, incident.status, incident.count) == (opened.id, "acknowledged", 2)


async def test_worse_problem_raises_priority_and_brings_due_time_forward(store: Store) -> None:
    await store.apply([problem("disk", "P3")], T0)
    await store.apply([problem("disk", "P1")], minutes(10))
    incident = await only_incident(store)
    assert (incident.priority, incident.count) == ("P1", 2)
    assert incident.due_at == minutes(10) + dt.timedelta(seconds=P1_SECONDS)
    assert [e.kind for e in incident.timeline] == ["problem", "problem", "priority"]
    assert "raised to P1" in incident.timeline[-1].text


async def test_raised_priority_never_pushes_the_due_time_later(store: Store) -> None:
    await store.apply([problem("load", "P2")], T0)
    await store.apply([problem("load", "P1")], minutes(110))   # now + 15 min > T0 + 2 h
    incident = await only_incident(store)
    assert incident.priority == "P1"
    assert incident.due_at == T0 + dt.timedelta(seconds=P2_SECONDS)


async def test_milder_problem_lowers_priority_and_counts_due_time_from_opening(
        store: Store) -> None:
    await store.apply([problem("web", "P1")], T0)
    await store.apply([problem("web", "P3")], minutes(5))
    incident = await only_incident(store)
    assert (incident.priority, incident.count) == ("P3", 2)
    assert incident.due_at == T0 + dt.timedelta(seconds=P3_SECONDS)
    assert incident.timeline[-1].kind == "priority"
    assert "lowered to P3" in incident.timeline[-1].text


async def test_problem_within_reopen_window_reopens_the_resolved_incident(
        store: Store) -> None:
    await store.apply([problem("web", "P2")], T0)
    await store.apply([recovery("web")], minutes(10))
    await store.apply([problem("web", "P3")], minutes(69))       # resolved 59 min ago
    incident = await only_incident(store)
    assert (incident.status, incident.reopened, incident.count) == ("open", 1, 2)
    assert incident.priority == "P3"
    assert incident.opened_at == T0
    assert incident.due_at == minutes(69) + dt.timedelta(seconds=P3_SECONDS)
    assert (incident.resolved_at, incident.resolved_by) == (None, None)
    assert [e.kind for e in incident.timeline] == ["problem", "recovery", "reopened"]


async def test_problem_after_reopen_window_opens_a_new_incident(store: Store) -> None:
    await store.apply([problem("web")], T0)
    await store.apply([recovery("web")], minutes(10))
    await store.apply([problem("web")], minutes(71))
    old, new = await store.incidents(status=("open", "resolved"))
    assert old.id < new.id
    assert (old.status, new.status) == ("resolved", "open")
    assert (new.count, new.reopened, new.opened_at) == (1, 0, minutes(71))


async def test_problem_after_a_person_resolved_it_reopens_within_the_window(
        store: Store) -> None:
    await store.apply([problem("web")], T0)
    opened = await only_incident(store)
    await store.resolve(opened.id, "alice", "restarted php-fpm", minutes(5))
    await store.apply([problem("web")], minutes(20))
    incident = await only_incident(store)
    assert (incident.id, incident.status, incident.reopened) == (opened.id, "open", 1)


# --- recovery ----------------------------------------------------------------------------

async def test_recovery_resolves_the_open_incident(store: Store) -> None:
    await store.apply([problem("web")], T0)
    await store.apply([recovery("web", at=minutes(3))], minutes(4))
    incident = await only_incident(store)
    assert incident.status == "resolved"
    assert (incident.resolved_at, incident.resolved_by) == (minutes(4), "monitord")
    assert incident.timeline[-1].kind == "recovery"
    assert incident.timeline[-1].who == HOST
    assert await store.incidents() == []


async def test_recovery_without_incident_is_recorded_and_changes_nothing(store: Store) -> None:
    event = recovery("web")
    report = await store.apply([event], T0)
    assert report.applied == 1
    assert await store.incidents(status=()) == []
    assert (await store.apply([event], T0)).duplicates == 1


# --- healed ------------------------------------------------------------------------------

async def test_healed_is_counted_per_host_check_and_last_fix_and_pages_nobody(
        store: Store) -> None:
    await store.apply([healed("web"), healed("web"), healed("web", fixes=("reload-service",)),
                       healed("web", host="web2")], T0)
    assert await store.healed_counts() == [
        (HOST, "web", "reload-service", 1), (HOST, "web", "restart-service", 2),
        ("web2", "web", "restart-service", 1)]
    assert await store.incidents(status=()) == []


async def test_healed_goes_on_the_open_incident_timeline(store: Store) -> None:
    await store.apply([problem("web")], T0)
    event = healed("web", at=minutes(2))
    await store.apply([event], minutes(2))
    incident = await only_incident(store)
    entry = incident.timeline[-1]
    assert (entry.kind, entry.event_id, entry.at) == ("healed", event.id, minutes(2))
    assert [s["fix"] for s in entry.steps] == ["reload-service", "restart-service"]
    assert incident.status == "open"    # a later recovery resolves it, not the fix


# --- suppression -------------------------------------------------------------------------

async def test_suppressed_child_is_attached_to_the_parent_incident(store: Store) -> None:
    await store.apply([problem("mysql", "P1")], T0)
    children = [problem("shop", "P2", suppressed_by="mysql"),
                problem("blog", "P2", suppressed_by="mysql")]
    await store.apply(children, minutes(1))
    incident = await only_incident(store)
    assert incident.key == "web1/mysql"
    assert incident.attached == ("web1/blog", "web1/shop")
    assert incident.count == 1
    assert [(e.kind, e.event_id) for e in incident.timeline[1:]] == [
        ("attached", children[0].id), ("attached", children[1].id)]


async def test_suppressed_child_without_an_open_parent_opens_its_own(store: Store) -> None:
    await store.apply([problem("mysql", host="db2")], T0)    # same check, another host
    await store.apply([problem("shop", suppressed_by="mysql")], T0)
    assert sorted(i.key for i in await store.incidents()) == ["db2/mysql", "web1/shop"]


# --- heartbeats --------------------------------------------------------------------------

async def test_silent_host_gets_one_server_down_incident_across_sweeps(store: Store) -> None:
    await store.apply([heartbeat(interval_seconds=60)], T0)
    assert await store.sweep(minutes(3)) == []           # 3 x 60 s allowed, not exceeded
    opened = await store.sweep(minutes(6))
    assert len(opened) == 1
    down = opened[0]
    assert (down.key, down.check, down.priority) == (f"{HOST}/{SERVER_DOWN}", SERVER_DOWN, "P1")
    assert down.title == "web1: server down (no heartbeat for 6m)"
    assert down.due_at == minutes(6) + dt.timedelta(seconds=P1_SECONDS)
    for n in (7, 30, 600):
        assert await store.sweep(minutes(n)) == []
    assert [i.id for i in await store.incidents()] == [down.id]


async def test_allowed_silence_is_missed_heartbeats_times_interval_or_the_minimum(
        store: Store) -> None:
    await store.apply([heartbeat("slow", interval_seconds=300),
                       heartbeat("fast", interval_seconds=10)], T0)
    assert await store.sweep(minutes(3)) == []           # fast: 180 s minimum, not 30 s
    assert [i.host for i in await store.sweep(minutes(3.1))] == ["fast"]
    assert await store.sweep(minutes(15)) == []          # slow: 3 x 5 min
    assert [i.host for i in await store.sweep(minutes(15.1))] == ["slow"]


async def test_heartbeat_after_silence_resolves_server_down(store: Store) -> None:
    await store.apply([heartbeat()], T0)
    [down] = await store.sweep(minutes(6))
    await store.apply([heartbeat(at=minutes(8))], minutes(8))
    incident = await store.incident(down.id)
    assert (incident.status, incident.resolved_by) == ("resolved", "monitord")
    assert incident.resolved_at == minutes(8)
    assert [e.kind for e in incident.timeline] == ["problem", "recovery"]
    [host] = await store.hosts(minutes(8))
    assert (host.down, host.last_heartbeat) == (False, minutes(8))


async def test_server_down_resolved_by_a_person_stays_resolved_for_that_outage(
        store: Store) -> None:
    await store.apply([heartbeat()], T0)
    [down] = await store.sweep(minutes(6))
    await store.resolve(down.id, "alice", "decommissioned", minutes(7))
    assert await store.sweep(minutes(8)) == []
    assert await store.incidents() == []


async def test_a_new_outage_after_heartbeats_resumed_opens_server_down_again(
        store: Store) -> None:
    await store.apply([heartbeat()], T0)
    [first] = await store.sweep(minutes(6))
    await store.apply([heartbeat()], minutes(8))
    [again] = await store.sweep(minutes(12))             # within the reopen window
    assert (again.id, again.status, again.reopened) == (first.id, "open", 1)
    await store.apply([heartbeat()], minutes(13))
    [later] = await store.sweep(minutes(200))
    assert later.id != first.id


async def test_hosts_report_heartbeat_down_and_open_incidents(store: Store) -> None:
    await store.apply([heartbeat("web1", interval_seconds=60),
                       heartbeat("web2", interval_seconds=30),
                       problem("web", host="web2"), problem("db", host="web2"),
                       problem("mail", host="web3")], T0)
    await store.apply([heartbeat("web2", interval_seconds=30)], minutes(4))
    hosts = await store.hosts(minutes(5))
    assert [(h.host, h.down, h.open_incidents) for h in hosts] == [
        ("web1", True, 0), ("web2", False, 2), ("web3", False, 1)]
    assert (hosts[0].last_heartbeat, hosts[0].interval_seconds) == (T0, 60)
    assert (hosts[2].last_heartbeat, hosts[2].interval_seconds) == (None, None)


# --- reading incidents -------------------------------------------------------------------

async def test_incidents_are_ordered_by_due_time_then_priority_then_id(store: Store) -> None:
    await store.apply([problem("backup", "P3")], T0)          # due T0 + 48 h
    await store.apply([problem("load", "P2")], T0)            # due T0 + 2 h
    await store.apply([problem("web", "P1"), problem("mail", "P1")],
                      minutes(105))                           # both due T0 + 2 h
    keys = [i.check for i in await store.incidents()]
    assert keys == ["web", "mail", "load", "backup"]


async def test_incidents_filter_by_status_priority_and_host(store: Store) -> None:
    await store.apply([problem("web", "P1"), problem("disk", "P3"),
                       problem("web", "P2", host="web2"), problem("mail", "P1")], T0)
    await store.apply([recovery("mail")], minutes(1))
    disk = (await store.incidents(priority=["P3"]))[0]
    await store.acknowledge(disk.id, "bob", "ordering disks", minutes(2))

    async def checks(**filters: object) -> list[str]:
        found = await store.incidents(**filters)  # type: ignore[arg-type]
        return sorted(f"{i.host}/{i.check}" for i in found)

    assert await checks() == ["web1/disk", "web1/web", "web2/web"]
    assert await checks(status=["resolved"]) == ["web1/mail"]
    assert await checks(status=["acknowledged"]) == ["web1/disk"]
    assert await checks(status=()) == ["web1/disk", "web1/mail", "web1/web", "web2/web"]
    assert await checks(priority=["P1", "P2"]) == ["web1/web", "web2/web"]
    assert await checks(host="web2") == ["web2/web"]
    assert await checks(status=(), priority=["P1"], host="web1") == ["web1/mail", "web1/web"]
    assert len(await store.incidents(limit=2)) == 2


async def test_incident_carries_its_timeline_with_the_heal_transcript(store: Store) -> None:
    steps = (step("reload-service"), step("restart-service"))
    event = problem("web", steps=steps)
    await store.apply([event], T0)
    [listed] = await store.incidents()
    assert listed.timeline == ()                   # the list leaves timelines out
    [entry] = (await store.incident(listed.id)).timeline
    assert (entry.kind, entry.who, entry.event_id) == ("problem", HOST, event.id)
    assert "HTTP 502" in entry.text
    assert entry.steps == tuple(s.model_dump(mode="json") for s in steps)


# --- people ------------------------------------------------------------------------------

async def test_acknowledge_records_who_when_and_the_note(store: Store) -> None:
    await store.apply([problem("web")], T0)
    [opened] = await store.incidents()
    incident = await store.acknowledge(opened.id, "alice", "on it", minutes(3))
    assert incident.status == "acknowledged"
    assert (incident.acknowledged_by, incident.acknowledged_at) == ("alice", minutes(3))
    entry = incident.timeline[-1]
    assert (entry.kind, entry.who, entry.text, entry.at) == (
        "acknowledged", "alice", "on it", minutes(3))


async def test_resolve_and_comment_add_timeline_entries(store: Store) -> None:
    await store.apply([problem("web")], T0)
    [opened] = await store.incidents()
    await store.comment(opened.id, "bob", "php-fpm pool exhausted", minutes(1))
    resolved = await store.resolve(opened.id, "bob", "raised pm.max_children", minutes(2))
    assert (resolved.status, resolved.resolved_by, resolved.resolved_at) == (
        "resolved", "bob", minutes(2))
    commented = await store.comment(opened.id, "carol", "post-mortem filed", minutes(9))
    assert [(e.kind, e.who) for e in commented.timeline] == [
        ("problem", HOST), ("comment", "bob"), ("resolved", "bob"), ("comment", "carol")]
    assert commented.status == "resolved"


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
async def test_acting_on_a_resolved_incident_is_a_conflict(store: Store, action: str) -> None:
    await store.apply([problem("web")], T0)
    [opened] = await store.incidents()
    await store.resolve(opened.id, "alice", "fixed", minutes(1))
    act = getattr(store, action)
    with pytest.raises(Conflict, match="resolved"):
        await act(opened.id, "bob", "too late", minutes(2))
    incident = await store.incident(opened.id)
    assert (incident.resolved_by, len(incident.timeline)) == ("alice", 2)


UNKNOWN = 4242
CALLS: dict[str, Callable[[Store], Awaitable[object]]] = {
    "incident": lambda s: s.incident(UNKNOWN),
    "acknowledge": lambda s: s.acknowledge(UNKNOWN, "alice", "", T0),
    "resolve": lambda s: s.resolve(UNKNOWN, "alice", "", T0),
    "comment": lambda s: s.comment(UNKNOWN, "alice", "hello", T0),
}


@pytest.mark.parametrize("call", CALLS)
async def test_unknown_incident_id_is_not_found(store: Store, call: str) -> None:
    with pytest.raises(NotFound, match=str(UNKNOWN)):
        await CALLS[call](store)


# --- agents ------------------------------------------------------------------------------

async def test_agent_is_found_by_its_token_hash_and_can_be_rekeyed(store: Store) -> None:
    await store.add_agent("web1", "hash-one", T0)
    await store.add_agent("web2", "hash-two", T0)
    assert await store.agent_for("hash-one") == "web1"
    await store.add_agent("web1", "hash-three", minutes(1))
    assert await store.agent_for("hash-one") is None
    assert await store.agent_for("hash-three") == "web1"
    assert await store.agent_for("unknown") is None


# --- lifetime ----------------------------------------------------------------------------

async def test_everything_survives_closing_and_reopening(open_store: OpenStore) -> None:
    store = await open_store()
    batch = [heartbeat(), problem("web", steps=(step(),)), healed("disk")]
    await store.apply(batch, T0)
    [opened] = await store.incidents()
    await store.acknowledge(opened.id, "alice", "on it", minutes(1))
    await store.add_agent(HOST, "hash", T0)
    before = await store.incident(opened.id)
    await store.close()

    store = await open_store()
    assert await store.incident(opened.id) == before
    assert (await store.apply(batch, minutes(2))).duplicates == len(batch)
    assert await store.healed_counts() == [(HOST, "disk", "restart-service", 1)]
    assert await store.agent_for("hash") == HOST
    assert [h.last_heartbeat for h in await store.hosts(minutes(2))] == [T0]


async def test_a_naive_now_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="timezone"):
        await store.apply([problem()], dt.datetime(2026, 11, 25, 17, 0))


async def test_sweep_forgets_heartbeat_ids_after_a_week(store: Store) -> None:
    beat = heartbeat()
    await store.apply([beat], T0)
    assert (await store.apply([beat], minutes(1))).duplicates == 1
    week = 7 * 24 * 60
    await store.sweep(minutes(week + 1))
    assert (await store.apply([beat], minutes(week + 2))).applied == 1
