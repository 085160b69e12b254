"""What people type about on call (on the command line or in a console form), turned
into the store's records: every problem is one line that says what was expected and what
was found, raised as ``MonitordError`` (``Invalid``). URLs are secrets here as in the
channels: no message echoes one."""

from __future__ import annotations

import datetime as dt
import itertools
import posixpath
import re
import zoneinfo
from collections.abc import Collection, Sequence

from monitord.central.notify import addresses, keyfiles
from monitord.central.notify.settings import Notifications, mail_address, url_problem
from monitord.errors import MonitordError
from monitord.model import Priority
from monitord.schema import found
from monitord.store.people import (
    CONTACT_KINDS,
    MAX_OVERRIDE_AHEAD,
    ROTATIONS,
    TARGET_KINDS,
    Contact,
    ContactKind,
    EscalationPolicy,
    PolicyStep,
    RotationKind,
    Schedule,
    Target,
    TargetKind,
)
from monitord.store.records import MONITORD

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$")     # as a person's (server.NAME)
TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
STEP = re.compile(r"\s*([0-9.]+%?)\s*:?\s*(.*)", re.DOTALL)   # "0.5: person:bob, ..."
MAX_ADDRESS_CHARS = 2000
MAX_STEPS = 10
MAX_TARGETS = 10
MAX_MEMBERS = 100


class Invalid(MonitordError):
    """Bad input about people, schedules or policies; the message is one line."""


def name(kind: str, text: str) -> str:
    if not NAME.fullmatch(text):
        raise Invalid(f"{kind} name {found(text[:100])}: expected letters, digits, \".\", "
                      "\"_\", \":\" or \"-\", starting with a letter or digit")
    return text


def person(text: str) -> str:
    """A new person's name: not "monitord", the name of the store's own entries."""
    if name("person", text).lower() == MONITORD:
        raise Invalid(f"person name {text!r}: reserved for monitord's own entries; choose "
                      "another")
    return text


def zone(text: str) -> str:
    """An IANA time zone name, like "Europe/Berlin"."""
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise Invalid(f"unknown time zone {found(text[:100])}: expected an IANA zone like "
                      '"Europe/Berlin" or "UTC"') from None
    return text


def time_of_day(text: str) -> dt.time:
    match = TIME.fullmatch(text.strip())
    if not match:
        raise Invalid(f'bad hand-off time {found(text[:100])}: expected "HH:MM" on a 24-hour '
                      'clock, like "09:00"')
    return dt.time(int(match[1]), int(match[2]))


def day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise Invalid(f'bad date {found(text[:100])}: expected "YYYY-MM-DD", like '
                      '"2026-03-23"') from None


def instant(text: str, zone_name: str) -> dt.datetime:
    """A moment: "2026-03-28 18:00" in the schedule's zone, or with its own offset
    ("2026-03-28T18:00+01:00", "...Z")."""
    try:
        moment = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zoneinfo.ZoneInfo(zone_name))
        return moment.astimezone(dt.UTC)
    except (ValueError, OverflowError):    # "9999-12-31 23:00" west of UTC overflows
        raise Invalid(f'bad time {found(text[:100])}: expected "YYYY-MM-DD HH:MM" (in the '
                      f"schedule's zone, {zone_name}) or an ISO time with its offset") from None


