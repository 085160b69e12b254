"""What the console keeps in the app: its templates, its signing key, and a bound on the
password hashes computed at once (each takes 32 MiB; a burst of logins must not take
the service's memory)."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field

import jinja2
from aiohttp import web

from monitord.central.console.render import environment
from monitord.central.console.sessions import SECRET_NAME
from monitord.central.keys import STORE

HASHES_AT_ONCE = 2
KEY_HEX_CHARS = 64


@dataclass
class Console:
    env: jinja2.Environment = field(default_factory=environment)
    hashing: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(HASHES_AT_ONCE))
    key: bytes | None = None


CONSOLE = web.AppKey("console", Console)


async def signing_key(app: web.Application) -> bytes:
    """The HMAC key of sessions and forms: the store's shared secret, fetched once.

    Several central processes on one store propose their own random key; the store keeps
    the first and gives it to all, so a cookie made by one is good at the others.
    """
    state = app[CONSOLE]
    if state.key is None:
        secret = await app[STORE].secret(SECRET_NAME, secrets.token_hex(KEY_HEX_CHARS // 2))
        state.key = secret.encode()
    return state.key
