"""The generic webhook: one JSON document per notice, POSTed to the channel's URL, signed
when the channel has a ``secret_file`` and with its custom headers (``signing``).

The shape is documented in the README and stable, so anything can consume it:

    {"kind": "opened" | "escalated" | "renotify" | "acknowledged" | "resolved" | "flapping",
     "notice_id": 7,          # the same id again means the same notice again (a retry
                              # after a lost answer): receivers may drop repeats
     "level": 0,              # the escalation level, 0 = the first contact
     "incident": {...},       # as GET /api/v1/incidents/ID gives it, without the
                              # timeline, plus "url" when the incident's page is known
     "sent_at": "2026-11-25T17:00:00Z",
     "evidence": {            # why it is open (see notify/evidence.py)
       "last_reading": {"summary": ..., "readings": "response_seconds=0.041, ...",
                        "seen_at": ...},
       "tried": [{"fix", "command", "exit_code", "ended", "duration_seconds",
                  "reprobe_status", "reprobe_summary", "output"}, ...],
       "tried_left_out": 0, "url": ... | null}}
"""

from __future__ import annotations

import asyncio
from typing import Any

from monitord.central.notify.evidence import as_json
from monitord.central.notify.message import Message, Tools, encode, post_bytes
from monitord.central.notify.settings import ChannelConfig
from monitord.central.notify.signing import request_headers
from monitord.central.payloads import incident_json, timestamp


def document(message: Message) -> dict[str, Any]:
    incident = incident_json(message.incident)
    if message.url:
        incident["url"] = message.url
    document = {"kind": message.kind, "notice_id": message.notice_id,
                "level": message.level, "incident": incident,
                "sent_at": timestamp(message.sent_at)}
    if message.evidence is not None:
        document["evidence"] = as_json(message.evidence)
    return document


async def send(channel: ChannelConfig, message: Message, tools: Tools) -> None:
    body = encode(document(message))
    # The secret files are read in a thread: the event loop serves the API meanwhile.
    headers = await asyncio.to_thread(request_headers, channel.secret_file,
                                      channel.header_files, body, tools.wall_clock())
    await post_bytes(channel, body, headers, tools)
