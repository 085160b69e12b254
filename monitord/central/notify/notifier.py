"""Delivering notices: the central service's background task that tells people.

Every ``[escalation] check_every`` the notifier applies the SLA rules (``store.escalate``:
the next contact of the chain for an incident nobody acknowledged, a reminder of an open
P1), then claims the notices that are due (``store.claim_notices``, leased so that of
several central processes only one delivers a notice; no more than the round's sends can
finish, counting the config's channels and the contact methods people's policies may
reach: ``claim_limit``) and sends each to the channels that should hear it
(``notify.routing``, ``notify.people``) and do not have it yet, at most
``MAX_CONCURRENT_SENDS`` sends at once, each under its channel's deadline. Then
``store.finish_notice`` records who has it and, on the incident's timeline, who was told
or could not be.

A failed send is retried with backoff (10 s doubling up to 10 min, jittered) while the
notice is younger than ``retry_for``; a refusal for good (an HTTP 4xx, an SMTP 5xx) is
not retried. Delivery is at least once: a process that dies mid-send leaves the notice
to be claimed again when its lease ends, so a channel may hear a notice twice (webhooks
carry its id to drop repeats). The notifier runs as its own task with its own HTTP
session: a channel that hangs holds one send slot until its deadline, never the API.

The app starts and stops it (``central.tasks``); tests call ``tasks.notify_once(app,
now)`` to run one round with a clock of their own.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp

from monitord.central.notify.evidence import as_context, gather
from monitord.central.notify.message import Message, Tools, contacts_session
from monitord.central.notify.people import (
    CONTACT_TIMEOUT_SECONDS,
    contact_sends,
    escalated_to,
    escalation_rules,
    recipients,
)
from monitord.central.notify.routing import contact
from monitord.central.notify.senders import SENDERS
from monitord.central.notify.settings import (
    DEFAULT_TEMPLATES_DIR,
    ChannelConfig,
    Notifications,
)
from monitord.durations import format_duration
from monitord.errors import NotFound, SendError, StateError
from monitord.logs import register_secret, scrub
from monitord.store.people import Roster
from monitord.store.protocol import (
    Incident,
    Notice,
    Store,
)
from monitord.texts import TEMPLATES, Renderer

log = logging.getLogger(__name__)
T = TypeVar("T")
Clock = Callable[[], dt.datetime]

STOCK_TEMPLATES = TEMPLATES / "notify"
LEASE_SECONDS = 300.0          # a claimed notice is ours this long ...
ROUND_TIMEOUT_SECONDS = 240.0  # ... and a round ends before that (sends time out at 60 s)
CLAIM_LIMIT = 20
MAX_CONCURRENT_SENDS = 8
STORE_TIMEOUT_SECONDS = 30.0
FIRST_RETRY_SECONDS = 10.0
MAX_RETRY_SECONDS = 600.0
SEND_GRACE_SECONDS = 1.0       # the sender's own timeouts fire first and say more
TIMELINE_IN_MAIL = 8           # the latest entries of the incident's timeline in a mail
CONSOLE_PAGE = "/console/incidents/"     # + id: the incident's page in the web console
WHAT = {"opened": "opened", "escalated": "escalated", "renotify": "still unacknowledged",
        "acknowledged": "acknowledged", "resolved": "resolved",
        "flapping": "flapping (quiet until it is steady)"}


@dataclass
class Delivery:
    """What one round did with one notice (for logs and tests)."""

    notice: Notice
    told: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)      # not retried
    failed: dict[str, str] = field(default_factory=dict)       # retried at retry_at
    given_up: dict[str, str] = field(default_factory=dict)     # no more tries: why
    retry_at: dt.datetime | None = None


class Notifier:
    def __init__(self, config: Notifications, public_url: str, store: Store,
                 clock: Clock) -> None:
        self.config = config
        self.public_url = public_url
        self.store = store
        self.clock = clock
        mail = self.config.mail
        # The subject is Slack's text and PagerDuty's summary too, so it is rendered with
        # or without [mail].
        self.renderer = Renderer(mail.templates_dir if mail else DEFAULT_TEMPLATES_DIR,
                                 STOCK_TEMPLATES, "notices")
        self._sends = asyncio.Semaphore(MAX_CONCURRENT_SENDS)
        self.claim_limit = claim_limit(self.config.channels)
        self._tools: Tools | None = None
        self._roster = Roster()    # people, schedules, policies: read at each round
        # Told of what each round did with each notice (the service's /metrics).
        self.observers: list[Callable[[Delivery], None]] = []
        for channel in self.config.channels:
            register_secret(channel.url)     # a webhook's URL is its password

    async def start(self) -> None:
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None),
                                        cookie_jar=aiohttp.DummyCookieJar())
        self._tools = Tools(session, self.config.mail,
                            contacts_http=contacts_session(self.config.internal_webhooks))

    async def close(self) -> None:
        if self._tools is not None:
            await self._tools.http.close()
            if self._tools.contacts_http is not None:
                await self._tools.contacts_http.close()
            self._tools = None

    async def run(self) -> None:
        """A round every ``check_every``, until cancelled."""
        every = self.config.escalation.check_every
        while True:
            await asyncio.sleep(every)
            try:
                await self.once(self.clock())
            except Exception:    # the loop must outlive any one round
                log.exception("central: a notification round failed; trying again next "
                              "round")

    async def once(self, now: dt.datetime) -> list[Delivery]:
        """Escalate, claim the due notices, deliver them; what was done with each."""
        try:
            # Who is told is decided at send time: the policies and who is on call now.
            self._roster = await self._store(self.store.roster(now))
        except (StateError, TimeoutError) as e:    # the channels need none of it
            log.error("central: cannot read the people, schedules and escalation policies; "
                      "using the last ones read: %s", e or "no answer in time")
        # People's contacts are sends too: as many notices as the sends to both can finish.
        self.claim_limit = claim_limit(self.config.channels, contact_sends(self._roster))
        try:
            rules = escalation_rules(self.config, self._roster)
            if ((self.config.channels or self._roster.policies)
                    and (rules.climbs or rules.renotify_every)):
                for notice in await self._store(self.store.escalate(now, rules)):
                    if notice.kind == "escalated":
                        log.warning("central: incident %d is unacknowledged: escalated to %s "
                                    "(level %d)", notice.incident_id,
                                    contact(self.config, notice.level) if not
                                    self._roster.policies else "its next step", notice.level)
                    else:
                        log.info("central: incident %d is an unacknowledged P1: reminding",
                                 notice.incident_id)
            claimed = await self._store(self.store.claim_notices(now, LEASE_SECONDS,
                                                                 self.claim_limit))
        except (StateError, TimeoutError) as e:
            log.error("central: cannot read the notices; trying again next round: %s",
                      e or "no answer in time")
            return []
        groups: dict[int, list[Notice]] = {}
        for notice in sorted(claimed, key=lambda n: n.id):
            groups.setdefault(notice.incident_id, []).append(notice)
        done: list[Delivery] = []
        try:
            async with asyncio.timeout(ROUND_TIMEOUT_SECONDS):
                await asyncio.gather(*(self._deliver_in_order(group, now, done)
                                       for group in groups.values()))
        except TimeoutError:
            log.error("central: a notification round took longer than %s; the notices "
                      "left are tried again when their lease ends",
                      format_duration(ROUND_TIMEOUT_SECONDS))
        return done

    async def _deliver_in_order(self, notices: list[Notice], now: dt.datetime,
                                done: list[Delivery]) -> None:
        """One incident's notices, oldest first. (The store hands out a notice only when
        no older one of its incident is on its first round, so "resolved" never overtakes
        "opened"; one that waits for a retry holds back nothing.)"""
        for notice in notices:
            try:
                delivery = await self._deliver(notice, now)
            except Exception:    # a bug (a template, a sender): retry later, go on
                log.exception("central: telling people of incident %d (%s) failed; trying "
                              "again later", notice.incident_id, notice.kind)
                delivery = Delivery(notice, retry_at=now + dt.timedelta(
                    seconds=retry_delay(notice.attempts)))
                await self._finish(delivery, now, "")
            if delivery is not None:
                done.append(delivery)
                for observe in self.observers:
                    observe(delivery)

    async def _deliver(self, notice: Notice, now: dt.datetime) -> Delivery | None:
        delivery = Delivery(notice)
        try:
            incident = await self._store(self.store.incident(notice.incident_id))
        except NotFound:
            await self._finish(delivery, now, "")
            return delivery
        except (StateError, TimeoutError) as e:
            log.error("central: cannot read incident %d to tell people of it; its notice "
                      "is tried again later: %s", notice.incident_id, e or "no answer in time")
            return None
        channels = [c for c in recipients(self.config, self._roster, notice.kind,
                                          notice.level, incident.priority, now)
                    if c.name not in notice.done]
        retry_for = self.config.escalation.retry_for
        deadline = notice.created_at + dt.timedelta(seconds=retry_for)
        why = _superseded(notice, incident) or (
            f"retry_for ({format_duration(retry_for)}) has passed" if now >= deadline else "")
        if channels and why:
            delivery.given_up = {c.name: why for c in channels}
            channels = []
        if channels:
            message = self._message(notice, incident, now)
            results = await asyncio.gather(*(self._send(c, message) for c in channels))
            for channel, error in zip(channels, results, strict=True):
                if error is None:
                    delivery.told.append(channel.name)
                elif not error.retry:
                    delivery.refused[channel.name] = error.reason
                else:
                    delivery.failed[channel.name] = error.reason
        if delivery.failed:
            retry_at = now + dt.timedelta(seconds=retry_delay(notice.attempts))
            if retry_at < deadline:
                delivery.retry_at = retry_at
            else:
                delivery.given_up.update(
                    (name, f"{why} (attempt {notice.attempts}; retry_for "
                           f"{format_duration(retry_for)} ends before the next)")
                    for name, why in delivery.failed.items())
                delivery.failed = {}
        self._log(delivery, incident)
        await self._finish(delivery, now, _timeline_text(delivery))
        return delivery

    async def _send(self, channel: ChannelConfig, message: Message) -> SendError | None:
        """Send under the channel's deadline; the error (scrubbed of secrets), or None."""
        assert self._tools is not None, "start() the notifier first"
        async with self._sends:
            try:
                async with asyncio.timeout(channel.timeout + SEND_GRACE_SECONDS):
                    await SENDERS[channel.type](channel, message, self._tools)
            except SendError as e:
                return SendError(scrub(e.reason), e.retry)
            except TimeoutError:
                return SendError(f"no answer within {format_duration(channel.timeout)}",
                                 retry=True)
            except Exception as e:    # a sender's bug: the text might hold a URL, log none
                log.debug("central: sending to %s failed", channel.name, exc_info=True)
                return SendError(f"internal error ({type(e).__name__})", retry=True)
        return None

    async def _finish(self, delivery: Delivery, now: dt.datetime, text: str) -> None:
        notice = delivery.notice
        # "done" is every channel this notice is finished with: told, refused for good or
        # given up on; a retry goes only to the others.
        done = [*notice.done, *delivery.told, *delivery.refused, *delivery.given_up]
        error = "; ".join(f"{name}: {why}" for name, why in delivery.failed.items())
        try:
            ours = await self._store(self.store.finish_notice(
                notice, done, now, delivery.retry_at, error=error, text=text))
            if not ours:
                log.warning("central: notice %d of incident %d outlived its lease; another "
                            "round has it now (its channels may hear it twice)",
                            notice.id, notice.incident_id)
        except (StateError, TimeoutError) as e:
            log.error("central: cannot record notice %d of incident %d (it is tried again "
                      "when its lease ends): %s", notice.id, notice.incident_id,
                      e or "no answer in time")

    def _message(self, notice: Notice, incident: Incident, now: dt.datetime) -> Message:
        told = escalated_to(self.config, self._roster, notice.level, incident.priority,
                            now) if notice.kind == "escalated" else ""
        url = f"{self.public_url}{CONSOLE_PAGE}{incident.id}" if self.public_url else ""
        evidence = gather(incident, url)
        context = _context(notice, incident, now, told, url) | as_context(evidence)
        subject, body = self.renderer.render("mail", context)
        return Message(notice.id, notice.kind, notice.level, incident, now, subject, body,
                       told, url, evidence)

    def _log(self, delivery: Delivery, incident: Incident) -> None:
        notice = delivery.notice
        about = f"central: incident {incident.id} ({incident.key}, {notice.kind})"
        if delivery.told:
            log.info("%s: told %s", about, ", ".join(delivery.told))
        for name, why in delivery.refused.items():
            log.warning("%s: %s refused it: %s; not retried", about, name, why)
        for name, why in delivery.failed.items():
            assert delivery.retry_at is not None
            log.warning("%s: could not tell %s (attempt %d): %s; trying again at %s", about,
                        name, notice.attempts, why, f"{delivery.retry_at:%H:%M:%S}")
        for name, why in delivery.given_up.items():
            log.error("%s: gave up telling %s: %s", about, name, why)

    async def _store(self, call: Awaitable[T]) -> T:
        async with asyncio.timeout(STORE_TIMEOUT_SECONDS):
            return await call


