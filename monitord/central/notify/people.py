"""Who hears a notice when an escalation policy covers the incident's priority, decided at
send time from the store's roster (people, schedules, policies) and the instant of the
send; the notifier asks this module, which hands a priority with no policy on to the
channel routing of ``[escalation]`` (``notify.routing``), unchanged.

Under a policy:

- Step 0 is told of everything from the start; step n once the incident reached level n
  (``Escalation.steps``: its share of the response target passed with nobody
  acknowledging). "opened", "renotify", "acknowledged" and "resolved" go to every step
  reached so far; "escalated" only to the step it brings in. A level past the last step
  means the last step (as with the chain).
- A step's target is a channel of the config, a person (each of their contact methods),
  or a schedule: whoever is on call for it at the moment of the send (``rotation``).
- Each contact method hears the kinds of notice its type hears as a channel (``HEARS``:
  mail is not told of acknowledgements).
- Channels the policy does not name, and that are not in ``[escalation] chain``, still
  hear every notice of their priorities, as without a policy (a room that sees all).

A contact method is sent to as a channel of its type made for the send, named
``PERSON:KIND`` (with a digest of the address when the person has two of a kind): the
name a delivery is recorded under, which no config channel can have (``:`` is not
allowed in theirs). Webhook and Slack addresses are registered as secrets, so no log line
or timeline entry shows them. What a contact may reach is what ``[notify]`` allows: a
PagerDuty key file only in ``pagerduty_keys_dir`` (``keyfiles``), a webhook or Slack URL
no internal address outside ``allow_internal_webhooks`` (``addresses``), checked again at
each send.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections import Counter

from monitord.central.notify import routing
from monitord.central.notify.rotation import on_call
from monitord.central.notify.routing import HEARS
from monitord.central.notify.settings import ChannelConfig, ContactChannel, Notifications
from monitord.logs import register_secret
from monitord.model import Priority
from monitord.store.people import EscalationPolicy, Person, PolicyStep, Roster, Target
from monitord.store.protocol import Escalation, NoticeKind

log = logging.getLogger(__name__)

CONTACT_TIMEOUT_SECONDS = 10.0


def escalation_rules(config: Notifications, roster: Roster) -> Escalation:
    """The store's SLA rules: ``[escalation]``'s, with each policy's steps for its
    priorities."""
    escalation = config.escalation
    steps = {str(p): policy.shares() for policy in roster.policies for p in policy.priorities}
    return Escalation(renotify_every=escalation.renotify_every,
                      escalate_at=escalation.escalate_at,
                      max_level=max(len(escalation.chain) - 1, 0), steps=steps)


def contact_sends(roster: Roster) -> int:
    """At most how many of people's contact methods one notice may be sent to, under any
    policy: every step reached at once (a bound: "escalated" reaches one), a person with
    each of their contacts, a schedule as whoever of its members and overrides has the
    most. A step's channels are the config's, counted with them."""
    def most(target: Target) -> int:
        if target.kind == "person":
            return _contacts(roster, target.name)
        schedule = roster.schedule(target.name) if target.kind == "schedule" else None
        if schedule is None:
            return 0
        names = {*schedule.members, *(o.person for o in schedule.overrides)}
        return max((_contacts(roster, name) for name in names), default=0)

    return max((sum(most(t) for step in policy.steps for t in step.targets)
                for policy in roster.policies), default=0)


def _contacts(roster: Roster, name: str) -> int:
    person = roster.person(name)
    return 0 if person is None else len(person.contacts)


def recipients(config: Notifications, roster: Roster, kind: NoticeKind, level: int,
               priority: str, now: dt.datetime) -> list[ChannelConfig]:
    """Where a ``kind`` notice at ``level`` about a ``priority`` incident goes at ``now``."""
    policy = roster.policy_for(priority)
    if policy is None or not policy.steps:
        return routing.recipients(config, kind, level, priority)
    named = set(config.escalation.chain) | {
        t.name for step in policy.steps for t in step.targets if t.kind == "channel"}
    chosen = [c for c in config.channels if c.name not in named
              and priority in c.priorities and kind in HEARS[c.type]]
    for step in _reached(policy, kind, level):
        for target in step.targets:
            chosen.extend(c for c in _channels(config, roster, target, now)
                          if kind in HEARS[c.type] and c not in chosen)
    return chosen


def escalated_to(config: Notifications, roster: Roster, level: int, priority: str,
                 now: dt.datetime) -> str:
    """Who an "escalated" notice at ``level`` brings in, for its texts: the chain's contact,
    or the policy step's targets (a schedule with whoever is on call)."""
    policy = roster.policy_for(priority)
    if policy is None or not policy.steps:
        return routing.contact(config, level)
    [step] = _reached(policy, "escalated", level)
    return ", ".join(_described(roster, target, now) for target in step.targets)


def _reached(policy: EscalationPolicy, kind: NoticeKind, level: int) -> list[PolicyStep]:
    last = len(policy.steps) - 1
    if kind == "escalated":
        return [policy.steps[min(max(level, 0), last)]]
    return list(policy.steps[: max(level, 0) + 1])


def _described(roster: Roster, target: Target, now: dt.datetime) -> str:
    if target.kind == "schedule":
        schedule = roster.schedule(target.name)
        person = on_call(schedule, now) if schedule is not None else None
        return f"{target.name} ({person or 'nobody on call'})"
    return target.name


def _channels(config: Notifications, roster: Roster, target: Target,
              now: dt.datetime) -> list[ChannelConfig]:
    if target.kind == "channel":
        try:
            return [config.channel(target.name)]
        except KeyError:
            log.warning("central: an escalation policy names channel %s, which the config "
                        "no longer has; skipping it", target.name)
            return []
    name = target.name
    if target.kind == "schedule":
        schedule = roster.schedule(target.name)
        found = on_call(schedule, now) if schedule is not None else None
        if found is None:
            log.warning("central: nobody is on call for schedule %s (it has no members, or "
                        "was removed); its step tells nobody", target.name)
            return []
        name = found
    person = roster.person(name)
    if person is None or not person.contacts:
        log.warning("central: %s has no contact method; add one with `monitord central "
                    "contact add %s KIND ADDRESS`", name, name)
        return []
    return contact_channels(person, config)


def contact_channels(person: Person, config: Notifications) -> list[ChannelConfig]:
    """Each of ``person``'s contact methods, as a channel of its type that may reach only
    what ``[notify]`` allows (``ContactChannel``)."""
    kinds = Counter(c.kind for c in person.contacts)
    made: list[ChannelConfig] = []
    for contact in person.contacts:
        label = f"{person.name}:{contact.kind}"
        if kinds[contact.kind] > 1:
            label += "-" + hashlib.sha256(contact.address.encode()).hexdigest()[:6]
        if contact.kind in ("webhook", "slack"):
            register_secret(contact.address)     # its URL is its password
        made.append(ContactChannel.model_construct(
            name=label, type=contact.kind, priorities=list(Priority),
            timeout=CONTACT_TIMEOUT_SECONDS,
            to=[contact.address] if contact.kind == "mail" else [],
            url=contact.address if contact.kind in ("webhook", "slack") else "",
            routing_key_file=contact.address if contact.kind == "pagerduty" else "",
            keys_dir=config.pagerduty_keys_dir, internal=config.internal_webhooks))
    return made
