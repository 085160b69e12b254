"""Slack messages carry the evidence, as mail, webhooks and PagerDuty do: the last reading,
each fix the junior tier tried with how it ended and what the re-probe said, its output
trimmed at both ends, and the incident's link; every text from the incident escaped for
Slack's mrkdwn, the whole within Slack's length. Through the real API and store into a
real HTTP receiver on 127.0.0.1 standing in for the Slack webhook URL."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import aiohttp

from monitord.central.notify import slack
from monitord.central.notify.evidence import Evidence, Tried
from monitord.central.notify.message import Message, Tools
from monitord.central.notify.settings import ChannelConfig
from monitord.store.protocol import Store
from tests.central.receivers import receiving
from tests.central.test_notify import central, hook, round_at, settings
from tests.central.test_notify_evidence import PUBLIC_URL, problem_event
from tests.central.test_notify_senders import MESSAGE

HOSTILE = "<!channel> rm -rf & <b>bold</b> ``` closed?\n"
PAGE = f"{PUBLIC_URL}/console/incidents/1"


def fences_balanced(text: str) -> bool:
    return sum(line == slack.FENCE for line in text.splitlines()) % 2 == 0


async def test_a_slack_message_shows_the_reading_the_fixes_and_the_link(
        store: Store, tmp_path: Path) -> None:
    event = problem_event(tmp_path)
    event["steps"][0]["output"] = HOSTILE * 3
    async with receiving() as hooks:
        notify = settings(hook("chat", hooks.url + "/chat", "slack"))
        async with central(store, notify, PUBLIC_URL) as api:
            response = await api.post_events(event)
            assert response.status == 200, await response.text()
            [delivery] = await round_at(api, 0)
            assert delivery.told == ["chat"]
    [body] = hooks.at("/chat")
    assert set(body) == {"text"}
    text: str = body["text"]
    lines = text.splitlines()
    assert lines[0].startswith("[P1] web1/shop opened: ")
    assert ("*Readings:* response_seconds=0.041, status_code=502, "
            "used_ratio{mount=/var}=0.96 (seen 2026-11-25 17:00 UTC)") in lines
    assert "*What the junior tier tried:*" in lines
    assert ("1. reload-service: `reload-service nginx`, exit 0 in 0.3s; re-probe: "
            "CRITICAL: HTTP 502 from http://127.0.0.1/") in lines
    assert ("2. restart-service: `restart-service nginx`, exit 1 in 2.5s; re-probe: "
            "CRITICAL: HTTP 502 from http://127.0.0.1/") in lines
    assert "&lt;!channel&gt; rm -rf &amp; &lt;b&gt;bold&lt;/b&gt;" in text
    assert "<!channel>" not in text and "<b>" not in text
    assert fences_balanced(text)
    # The long output keeps its start and its end (where it says why), and says so.
    assert "start of the output" in text and "Job for nginx.service failed" in text
    assert "… [trimmed " in text and "x" * 800 not in text
    assert len(text) <= slack.MAX_TEXT_CHARS
    assert lines[-1] == f"<{PAGE}|incident 1>"


# --- within Slack's length, whatever the fixes said -----------------------------------------

def tried(number: int, output: str, reprobe: str = "HTTP 502") -> Tried:
    return Tried(fix=f"fix-{number}", command=f"fix-{number} nginx", exit_code=1,
                 ended="exit 1 in 1.0s", duration_seconds=1.0, reprobe_status="CRITICAL",
                 reprobe_summary=reprobe, output=output)


def message(steps: list[Tried], left_out: int = 0) -> Message:
    evidence = Evidence(summary="HTTP 502", seen_at=MESSAGE.sent_at, readings="",
                        tried=tuple(steps), left_out=left_out, url=PAGE)
    return dataclasses.replace(MESSAGE, url=PAGE, evidence=evidence)


async def sent_text(note: Message) -> str:
    async with receiving() as hooks, aiohttp.ClientSession() as http:
        channel = ChannelConfig.model_validate({"name": "chat", "type": "slack",
                                                "url": hooks.url + "/chat"})
        await slack.send(channel, note, Tools(http))
    [body] = hooks.at("/chat")
    text: Any = body["text"]
    assert isinstance(text, str)
    assert len(text) <= slack.MAX_TEXT_CHARS
    assert text.splitlines()[-1] == f"<{PAGE}|incident 7>"
    assert "<" not in text.replace(f"<{PAGE}|incident 7>", "")
    assert fences_balanced(text)
    return text


async def test_the_earlier_outputs_are_left_out_before_any_fix_is() -> None:
    # Output of nothing but "<": each character takes four once escaped.
    text = await sent_text(message([tried(n, "<" * 5000) for n in range(1, 11)], 3))
    for n in range(1, 11):
        assert f"{n}. fix-{n}: `fix-{n} nginx`, exit 1 in 1.0s; re-probe: CRITICAL: " \
               "HTTP 502" in text
    # The last fix's output says most: it is kept, the earlier ones go first.
    assert text.split("10. fix-10:", 1)[1].count(slack.FENCE) == 2
    kept = text.count(slack.FENCE) // 2
    assert 1 <= kept < 10
    assert text.splitlines()[-2] == ("(left out here, on the incident's page: 3 earlier "
                                     f"fixes before these, the output of {10 - kept} fixes)")


async def test_the_later_fixes_are_left_out_when_even_their_lines_are_too_long() -> None:
    text = await sent_text(message([tried(n, "", reprobe="&" * 1000) for n in range(1, 11)]))
    shown = [n for n in range(1, 11) if f"{n}. fix-{n}:" in text]
    assert shown == list(range(1, len(shown) + 1)) and 1 <= len(shown) < 10
    assert f"(left out here, on the incident's page: {10 - len(shown)} later fixes)" in text


async def test_an_acknowledgement_says_who_without_the_evidence() -> None:
    note = dataclasses.replace(message([tried(1, "reloaded")]), kind="acknowledged",
                               subject="[P1] web1/shop acknowledged by alice: HTTP 502")
    text = await sent_text(note)
    assert text.splitlines() == ["[P1] web1/shop acknowledged by alice: HTTP 502",
                                 f"<{PAGE}|incident 7>"]
