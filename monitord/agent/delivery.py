"""Delivering the outbox to the store: in batches, with exponential backoff and jitter.

Two senders: ``EmbeddedSender`` applies events to a store in this process (the default:
an SQLite file beside the agent's state), ``HttpSender`` posts them to a central service.
A batch is removed from the outbox only after the store accepted it.

A store that is down or slow (a network error, a 5xx, a 401 for a token being replaced)
is waited for with backoff. A store that refuses a batch (a 4xx) is refusing something in
it: the batch is split in halves until the event it refuses is alone, that event goes to
the outbox's dead letters with the store's answer (``on_dead`` hears of it: the daemon
raises a problem of its own), and everything else is delivered in order. One bad event
never holds back the rest.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from monitord.agent.outbox import Outbox
from monitord.config import StoreConfig
from monitord.errors import DeliveryError, Rejected, SecretError, StateError
from monitord.events import Event, utc_now
from monitord.schema import PolicyConfig, read_secret_file
from monitord.store.backends import sqlite_path
from monitord.store.policy import Policy
from monitord.store.protocol import Store

log = logging.getLogger(__name__)

BATCH = 100
MIN_BACKOFF = 1.0
MAX_BACKOFF = 60.0
IDLE_RECHECK = 5.0
IO_TIMEOUT = 30.0


class Sender(Protocol):
    async def send(self, events: Sequence[Event]) -> None: ...


class EmbeddedSender:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def send(self, events: Sequence[Event]) -> None:
        try:
            await self.store.apply(events, utc_now())
        except (StateError, OSError, TimeoutError) as e:
            raise DeliveryError(f"the incident store failed: {e}") from None
        except (ValueError, TypeError, OverflowError) as e:   # the events', not the store's
            raise Rejected(f"the incident store refused it: {e}") from None


class HttpSender:
    """POSTs batches to ``URL/api/v1/events`` with this agent's token."""

    def __init__(self, url: str, token: str, session: Any, timeout: float = 20.0) -> None:
        self.endpoint = url.rstrip("/") + "/api/v1/events"
        self._headers = {"Authorization": f"Bearer {token}"}
        self._session = session
        self._timeout = timeout

    async def send(self, events: Sequence[Event]) -> None:
        import aiohttp

        body = '{"events": [' + ",".join(e.model_dump_json() for e in events) + "]}"
        headers = {**self._headers, "Content-Type": "application/json"}
        try:
            async with asyncio.timeout(self._timeout):
                async with self._session.post(self.endpoint, data=body.encode(),
                                              headers=headers) as resp:
                    text = (await resp.text(errors="replace"))[:500]
                    status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            raise DeliveryError(f"cannot reach {self.endpoint}: {e or type(e).__name__}") from None
        if 200 <= status < 300:
            return
        if 400 <= status < 500 and status not in (401, 403, 408, 429):
            raise Rejected(f"{self.endpoint} refused it: {status} {text}")
        raise DeliveryError(f"{self.endpoint} answered {status}: {text}")


DeadHandler = Callable[[Event, str], Awaitable[None]]


class Deliverer:
    """Moves events from the outbox to a sender until cancelled."""

    def __init__(self, outbox: Outbox, sender: Sender, batch: int = BATCH,
                 on_dead: DeadHandler | None = None) -> None:
        self.outbox = outbox
        self.sender = sender
        self.batch = batch
        self.on_dead = on_dead
        self.sent = 0
        self.failing_since: str | None = None
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        backoff = MIN_BACKOFF
        while True:
            try:
                delivered = await self.deliver_once()
            except (DeliveryError, StateError, TimeoutError) as e:
                self._failing(str(e) or type(e).__name__)
                backoff = await _back_off(backoff)
                continue
            except Exception as e:  # never let one bad row or answer stop delivery for good
                log.exception("delivery failed unexpectedly")
                self._failing(f"{type(e).__name__}: {e}")
                backoff = await _back_off(backoff)
                continue
            self._recovered()
            backoff = MIN_BACKOFF
            if not delivered:
                self._wake.clear()
                try:
                    async with asyncio.timeout(IDLE_RECHECK):
                        await self._wake.wait()
                except TimeoutError:
                    pass

    async def deliver_once(self) -> int:
        """Send one batch; how many events left the outbox (0 when it was empty)."""
        async with asyncio.timeout(IO_TIMEOUT):
            rows = await asyncio.to_thread(self.outbox.peek, self.batch)
        if not rows:
            return 0
        return await self._deliver(rows)

    async def _deliver(self, rows: list[tuple[int, Event]]) -> int:
        """Send ``rows``; a refused batch is split until the refused event is alone."""
        try:
            await self.sender.send([event for _, event in rows])
        except Rejected as e:
            if len(rows) == 1:
                await self._bury(*rows[0], str(e))
                return 1
            half = len(rows) // 2
            return await self._deliver(rows[:half]) + await self._deliver(rows[half:])
        async with asyncio.timeout(IO_TIMEOUT):
            await asyncio.to_thread(self.outbox.remove, [seq for seq, _ in rows])
        self.sent += len(rows)
        return len(rows)

    async def _bury(self, seq: int, event: Event, answer: str) -> None:
        log.error("the store refused event %s (%s %s) for good: %s; it is kept in the "
                  "outbox's dead letters, and the events behind it go on", event.id,
                  event.kind, event.key, answer)
        async with asyncio.timeout(IO_TIMEOUT):
            await asyncio.to_thread(self.outbox.bury, seq, event, answer, time.time())
        if self.on_dead is not None:
            await self.on_dead(event, answer)

    async def flush(self, timeout: float) -> int:
        """Deliver what can be delivered within ``timeout`` (at shutdown); events left."""
        try:
            async with asyncio.timeout(timeout):
                while await self.deliver_once():
                    pass
        except (DeliveryError, TimeoutError) as e:
            log.warning("outbox not emptied at shutdown (%s); it is kept for next start", e)
        return await asyncio.to_thread(self.outbox.depth)

    def _failing(self, reason: str) -> None:
        if self.failing_since is None:
            log.error("cannot deliver events: %s; retrying with backoff", reason)
        self.failing_since = reason

    def _recovered(self) -> None:
        if self.failing_since is not None:
            log.info("delivering events again")
            self.failing_since = None


async def _back_off(backoff: float) -> float:
    """Sleep a random time up to ``backoff`` (full jitter); the next, doubled, bound."""
    await asyncio.sleep(random.uniform(0, backoff))
    return min(backoff * 2, MAX_BACKOFF)


async def make_sender(url: str, store: StoreConfig, policy: PolicyConfig
                      ) -> tuple[Sender, Callable[[], Awaitable[None]]]:
    """The sender for the store at ``url``, and what closes it."""
    path = sqlite_path(url)
    if path is not None:
        from monitord.store.sqlite import SQLiteStore

        embedded = await SQLiteStore.open(path, Policy.from_config(policy))
        return EmbeddedSender(embedded), embedded.close
    import aiohttp

    token = _read_token(store.token_file)
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=True if store.verify_tls else False),
        timeout=aiohttp.ClientTimeout(total=None))
    return HttpSender(url, token, session), session.close


def _read_token(path: str) -> str:
    if not path:
        raise StateError("[store] token_file: a central URL needs this agent's token "
                         "(made by `monitord central add-agent HOST`)")
    try:
        return read_secret_file(path, "token_file", required=True)
    except SecretError as e:
        raise StateError(f"[store] {e}") from None
