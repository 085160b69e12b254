"""Bearer tokens for agents, operators and scrapers: made at random, kept only as a hash;
and the checks every API route makes before it reads anything: ``require_agent`` (posting
events), ``require_operator`` (everything people do), ``require_reader`` (``/metrics``:
an operator's or a scraper's token). A scraper's token reads ``/metrics`` and nothing
else: anywhere else it is a 403, so a token kept in Prometheus' config can neither set
maintenance nor resolve incidents.

A token is ``secrets.token_urlsafe(32)``: 256 random bits. Against that, a fast hash is
enough (nobody can guess a preimage), and it must be unsalted so that the store can look a
token up by its hash. Slow salted hashes (scrypt) are for the passwords people choose.
The token itself is shown once, by the command that makes it, and never logged.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Literal

from aiohttp import web

from monitord.central.keys import STORE
from monitord.errors import ApiError
from monitord.store.protocol import Store

TOKEN_BYTES = 32
_MAX_TOKEN_CHARS = 200


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bearer_token(header: str | None) -> str | None:
    """The token in an ``Authorization: Bearer TOKEN`` header, or None."""
    if not header:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > _MAX_TOKEN_CHARS:
        return None
    return token


async def add_agent(store: Store, host: str, now: dt.datetime) -> str:
    """A new token for ``host``, replacing its old one; returns the token (shown once)."""
    token = new_token()
    await store.add_agent(host, token_hash(token), now)
    return token


async def add_operator(store: Store, name: str, now: dt.datetime) -> str:
    """A new token for the person ``name``, replacing their old one."""
    token = new_token()
    await store.set_person_token(name, token_hash(token), now)
    return token


async def add_scraper(store: Store, name: str, now: dt.datetime) -> str:
    """A new read-only token for the scraper ``name`` (GET /metrics only), replacing its
    old one."""
    token = new_token()
    await store.add_scraper(name, token_hash(token), now)
    return token


async def agent_for(store: Store, token: str) -> str | None:
    """The host an agent token belongs to; None for an unknown or an operator's token."""
    return await store.agent_for(token_hash(token))


async def operator_for(store: Store, token: str) -> str | None:
    """The person an operator token belongs to; None for an unknown or an agent's token."""
    return await store.person_for(token_hash(token))


async def require_operator(request: web.Request) -> str:
    """The person whose operator token the request carries; a 401 without one (a 403 for
    a scraper's)."""
    token = bearer_token(request.headers.get("Authorization"))
    name = await operator_for(request.app[STORE], token) if token else None
    if name is None:
        raise await _refusal(request.app[STORE], token, "operator")
    return name


async def require_agent(request: web.Request) -> str:
    """The host whose agent token the request carries; a 401 without one (a 403 for a
    scraper's)."""
    token = bearer_token(request.headers.get("Authorization"))
    host = await agent_for(request.app[STORE], token) if token else None
    if host is None:
        raise await _refusal(request.app[STORE], token, "agent")
    return host


async def require_reader(request: web.Request) -> str:
    """Who may read /metrics: the person of an operator token or the scraper of a
    scraper's token; a 401 for anything else."""
    token = bearer_token(request.headers.get("Authorization"))
    if token is not None:
        store = request.app[STORE]
        name = (await operator_for(store, token)
                or await store.scraper_for(token_hash(token)))
        if name is not None:
            return name
    raise ApiError(401, "unauthorized",
                   'expected a scraper\'s or an operator\'s token as "Authorization: Bearer '
                   'TOKEN" (made by `monitord central add-scraper NAME`)')


async def _refusal(store: Store, token: str | None,
                   kind: Literal["agent", "operator"]) -> ApiError:
    """A 403 for a scraper's token (it is known, and may not do this); else a 401."""
    if token is not None and await store.scraper_for(token_hash(token)) is not None:
        return ApiError(403, "forbidden", "a scraper's token may only GET /metrics; "
                                          f"this takes an {kind} token")
    return unauthorized(kind)


def unauthorized(kind: Literal["agent", "operator"]) -> ApiError:
    """The 401 for a request without a valid token of ``kind``, naming the command that
    makes one."""
    command = "add-agent HOST" if kind == "agent" else "add-operator NAME"
    return ApiError(401, "unauthorized",
                    f"expected an {kind} token as \"Authorization: Bearer TOKEN\" "
                    f"(made by `monitord central {command}`)")
