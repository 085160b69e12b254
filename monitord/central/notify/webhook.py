"""The generic webhook: one JSON document per notice, POSTed to the channel's URL.

The shape is documented in the README and stable, so anything can consume it:

    {"kind": "opened" | "escalated" | "renotify" | "acknowledged" | "resolved" | "flapping",
     "notice_id": 7,          # the same id again means the same notice again (a retry
                              # after a lost answer): receivers may drop repeats
     "level": 0,              # the escalation level, 0 = the first contact
     "incident": {...},       # as GET /api/v1/incidents/ID gives it, without the
                              # timeline, plus "url" when the incident's page is known
     "sent_at": "2026-11-25T17:00:00Z"}
"""

from __future__ import annotations

from typing import Any

from monitord.central.notify.message import Message, Tools, post_json
from monitord.central.notify.settings import ChannelConfig
from monitord.central.payloads import incident_json, timestamp


def document(message: Message) -> dict[str, Any]:
    incident = incident_json(message.incident)
    if message.url:
        incident["url"] = message.url
    return {"kind": message.kind, "notice_id": message.notice_id, "level": message.level,
            "incident": incident, "sent_at": timestamp(message.sent_at)}


async def send(channel: ChannelConfig, message: Message, tools: Tools) -> None:
    await post_json(channel, document(message), tools)
