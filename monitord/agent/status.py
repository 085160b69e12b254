"""The agent's local status endpoint: /status (JSON), /metrics (Prometheus), /healthz.

It listens on 127.0.0.1 only (``[status] listen``), or on a unix socket; nothing in it
changes anything. ``monitord status`` reads /status. It is a few requests a minute at
most, so it is a small HTTP/1.0-style server on asyncio's streams (one request per
connection, then close) rather than a web framework resident in every agent; /metrics
loads prometheus_client on the first scrape.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from typing import Any, Protocol

from monitord.agent.delivery import Deliverer
from monitord.agent.outbox import Outbox
from monitord.agent.state import CheckState
from monitord.config import Config
from monitord.model import Reading

MAX_REQUEST_BYTES = 8192        # a request line and headers; nothing reads a body
READ_SECONDS = 10.0             # a client that sends nothing is dropped after this
ROUTES = ("/status", "/metrics", "/healthz")
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
           500: "Internal Server Error"}
JSON = "application/json; charset=utf-8"
TEXT = "text/plain; charset=utf-8"


class Agent(Protocol):
    """What the status endpoint reads of the running agent (``daemon.Agent``)."""

    config: Config
    states: dict[str, CheckState]
    last_duration: dict[str, float]
    last_readings: dict[str, tuple[Reading, ...]]
    outcome_counts: dict[tuple[str, str], int]
    outbox: Outbox | None
    deliverer: Deliverer | None

    @property
    def outbox_depth(self) -> int: ...

    def fixing(self, name: str) -> bool: ...

    async def budgets_left(self) -> dict[str, int]: ...

    def status_line(self) -> str: ...

log = logging.getLogger(__name__)


class Endpoint:
    """The listening endpoint; ``cleanup`` closes it and the connections it is serving."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.server: asyncio.Server | None = None
        self._serving: set[asyncio.Task[Any]] = set()

    async def cleanup(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self._serving):
            task.cancel()
        await asyncio.gather(*self._serving, return_exceptions=True)
        if self.server is not None:
            await self.server.wait_closed()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._serving.add(task)
        try:
            async with asyncio.timeout(READ_SECONDS):
                head = await reader.readuntil(b"\r\n\r\n")
            writer.write(await self.answer(head))
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError,
                ConnectionError):
            pass   # a client that went away or sent too much: nothing to answer
        finally:
            writer.close()
            if task is not None:
                self._serving.discard(task)

    async def answer(self, head: bytes) -> bytes:
        """The whole response to a request whose line and headers are ``head``."""
        method, _, rest = head.partition(b" ")
        path = rest.partition(b" ")[0].partition(b"?")[0].decode("latin-1")
        if not method.isalpha() or not path.startswith("/"):
            return response(400, TEXT, b"bad request\n")
        if path not in ROUTES:
            return response(404, TEXT, b"not found\n")
        if method not in (b"GET", b"HEAD"):
            return response(405, TEXT, b"GET or HEAD only\n", ("Allow", "GET, HEAD"))
        try:
            kind, body = await self.view(path)
        except Exception:   # the endpoint's own bug must not take the agent's loop down
            log.exception("status endpoint: %s failed", path)
            return response(500, TEXT, b"internal error\n")
        return response(200, kind, b"" if method == b"HEAD" else body)

    async def view(self, path: str) -> tuple[str, bytes]:
        if path == "/status":
            return JSON, json.dumps(await status_document(self.agent)).encode()
        if path == "/metrics":
            from monitord.agent.metrics import exposition

            return TEXT, exposition(self.agent)
        return JSON, b'{"status": "ok"}'


def response(status: int, kind: str, body: bytes, *extra: tuple[str, str]) -> bytes:
    fields = [("Content-Type", kind), ("Content-Length", str(len(body))),
              ("Cache-Control", "no-store"), ("Connection", "close"), *extra]
    lines = [f"HTTP/1.1 {status} {REASONS[status]}", *(f"{k}: {v}" for k, v in fields)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def status_document(agent: Agent) -> dict[str, Any]:
    """Every check's state, since when, last summary and heal budget left."""
    budgets = await agent.budgets_left()
    checks = []
    for check in agent.config.checks:
        state = agent.states.get(check.name)
        if state is None:
            continue
        checks.append({
            "name": check.name, "probe": check.probe, "priority": check.priority,
            "status": state.status.name, "phase": state.phase,
            "hard_failing": state.hard_failing, "since": _iso(state.since),
            "last_run": _iso(state.last_run), "summary": state.summary,
            "flapping": state.flapping, "suppressed_by": state.suppressed_by,
            "fixing": agent.fixing(check.name),
            "heal_budget_left": budgets.get(check.name),
        })
    return {"host": agent.config.host, "summary": agent.status_line(), "checks": checks}


def _iso(at: float) -> str | None:
    if not at:
        return None
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat().replace("+00:00", "Z")


async def serve(agent: Agent, listen: str) -> Endpoint | None:
    """Serve ``agent``'s status on ``listen``; None when it is off ("") or cannot listen:
    the daemon's work matters more than its window on it."""
    if not listen:
        return None
    try:
        return await start(agent, listen)
    except OSError as e:
        log.error("status endpoint: cannot listen on %s (%s); running without it",
                  listen, e.strerror or e)
        return None


async def start(agent: Agent, listen: str) -> Endpoint:
    """Serve ``agent``'s status on ``listen`` ("127.0.0.1:8461" or "unix:/run/x.sock")."""
    endpoint = Endpoint(agent)
    started = time.monotonic()
    if listen.startswith("unix:"):
        endpoint.server = await asyncio.start_unix_server(
            endpoint.handle, listen.removeprefix("unix:"), limit=MAX_REQUEST_BYTES)
    else:
        host, _, port = listen.rpartition(":")
        endpoint.server = await asyncio.start_server(
            endpoint.handle, host.strip("[]"), int(port), limit=MAX_REQUEST_BYTES)
    log.debug("status endpoint on %s (%.0f ms)", listen, (time.monotonic() - started) * 1000)
    return endpoint
