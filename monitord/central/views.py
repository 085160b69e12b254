"""The central API's handlers: agents post events; people list and work incidents.

Each handler authenticates first (a missing or wrong token is a 401 before anything is
read), validates everything it was sent, and only then touches the store, so a request
that fails changes nothing. Tokens and bodies are never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from importlib import resources
from typing import Any, get_args

from aiohttp import web

from monitord.central import auth
from monitord.central.keys import CLOCK, CONFIG, STORE
from monitord.central.payloads import (
    ActionBody,
    ApiError,
    CommentBody,
    Json,
    host_json,
    incident_json,
    invalid,
    parse_json,
    validate,
)
from monitord.errors import StateError
from monitord.events import Batch, Event, is_name
from monitord.model import Priority
from monitord.schema import suggest
from monitord.store.protocol import Incident, IncidentStatus

log = logging.getLogger(__name__)

HEALTH_TIMEOUT_SECONDS = 5.0
MAX_INCIDENT_ID = 2**63 - 1     # ids are 64-bit in every backend; a bigger one cannot exist
MAX_ID_DIGITS = len(str(MAX_INCIDENT_ID))
MAX_LIMIT = 500
STATUSES: tuple[str, ...] = get_args(IncidentStatus)
PRIORITIES: tuple[str, ...] = tuple(p.value for p in Priority)
INCIDENT_QUERY = ("status", "priority", "host", "limit")


# --- agents -----------------------------------------------------------------------------

async def post_events(request: web.Request) -> web.Response:
    host = await auth.require_agent(request)
    now = request.app[CLOCK]()
    batch = validate(Batch, parse_json(await _body(request)), context={"now": now})
    _check_hosts(batch.events, host)
    report = await request.app[STORE].apply(batch.events, now)
    log.debug("central: %s: %d events applied, %d duplicates", host, report.applied,
              report.duplicates)
    return web.json_response({"applied": report.applied, "duplicates": report.duplicates})


async def _body(request: web.Request) -> bytes:
    """The body, refused with a 413 before reading when its declared size is too big."""
    limit = request.app[CONFIG].central.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    return await request.read()


def _check_hosts(events: Sequence[Event], host: str) -> None:
    wrong = [f'events[{i}].host: "{e.host}" is not this token\'s host "{host}"'
             for i, e in enumerate(events) if e.host != host]
    if wrong:
        more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
        raise ApiError(403, "forbidden", wrong[0] + more, wrong)


# --- people -----------------------------------------------------------------------------

async def list_incidents(request: web.Request) -> web.Response:
    await auth.require_operator(request)
    query = _incident_query(request)
    found = await request.app[STORE].incidents(
        status=query["status"], priority=query["priority"], host=query["host"],
        limit=query["limit"])
    return web.json_response({"incidents": [incident_json(i) for i in found]})


async def get_incident(request: web.Request) -> web.Response:
    await auth.require_operator(request)
    incident = await request.app[STORE].incident(_incident_id(request))
    return _incident_response(incident)


async def acknowledge(request: web.Request) -> web.Response:
    who = await auth.require_operator(request)
    incident_id = _incident_id(request)
    body = validate(ActionBody, await _json(request))
    await request.app[STORE].acknowledge(incident_id, _who(body.who, who), body.note,
                                         request.app[CLOCK]())
    return await _current(request, incident_id)


async def resolve(request: web.Request) -> web.Response:
    who = await auth.require_operator(request)
    incident_id = _incident_id(request)
    body = validate(ActionBody, await _json(request))
    await request.app[STORE].resolve(incident_id, _who(body.who, who), body.note,
                                     request.app[CLOCK]())
    return await _current(request, incident_id)


async def comment(request: web.Request) -> web.Response:
    who = await auth.require_operator(request)
    incident_id = _incident_id(request)
    body = validate(CommentBody, await _json(request))
    await request.app[STORE].comment(incident_id, _who(body.who, who), body.text,
                                     request.app[CLOCK]())
    return await _current(request, incident_id)


async def list_hosts(request: web.Request) -> web.Response:
    await auth.require_operator(request)
    hosts = await request.app[STORE].hosts(request.app[CLOCK]())
    return web.json_response({"hosts": [host_json(h) for h in hosts]})


def _who(claimed: str | None, operator: str) -> str:
    """Actions are recorded under the token's owner; a body may repeat it, not change it."""
    if claimed is not None and claimed != operator:
        raise ApiError(403, "forbidden",
                       f'who: this token belongs to "{operator}", not "{claimed}"')
    return operator


