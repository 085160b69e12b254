"""The console's on-call pages: schedules (who is on call now and next, overrides), people
(their contact methods) and escalation policies, each with its forms.

    /console/schedules    every schedule: now, next, members, overrides; add or remove a
                          schedule, add or remove an override
    /console/people       every person and their contact methods; add a person, add or
                          remove a contact method
    /console/policies     every policy step by step; set or remove one

Server-rendered like the rest: every POST carries the form's anti-forgery token
(``pages.person_page``), answers 303 to its page when it worked, and the page again with
the one-line problem (400, 404 or 409) when it did not; nothing is half written. A
webhook or Slack URL is a secret even here: it is shown as its scheme and host, and a
contact is removed by a digest of its address, never the address in the page.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from monitord.central.console.common import page
from monitord.central.console.pages import person_page
from monitord.central.console.render import redirect
from monitord.central.console.sessions import Session
from monitord.central.keys import CLOCK, CONFIG, STORE
from monitord.central.notify.rotation import local_text, now_and_next, zone
from monitord.central.oncall import parse
from monitord.central.oncall.texts import shown, step_when
from monitord.errors import Conflict, MonitordError, NotFound
from monitord.model import Priority
from monitord.store.people import Contact, Roster, Schedule

log = logging.getLogger(__name__)

SCHEDULES, PEOPLE, POLICIES = "/console/schedules", "/console/people", "/console/policies"
MAX_FIELD_CHARS = 2000
MAX_STEPS_CHARS = 4000


def digest(contact: Contact) -> str:
    """What names a contact in a form, without its (possibly secret) address."""
    return hashlib.sha256(f"{contact.kind}\x00{contact.address}".encode()).hexdigest()[:16]


# --- schedules ------------------------------------------------------------------------------

@person_page
async def schedules(request: web.Request, session: Session) -> web.StreamResponse:
    return await _schedules(request, session)


@person_page
async def change_schedules(request: web.Request, session: Session) -> web.StreamResponse:
    form = await request.post()
    store, now = request.app[STORE], request.app[CLOCK]()
    try:
        action = _field(form, "do")
        if action == "remove-override":
            await store.remove_override(_field(form, "schedule"), _number(form, "id"))
        elif action == "remove":
            await store.remove_schedule(_field(form, "schedule"))
        elif action == "override":
            roster = await store.roster(now)
            schedule = roster.schedule(_field(form, "schedule"))
            if schedule is None:
                raise NotFound("unknown schedule")
            starts, ends = parse.override_span(_field(form, "from"), _field(form, "until"),
                                               schedule.zone, now)
            await store.add_override(schedule.name, _field(form, "person"), starts, ends,
                                     session.name, now)
        else:
            zone_name = parse.zone(_field(form, "zone"))
            first = _field(form, "starts") or now.astimezone(zone(zone_name)).date().isoformat()
            members = _field(form, "members").replace(",", " ").split()
            await store.set_schedule(parse.schedule(
                _field(form, "name"), zone_name, _field(form, "rotation"),
                _field(form, "handoff"), first, members), now,
                replace=_field(form, "replace") == "yes")
    except (MonitordError, ValueError) as e:
        return await _schedules(request, session, *_problem(e))
    log.info("central: console: %s changed the schedules", session.name)
    return redirect(SCHEDULES)


async def _schedules(request: web.Request, session: Session, status: int = 200,
                     error: str = "") -> web.Response:
    now = request.app[CLOCK]()
    roster = await request.app[STORE].roster(now)
    return await page(request, session, "schedules.html.j2", status=status,
                                title="Schedules", error=error,
                                people=[p.name for p in roster.people],
                                schedules=[_schedule_view(s, now) for s in roster.schedules])


def _schedule_view(schedule: Schedule, now: dt.datetime) -> dict[str, object]:
    current, following = now_and_next(schedule, now)
    weekday = schedule.anchor.strftime("%A") + "s " if schedule.rotation == "weekly" else ""
    return {
        "name": schedule.name, "zone": schedule.zone, "rotation": schedule.rotation,
        "handoff": f"{weekday}at {schedule.handoff:%H:%M}", "anchor": schedule.anchor,
        "members": schedule.members, "now": current.person or "nobody",
        "since": local_text(schedule, current.starts_at) if current.starts_at else "",
        "now_override": current.override is not None,
        "next": (following.person or "nobody") if following else "",
        "next_from": local_text(schedule, following.starts_at) if following else "",
        "next_override": following is not None and following.override is not None,
        "overrides": [{"id": o.id, "person": o.person, "by": o.added_by,
                       "from": local_text(schedule, o.starts_at),
                       "until": local_text(schedule, o.ends_at)}
                      for o in schedule.overrides]}


# --- people -----------------------------------------------------------------------------------

@person_page
async def people(request: web.Request, session: Session) -> web.StreamResponse:
    return await _people(request, session)


@person_page
async def change_people(request: web.Request, session: Session) -> web.StreamResponse:
    form = await request.post()
    store, now = request.app[STORE], request.app[CLOCK]()
    name = action = ""
    try:
        name, action = _field(form, "person"), _field(form, "do")
        if action == "add-person":
            parse.person(name)
            if not await store.add_person(name, now):
                raise Conflict(f"{name} is already a person")
        elif action == "add-contact":
            # A PagerDuty contact's file is opened to check it: not on the event loop.
            contact = await asyncio.to_thread(parse.contact, _field(form, "kind"),
                                              _field(form, "address"),
                                              request.app[CONFIG].notify)
            await store.add_contact(name, contact, now)
            action = f"added a {contact.kind} contact for"
        elif action == "remove-contact":
            removed = await _contact(request, name, _field(form, "contact"))
            await store.remove_contact(name, removed)
            action = f"removed a {removed.kind} contact of"
        else:
            raise parse.Invalid("unknown action")
    except (MonitordError, ValueError) as e:
        return await _people(request, session, *_problem(e))
    # Who changed whose contacts, never an address (a URL is a secret).
    log.info("central: console: %s %s %s", session.name,
             "added person" if action == "add-person" else action, name[:100])
    return redirect(PEOPLE)


async def _contact(request: web.Request, person: str, wanted: str) -> Contact:
    roster = await request.app[STORE].roster(request.app[CLOCK]())
    found = roster.person(person)
    for contact in found.contacts if found is not None else ():
        if digest(contact) == wanted:
            return contact
    raise NotFound(f"{person} has no such contact method (it may be gone already)")


async def _people(request: web.Request, session: Session, status: int = 200,
                  error: str = "") -> web.Response:
    roster = await request.app[STORE].roster(request.app[CLOCK]())
    rows = [{"name": p.name, "can_sign_in": p.can_sign_in,
             "contacts": [{"shown": shown(c), "digest": digest(c)} for c in p.contacts],
             "schedules": [s.name for s in roster.schedules if p.name in s.members]}
            for p in roster.people]
    return await page(request, session, "people.html.j2", status=status,
                                title="People", error=error, rows=rows)


# --- policies ---------------------------------------------------------------------------------

@person_page
async def policies(request: web.Request, session: Session) -> web.StreamResponse:
    return await _policies(request, session)


@person_page
async def change_policies(request: web.Request, session: Session) -> web.StreamResponse:
    form = await request.post()
    store, now = request.app[STORE], request.app[CLOCK]()
    name = ""
    try:
        name = _field(form, "name")
        if _field(form, "do") == "remove":
            await store.remove_policy(name)
        else:
            steps = [line for line in _field(form, "steps", MAX_STEPS_CHARS).splitlines()
                     if line.strip()]
            covered = [str(p) for p in form.getall("priority", []) if isinstance(p, str)]
            channels = [c.name for c in request.app[CONFIG].notify.channels]
            await store.set_policy(parse.policy(name, covered, steps, channels), now)
    except (MonitordError, ValueError) as e:
        return await _policies(request, session, *_problem(e))
    log.info("central: console: %s changed escalation policy %s", session.name, name[:100])
    return redirect(POLICIES)


async def _policies(request: web.Request, session: Session, status: int = 200,
                    error: str = "") -> web.Response:
    config = request.app[CONFIG]
    roster: Roster = await request.app[STORE].roster(request.app[CLOCK]())
    rows = [{"name": p.name, "priorities": ", ".join(p.priorities),
             "steps": [{"when": step_when(s.after, p.priorities, config),
                        "targets": [str(t) for t in s.targets]} for s in p.steps],
             "text": "\n".join(parse.step_text(s) for s in p.steps)}
            for p in roster.policies]
    covered = {str(priority) for p in roster.policies for priority in p.priorities}
    return await page(request, session, "policies.html.j2", status=status,
                                title="Policies", error=error, rows=rows,
                                uncovered=[str(p) for p in Priority if p not in covered],
                                chain=", ".join(config.notify.escalation.chain),
                                channels=[c.name for c in config.notify.channels])


# --- forms --------------------------------------------------------------------------------------

def _field(form: MultiDictProxy[Any], name: str, limit: int = MAX_FIELD_CHARS) -> str:
    value = form.get(name)
    if not isinstance(value, str):
        return ""
    if len(value) > limit:
        raise parse.Invalid(f"{name}: at most {limit} characters")
    return value.strip()


def _number(form: MultiDictProxy[Any], name: str) -> int:
    text = _field(form, name, 20)
    if not text.isascii() or not text.isdigit():
        raise parse.Invalid(f"{name}: expected a number")
    return int(text)


def _problem(error: Exception) -> tuple[int, str]:
    """The status and the one line a failed form answers with."""
    status = 404 if isinstance(error, NotFound) else 409 if isinstance(error, Conflict) else 400
    text = str(error)
    return status, text + ("" if text.endswith(".") else ".")
