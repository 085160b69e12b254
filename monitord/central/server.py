"""Running the central service, registering the tokens of agents, operators and scrapers,
and setting people's web console passwords.

``serve`` is uvicorn's lifecycle in small: start (store, sweeper, listening socket), wait
for the stop flag the signal handlers set, then shut down: connections get
``SHUTDOWN_TIMEOUT_SECONDS`` to finish, then the sweeper is cancelled and the store closed.
The store is the one ``store_url`` names (``backends.open_store``), opened (and migrated)
before the socket listens.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from monitord.central import auth
from monitord.central.app import create_app
from monitord.central.config import CentralConfig
from monitord.central.passwords import hash_password, password_problem
from monitord.central.sla import MONITORD
from monitord.errors import MonitordError
from monitord.events import is_name, utc_now
from monitord.store.protocol import Store

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_SECONDS = 10.0


async def serve(config: CentralConfig, stop: asyncio.Event) -> None:
    store = await config.open_store()
    try:
        await _serve(config, store, stop)
    finally:
        await store.close()


async def _serve(config: CentralConfig, store: Store, stop: asyncio.Event) -> None:
    runner = web.AppRunner(create_app(config, store), access_log=None,
                           shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS)
    await runner.setup()
    try:
        listen = config.central.listen
        site = web.TCPSite(runner, listen.host, listen.port)
        try:
            await site.start()
        except OSError as e:
            raise MonitordError(f"cannot listen on {listen}: {e.strerror}; "
                                "change [central] listen or stop what uses it") from None
        log.info("central: listening on http://%s/ (store %s)", listen, config.store_name)
        await stop.wait()
        log.info("central: stopping")
    finally:
        await runner.cleanup()


async def add_token(config: CentralConfig, kind: str, name: str) -> str:
    """Make and register a new token for agent host, operator or scraper ``name``; returns
    it."""
    check_name(kind, name)
    store = await config.open_store()
    try:
        if kind == "agent":
            return await auth.add_agent(store, name, utc_now())
        if kind == "scraper":
            return await auth.add_scraper(store, name, utc_now())
        return await auth.add_operator(store, name, utc_now())
    finally:
        await store.close()


async def add_user(config: CentralConfig, name: str, password: str) -> None:
    """Give person ``name`` a web console password (or a new one, ending their sessions)."""
    check_name("user", name)
    problem = password_problem(password)
    if problem:
        raise MonitordError(problem)
    hashed = await asyncio.to_thread(hash_password, password)
    store = await config.open_store()
    try:
        await store.set_password(name, hashed, utc_now())
    finally:
        await store.close()


def check_name(kind: str, name: str) -> None:
    """A host (``agent``) or a person's name (``user``, ``operator``): a person may not be
    called monitord, the name timelines and the SLA report give to automatic recoveries."""
    if not is_name(name):
        raise MonitordError(f"{kind} name {name!r}: expected letters, digits, \".\", \"_\", "
                            "\":\" or \"-\", starting with a letter or digit")
    if kind != "agent" and name.lower() == MONITORD:
        raise MonitordError(f"{kind} name {name!r}: reserved for monitord's own entries; "
                            "choose another")
