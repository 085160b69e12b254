"""Maintenance windows through the API: ``GET /api/v1/maintenance`` lists the running ones
(the agents' and people's, each with its source), ``POST`` sets a person's one for a host
(its reason and ``until``; the owner is the token's person), ``DELETE
/api/v1/maintenance/{host}`` ends the host's, whoever set them (the agent's too).
No notice is made for an incident in a running window (see ``store.tell``). The console's
maintenance page uses ``window`` too, so both say the same about a bad window.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated

from aiohttp import web
from pydantic import Field

from monitord.central.auth import require_operator
from monitord.central.keys import CLOCK, STORE
from monitord.central.payloads import Json, invalid, parse_json, timestamp, validate
from monitord.durations import format_duration
from monitord.errors import ApiError
from monitord.events import Name, WireModel, is_name
from monitord.store.protocol import Maintenance

log = logging.getLogger(__name__)

LONGEST_SECONDS = 7 * 86400.0      # as the agent's `monitord maintenance on --for`


class MaintenanceBody(WireModel):
    """The body of ``POST /api/v1/maintenance``: a window of one host."""

    host: Name
    reason: Annotated[str, Field(min_length=1, max_length=2000)]
    until: dt.datetime


def window(host: str, reason: str, until: dt.datetime, owner: str,
           now: dt.datetime) -> Maintenance:
    """The window, or ValueError saying what is wrong with it (for a person to read)."""
    if not is_name(host):
        raise ValueError(f"host: expected a host name as the agents send it, got {host!r}")
    if not reason.strip():
        raise ValueError("reason: say why (the on-call reads it)")
    if until.tzinfo is None:
        raise ValueError('until: expected a timestamp with a timezone, like '
                         '"2026-11-25T17:00:00Z"')
    if until <= now:
        raise ValueError("until: expected a time in the future")
    check_length((until - now).total_seconds())
    return Maintenance(host=host, check="", until=until, owner=owner,
                       reason=reason.strip(), set_at=now)


def check_length(seconds: float) -> None:
    """ValueError if a window of ``seconds`` is longer than a window may be."""
    if seconds > LONGEST_SECONDS:
        raise ValueError(f"until: expected at most {format_duration(LONGEST_SECONDS)} "
                         "from now; a longer window would outlive why it was set")


def maintenance_json(w: Maintenance) -> Json:
    return {"host": w.host, "check": w.check or None, "until": timestamp(w.until),
            "owner": w.owner, "reason": w.reason, "set_at": timestamp(w.set_at),
            "source": w.source}


async def list_maintenance(request: web.Request) -> web.Response:
    await require_operator(request)
    found = await request.app[STORE].maintenance(request.app[CLOCK]())
    return web.json_response({"maintenance": [maintenance_json(w) for w in found]})


async def set_maintenance(request: web.Request) -> web.Response:
    who = await require_operator(request)
    body = validate(MaintenanceBody, parse_json(await request.read()))
    try:
        made = window(body.host, body.reason, body.until, who, request.app[CLOCK]())
    except ValueError as e:
        raise invalid([str(e)]) from None
    await request.app[STORE].set_maintenance(made)
    log.info("central: %s set maintenance of %s until %s", who, made.host,
             timestamp(made.until))
    return web.json_response({"maintenance": maintenance_json(made)}, status=201)


async def end_maintenance(request: web.Request) -> web.Response:
    who = await require_operator(request)
    host = request.match_info["host"]
    if not is_name(host):
        raise invalid([f"host: expected a host name as the agents send it, got {host!r}"])
    if not await request.app[STORE].end_maintenance(host, "", request.app[CLOCK]()):
        raise ApiError(404, "not_found", f"{host} is not in maintenance")
    log.info("central: %s ended maintenance of %s", who, host)
    return web.json_response({"host": host, "ended": True})


