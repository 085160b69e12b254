"""On call in the store: people's contact methods, schedules, escalation policies.

The records the store keeps and returns, and the part of the Store interface that keeps
them (``PeopleStore``; the rules are ``people_rules``, the SQL ``people_sql``). The
store checks what it can check alone: every person a contact, a schedule, an override
or a policy names exists (``NotFound`` otherwise: "no person named ..."), a schedule
name is new unless it is replaced on purpose, a priority belongs to one policy at most
(``Conflict``). What the words mean (an IANA zone, a time of day, steps that start later
and later) is checked where people type them (``central.oncall.parse``); who is on call
at an instant is computed by ``central.notify.rotation``, never stored.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal, Protocol

from monitord.model import Priority

ContactKind = Literal["mail", "webhook", "slack", "pagerduty"]
TargetKind = Literal["person", "schedule", "channel"]
RotationKind = Literal["daily", "weekly"]
CONTACT_KINDS: tuple[ContactKind, ...] = ("mail", "webhook", "slack", "pagerduty")
TARGET_KINDS: tuple[TargetKind, ...] = ("person", "schedule", "channel")
ROTATIONS: tuple[RotationKind, ...] = ("daily", "weekly")
# An override ends at most this long after it is added: cover for a holiday or a
# conference, not a standing change (that is the schedule's members).
MAX_OVERRIDE_AHEAD = dt.timedelta(days=366)


@dataclass(frozen=True)
class Contact:
    """How a person is reached: a mail address, a webhook or Slack URL (a secret), or
    the path of a file whose first line is a PagerDuty integration key."""

    kind: ContactKind
    address: str


@dataclass(frozen=True)
class Person:
    name: str
    contacts: tuple[Contact, ...] = ()
    can_sign_in: bool = False      # has a console password


@dataclass(frozen=True)
class Override:
    """``person`` is on call for the schedule from ``starts_at`` to ``ends_at``."""

    id: int
    person: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    added_by: str = ""


@dataclass(frozen=True)
class Schedule:
    """A rotation: ``members`` take turns, handing off every day or week at ``handoff``
    local time in ``zone``; ``members[0]``'s first shift starts on ``anchor`` (local)."""

    name: str
    zone: str
    rotation: RotationKind
    handoff: dt.time
    anchor: dt.date
    members: tuple[str, ...]
    overrides: tuple[Override, ...] = ()


@dataclass(frozen=True)
class Target:
    """Who a policy step tells: a person, whoever is on call for a schedule, a channel."""

    kind: TargetKind
    name: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True)
class PolicyStep:
    after: float                   # a share of the priority's response target
    targets: tuple[Target, ...]


@dataclass(frozen=True)
class EscalationPolicy:
    """For incidents of ``priorities``: step 0 is told at once, step n once ``after`` of
    the response target has passed with nobody acknowledging."""

    name: str
    priorities: tuple[Priority, ...]
    steps: tuple[PolicyStep, ...]

    def shares(self) -> tuple[float, ...]:
        return tuple(step.after for step in self.steps)


@dataclass(frozen=True)
class Roster:
    """Everything the notifier needs to say who hears a notice, read in one go."""

    people: tuple[Person, ...] = ()
    schedules: tuple[Schedule, ...] = ()
    policies: tuple[EscalationPolicy, ...] = ()

    def person(self, name: str) -> Person | None:
        return next((p for p in self.people if p.name == name), None)

    def schedule(self, name: str) -> Schedule | None:
        return next((s for s in self.schedules if s.name == name), None)

    def policy_for(self, priority: str) -> EscalationPolicy | None:
        return next((p for p in self.policies if priority in p.priorities), None)


class PeopleStore(Protocol):
    async def add_person(self, name: str, now: dt.datetime) -> bool:
        """Add the person (no password, no token); False if they exist already."""
        ...

    async def add_contact(self, person: str, contact: Contact, now: dt.datetime) -> bool:
        """False if the person has that contact already; NotFound for no such person."""
        ...

    async def remove_contact(self, person: str, contact: Contact) -> None:
        """NotFound if the person has no such contact."""
        ...

    async def set_schedule(self, schedule: Schedule, now: dt.datetime,
                           replace: bool = False) -> None:
        """Add the schedule (its overrides are not touched); Conflict if it exists and
        ``replace`` is False; NotFound for a member who is not a person."""
        ...

    async def add_override(self, schedule: str, person: str, starts_at: dt.datetime,
                           ends_at: dt.datetime, who: str, now: dt.datetime) -> Override:
        """NotFound for no such schedule or person; ValueError for an empty span or one
        that ends more than MAX_OVERRIDE_AHEAD after ``now``."""
        ...

    async def remove_override(self, schedule: str, override_id: int) -> None:
        """NotFound if the schedule has no such override."""
        ...

    async def remove_schedule(self, name: str) -> None:
        """With its members and overrides; Conflict while a policy names it, NotFound if
        there is no such schedule."""
        ...

    async def set_policy(self, policy: EscalationPolicy, now: dt.datetime) -> None:
        """Add or replace the policy; NotFound for a person or schedule it names that
        does not exist; Conflict for a priority another policy has."""
        ...

    async def remove_policy(self, name: str) -> None:
        """NotFound if there is no such policy."""
        ...

    async def roster(self, now: dt.datetime) -> Roster:
        """People, schedules (with the overrides that end after ``now``) and policies,
        each sorted by name (by code point, whatever the database's locale; a person's
        contacts by kind and address), read in one transaction."""
        ...