async def _json(request: web.Request) -> object:
    """The JSON body; none at all counts as ``{}`` (every action field is optional)."""
    return parse_json(await _body(request)) if request.can_read_body else {}


async def _current(request: web.Request, incident_id: int) -> web.Response:
    return _incident_response(await request.app[STORE].incident(incident_id))


def _incident_response(incident: Incident) -> web.Response:
    return web.json_response({"incident": incident_json(incident, timeline=True)})


def _incident_id(request: web.Request) -> int:
    digits = request.match_info["id"]              # the route admits digits only
    if len(digits) > MAX_ID_DIGITS or int(digits) > MAX_INCIDENT_ID:
        raise ApiError(404, "not_found", "no incident with that id")
    return int(digits)


def _incident_query(request: web.Request) -> dict[str, Any]:
    query = request.query
    problems = [f"{name if name.isidentifier() and len(name) <= 60 else _shown(name)}: "
                f"unknown query parameter{suggest(name, list(INCIDENT_QUERY))}"
                for name in query if name not in INCIDENT_QUERY]
    statuses = _choices(query.getall("status", []), STATUSES, "status", problems)
    priorities = _choices(query.getall("priority", []), PRIORITIES, "priority", problems)
    hosts = query.getall("host", [])
    if len(hosts) > 1:
        problems.append("host: give at most one")
    problems += [f"host: expected a host name (letters, digits, \".\", \"_\", \":\" or "
                 f"\"-\", starting with a letter or digit), got {_shown(h)}"
                 for h in hosts if not is_name(h)]
    limit = _limit(query.get("limit"), problems)
    if problems:
        raise invalid(problems)
    return {"status": statuses or ("open", "acknowledged"), "priority": priorities,
            "host": hosts[0] if hosts else None, "limit": limit}


def _choices(values: list[str], allowed: tuple[str, ...], name: str,
             problems: list[str]) -> tuple[Any, ...]:
    """Repeated or comma-separated values, each one of ``allowed``."""
    chosen: list[str] = []
    for part in (p.strip() for v in values for p in v.split(",")):
        if part not in allowed:
            problems.append(f"{name}: expected {_one_of(allowed)}, got {_shown(part)}")
        elif part not in chosen:
            chosen.append(part)
    return tuple(chosen)


def _limit(text: str | None, problems: list[str]) -> int:
    if text is None:
        return MAX_LIMIT
    if (not (text.isascii() and text.isdigit()) or len(text) > len(str(MAX_LIMIT))
            or not 1 <= int(text) <= MAX_LIMIT):
        problems.append(f"limit: expected a whole number from 1 to {MAX_LIMIT}, "
                        f"got {_shown(text)}")
        return MAX_LIMIT
    return int(text)


def _shown(value: str) -> str:
    """A query value as a JSON string, shortened: what a problem says it got."""
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _one_of(allowed: tuple[str, ...]) -> str:
    quoted = [f'"{a}"' for a in allowed]
    return ", ".join(quoted[:-1]) + f" or {quoted[-1]}"


# --- open -------------------------------------------------------------------------------

async def healthz(request: web.Request) -> web.Response:
    """200 when the store answers a query within a few seconds, else 503."""
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT_SECONDS):
            await request.app[STORE].incidents(limit=1)
    except (StateError, TimeoutError) as e:
        log.warning("central: health check: the store did not answer: %s",
                    e or "no answer in time")
        return web.json_response({"status": "unavailable"}, status=503)
    return web.json_response({"status": "ok"})


async def openapi(request: web.Request) -> web.Response:
    return web.Response(body=spec_text(), content_type="application/json")


def spec_text() -> str:
    return resources.files("monitord.central").joinpath("openapi.json").read_text()


def spec() -> Json:
    loaded: Json = json.loads(spec_text())
    return loaded
