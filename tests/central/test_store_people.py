"""People, contacts, schedules, overrides and escalation policies in the store (the rules
in monitord/store/people_rules.py), round-tripped through every backend."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitord.errors import Conflict, NotFound
from monitord.model import Priority
from monitord.store.people import (
    Contact,
    EscalationPolicy,
    PolicyStep,
    Schedule,
    Target,
)
from monitord.store.postgres import PostgresStore
from monitord.store.protocol import Escalation, Store
from monitord.store.sqlite import SQLiteStore
from tests.central.conftest import POLICY, T0, OpenStore, fresh_database, minutes, problem

HOOK = Contact("webhook", "http://127.0.0.1:9/hooks/alice")


def primary(*members: str, zone: str = "Europe/Berlin") -> Schedule:
    return Schedule("primary", zone, "weekly", dt.time(9, 0), dt.date(2026, 3, 23), members)


def policy(name: str = "default", *priorities: Priority) -> EscalationPolicy:
    return EscalationPolicy(name, priorities or (Priority.P1, Priority.P2), (
        PolicyStep(0.0, (Target("schedule", "primary"),)),
        PolicyStep(0.5, (Target("person", "bob"), Target("channel", "ops-chat")))))


async def team(store: Store, *names: str) -> None:
    for name in names:
        assert await store.add_person(name, T0)


async def test_people_and_their_contacts_round_trip(store: Store) -> None:
    await team(store, "bob", "alice")
    assert not await store.add_person("alice", minutes(1))     # there already
    assert await store.add_contact("alice", HOOK, T0)
    assert await store.add_contact("alice", Contact("mail", "alice@example.com"), T0)
    assert not await store.add_contact("alice", HOOK, minutes(1))
    await store.set_password("bob", "scrypt$...", T0)
    roster = await store.roster(T0)
    assert [(p.name, p.contacts, p.can_sign_in) for p in roster.people] == [
        ("alice", (Contact("mail", "alice@example.com"), HOOK), False), ("bob", (), True)]
    await store.remove_contact("alice", HOOK)
    alice = (await store.roster(T0)).person("alice")
    assert alice is not None and alice.contacts == (Contact("mail", "alice@example.com"),)
    with pytest.raises(NotFound, match="alice has no webhook contact"):
        await store.remove_contact("alice", HOOK)


async def test_a_contact_for_an_unknown_person_is_refused(store: Store) -> None:
    with pytest.raises(NotFound, match="unknown person 'carol'"):
        await store.add_contact("carol", HOOK, T0)
    assert (await store.roster(T0)).people == ()


async def test_a_schedule_keeps_its_zone_hand_off_members_and_overrides(
        open_store: OpenStore) -> None:
    store = await open_store()
    await team(store, "alice", "bob", "carol")
    await store.set_schedule(primary("alice", "bob", "carol"), T0)
    spring = dt.datetime(2026, 3, 28, 17, 0, tzinfo=dt.UTC)
    override = await store.add_override("primary", "carol", spring,
                                        spring + dt.timedelta(hours=37), "alice", T0)
    again = await open_store()                 # another connection: it was committed
    [schedule] = (await again.roster(spring)).schedules
    assert schedule == Schedule(
        "primary", "Europe/Berlin", "weekly", dt.time(9, 0), dt.date(2026, 3, 23),
        ("alice", "bob", "carol"), (override,))
    assert schedule.overrides[0].starts_at == spring
    assert schedule.overrides[0].starts_at.tzinfo is not None
    # An override that has ended by then is not read.
    assert (await again.roster(spring + dt.timedelta(hours=38))).schedules[0].overrides == ()


async def test_replacing_a_schedule_is_explicit_and_keeps_its_overrides(store: Store) -> None:
    await team(store, "alice", "bob")
    await store.set_schedule(primary("alice", "bob"), T0)
    await store.add_override("primary", "bob", minutes(10), minutes(70), "alice", T0)
    with pytest.raises(Conflict, match="schedule 'primary' exists already"):
        await store.set_schedule(primary("bob"), T0)
    await store.set_schedule(primary("bob", "alice", zone="America/New_York"), T0,
                             replace=True)
    [schedule] = (await store.roster(T0)).schedules
    assert (schedule.zone, schedule.members) == ("America/New_York", ("bob", "alice"))
    assert len(schedule.overrides) == 1


async def test_a_schedule_or_override_naming_nobody_known_changes_nothing(
        store: Store) -> None:
    await team(store, "alice")
    with pytest.raises(NotFound, match="unknown person 'dave'"):
        await store.set_schedule(primary("alice", "dave"), T0)
    assert (await store.roster(T0)).schedules == ()
    await store.set_schedule(primary("alice"), T0)
    with pytest.raises(NotFound, match="unknown person 'dave'"):
        await store.add_override("primary", "dave", minutes(1), minutes(2), "alice", T0)
    with pytest.raises(NotFound, match="unknown schedule 'secondary'"):
        await store.add_override("secondary", "alice", minutes(1), minutes(2), "alice", T0)
    with pytest.raises(ValueError, match="must end after it starts"):
        await store.add_override("primary", "alice", minutes(2), minutes(2), "alice", T0)
    assert (await store.roster(T0)).schedules[0].overrides == ()


async def test_a_policy_round_trips_with_its_steps_in_order(store: Store) -> None:
    await team(store, "alice", "bob")
    await store.set_schedule(primary("alice"), T0)
    await store.set_policy(policy(), T0)
    roster = await store.roster(T0)
    assert roster.policies == (policy(),)
    assert roster.policy_for("P2") == policy() and roster.policy_for("P3") is None
    # Set again, it is replaced whole.
    smaller = EscalationPolicy("default", (Priority.P3,),
                               (PolicyStep(0.0, (Target("person", "alice"),)),))
    await store.set_policy(smaller, T0)
    assert (await store.roster(T0)).policies == (smaller,)
    await store.remove_policy("default")
    assert (await store.roster(T0)).policies == ()
    with pytest.raises(NotFound, match="unknown policy 'default'"):
        await store.remove_policy("default")


async def test_a_priority_belongs_to_one_policy(store: Store) -> None:
    await team(store, "alice", "bob")
    await store.set_schedule(primary("alice"), T0)
    await store.set_policy(policy("day", Priority.P1), T0)
    with pytest.raises(Conflict, match="P1 is covered by policy 'day' already"):
        await store.set_policy(policy("night", Priority.P2, Priority.P1), T0)
    assert [p.name for p in (await store.roster(T0)).policies] == ["day"]


async def test_a_policy_naming_an_unknown_schedule_is_refused(store: Store) -> None:
    await team(store, "bob")
    with pytest.raises(NotFound, match="unknown schedule 'primary'"):
        await store.set_policy(policy(), T0)
    assert (await store.roster(T0)).policies == ()


async def test_a_priority_with_policy_steps_climbs_at_their_shares(store: Store) -> None:
    # P1: step 1 after 20 % of its 15 minutes (3 min), step 2 after 90 % (13.5 min);
    # P2 climbs as [escalation] says: every half of its 2 hours, once.
    rules = Escalation(escalate_at=0.5, max_level=1, steps={"P1": (0.0, 0.2, 0.9)})
    await store.apply([problem("web", "P1"), problem("db", "P2")], T0)
    [web] = await store.incidents(priority=(Priority.P1,))
    [db] = await store.incidents(priority=(Priority.P2,))
    assert await store.escalate(minutes(2.9), rules) == []
    assert [(n.incident_id, n.level) for n in await store.escalate(minutes(3), rules)] == [
        (web.id, 1)]
    assert await store.escalate(minutes(13), rules) == []
    assert [(n.incident_id, n.level) for n in await store.escalate(minutes(60), rules)] == [
        (web.id, 2), (db.id, 1)]
    assert await store.escalate(minutes(600), rules) == []    # past every incident's last


async def test_an_override_or_a_schedule_is_removed_unless_a_policy_needs_it(
        store: Store) -> None:
    await team(store, "alice", "bob")
    await store.set_schedule(primary("alice"), T0)
    first = await store.add_override("primary", "bob", minutes(1), minutes(60), "alice", T0)
    second = await store.add_override("primary", "bob", minutes(2), minutes(60), "alice", T0)
    await store.remove_override("primary", first.id)
    assert (await store.roster(T0)).schedules[0].overrides == (second,)
    with pytest.raises(NotFound, match=f"'primary' has no override #{first.id}"):
        await store.remove_override("primary", first.id)
    await store.set_policy(policy("default"), T0)
    with pytest.raises(Conflict, match="schedule 'primary' is a step of policy 'default'"):
        await store.remove_schedule("primary")
    await store.remove_policy("default")
    await store.remove_schedule("primary")
    assert (await store.roster(T0)).schedules == ()
    with pytest.raises(NotFound, match="unknown schedule 'primary'"):
        await store.remove_schedule("primary")



@pytest.fixture(params=["sqlite", "postgres"])
async def linguistic_store(request: pytest.FixtureRequest,
                           tmp_path: Path) -> AsyncIterator[Store]:
    """A store on SQLite, or on a PostgreSQL database whose text sorts linguistically."""
    if request.param == "sqlite":
        store = await SQLiteStore.open(tmp_path / "store.db", POLICY)
        yield store
        await store.close()
        return
    async with fresh_database(linguistic=True) as dsn:
        store = await PostgresStore.open(dsn, POLICY, pool_size=2)
        try:
            yield store
        finally:
            await store.close()


async def test_the_roster_is_sorted_by_code_point_on_every_backend(
        linguistic_store: Store) -> None:
    # ICU's root collation sorts these "a", "a_", "a-", "ä", "b", "B", "Z"; bytes (and
    # SQLite) "B", "Z", "a", "a-", "a_", "b", "ä": the roster reads the same on every
    # backend, whatever the database's locale.
    store = linguistic_store
    names = ["b", "B", "a_", "a-", "ä", "Z", "a"]
    await team(store, *names)
    for name in names:
        await store.add_contact(name, Contact("mail", f"{name}@example.com"), T0)
        await store.add_contact(name, Contact("mail", "Z@example.com"), T0)
        await store.set_schedule(Schedule(name, "UTC", "daily", dt.time(9, 0),
                                          dt.date(2026, 3, 23), (name,)), T0)
        await store.set_policy(EscalationPolicy(name, (), (
            PolicyStep(0.0, (Target("person", name),)),)), T0)
    roster = await store.roster(T0)
    assert [p.name for p in roster.people] == sorted(names) == [
        "B", "Z", "a", "a-", "a_", "b", "ä"]
    assert [s.name for s in roster.schedules] == sorted(names)
    assert [p.name for p in roster.policies] == sorted(names)
    for person in roster.people:
        assert [c.address for c in person.contacts] == sorted(c.address
                                                              for c in person.contacts)


async def test_an_override_ends_within_a_year_of_being_added(store: Store) -> None:
    await team(store, "alice")
    await store.set_schedule(primary("alice"), T0)
    year = T0 + dt.timedelta(days=366)
    await store.add_override("primary", "alice", T0, year, "alice", T0)
    with pytest.raises(ValueError, match="an override ends at most 366 days ahead"):
        await store.add_override("primary", "alice", T0, year + dt.timedelta(seconds=1),
                                 "alice", T0)
    forever = dt.datetime(9999, 12, 31, 23, 59, tzinfo=dt.UTC)
    with pytest.raises(ValueError, match="at most 366 days ahead"):
        await store.add_override("primary", "alice", T0, forever, "alice", T0)
    assert len((await store.roster(T0)).schedules[0].overrides) == 1
