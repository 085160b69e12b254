"""The on-call rules, written once for every backend: scripts like the incident rules'
(see ``ops``), and ``PeopleMethods``, the ``PeopleStore`` methods that run them.

Each change is one script in one write transaction: a schedule and its members, a
policy with its priorities and steps, are replaced whole or not at all. Every name a
change refers to is looked up in the same transaction, so a contact, member, override or
policy step never names a person (or schedule) that does not exist.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Callable
from typing import TypeVar

from monitord.errors import Conflict, NotFound
from monitord.model import Priority
from monitord.store.ops import Rows, Script, aware
from monitord.store.people import (
    MAX_OVERRIDE_AHEAD,
    Contact,
    EscalationPolicy,
    Override,
    Person,
    PolicyStep,
    Roster,
    Schedule,
    Target,
)
from monitord.store.people_sql import P

R = TypeVar("R")


# --- people -------------------------------------------------------------------------------

def add_person(name: str, now: dt.datetime) -> Script[bool]:
    rows = yield P.ADD_PERSON, {"name": name, "now": aware(now)}
    return bool(rows)


def add_contact(person: str, contact: Contact, now: dt.datetime) -> Script[bool]:
    yield from _person(person)
    rows = yield P.ADD_CONTACT, {"name": person, "kind": contact.kind,
                                 "address": contact.address, "now": aware(now)}
    return bool(rows)


def remove_contact(person: str, contact: Contact) -> Script[None]:
    yield from _person(person)
    rows = yield P.REMOVE_CONTACT, {"name": person, "kind": contact.kind,
                                    "address": contact.address}
    if not rows:
        raise NotFound(f"{person} has no {contact.kind} contact like that")


def _person(name: str) -> Script[None]:
    rows = yield P.PERSON_EXISTS, {"name": name}
    if not rows:
        raise NotFound(f"unknown person {name!r}; add them first: monitord central "
                       f"person add {name}")


# --- schedules ----------------------------------------------------------------------------

def set_schedule(schedule: Schedule, now: dt.datetime, replace: bool) -> Script[None]:
    exists = yield P.SCHEDULE_EXISTS, {"name": schedule.name}
    if exists and not replace:
        raise Conflict(f"schedule {schedule.name!r} exists already; replace it with "
                       "--replace (its overrides stay)")
    for member in dict.fromkeys(schedule.members):
        yield from _person(member)
    yield P.UPSERT_SCHEDULE, {
        "name": schedule.name, "zone": schedule.zone, "rotation": schedule.rotation,
        "handoff": schedule.handoff.strftime("%H:%M"), "anchor": schedule.anchor.isoformat(),
        "now": aware(now)}
    yield P.CLEAR_MEMBERS, {"name": schedule.name}
    for position, member in enumerate(schedule.members):
        yield P.ADD_MEMBER, {"name": schedule.name, "position": position, "person": member}


def add_override(schedule: str, person: str, starts_at: dt.datetime, ends_at: dt.datetime,
                 who: str, now: dt.datetime) -> Script[Override]:
    if aware(ends_at) <= aware(starts_at):
        raise ValueError("an override must end after it starts")
    if aware(ends_at) - aware(now) > MAX_OVERRIDE_AHEAD:
        raise ValueError(f"an override ends at most {MAX_OVERRIDE_AHEAD.days} days ahead; "
                         "for a longer change, change the schedule's members")
    yield from _schedule(schedule)
    yield from _person(person)
    rows = yield P.ADD_OVERRIDE, {"schedule": schedule, "person": person,
                                  "starts_at": starts_at, "ends_at": ends_at, "who": who,
                                  "now": aware(now)}
    return Override(rows[0]["id"], person, starts_at, ends_at, who)


def remove_override(schedule: str, override_id: int) -> Script[None]:
    rows = yield P.REMOVE_OVERRIDE, {"schedule": schedule, "id": override_id}
    if not rows:
        raise NotFound(f"schedule {schedule!r} has no override #{override_id}")


def remove_schedule(name: str) -> Script[None]:
    """A schedule no policy names: its members and overrides go with it."""
    rows = yield P.POLICIES_NAMING, {"kind": "schedule", "name": name}
    if rows:
        named = ", ".join(sorted(repr(r["policy"]) for r in rows))
        raise Conflict(f"schedule {name!r} is a step of policy {named}; change that first")
    rows = yield P.REMOVE_SCHEDULE, {"name": name}
    if not rows:
        raise NotFound(f"unknown schedule {name!r}")


def _schedule(name: str) -> Script[None]:
    rows = yield P.SCHEDULE_EXISTS, {"name": name}
    if not rows:
        raise NotFound(f"unknown schedule {name!r}")


# --- escalation policies ------------------------------------------------------------------

def set_policy(policy: EscalationPolicy, now: dt.datetime) -> Script[None]:
    for target in {t for step in policy.steps for t in step.targets}:
        if target.kind == "person":
            yield from _person(target.name)
        elif target.kind == "schedule":
            yield from _schedule(target.name)
    for priority in policy.priorities:
        rows = yield P.PRIORITY_OWNER, {"priority": str(priority)}
        if rows and rows[0]["policy"] != policy.name:
            raise Conflict(f"{priority} is covered by policy {rows[0]['policy']!r} already; "
                           "take it out of that one first")
    yield P.UPSERT_POLICY, {"name": policy.name, "now": aware(now)}
    yield P.CLEAR_POLICY, {"name": policy.name}
    yield P.CLEAR_PRIORITIES, {"name": policy.name}
    for priority in policy.priorities:
        yield P.ADD_POLICY_PRIORITY, {"priority": str(priority), "name": policy.name}
    for number, step in enumerate(policy.steps):
        for position, target in enumerate(step.targets):
            yield P.ADD_POLICY_TARGET, {"name": policy.name, "step": number,
                                        "share": step.after, "position": position,
                                        "kind": target.kind, "person": target.name}


def remove_policy(name: str) -> Script[None]:
    rows = yield P.REMOVE_POLICY, {"name": name}
    if not rows:
        raise NotFound(f"unknown policy {name!r}")


# --- reading it all -----------------------------------------------------------------------

def roster(now: dt.datetime) -> Script[Roster]:
    """Everything, sorted here by code point (names, then a person's contacts by kind and
    address): a database's ORDER BY follows its locale, which PostgreSQL's often makes
    linguistic ("a_" before "a-", "b" before "B") where SQLite compares bytes."""
    people = yield P.PEOPLE, {}
    contacts = yield P.CONTACTS, {}
    schedules = yield P.SCHEDULES, {}
    members = yield P.MEMBERS, {}
    overrides = yield P.OVERRIDES, {"since": aware(now)}
    policies = yield P.POLICIES, {}
    priorities = yield P.POLICY_PRIORITIES, {}
    targets = yield P.POLICY_TARGETS, {}
    return Roster(_people(people, contacts), _schedules(schedules, members, overrides),
                  _policies(policies, priorities, targets))


def _people(rows: Rows, contacts: Rows) -> tuple[Person, ...]:
    reached: dict[str, list[Contact]] = {}
    for c in contacts:
        reached.setdefault(c["person"], []).append(Contact(c["kind"], c["address"]))
    return tuple(Person(r["name"], tuple(sorted(reached.get(r["name"], ()),
                                                key=lambda c: (c.kind, c.address))),
                        bool(r["can_sign_in"]))
                 for r in sorted(rows, key=lambda r: r["name"]))


def _schedules(rows: Rows, members: Rows, overrides: Rows) -> tuple[Schedule, ...]:
    names: dict[str, list[str]] = {}
    for m in members:
        names.setdefault(m["schedule"], []).append(m["person"])
    spans: dict[str, list[Override]] = {}
    for o in overrides:
        spans.setdefault(o["schedule"], []).append(
            Override(o["id"], o["person"], o["starts_at"], o["ends_at"], o["added_by"]))
    return tuple(
        Schedule(r["name"], r["zone"], r["rotation"], dt.time.fromisoformat(r["handoff"]),
                 dt.date.fromisoformat(r["anchor"]), tuple(names.get(r["name"], ())),
                 tuple(spans.get(r["name"], ())))
        for r in sorted(rows, key=lambda r: r["name"]))


def _policies(rows: Rows, priorities: Rows, targets: Rows) -> tuple[EscalationPolicy, ...]:
    covered: dict[str, list[Priority]] = {}
    for p in priorities:
        covered.setdefault(p["policy"], []).append(Priority(p["priority"]))
    steps: dict[str, dict[int, tuple[float, list[Target]]]] = {}
    for t in targets:
        step = steps.setdefault(t["policy"], {}).setdefault(t["step"], (t["after_share"], []))
        step[1].append(Target(t["kind"], t["name"]))
    return tuple(
        EscalationPolicy(r["name"], tuple(covered.get(r["name"], ())), tuple(
            PolicyStep(after, tuple(found))
            for _, (after, found) in sorted(steps.get(r["name"], {}).items())))
        for r in sorted(rows, key=lambda r: r["name"]))


# --- the Store methods --------------------------------------------------------------------

class PeopleMethods(abc.ABC):
    """``PeopleStore`` for a backend that runs scripts (``base.RuleStore``)."""

    @abc.abstractmethod
    async def _run(self, script: Callable[[], Script[R]], *, writes: bool) -> R: ...

    async def add_person(self, name: str, now: dt.datetime) -> bool:
        return await self._run(lambda: add_person(name, now), writes=True)

    async def add_contact(self, person: str, contact: Contact, now: dt.datetime) -> bool:
        return await self._run(lambda: add_contact(person, contact, now), writes=True)

    async def remove_contact(self, person: str, contact: Contact) -> None:
        await self._run(lambda: remove_contact(person, contact), writes=True)

    async def set_schedule(self, schedule: Schedule, now: dt.datetime,
                           replace: bool = False) -> None:
        await self._run(lambda: set_schedule(schedule, now, replace), writes=True)

    async def add_override(self, schedule: str, person: str, starts_at: dt.datetime,
                           ends_at: dt.datetime, who: str, now: dt.datetime) -> Override:
        return await self._run(
            lambda: add_override(schedule, person, starts_at, ends_at, who, now), writes=True)

    async def remove_override(self, schedule: str, override_id: int) -> None:
        await self._run(lambda: remove_override(schedule, override_id), writes=True)

    async def remove_schedule(self, name: str) -> None:
        await self._run(lambda: remove_schedule(name), writes=True)

    async def set_policy(self, policy: EscalationPolicy, now: dt.datetime) -> None:
        await self._run(lambda: set_policy(policy, now), writes=True)

    async def remove_policy(self, name: str) -> None:
        await self._run(lambda: remove_policy(name), writes=True)

    async def roster(self, now: dt.datetime) -> Roster:
        # No write lock on SQLite for it (a round of the notifier reads it): a change made
        # between its reads shows at most half a moment, and every read is consistent.
        return await self._run(lambda: roster(now), writes=False)
