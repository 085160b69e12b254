"""PagerDuty's Events API v2: opened, escalated and renotify trigger; acknowledged
acknowledges; resolved resolves.

The incident's key (``host/check``) is the dedup key, so one monitord incident is one
PagerDuty incident however often it is triggered, and its acknowledgement and resolution
close the right one. A trigger carries the payload (summary, source = host, severity by
priority, component = check, the incident's details with the last reading and what
the junior tier tried, each fix's output trimmed); acknowledge and resolve carry only
the routing key, the action and the dedup key, as the API wants. The routing key is
read from ``routing_key_file`` at each send (so it can be rotated without a restart), in
a thread, only from a regular file, and registered as a secret: it is never logged. A
person's PagerDuty contact names a file in ``[notify] pagerduty_keys_dir``, read only as
``keyfiles`` allows.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
from collections.abc import Callable
from typing import Any

from monitord.central.notify import keyfiles
from monitord.central.notify.evidence import as_json
from monitord.central.notify.message import Message, Tools, post_json
from monitord.central.notify.settings import ChannelConfig, ContactChannel
from monitord.central.payloads import timestamp
from monitord.errors import MonitordError, SendError
from monitord.model import Priority

SEVERITY = {Priority.P1: "critical", Priority.P2: "error", Priority.P3: "warning"}
ACTION = {"opened": "trigger", "escalated": "trigger", "renotify": "trigger",
          "acknowledged": "acknowledge", "resolved": "resolve", "flapping": "trigger"}
MAX_SUMMARY_CHARS = 1024      # the API's limits
MAX_DEDUP_KEY_CHARS = 255


def dedup_key(key: str) -> str:
    """The incident key; a longer one than the API takes keeps a hash of the whole."""
    if len(key) <= MAX_DEDUP_KEY_CHARS:
        return key
    return f"{key[:MAX_DEDUP_KEY_CHARS - 17]}#{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def document(message: Message, routing_key: str) -> dict[str, Any]:
    incident = message.incident
    action = ACTION[message.kind]
    event: dict[str, Any] = {"routing_key": routing_key, "event_action": action,
                             "dedup_key": dedup_key(incident.key)}
    if action != "trigger":
        return event
    details: dict[str, Any] = {
        "incident": incident.id, "priority": incident.priority, "status": incident.status,
        "notice": message.kind, "escalation_level": message.level, "title": incident.title,
        "opened_at": timestamp(incident.opened_at), "due_at": timestamp(incident.due_at),
        "count": incident.count}
    if message.url:
        details["url"] = message.url
    if message.evidence is not None:
        evidence = as_json(message.evidence)
        details["last_reading"] = evidence["last_reading"]
        details["tried"] = evidence["tried"]
        details["tried_left_out"] = evidence["tried_left_out"]
    event["payload"] = {
        "summary": message.subject[:MAX_SUMMARY_CHARS],
        "source": incident.host,
        "severity": SEVERITY[incident.priority],
        "component": incident.check,
        "custom_details": details,
    }
    event["client"] = "monitord"
    if message.url:
        event["client_url"] = message.url
    return event


async def send(channel: ChannelConfig, message: Message, tools: Tools) -> None:
    try:
        routing_key = await asyncio.to_thread(key_reader(channel))
    except MonitordError as e:     # the admin can fix the file: worth retrying
        raise SendError(str(e), retry=True) from None
    if not routing_key.strip():
        raise SendError(f"routing_key_file {channel.routing_key_file} is empty", retry=True)
    await post_json(channel, document(message, routing_key.strip()), tools)


def key_reader(channel: ChannelConfig) -> Callable[[], str]:
    """How the channel's routing key is read: a person's contact only from the keys
    directory, safely; a config channel's file as the admin wrote it."""
    if isinstance(channel, ContactChannel):
        return functools.partial(keyfiles.read_key, channel.routing_key_file,
                                 channel.keys_dir)
    return functools.partial(keyfiles.read_secret, channel.routing_key_file,
                             "routing_key_file")
