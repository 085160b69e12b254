"""What ``monitord central`` person, contact, schedule, policy and oncall do: check what
was typed (``parse``), change or read the store, and say what happened in a few lines.
Times are shown in each schedule's own zone; URLs of webhook contacts never.

Every change is also logged at INFO, one line saying who changed what (``audit``): the
CLI sets up logging as the service does, so the line reaches standard error (the journal
under systemd). It names people, schedules, policies and the kind of a contact, never a
contact's address."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import logging
import os
from collections.abc import Awaitable, Callable

from monitord.central.config import CentralConfig
from monitord.central.notify.rotation import local_text, now_and_next, zone
from monitord.central.oncall import parse
from monitord.central.oncall.texts import shown, step_when
from monitord.store.people import Contact, EscalationPolicy, Person, Schedule
from monitord.store.protocol import Store
from monitord.texts import one_line

log = logging.getLogger(__name__)
Clock = Callable[[], dt.datetime]
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


async def run(config: CentralConfig, args: argparse.Namespace, clock: Clock) -> str:
    """The action ``args.oncall`` names, against the config's store."""
    action = ACTIONS[args.oncall]
    store = await config.open_store()
    try:
        return await action(store, config, args, clock())
    finally:
        await store.close()


# --- people -------------------------------------------------------------------------------

async def _person_add(store: Store, config: CentralConfig, args: argparse.Namespace,
                      now: dt.datetime) -> str:
    parse.person(args.name)
    if not await store.add_person(args.name, now):
        return f"{args.name} is already a person; nothing changed"
    audit("added person %s", args.name)
    return (f"added {args.name}: add a contact method with `monitord central contact add "
            f"{args.name} KIND ADDRESS`")


async def _person_list(store: Store, config: CentralConfig, args: argparse.Namespace,
                       now: dt.datetime) -> str:
    roster = await store.roster(now)
    return "\n".join(person_line(p) for p in roster.people) or "no people yet"


def person_line(person: Person) -> str:
    reached = "; ".join(shown(c) for c in person.contacts) or "no contact method"
    return f"{person.name}: {reached}"


async def _contact_add(store: Store, config: CentralConfig, args: argparse.Namespace,
                       now: dt.datetime) -> str:
    contact = parse.contact(args.kind, args.address, config.notify)
    if not await store.add_contact(args.name, contact, now):
        return f"{args.name} has that contact already; nothing changed"
    audit("added a %s contact for %s", contact.kind, args.name)
    said = f"{args.name} is reached by {shown(contact)} too"
    if contact.kind == "mail" and config.notify.mail is None:
        said += ("\nnote: the config has no [mail] section (the SMTP server to send "
                 "through), so no mail goes out until it has one")
    return said


async def _contact_remove(store: Store, config: CentralConfig, args: argparse.Namespace,
                          now: dt.datetime) -> str:
    # Any contact can be removed, even one the rules of [notify] no longer allow.
    contact = Contact(parse.contact_kind(args.kind), args.address.strip())
    await store.remove_contact(args.name, contact)
    audit("removed a %s contact of %s", contact.kind, args.name)
    return f"{args.name} is no longer reached by {shown(contact)}"


# --- schedules ----------------------------------------------------------------------------

async def _schedule_add(store: Store, config: CentralConfig, args: argparse.Namespace,
                        now: dt.datetime) -> str:
    zone_name = parse.zone(args.zone)
    starts = args.starts or now.astimezone(zone(zone_name)).date().isoformat()
    schedule = parse.schedule(args.name, zone_name, args.rotation, args.handoff, starts,
                              args.members)
    await store.set_schedule(schedule, now, replace=args.replace)
    audit("%s schedule %s", "replaced" if args.replace else "added", rotation_text(schedule))
    return f"{'replaced' if args.replace else 'added'} {rotation_text(schedule)}"


async def _schedule_show(store: Store, config: CentralConfig, args: argparse.Namespace,
                         now: dt.datetime) -> str:
    roster = await store.roster(now)
    chosen = [s for s in roster.schedules if args.name in (None, s.name)]
    if args.name and not chosen:
        raise parse.Invalid(f"unknown schedule {args.name!r}")
    return "\n\n".join(schedule_text(s, now) for s in chosen) or "no schedules yet"


async def _schedule_override(store: Store, config: CentralConfig, args: argparse.Namespace,
                             now: dt.datetime) -> str:
    roster = await store.roster(now)
    schedule = roster.schedule(args.name)
    if schedule is None:
        raise parse.Invalid(f"unknown schedule {args.name!r}")
    starts, ends = parse.override_span(args.starts, args.ends, schedule.zone, now)
    made = await store.add_override(schedule.name, args.person, starts, ends, who(), now)
    audit("added override #%d of schedule %s: %s from %s until %s", made.id, schedule.name,
          made.person, f"{starts.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC",
          f"{ends.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC")
    return (f"override #{made.id}: {made.person} is on call for {schedule.name} from "
            f"{local_text(schedule, starts)} until {local_text(schedule, ends)}")