def override_span(starts: str, ends: str, zone_name: str,
                  now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """An override's start and end (UTC): the end after the start and at most
    ``MAX_OVERRIDE_AHEAD`` after ``now``."""
    span = instant(starts, zone_name), instant(ends, zone_name)
    if span[1] <= span[0]:
        raise Invalid("an override must end after it starts")
    if span[1] - now > MAX_OVERRIDE_AHEAD:
        raise Invalid(f"an override ends at most {MAX_OVERRIDE_AHEAD.days} days ahead, not "
                      f"{ends.strip()[:40]!r}; for a longer change, change the schedule's "
                      "members")
    return span


def rotation(text: str) -> RotationKind:
    for kind in ROTATIONS:
        if text == kind:
            return kind
    raise Invalid(f'bad rotation {found(text[:100])}: expected "daily" or "weekly"')


def contact(kind: str, address: str, rules: Notifications) -> Contact:
    """A contact method; the address is checked for its kind (a URL is never echoed)
    against what ``[notify]`` allows. A PagerDuty contact's file is opened to check it:
    call this in a thread on an event loop."""
    checked = contact_kind(kind)
    address = address.strip()
    if not address or len(address) > MAX_ADDRESS_CHARS:
        raise Invalid(f"{kind} contact: expected an address of 1 to {MAX_ADDRESS_CHARS} "
                      "characters")
    if checked == "mail":
        try:
            mail_address(address)
        except ValueError as e:
            raise Invalid(f"mail contact {found(address[:100])}: {e}") from None
    elif checked in ("webhook", "slack"):
        problem = url_problem(address) or addresses.problem(address,
                                                            rules.internal_webhooks)
        if problem:
            raise Invalid(f"{kind} contact: {problem}")
    else:
        problem = keyfiles.problem(address, rules.pagerduty_keys_dir)
        if problem:
            raise Invalid(problem)
        # Kept as the directory and the name ("DIR/x/../NAME" names the same file).
        address = posixpath.join(rules.pagerduty_keys_dir,
                                 keyfiles.file_name(address, rules.pagerduty_keys_dir))
    return Contact(checked, address)


def contact_kind(text: str) -> ContactKind:
    for kind in CONTACT_KINDS:
        if text == kind:
            return kind
    raise Invalid(f"unknown contact kind {found(text[:100])}: expected "
                  f"{', '.join(CONTACT_KINDS)}")


def schedule(schedule_name: str, zone_name: str, rotation_name: str, handoff: str,
             anchor: str, members: Sequence[str]) -> Schedule:
    if not members or len(members) > MAX_MEMBERS:
        raise Invalid(f"schedule {schedule_name}: expected 1 to {MAX_MEMBERS} members, in "
                      "the order they take turns")
    return Schedule(name("schedule", schedule_name), zone(zone_name), rotation(rotation_name),
                    time_of_day(handoff), day(anchor),
                    tuple(name("person", m) for m in members))


def priorities(texts: Sequence[str]) -> tuple[Priority, ...]:
    chosen: list[Priority] = []
    for text in texts:
        for part in re.split(r"[\s,]+", text.strip()):
            if not part:
                continue
            try:
                priority = Priority(part.upper())
            except ValueError:
                raise Invalid(f"bad priority {found(part[:100])}: expected P1, P2 or "
                              "P3") from None
            if priority not in chosen:
                chosen.append(priority)
    if not chosen:
        raise Invalid("a policy needs the priorities it covers, like P1 or P1,P2")
    return tuple(sorted(chosen))


def step(text: str, channels: Collection[str]) -> PolicyStep:
    """ "SHARE: TARGET, TARGET ...", like "0: schedule:primary" or "0.5: person:bob,
    channel:ops-chat"; SHARE is a share of the response target (0 to 1, or "50%")."""
    match = STEP.fullmatch(text)
    share = _share(match[1] if match else "", text)
    rest = match[2] if match else ""
    parts = [p for p in re.split(r"[\s,]+", rest.strip()) if p]
    if not parts or len(parts) > MAX_TARGETS:
        raise Invalid(f"step {found(text[:100])}: expected 1 to {MAX_TARGETS} targets like "
                      '"schedule:primary", "person:alice" or "channel:ops-chat"')
    return PolicyStep(share, tuple(_target(p, channels) for p in parts))


def _share(text: str, whole: str) -> float:
    try:
        share = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        share = -1.0
    if not 0 <= share <= 1:
        raise Invalid(f"step {found(whole[:100])}: expected it to start with a share of the "
                      'response target from 0 to 1 (or "0%" to "100%"), like "0.5: '
                      'person:bob"')
    return share


def _target(text: str, channels: Collection[str]) -> Target:
    kind, _, target = text.partition(":")
    for known in TARGET_KINDS:
        if kind == known:
            break
    else:
        raise Invalid(f"target {found(text[:100])}: expected person:NAME, schedule:NAME or "
                      "channel:NAME")
    checked: TargetKind = known
    if checked == "channel" and target not in channels:
        listed = ", ".join(sorted(channels)) or "none defined"
        raise Invalid(f"unknown channel {found(target[:100])} (channels: {listed})")
    return Target(checked, name(checked, target))


def policy(policy_name: str, covered: Sequence[str], steps: Sequence[str],
           channels: Collection[str]) -> EscalationPolicy:
    """A policy: its steps in order, the first at 0, each later than the one before."""
    if not steps or len(steps) > MAX_STEPS:
        raise Invalid(f"policy {policy_name}: expected 1 to {MAX_STEPS} steps, like "
                      '--step "0: schedule:primary"')
    parsed = tuple(step(s, channels) for s in steps)
    if parsed[0].after != 0:
        raise Invalid(f"policy {policy_name}: the first step starts at once: give it share 0")
    for before, after in itertools.pairwise(parsed):
        if after.after <= before.after:
            raise Invalid(f"policy {policy_name}: each step must start later than the one "
                          f"before ({after.after:g} comes after {before.after:g})")
    return EscalationPolicy(name("policy", policy_name), priorities(covered), parsed)


def step_text(policy_step: PolicyStep) -> str:
    """A step as ``step`` reads it back."""
    return f"{policy_step.after:g}: {', '.join(str(t) for t in policy_step.targets)}"
