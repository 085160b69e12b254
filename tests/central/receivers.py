"""What the notifier talks to in the tests, all on 127.0.0.1: an HTTP server that records
every POST and answers as the test scripts it (a status, or never), a PagerDuty Events
API v2 stand-in that refuses any event not shaped as the API wants, and an SMTP server
that keeps the mail it is given."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiohttp import web

from tests.probes.mailservers import serve_smtp

HANG = 0                    # an answer that never comes (until the server stops)
WAIT_SECONDS = 10.0

PAGERDUTY_PATH = "/v2/enqueue"
SEVERITIES = {"critical", "error", "warning", "info"}
TRIGGER_KEYS = {"routing_key", "event_action", "dedup_key", "payload", "client",
                "client_url", "links", "images"}
PAYLOAD_KEYS = {"summary", "source", "severity", "timestamp", "component", "group",
                "class", "custom_details"}


@dataclass(frozen=True)
class Request:
    path: str
    body: Any
    headers: dict[str, str]


@dataclass
class Receiver:
    """Records every request; answers each path from its script, then ``default``."""

    url: str = ""
    requests: list[Request] = field(default_factory=list)
    scripts: dict[str, list[int]] = field(default_factory=dict)
    default: int = 200
    release: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def at(self, path: str) -> list[Any]:
        """The bodies POSTed to ``path``, in order."""
        return [r.body for r in self.requests if r.path == path]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(Request(request.path, body, dict(request.headers)))
        self.arrived.set()
        script = self.scripts.get(request.path)
        status = script.pop(0) if script else self.default
        if status == HANG:
            await self.release.wait()
        if request.path == PAGERDUTY_PATH:
            problems = pagerduty_problems(body)
            if problems:
                return web.json_response({"status": "invalid event", "message":
                                          "Event object is invalid", "errors": problems},
                                         status=400)
            return web.json_response({"status": "success", "message": "Event processed",
                                      "dedup_key": body["dedup_key"]}, status=202)
        if status >= 400:
            return web.json_response({"error": f"scripted {status}"}, status=status)
        return web.Response(text="ok", status=status)


def pagerduty_problems(event: Any) -> list[str]:
    """What the Events API v2 would refuse in ``event`` (none: [])."""
    if not isinstance(event, dict):
        return ["the event is not a JSON object"]
    problems = []
    action = event.get("event_action")
    if not isinstance(event.get("routing_key"), str) or len(event["routing_key"]) != 32:
        problems.append("routing_key must be a 32-character string")
    if not isinstance(event.get("dedup_key"), str) or not 0 < len(event["dedup_key"]) <= 255:
        problems.append("dedup_key must be a string of 1 to 255 characters")
    if action == "trigger":
        problems.extend(f"unknown key {k}" for k in set(event) - TRIGGER_KEYS)
        payload = event.get("payload")
        if not isinstance(payload, dict):
            return [*problems, "a trigger needs a payload"]
        problems.extend(f"unknown payload key {k}" for k in set(payload) - PAYLOAD_KEYS)
        for key in ("summary", "source", "severity"):
            if not isinstance(payload.get(key), str) or not payload[key]:
                problems.append(f"payload.{key} is required")
        if len(str(payload.get("summary", ""))) > 1024:
            problems.append("payload.summary is longer than 1024 characters")
        if payload.get("severity") not in SEVERITIES:
            problems.append("payload.severity must be critical, error, warning or info")
    elif action in ("acknowledge", "resolve"):
        extra = set(event) - {"routing_key", "event_action", "dedup_key"}
        problems.extend(f"{action} takes no {k}" for k in sorted(extra))
    else:
        problems.append("event_action must be trigger, acknowledge or resolve")
    return problems


@contextlib.asynccontextmanager
async def receiving() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/{path:.*}", receiver.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    receiver.url = f"http://127.0.0.1:{port}"
    try:
        yield receiver
    finally:
        receiver.release.set()          # a hanging answer ends now
        await runner.cleanup()


class Mailbox:
    """aiosmtpd's handler: keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.original_content,
                                          policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), parsed))
        return "250 OK"


@contextlib.asynccontextmanager
async def mail_server() -> AsyncIterator[tuple[int, Mailbox]]:
    mailbox = Mailbox()
    async with serve_smtp(handler=mailbox) as port:
        yield port, mailbox


async def wait_until(event: asyncio.Event) -> None:
    async with asyncio.timeout(WAIT_SECONDS):
        await event.wait()