def claim_limit(channels: Sequence[ChannelConfig], contacts: int = 0) -> int:
    """How many notices one round may take: as many as surely get through their sends
    (each notice to every channel and to ``contacts`` of people's contact methods, each
    hanging to its deadline, MAX_CONCURRENT_SENDS at a time) before the round's own
    deadline, so that no channel that did hear a notice goes unrecorded."""
    timeouts = [c.timeout for c in channels] + ([CONTACT_TIMEOUT_SECONDS] if contacts else [])
    slowest = max(timeouts, default=0.0) + SEND_GRACE_SECONDS
    waves = ROUND_TIMEOUT_SECONDS // slowest
    sends = max(len(channels) + contacts, 1)
    return max(1, min(CLAIM_LIMIT, int(waves * MAX_CONCURRENT_SENDS // sends)))


def retry_delay(attempts: int) -> float:
    """10 s, 20 s, 40 s ... up to 10 min after the ``attempts``-th try, jittered to 50-100 %
    so that many notices failing together do not come back together."""
    bound = min(FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0), MAX_RETRY_SECONDS)
    return bound * random.uniform(0.5, 1.0)


def _superseded(notice: Notice, incident: Incident) -> str:
    """Why retrying ``notice`` is pointless now ("" if it is not): the incident moved on.

    Only for a notice tried before: everyone hears a change that happened, once."""
    if notice.attempts <= 1:
        return ""
    if incident.status == "resolved" and notice.kind != "resolved":
        return "the incident was resolved before it got through"
    if incident.status == "acknowledged" and notice.kind in ("escalated", "renotify"):
        return "the incident was acknowledged before it got through"
    return ""


def _timeline_text(delivery: Delivery) -> str:
    """What goes on the incident's timeline: who was told, who refused, who never got it.
    A failure that is retried is logged only; its outcome comes later."""
    notice = delivery.notice
    parts = []
    if delivery.told:
        parts.append(f"told {', '.join(delivery.told)}")
    parts.extend(f"{name} refused it: {why}" for name, why in delivery.refused.items())
    parts.extend(f"could not tell {name}: {why}" for name, why in delivery.given_up.items())
    return f"{WHAT[notice.kind]}: {'; '.join(parts)}" if parts else ""


def _context(notice: Notice, incident: Incident, now: dt.datetime, escalated_to: str,
             url: str) -> dict[str, Any]:
    """What mail.title.j2 and mail.body.j2 see."""
    what = WHAT[notice.kind]
    if notice.kind == "acknowledged" and incident.acknowledged_by:
        what = f"acknowledged by {incident.acknowledged_by}"
    elif notice.kind == "resolved" and incident.resolved_by:
        what = f"resolved by {incident.resolved_by}"
    elif notice.kind == "escalated" and escalated_to:
        what = f"escalated to {escalated_to}"
    left = (incident.due_at - now).total_seconds()
    due = (f"due in {format_duration(left)}" if left > 0
           else f"overdue by {format_duration(-left)}")
    timeline = [{"at": _clock(e.at), "kind": e.kind, "who": e.who,
                 "text": (e.text.splitlines() or [""])[0]}
                for e in incident.timeline[-TIMELINE_IN_MAIL:]]
    return {
        "kind": notice.kind, "what": what, "level": notice.level,
        "escalated_to": escalated_to, "id": incident.id, "key": incident.key,
        "host": incident.host, "check": incident.check, "priority": incident.priority,
        "status": incident.status, "title": incident.title, "summary": incident.summary,
        "opened_at": _clock(incident.opened_at), "due_at": _clock(incident.due_at),
        "due": due if incident.status == "open" else f"was due {_clock(incident.due_at)}",
        "count": incident.count, "reopened": incident.reopened,
        "attached": list(incident.attached),
        "acknowledged_by": incident.acknowledged_by or "",
        "acknowledged_at": _clock(incident.acknowledged_at),
        "resolved_by": incident.resolved_by or "", "resolved_at": _clock(incident.resolved_at),
        "url": url, "timeline": timeline, "sent_at": _clock(now),
    }


def _clock(at: dt.datetime | None) -> str:
    return "" if at is None else f"{at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"
