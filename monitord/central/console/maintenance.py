"""The console's maintenance page: the windows running now (the agents' and people's), a
form that puts a host in maintenance for a while with a reason, and a button that ends a
host's windows (whoever set them: a person may end an agent's window too). The same
rules as the API's (``central.maintenance.window``); the owner is the signed-in person.
Like every console POST, the forms need their anti-forgery token (``pages.person_page``)
and answer 303 to this page.
"""

from __future__ import annotations

import datetime as dt
import logging

from aiohttp import web

from monitord.central.console.common import field, page
from monitord.central.console.pages import person_page
from monitord.central.console.render import redirect
from monitord.central.console.sessions import Session
from monitord.central.keys import CLOCK, STORE
from monitord.central.maintenance import check_length, window
from monitord.durations import format_duration, parse_duration

log = logging.getLogger(__name__)

PAGE = "/console/maintenance"


@person_page
async def maintenance_page(request: web.Request, session: Session) -> web.StreamResponse:
    return await _maintenance_page(request, session)


@person_page
async def set_window(request: web.Request, session: Session) -> web.StreamResponse:
    form = await request.post()
    host, reason = field(form, "host").strip(), field(form, "reason").strip()
    lasting = field(form, "for").strip()
    now = request.app[CLOCK]()
    try:
        try:
            seconds = parse_duration(lasting)
        except ValueError:
            raise ValueError(
                f'for: expected a duration like "2h" or "30m", got {lasting!r}') from None
        check_length(seconds)     # before the sum: a huge one overflows the datetime
        made = window(host, reason, now + dt.timedelta(seconds=seconds), session.name, now)
    except ValueError as e:
        return await _maintenance_page(request, session, status=400, error=f"{e}.",
                                       host=host, reason=reason, lasting=lasting)
    await request.app[STORE].set_maintenance(made)
    log.info("central: console: %s set maintenance of %s for %s", session.name, host,
             format_duration(seconds))
    return redirect(PAGE)


@person_page
async def end_window(request: web.Request, session: Session) -> web.StreamResponse:
    host = field(await request.post(), "host").strip()
    if not await request.app[STORE].end_maintenance(host, "", request.app[CLOCK]()):
        return await _maintenance_page(request, session, status=404,
                                       error=f"{host} is not in maintenance.")
    log.info("central: console: %s ended maintenance of %s", session.name, host)
    return redirect(PAGE)


async def _maintenance_page(request: web.Request, session: Session, *, status: int = 200,
                            error: str = "", host: str = "", reason: str = "",
                            lasting: str = "2h") -> web.StreamResponse:
    now = request.app[CLOCK]()
    windows = await request.app[STORE].maintenance(now)
    rows = [{"host": w.host, "check": w.check, "until": w.until, "owner": w.owner,
             "reason": w.reason, "source": w.source,
             "left": format_duration((w.until - now).total_seconds())}
            for w in windows]
    return await page(request, session, "maintenance.html.j2", status=status,
                       title="Maintenance", rows=rows, error=error, host=host, reason=reason,
                       lasting=lasting)

