"""The hosts: every host heard of, a page at a time, and one host's page.

    GET /console/hosts?page=N   the hosts by name, PAGE_SIZE a page: last heartbeat, down
                                or up, open incidents
    GET /console/hosts/HOST     one host: those facts, its open incidents (with the queue's
                                row buttons), what the junior tier fixed there, maintenance

Each page reads only what it shows (it reloads itself every 30 s): a page of hosts, or the
one host, its own maintenance windows and its own fix statistics over the last week
(``fix_stats`` for the host, as the fix statistics API's default window; the busiest
HEALS_LIMIT checks and fixes): per check and fix, how often it ran, how often the check
passed right after it, and when it last ran; the most recent first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from aiohttp import web
from yarl import URL

from monitord.central.console.common import (
    HOSTS,
    PRIORITIES,
    QUEUE_LIMIT,
    ago,
    host_url,
    incident_view,
    open_incidents,
    page,
    paging,
)
from monitord.central.console.filters import QueueFilter, done_text
from monitord.central.console.pages import person_page
from monitord.central.console.sessions import Session
from monitord.central.keys import CLOCK, STORE
from monitord.durations import format_duration
from monitord.errors import ConsoleError
from monitord.events import is_name
from monitord.store.protocol import HostInfo, Store

UNKNOWN_HOST = "monitord has not heard of a host by that name."
HEALS_SECONDS = 7 * 86400.0     # the fix statistics API's default window
HEALS_LIMIT = 200               # (check, fix) rows of one host's heals, the busiest first
PAGE_SIZE = 100                 # hosts a page
QUERY = ("page",)


@person_page
async def hosts(request: web.Request, session: Session) -> web.StreamResponse:
    number = _page_number(request.query)
    now = request.app[CLOCK]()
    found, total = await request.app[STORE].hosts_page(now, PAGE_SIZE,
                                                       (number - 1) * PAGE_SIZE)
    opened = await open_incidents(request.app[STORE])
    late: dict[str, int] = {}
    for incident in (i for p in PRIORITIES for i in opened[p]):
        if incident.overdue(now):
            late[incident.host] = late.get(incident.host, 0) + 1
    rows = [{**_host_view(h, now), "overdue": late.get(h.host, 0)} for h in found]
    return await page(request, session, "hosts.html.j2", refresh=True, opened=opened,
                      title="Hosts", rows=rows,
                      paging=paging(number, len(found), total, PAGE_SIZE, _hosts_url))


@person_page
async def host_page(request: web.Request, session: Session) -> web.StreamResponse:
    name = request.match_info["host"]
    if not is_name(name):
        raise ConsoleError(404, UNKNOWN_HOST)
    store, now = request.app[STORE], request.app[CLOCK]()
    info = await store.host(name, now)
    everything = await open_incidents(store)
    mine = await open_incidents(store, name)
    if info is None and not any(mine.values()):
        raise ConsoleError(404, UNKNOWN_HOST)
    shown = [i for p in PRIORITIES for i in mine[p]]
    back = host_url(name)
    heals = await _heals(store, name, now)
    return await page(
        request, session, "host.html.j2", refresh=True, opened=everything,
        refresh_url=back if request.query else None, title=name, host=name,
        facts=_host_view(info, now) if info is not None else None,
        rows=[incident_view(i, now) for i in shown], back=back,
        cut=[p for p in PRIORITIES if len(mine[p]) >= QUEUE_LIMIT], limit=QUEUE_LIMIT,
        heals=heals, heals_cut=len(heals) >= HEALS_LIMIT, heals_limit=HEALS_LIMIT,
        heals_window=format_duration(HEALS_SECONDS), done=done_text(request.query),
        maintenance=[{"check": w.check, "until": w.until, "left": _left(w.until, now),
                      "owner": w.owner, "reason": w.reason}
                     for w in await store.maintenance(now, host=name)])


async def _heals(store: Store, name: str, now: dt.datetime) -> list[dict[str, object]]:
    """The host's fix runs within the window (the busiest HEALS_LIMIT), the one that ran
    last first."""
    since = now - dt.timedelta(seconds=HEALS_SECONDS)
    mine = sorted(await store.fix_stats(since, host=name, limit=HEALS_LIMIT),
                  key=lambda r: (-r.last_at.timestamp(), r.check, r.fix))
    return [{"check": r.check, "fix": r.fix, "runs": r.runs, "worked": r.worked,
             "success": f"{round(100 * r.worked / r.runs)}%" if r.runs else "-",
             "last": ago(r.last_at, now), "last_at": r.last_at} for r in mine]


def _page_number(query: Mapping[str, str]) -> int:
    """The ``page`` asked for (1 without one); a 400 for anything else in the query."""
    unknown = [name for name in query if name not in QUERY]
    if unknown:
        raise ConsoleError(400, f'Unknown parameter "{unknown[0][:40]}": the hosts page '
                                "takes only page.")
    value = query.get("page", "1").strip() or "1"
    if not (value.isascii() and value.isdigit()) or len(value) > 6 or int(value) < 1:
        raise ConsoleError(400, "page: expected a page number from 1.")
    return int(value)


def _hosts_url(number: int) -> str:
    return str(URL(HOSTS).with_query(page=str(number))) if number > 1 else HOSTS


def _host_view(h: HostInfo, now: dt.datetime) -> dict[str, object]:
    return {"host": h.host, "url": host_url(h.host), "heard": ago(h.last_heartbeat, now),
            "last_heartbeat": h.last_heartbeat,
            "every": format_duration(h.interval_seconds) if h.interval_seconds else "-",
            "down": h.down, "open": h.open_incidents,
            "stopped": h.stopped_at if h.stopped_at is not None and not h.down else None,
            "queue": QueueFilter(host=h.host).url()}


def _left(until: dt.datetime, now: dt.datetime) -> str:
    return format_duration(max(0.0, round((until - now).total_seconds())))
