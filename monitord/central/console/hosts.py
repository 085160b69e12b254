"""The hosts: every host heard of, and one host's page.

    GET /console/hosts          every host: last heartbeat, down or up, open incidents
    GET /console/hosts/HOST     one host: those facts, its open incidents (with the queue's
                                row buttons), what the junior tier fixed there, maintenance

A host's heals are the store's counts for it (``healed_counts``: ladders that healed, by
the fix that did it; ``fix_runs``: every fix run and how often the check passed after it),
over all time: the store keeps no per-run history to cut a window from.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from aiohttp import web

from monitord.central.console.filters import NAME, QueueFilter, done_text
from monitord.central.console.pages import (
    PRIORITIES,
    QUEUE_LIMIT,
    _ago,
    _incident_view,
    _opened,
    _page,
    host_url,
    person_page,
)
from monitord.central.console.sessions import Session
from monitord.central.keys import CLOCK, STORE
from monitord.durations import format_duration
from monitord.errors import ConsoleError
from monitord.store.protocol import HostInfo, Store

UNKNOWN_HOST = "monitord has not heard of a host by that name."


@dataclass
class Heals:
    """What one fix did for one check on the host."""

    check: str
    fix: str
    healed: int = 0      # ladders it ended by healing the check
    runs: int = 0        # times it ran, healing or not
    worked: int = 0      # runs after which the check passed

    @property
    def success(self) -> str:
        return f"{round(100 * self.worked / self.runs)}%" if self.runs else "-"


@person_page
async def hosts(request: web.Request, session: Session) -> web.StreamResponse:
    now = request.app[CLOCK]()
    found = await request.app[STORE].hosts(now)
    opened = await _opened(request.app[STORE])
    late: dict[str, int] = {}
    for incident in (i for p in PRIORITIES for i in opened[p]):
        if incident.overdue(now):
            late[incident.host] = late.get(incident.host, 0) + 1
    rows = [{**_host_view(h, now), "overdue": late.get(h.host, 0)} for h in found]
    return await _page(request, session, "hosts.html.j2", refresh=True, opened=opened,
                       title="Hosts", rows=rows)


@person_page
async def host_page(request: web.Request, session: Session) -> web.StreamResponse:
    name = request.match_info["host"]
    if not NAME.fullmatch(name):
        raise ConsoleError(404, UNKNOWN_HOST)
    store, now = request.app[STORE], request.app[CLOCK]()
    info = next((h for h in await store.hosts(now) if h.host == name), None)
    everything = await _opened(store)
    mine = await _opened(store, name)
    if info is None and not any(mine.values()):
        raise ConsoleError(404, UNKNOWN_HOST)
    shown = [i for p in PRIORITIES for i in mine[p]]
    back = host_url(name)
    return await _page(
        request, session, "host.html.j2", refresh=True, opened=everything,
        refresh_url=back if request.query else None, title=name, host=name,
        facts=_host_view(info, now) if info is not None else None,
        rows=[_incident_view(i, now) for i in shown], back=back,
        cut=[p for p in PRIORITIES if len(mine[p]) >= QUEUE_LIMIT], limit=QUEUE_LIMIT,
        heals=await _heals(store, name), done=done_text(request.query),
        # MAINTENANCE: the store keeps no maintenance windows yet (they live in each
        # agent's state file); when it does, pass this host's current and coming windows
        # here (who set each, why, until when) and host.html.j2 lists them. None = unknown.
        maintenance=None)


async def _heals(store: Store, name: str) -> list[Heals]:
    table: dict[tuple[str, str], Heals] = {}
    for host, check, fix, count in await store.healed_counts():
        if host == name:
            table.setdefault((check, fix), Heals(check, fix)).healed += count
    for host, check, fix, runs, worked in await store.fix_runs():
        if host == name:
            heals = table.setdefault((check, fix), Heals(check, fix))
            heals.runs += runs
            heals.worked += worked
    return sorted(table.values(), key=lambda h: (-h.healed, -h.runs, h.check, h.fix))


def _host_view(h: HostInfo, now: dt.datetime) -> dict[str, object]:
    return {"host": h.host, "url": host_url(h.host), "heard": _ago(h.last_heartbeat, now),
            "last_heartbeat": h.last_heartbeat,
            "every": format_duration(h.interval_seconds) if h.interval_seconds else "-",
            "down": h.down, "open": h.open_incidents,
            "queue": QueueFilter(host=h.host).url()}
