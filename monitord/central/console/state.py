"""What the console keeps in the app: its templates, its signing key, a bound on the
password hashes computed at once (each takes 32 MiB; a burst of logins must not take
the service's memory), and the recent failed sign-ins per name (kept in this process's
memory only: each central process counts its own)."""

from __future__ import annotations

import asyncio
import secrets
from collections import OrderedDict, deque
from dataclasses import dataclass, field

import jinja2
from aiohttp import web

from monitord.central.console.render import environment
from monitord.central.console.sessions import SECRET_NAME
from monitord.central.keys import STORE

HASHES_AT_ONCE = 2
HASH_WAIT_SECONDS = 5.0         # a sign-in waits this long for a hashing slot, then 503
KEY_HEX_CHARS = 64
FAILURES_ALLOWED = 5            # failed sign-ins for one name within FAILURE_WINDOW ...
FAILURE_WINDOW_SECONDS = 15 * 60
LOCKOUT_SECONDS = 60            # ... refuse that name this long
TRACKED_NAMES = 10_000          # beyond this, the name failing longest ago is forgotten
TRACKED_NAME_CHARS = 200        # as a person's name at most


@dataclass
class _Failures:
    times: deque[float] = field(default_factory=lambda: deque(maxlen=FAILURES_ALLOWED))
    locked_until: float = 0.0


class SignInFailures:
    """Failed sign-ins per name typed (existing or not, so a refusal tells nothing about
    which names exist), in seconds of the app's clock."""

    def __init__(self) -> None:
        self._names: OrderedDict[str, _Failures] = OrderedDict()

    def locked(self, name: str, now: float) -> float:
        """Seconds this name is still refused for; 0 if it may try."""
        entry = self._names.get(name[:TRACKED_NAME_CHARS])
        return max(entry.locked_until - now, 0.0) if entry is not None else 0.0

    def failed(self, name: str, now: float) -> bool:
        """Counts a failure; True if it starts a lockout of the name."""
        key = name[:TRACKED_NAME_CHARS]
        entry = self._names.pop(key, None) or _Failures()
        self._names[key] = entry                # the most recent failure last
        entry.times.append(now)
        while len(self._names) > TRACKED_NAMES:
            self._names.popitem(last=False)
        if (len(entry.times) == FAILURES_ALLOWED
                and now - entry.times[0] < FAILURE_WINDOW_SECONDS):
            entry.locked_until = now + LOCKOUT_SECONDS
            return True
        return False

    def succeeded(self, name: str) -> None:
        self._names.pop(name[:TRACKED_NAME_CHARS], None)


@dataclass
class Console:
    env: jinja2.Environment = field(default_factory=environment)
    hashing: asyncio.Semaphore = field(
        default_factory=lambda: asyncio.Semaphore(HASHES_AT_ONCE))
    key: bytes | None = None
    failures: SignInFailures = field(default_factory=SignInFailures)


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
