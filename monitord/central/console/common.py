"""What every signed-in console page shares: the page frame (the header's overdue count,
the forms' token, the refresh), the open incidents read per priority, an incident row's
view, a form field, a safe place to go back to, and "how long ago".

The pages (``pages``, ``queue``, ``hosts``, ``maintenance``, ``oncall``) import these from
here; nothing here imports a page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy
from yarl import URL

from monitord.central.console import sessions
from monitord.central.console.render import html
from monitord.central.console.sessions import Session
from monitord.central.console.state import CONSOLE, signing_key
from monitord.central.keys import CLOCK, STORE
from monitord.durations import format_duration
from monitord.model import Priority
from monitord.store.protocol import Incident, IncidentStatus, Store
from monitord.texts import age_text, due_text

HOME = "/console/"
HOSTS = "/console/hosts"
OPEN: tuple[IncidentStatus, ...] = ("open", "acknowledged")
PRIORITIES = tuple(Priority)
QUEUE_LIMIT = 500              # open incidents read per priority, the most urgent first
REFRESH_SECONDS = 30
MAX_NEXT_CHARS = 2000


@dataclass(frozen=True)
class Paging:
    """Where a paged list is: its page, how many, and links to the pages around it."""

    page: int
    pages: int
    total: int
    first: int          # the first and last row shown, counted from 1
    last: int
    previous: str       # URLs, "" when there is none
    next: str
    last_page: str


def paging(number: int, shown: int, total: int, size: int,
           url: Callable[[int], str]) -> Paging:
    """Page ``number`` of ``total`` rows, ``size`` a page, showing ``shown`` rows;
    ``url(n)`` is page n's address (with any filters the list has)."""
    pages = max(1, -(-total // size))
    start = (number - 1) * size
    return Paging(number, pages, total, start + 1, start + shown,
                  previous=url(min(number - 1, pages)) if number > 1 else "",
                  next=url(number + 1) if number < pages else "",
                  last_page=url(pages))


async def page(request: web.Request, session: Session, template: str, *, status: int = 200,
               refresh: bool = False, opened: dict[str, list[Incident]] | None = None,
               **context: object) -> web.Response:
    """A signed-in page: the header's overdue count, the forms' token, the refresh."""
    now = request.app[CLOCK]()
    if opened is None:
        opened = await open_incidents(request.app[STORE])
    token = sessions.csrf_token(await signing_key(request.app), session)
    overdue = sum(1 for p in PRIORITIES for i in opened[p] if i.overdue(now))
    # A full list whose last (latest due) incident is past due may hide more overdue ones.
    more = any(len(opened[p]) >= QUEUE_LIMIT and opened[p][-1].due_at < now
               for p in PRIORITIES)
    return html(request.app[CONSOLE].env, template, status, person=session.name, csrf=token,
                overdue_count=overdue, overdue_more=more, now=now,
                refresh=REFRESH_SECONDS if refresh else 0, **context)


async def open_incidents(store: Store, host: str | None = None) -> dict[str, list[Incident]]:
    """Open and acknowledged incidents per priority, each the QUEUE_LIMIT due first: read
    one priority at a time, so no number of overdue P3s can push a P1 off the queue."""
    return {p: await store.incidents(status=OPEN, priority=(p,), host=host,
                                     limit=QUEUE_LIMIT) for p in PRIORITIES}


def safe_next(value: str | None) -> str:
    """Where to go after a form: a console page of this site, never another site."""
    if (value and value.startswith(HOME) and len(value) <= MAX_NEXT_CHARS
            and "\\" not in value and value.isprintable()):
        return value
    return HOME


def field(form: MultiDictProxy[Any], name: str) -> str:
    """A form's text field; "" when it is missing or a file."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


def incident_view(i: Incident, now: dt.datetime) -> dict[str, object]:
    return {"id": i.id, "url": f"/console/incidents/{i.id}", "priority": i.priority,
            "status": i.status, "host": i.host, "host_url": host_url(i.host),
            "check": i.check, "key": i.key,
            "title": i.title or i.key, "summary": i.summary, "age": age_text(i.opened_at, now),
            "due": due_text(i.due_at, now, i.status == "resolved"),
            "overdue": i.overdue(now), "flapping": i.flapping, "opened_at": i.opened_at,
            "due_at": i.due_at, "count": i.count, "acknowledged_by": i.acknowledged_by,
            "acknowledged_at": i.acknowledged_at, "resolved_by": i.resolved_by,
            "resolved_at": i.resolved_at, "reopened": i.reopened,
            "attached": ", ".join(i.attached), "level": i.escalation_level,
            "last_seen": ago(i.last_seen_at, now)}


def host_url(host: str) -> str:
    return str(URL(HOSTS) / host)


def ago(moment: dt.datetime | None, now: dt.datetime) -> str:
    if moment is None:
        return "never"
    seconds = (now - moment).total_seconds()
    return "just now" if seconds < 1 else f"{format_duration(seconds)} ago"