async def _schedule_remove_override(store: Store, config: CentralConfig,
                                    args: argparse.Namespace, now: dt.datetime) -> str:
    await store.remove_override(args.name, args.id)
    audit("removed override #%d of schedule %s", args.id, args.name)
    return f"removed override #{args.id} of {args.name}"


async def _schedule_remove(store: Store, config: CentralConfig, args: argparse.Namespace,
                           now: dt.datetime) -> str:
    await store.remove_schedule(args.name)
    audit("removed schedule %s", args.name)
    return f"removed schedule {args.name}"


def who() -> str:
    return os.environ.get("SUDO_USER") or getpass.getuser()


def audit(what: str, *args: object) -> None:
    """Log one change made from the command line, saying who made it, on one line (an
    environment's user name cannot start another)."""
    log.info("central: cli (%s) %s", one_line(who(), 100), one_line(what % args, 2000))


def rotation_text(schedule: Schedule) -> str:
    day = f"{WEEKDAYS[schedule.anchor.weekday()]} " if schedule.rotation == "weekly" else ""
    return (f"{schedule.name}: {schedule.rotation} hand-off {day}"
            f"{schedule.handoff:%H:%M} {schedule.zone}, from {schedule.anchor}; "
            f"{', '.join(schedule.members)}")


def schedule_text(schedule: Schedule, now: dt.datetime) -> str:
    lines = [rotation_text(schedule), *_now_next(schedule, now)]
    if schedule.overrides:
        lines.append("  overrides:")
        lines.extend(f"    #{o.id} {o.person} from {local_text(schedule, o.starts_at)} until "
                     f"{local_text(schedule, o.ends_at)} (by {o.added_by or '-'})"
                     for o in schedule.overrides)
    return "\n".join(lines)


def _now_next(schedule: Schedule, now: dt.datetime) -> list[str]:
    current, following = now_and_next(schedule, now)
    since = f" since {local_text(schedule, current.starts_at)}" if current.starts_at else ""
    lines = [f"  now:  {current.person or 'nobody'}{since}"
             f"{' (override)' if current.override else ''}"]
    if following is None:
        lines.append("  next: nobody else; no hand-off ahead")
    else:
        lines.append(f"  next: {following.person or 'nobody'} from "
                     f"{local_text(schedule, following.starts_at)}"
                     f"{' (override)' if following.override else ''}")
    return lines


async def _oncall(store: Store, config: CentralConfig, args: argparse.Namespace,
                  now: dt.datetime) -> str:
    roster = await store.roster(now)
    if not roster.schedules:
        return "no schedules yet: add one with `monitord central schedule add`"
    return "\n".join(f"{s.name}\n" + "\n".join(_now_next(s, now)) for s in roster.schedules)


# --- policies -----------------------------------------------------------------------------

async def _policy_set(store: Store, config: CentralConfig, args: argparse.Namespace,
                      now: dt.datetime) -> str:
    channels = [c.name for c in config.notify.channels]
    policy = parse.policy(args.name, args.priority, args.step, channels)
    await store.set_policy(policy, now)
    audit("set escalation policy %s", "; ".join(
        line.strip() for line in policy_text(policy, config).splitlines()))
    return policy_text(policy, config)


async def _policy_show(store: Store, config: CentralConfig, args: argparse.Namespace,
                       now: dt.datetime) -> str:
    roster = await store.roster(now)
    chosen = [p for p in roster.policies if args.name in (None, p.name)]
    if args.name and not chosen:
        raise parse.Invalid(f"unknown policy {args.name!r}")
    return "\n\n".join(policy_text(p, config) for p in chosen) or (
        "no policies: every priority is routed by the config's [escalation] chain")


async def _policy_remove(store: Store, config: CentralConfig, args: argparse.Namespace,
                         now: dt.datetime) -> str:
    await store.remove_policy(args.name)
    audit("removed escalation policy %s", args.name)
    return f"removed policy {args.name}: its priorities follow [escalation] again"


def policy_text(policy: EscalationPolicy, config: CentralConfig) -> str:
    lines = [f"{policy.name} ({', '.join(policy.priorities) or 'no priority'})"]
    for number, step in enumerate(policy.steps, start=1):
        lines.append(f"  step {number} {step_when(step.after, policy.priorities, config)}: "
                     f"{', '.join(str(t) for t in step.targets)}")
    return "\n".join(lines)


Action = Callable[[Store, CentralConfig, argparse.Namespace, dt.datetime], Awaitable[str]]
ACTIONS: dict[str, Action] = {
    "person-add": _person_add, "person-list": _person_list,
    "contact-add": _contact_add, "contact-remove": _contact_remove,
    "schedule-add": _schedule_add, "schedule-show": _schedule_show,
    "schedule-override": _schedule_override,
    "schedule-remove-override": _schedule_remove_override, "schedule-remove": _schedule_remove,
    "policy-set": _policy_set, "policy-show": _policy_show, "policy-remove": _policy_remove,
    "oncall": _oncall,
}
