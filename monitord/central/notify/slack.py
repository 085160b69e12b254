"""Slack (and Slack-compatible chat: Mattermost, Rocket.Chat) through an incoming webhook.

The body is ``{"text": ...}``: the mail subject line, then what it sees, and the
incident's page when known. Slack reads ``&``, ``<`` and ``>`` as markup (``<URL|label>``
links, ``<!channel>`` mentions), so every text from an incident is escaped as Slack
requires; a summary cannot ping a whole channel. The webhook URL is the channel's
secret: it is never logged.
"""

from __future__ import annotations

from typing import Any

from monitord.central.notify.message import Message, Tools, post_json
from monitord.central.notify.settings import ChannelConfig

MAX_TEXT_CHARS = 3000     # Slack truncates longer texts; keep the end of ours readable


def escape(text: str) -> str:
    """Slack's escaping: only these three characters are control characters there."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def document(message: Message) -> dict[str, Any]:
    lines = [escape(message.subject)]
    incident = message.incident
    if incident.summary and incident.summary not in message.subject:
        lines.append(escape(incident.summary[:MAX_TEXT_CHARS]))
    if message.url:
        lines.append(f"<{message.url}|incident {incident.id}>")
    return {"text": "\n".join(lines)[:MAX_TEXT_CHARS]}


async def send(channel: ChannelConfig, message: Message, tools: Tools) -> None:
    await post_json(channel, document(message), tools)
