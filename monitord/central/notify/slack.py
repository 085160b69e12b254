"""Slack (and Slack-compatible chat: Mattermost, Rocket.Chat) through an incoming webhook.

The body is ``{"text": ...}`` in Slack's mrkdwn (plain ``text``, not blocks, so that the
Slack-compatible ones show it too): the mail subject line, what it sees, and for a
notice that asks for attention (opened, escalated, renotify, flapping) the evidence
(``notify.evidence``): the check's readings and when it was last seen, then each fix the
junior tier tried with its command, how it ended, what the re-probe said and its output
in a code block; last, the incident's page when known. Acknowledged and resolved say
who and link the page, like PagerDuty's acknowledge and resolve.

Slack reads ``&``, ``<`` and ``>`` as markup (``<URL|label>`` links, ``<!channel>``
mentions), so every text from an incident is escaped as Slack requires (a summary or a
fix's output cannot ping a whole channel), and a code block's fence cannot be closed by
the output in it. The text stays within ``MAX_TEXT_CHARS`` counted after escaping: each
output keeps its start and end (``evidence.trim``); if the whole is still too long the
outputs are left out, then the later fixes, and the text says so. The webhook URL is the
channel's secret: it is never logged.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from monitord.central.notify.evidence import Evidence, Tried, trim
from monitord.central.notify.message import Message, Tools, post_json
from monitord.central.notify.settings import ChannelConfig
from monitord.texts import one_line

# Slack asks to keep a message's text within 4,000 characters (it truncates at 40,000);
# Rocket.Chat takes 5,000 by default, Mattermost 16,383.
MAX_TEXT_CHARS = 4000
MAX_SUBJECT_CHARS = 600
MAX_SUMMARY_CHARS = 1000
MAX_READINGS_CHARS = 600
MAX_STEP_CHARS = 600           # a fix's line: its name, command, end and re-probe
MAX_OUTPUT_CHARS = 700         # a fix's output, escaped, in its code block
ASKING = ("opened", "escalated", "renotify", "flapping")
ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
FENCE = "```"


def escape(text: str) -> str:
    """Slack's escaping: only these three characters are control characters there."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escaped(text: str, limit: int) -> str:
    """``text`` escaped, within ``limit`` characters: cut with "…" between characters
    (never inside an ``&amp;``) when it is longer."""
    whole = escape(text)
    if len(whole) <= limit:
        return whole
    kept: list[str] = []
    used = 0
    for char in text:
        piece = ESCAPES.get(char, char)
        if used + len(piece) > limit - 1:
            break
        kept.append(piece)
        used += len(piece)
    return "".join(kept) + "…"


def document(message: Message) -> dict[str, Any]:
    head = [escaped(one_line(message.subject, MAX_SUBJECT_CHARS), MAX_SUBJECT_CHARS)]
    incident = message.incident
    if incident.summary and incident.summary not in message.subject:
        head.append(escaped(incident.summary, MAX_SUMMARY_CHARS))
    tail = [f"<{message.url}|incident {incident.id}>"] if message.url else []
    evidence = message.evidence
    if evidence is not None and message.kind in ASKING:
        head.extend(_reading(evidence))
        return {"text": fitted(head, evidence, message.kind, tail)}
    return {"text": "\n".join([*head, *tail])[:MAX_TEXT_CHARS]}


async def send(channel: ChannelConfig, message: Message, tools: Tools) -> None:
    await post_json(channel, document(message), tools)


# --- the evidence, in mrkdwn ---------------------------------------------------------------

def _reading(evidence: Evidence) -> list[str]:
    """The readings and when the problem was last seen, on one line (or none)."""
    seen = "" if evidence.seen_at is None else \
        f"{evidence.seen_at.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"
    if evidence.readings:
        return [f"*Readings:* {escaped(evidence.readings, MAX_READINGS_CHARS)}"
                + (f" (seen {seen})" if seen else "")]
    return [f"*Last seen:* {seen}"] if seen else []


def _tried(evidence: Evidence, kind: str, count: int, outputs: int) -> list[str]:
    """The fixes tried: the first ``count`` of them, the last ``outputs`` of those with
    their output, and a line saying what was left out."""
    steps = evidence.tried
    if not steps:
        return [] if kind == "flapping" else ["Nothing was tried before it was escalated."]
    lines = ["*What the junior tier tried:*"]
    lines.extend(_step(number, step, number > count - outputs)
                 for number, step in enumerate(steps[:count], start=1))
    left = []
    if evidence.left_out:
        left.append(f"{_fixes(evidence.left_out, 'earlier')} before these")
    if count < len(steps):
        left.append(_fixes(len(steps) - count, "later"))
    hidden = sum(1 for step in steps[:max(count - outputs, 0)] if step.output.strip())
    if hidden:
        left.append(f"the output of {_fixes(hidden)}")
    if left:
        lines.append(f"(left out here, on the incident's page: {', '.join(left)})")
    return lines


def _fixes(count: int, which: str = "") -> str:
    """"1 fix", "3 earlier fixes"."""
    return " ".join(filter(None, (str(count), which, "fix" if count == 1 else "fixes")))


def _step(number: int, step: Tried, output: bool) -> str:
    ended = step.ended or (f"exit {step.exit_code}" if step.exit_code is not None
                           else "no exit code")
    reprobe = ""
    if step.reprobe_status:
        reprobe = f"; re-probe: {step.reprobe_status}" + (
            f": {one_line(step.reprobe_summary, 300)}" if step.reprobe_summary else "")
    line = (f"{number}. {one_line(step.fix, 100)}: `{one_line(step.command, 200)}`, "
            f"{one_line(ended, 100)}{reprobe}")
    text = escaped(line, MAX_STEP_CHARS)
    if output and step.output.strip():
        text += f"\n{FENCE}\n{_output(step.output)}\n{FENCE}"
    return text


def _output(text: str) -> str:
    """A fix's output for a code block: its start and its end, escaped, within
    MAX_OUTPUT_CHARS, with no fence of its own to end the block early."""
    text = text.strip("\n").replace(FENCE, "`\u200b`\u200b`")
    # Escaping lengthens a character five times at most: a smaller budget always fits.
    for budget in (MAX_OUTPUT_CHARS, MAX_OUTPUT_CHARS // 2, MAX_OUTPUT_CHARS // 5):
        shown = escape(trim(text, budget))
        if len(shown) <= MAX_OUTPUT_CHARS:
            return shown
    return escaped(trim(text, MAX_OUTPUT_CHARS // 5), MAX_OUTPUT_CHARS)


def fitted(head: list[str], evidence: Evidence, kind: str, tail: list[str]) -> str:
    """Head, fixes tried and tail within MAX_TEXT_CHARS: every fix, with the output of as
    many of the last ones as fit (the last fix's output says most); else the first fixes
    that fit, without output."""
    count = len(evidence.tried)
    candidates = [*((count, outputs) for outputs in range(count, -1, -1)),
                  *((shown, 0) for shown in range(count - 1, -1, -1))]
    for shown, outputs in candidates:
        text = "\n".join([*head, *_tried(evidence, kind, shown, outputs), *tail])
        if len(text) <= MAX_TEXT_CHARS:
            return text
    return "\n".join([*head, *tail])[:MAX_TEXT_CHARS]
