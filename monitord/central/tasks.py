"""The central app's background tasks: the heartbeat sweeper and the notifier.

Each is started with the app (``cleanup_ctx``) and cancelled and awaited at shutdown; a
round that fails is logged and tried again next time, so neither task ever ends early.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from monitord.central.keys import CLOCK, CONFIG, STORE, SWEEPER, Clock
from monitord.central.metrics import METRICS
from monitord.central.notify.notifier import Delivery, Notifier
from monitord.central.payloads import timestamp
from monitord.errors import StateError
from monitord.store.protocol import Store

log = logging.getLogger(__name__)

NOTIFIER = web.AppKey("notifier", Notifier)
SWEEP_TIMEOUT_SECONDS = 60.0


async def sweeper_ctx(app: web.Application) -> AsyncIterator[None]:
    # Agents that were cut off while the service was down need time to reconnect (their
    # backoff tops out at a minute) before their silence means anything.
    task = asyncio.create_task(sweep_forever(app[STORE], app[CLOCK],
                                             app[CONFIG].central.sweep_every,
                                             first_after=app[CONFIG].policy.min_silence))
    app[SWEEPER] = task
    try:
        yield
    finally:
        await stop(task)


async def sweep_forever(store: Store, clock: Clock, every_seconds: float,
                        first_after: float = 0.0) -> None:
    """Every ``every_seconds``: open "server down" for silent hosts, log each one."""
    await asyncio.sleep(first_after)
    while True:
        await sweep_once(store, clock)
        await asyncio.sleep(every_seconds)


async def sweep_once(store: Store, clock: Clock) -> None:
    try:
        async with asyncio.timeout(SWEEP_TIMEOUT_SECONDS):
            opened = await store.sweep(clock())
    except (StateError, TimeoutError) as e:   # retried next round; the sweeper goes on
        log.error("central: the heartbeat sweep failed; trying again next round: %s",
                  e or "no answer in time")
        return
    except Exception:
        log.exception("central: the heartbeat sweep failed; trying again next round")
        return
    for incident in opened:
        log.warning("central: server down: %s: %s (incident %d, %s, due %s)",
                    incident.host, incident.summary or incident.title, incident.id,
                    incident.priority, timestamp(incident.due_at))


async def notify_once(app: web.Application, now: dt.datetime | None = None) -> list[Delivery]:
    """One notification round of a running app, at ``now`` (default: the app's clock)."""
    return await app[NOTIFIER].once(now if now is not None else app[CLOCK]())


async def notifier_ctx(app: web.Application) -> AsyncIterator[None]:
    """The app's notifier: started with the app, cancelled and awaited at shutdown."""
    notifier = Notifier(app[CONFIG].notify, app[CONFIG].central.public_url, app[STORE],
                        app[CLOCK])
    await notifier.start()
    notifier.observers.append(app[METRICS].delivered)
    app[NOTIFIER] = notifier
    task = asyncio.create_task(notifier.run())
    try:
        yield
    finally:
        try:
            await stop(task)
        finally:
            await notifier.close()


async def stop(task: asyncio.Task[None]) -> None:
    """Cancel a background task and wait for it to end; a cancel of the caller itself
    (the shutdown being cancelled) still goes through."""
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            raise
