"""The hosts: every host heard of, and one host's page.

    GET /console/hosts          every host: last heartbeat, down or up, open incidents
    GET /console/hosts/HOST     one host: those facts, its open incidents (with the queue's
                                row buttons), what the junior tier fixed there, maintenance

A host's recent heals are the store's fix statistics for it over the last week
(``fix_stats``, as the fix statistics API's default window): per check and fix, how often
it ran, how often the check passed right after it, and when it last ran; the most recent
first.
"""

from __future__ import annotations

import datetime as dt

from aiohttp import web

from monitord.central.console.common import (
    PRIORITIES,
    QUEUE_LIMIT,
    ago,
    host_url,
    incident_view,
    open_incidents,
    page,
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


@person_page
async def hosts(request: web.Request, session: Session) -> web.StreamResponse:
    now = request.app[CLOCK]()
    found = await request.app[STORE].hosts(now)
    opened = await open_incidents(request.app[STORE])
    late: dict[str, int] = {}
    for incident in (i for p in PRIORITIES for i in opened[p]):
        if incident.overdue(now):
            late[incident.host] = late.get(incident.host, 0) + 1
    rows = [{**_host_view(h, now), "overdue": late.get(h.host, 0)} for h in found]
    return await page(request, session, "hosts.html.j2", refresh=True, opened=opened,
                       title="Hosts", rows=rows)


@person_page
async def host_page(request: web.Request, session: Session) -> web.StreamResponse:
    name = request.match_info["host"]
    if not is_name(name):
        raise ConsoleError(404, UNKNOWN_HOST)
    store, now = request.app[STORE], request.app[CLOCK]()
    info = next((h for h in await store.hosts(now) if h.host == name), None)
    everything = await open_incidents(store)
    mine = await open_incidents(store, name)
    if info is None and not any(mine.values()):
        raise ConsoleError(404, UNKNOWN_HOST)
    shown = [i for p in PRIORITIES for i in mine[p]]
    back = host_url(name)
    return await page(
        request, session, "host.html.j2", refresh=True, opened=everything,
        refresh_url=back if request.query else None, title=name, host=name,
        facts=_host_view(info, now) if info is not None else None,
        rows=[incident_view(i, now) for i in shown], back=back,
        cut=[p for p in PRIORITIES if len(mine[p]) >= QUEUE_LIMIT], limit=QUEUE_LIMIT,
        heals=await _heals(store, name, now), heals_window=format_duration(HEALS_SECONDS),
        done=done_text(request.query),
        maintenance=[{"check": w.check, "until": w.until, "left": _left(w.until, now),
                      "owner": w.owner, "reason": w.reason}
                     for w in await store.maintenance(now) if w.host == name])


async def _heals(store: Store, name: str, now: dt.datetime) -> list[dict[str, object]]:
    """The host's fix runs within the window, the one that ran last first."""
    since = now - dt.timedelta(seconds=HEALS_SECONDS)
    mine = sorted((r for r in await store.fix_stats(since) if r.host == name),
                  key=lambda r: (-r.last_at.timestamp(), r.check, r.fix))
    return [{"check": r.check, "fix": r.fix, "runs": r.runs, "worked": r.worked,
             "success": f"{round(100 * r.worked / r.runs)}%" if r.runs else "-",
             "last": ago(r.last_at, now), "last_at": r.last_at} for r in mine]


def _host_view(h: HostInfo, now: dt.datetime) -> dict[str, object]:
    return {"host": h.host, "url": host_url(h.host), "heard": ago(h.last_heartbeat, now),
            "last_heartbeat": h.last_heartbeat,
            "every": format_duration(h.interval_seconds) if h.interval_seconds else "-",
            "down": h.down, "open": h.open_incidents,
            "stopped": h.stopped_at if h.stopped_at is not None and not h.down else None,
            "queue": QueueFilter(host=h.host).url()}


def _left(until: dt.datetime, now: dt.datetime) -> str:
    return format_duration(max(0.0, round((until - now).total_seconds())))
