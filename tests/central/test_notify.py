"""Notifications and SLA escalation end to end: events through the real API into a real
store (every backend), notices delivered by the app's notifier to real servers on
127.0.0.1 (mail to an SMTP server, JSON to webhooks, Slack and a PagerDuty stand-in).
The test moves the app's clock and runs one notification round at a time."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from monitord.central.notify.notifier import Delivery
from monitord.central.notify.settings import Notifications, load_notifications
from monitord.central.tasks import notify_once
from monitord.config import _Loader
from monitord.store.protocol import Store
from tests.central.apiclient import T0, Api, config, heartbeat, problem, recovery, running
from tests.central.receivers import (
    HANG,
    PAGERDUTY_PATH,
    WAIT_SECONDS,
    mail_server,
    receiving,
    wait_until,
)

ROUTING_KEY = "R0ut1ngKeyR0ut1ngKeyR0ut1ngKey32"
SLACK_SECRET = "T0000/B0000/XXXXsecretXXXX"


def notifications(table: dict[str, Any]) -> Notifications:
    """``table`` as a central.toml would hold it, validated by the real loader."""
    loader = _Loader(Path("central.toml"))
    notify = load_notifications(loader, Path("central.toml"), table)
    assert loader.problems == []
    return notify


def settings(*channels: dict[str, Any], chain: tuple[str, ...] = (),
             mail: dict[str, Any] | None = None, **escalation: Any) -> Notifications:
    # Rounds are run by the tests; the app's own loop waits an hour between them.
    table: dict[str, Any] = {"channel": list(channels), "escalation": {
        "chain": list(chain), "check_every": "1h", **escalation}}
    if mail is not None:
        table["mail"] = mail
    return notifications(table)


def hook(name: str, url: str, type: str = "webhook", **keys: Any) -> dict[str, Any]:
    return {"name": name, "type": type, "url": url, **keys}


@asynccontextmanager
async def central(store: Store, notify: Notifications,
                  public_url: str = "") -> AsyncIterator[Api]:
    cfg = config()
    central = cfg.central.model_copy(update={"public_url": public_url})
    async with running(store, dataclasses.replace(cfg, central=central, notify=notify)) as api:
        yield api


async def open_incident(api: Api, priority: str = "P2", **fields: Any) -> int:
    response = await api.post_events(problem("shop", priority, **fields))
    assert response.status == 200, await response.text()
    [incident] = await api.store.incidents()
    return incident.id


async def round_at(api: Api, minutes: float) -> list[Delivery]:
    """One notification round with the app's clock at T0 + ``minutes``."""
    api.clock.now = T0 + dt.timedelta(minutes=minutes)
    return await notify_once(api.app)


async def act(api: Api, incident_id: int, action: str, minutes: float) -> None:
    api.clock.now = T0 + dt.timedelta(minutes=minutes)
    response = await api.act(incident_id, action, {"note": "on it"})
    assert response.status == 200, await response.text()


async def notified(store: Store, incident_id: int) -> list[str]:
    """The incident's "notified" timeline entries."""
    incident = await store.incident(incident_id)
    return [entry.text for entry in incident.timeline if entry.kind == "notified"]


# --- mail ---------------------------------------------------------------------------------

async def test_mail_is_templated_and_cannot_be_given_headers(store: Store) -> None:
    async with mail_server() as (port, mailbox):
        notify = settings(
            {"name": "oncall-mail", "type": "mail",
             "to": ["oncall@example.com", "lead@example.com"]},
            mail={"host": "127.0.0.1", "port": port, "from": "monitord@central.example"})
        async with central(store, notify) as api:
            incident_id = await open_incident(
                api, "P1", summary="HTTP 502 from http://127.0.0.1/\r\nBcc: victim@example.com")
            [delivery] = await round_at(api, 0)
            assert delivery.told == ["oncall-mail"]
            response = await api.post_events(recovery("shop"))
            assert response.status == 200
            await round_at(api, 1)
    [(recipients, opened), (_, resolved)] = mailbox.messages
    assert recipients == ["oncall@example.com", "lead@example.com"]
    assert opened["Subject"] == ("[P1] web1/shop opened: HTTP 502 from http://127.0.0.1/ "
                                 "Bcc: victim@example.com")
    assert opened["Bcc"] is None
    assert opened["From"] == "monitord@central.example"
    assert opened["To"] == "oncall@example.com, lead@example.com"
    assert opened["Auto-Submitted"] == "auto-generated"
    body = opened.get_content()
    assert "shop on web1: opened." in body
    assert "HTTP 502 from http://127.0.0.1/" in body
    assert "P1, open; due in 15m" in body
    assert f"monitord incidents ack {incident_id}" in body
    assert resolved["Subject"].startswith("[P1] web1/shop resolved by monitord: ")
    assert resolved["References"] == opened["References"]     # one thread per incident
    assert await notified(store, incident_id) == ["opened: told oncall-mail",
                                                  "resolved: told oncall-mail"]


async def test_admin_templates_replace_the_stock_subject(store: Store, tmp_path: Path) -> None:
    (tmp_path / "mail.title.j2").write_text("{{ priority }} on {{ host }}: {{ what }}\n")
    async with receiving() as hooks:
        notify = settings(hook("chat", hooks.url + "/chat", "slack"),
                          mail={"templates_dir": str(tmp_path)})
        async with central(store, notify) as api:
            await open_incident(api, "P3")
            await round_at(api, 0)
    [body] = hooks.at("/chat")
    assert body["text"].splitlines()[0] == "P3 on web1: opened"


# --- webhooks -----------------------------------------------------------------------------

async def test_webhook_gets_the_documented_document(store: Store) -> None:
    async with receiving() as hooks:
        async with central(store, settings(hook("ops", hooks.url + "/ops"))) as api:
            incident_id = await open_incident(api, "P2")
            [delivery] = await round_at(api, 0)
    [request] = hooks.requests
    assert request.headers["Content-Type"].startswith("application/json")
    body = request.body
    assert set(body) == {"kind", "notice_id", "level", "incident", "sent_at", "evidence"}
    assert body["evidence"] == {
        "last_reading": {"summary": "shop: HTTP 502", "readings": "",
                         "seen_at": "2026-11-25T17:00:00Z"},
        "tried": [], "tried_left_out": 0, "url": None}
    assert (body["kind"], body["level"], body["sent_at"]) == ("opened", 0,
                                                              "2026-11-25T17:00:00Z")
    assert body["notice_id"] == delivery.notice.id
    incident = body["incident"]
    assert "timeline" not in incident
    assert {k: incident[k] for k in ("id", "key", "host", "check", "priority", "status",
                                     "summary", "opened_at", "due_at")} == {
        "id": incident_id, "key": "web1/shop", "host": "web1", "check": "shop",
        "priority": "P2", "status": "open", "summary": "shop: HTTP 502",
        "opened_at": "2026-11-25T17:00:00Z", "due_at": "2026-11-25T19:00:00Z"}


async def test_slack_text_is_escaped(store: Store) -> None:
    async with receiving() as hooks:
        async with central(store, settings(hook("chat", hooks.url + "/chat", "slack"))) as api:
            await open_incident(api, summary="<!channel> disk & <b>full</b>")
            await round_at(api, 0)
    [body] = hooks.at("/chat")
    assert set(body) == {"text"}
    assert "<!channel>" not in body["text"]
    assert "<b>" not in body["text"]
    assert "&lt;!channel&gt; disk &amp; &lt;b&gt;full&lt;/b&gt;" in body["text"]


async def test_notices_link_to_the_incidents_console_page(store: Store) -> None:
    async with receiving() as hooks:
        notify = settings(hook("ops", hooks.url + "/ops"), hook("chat", hooks.url + "/chat",
                                                                  "slack"))
        async with central(store, notify, public_url="https://central.example") as api:
            incident_id = await open_incident(api)
            await round_at(api, 0)
    page = f"https://central.example/console/incidents/{incident_id}"
    [document] = hooks.at("/ops")
    assert document["incident"]["url"] == page
    [chat] = hooks.at("/chat")
    assert chat["text"].splitlines()[-1] == f"<{page}|incident {incident_id}>"


# --- PagerDuty ----------------------------------------------------------------------------

async def test_pagerduty_is_triggered_acknowledged_and_resolved(
        store: Store, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    key_file = tmp_path / "pagerduty.key"
    key_file.write_text(ROUTING_KEY + "\n")
    async with receiving() as pd:
        notify = settings(hook("pager", pd.url + PAGERDUTY_PATH, "pagerduty",
                               routing_key_file=str(key_file)))
        async with central(store, notify) as api:
            incident_id = await open_incident(api, "P1")
            await round_at(api, 0)
            await act(api, incident_id, "acknowledge", 1)
            await round_at(api, 1)
            await act(api, incident_id, "resolve", 2)
            await round_at(api, 2)
    trigger, acknowledge, resolve = pd.at(PAGERDUTY_PATH)
    assert trigger["event_action"] == "trigger"
    assert trigger["routing_key"] == ROUTING_KEY
    assert trigger["dedup_key"] == "web1/shop"
    payload = trigger["payload"]
    assert (payload["source"], payload["severity"], payload["component"]) == (
        "web1", "critical", "shop")
    assert payload["summary"].startswith("[P1] web1/shop opened: shop: HTTP 502")
    assert payload["custom_details"]["incident"] == incident_id
    assert acknowledge == {"routing_key": ROUTING_KEY, "event_action": "acknowledge",
                           "dedup_key": "web1/shop"}
    assert resolve == {"routing_key": ROUTING_KEY, "event_action": "resolve",
                       "dedup_key": "web1/shop"}
    assert await notified(store, incident_id) == [
        "opened: told pager", "acknowledged: told pager", "resolved: told pager"]
    assert ROUTING_KEY not in caplog.text


async def test_a_bad_routing_key_is_refused_and_recorded(store: Store, tmp_path: Path) -> None:
    key_file = tmp_path / "pagerduty.key"
    key_file.write_text("too-short\n")
    async with receiving() as pd:
        notify = settings(hook("pager", pd.url + PAGERDUTY_PATH, "pagerduty",
                               routing_key_file=str(key_file)))
        async with central(store, notify) as api:
            incident_id = await open_incident(api, "P2")
            [delivery] = await round_at(api, 0)
            assert await round_at(api, 60) == []
    assert list(delivery.refused) == ["pager"]
    [text] = await notified(store, incident_id)
    assert text.startswith("opened: pager refused it: HTTP 400: ")
    assert "routing_key must be a 32-character string" in text


# --- retries ------------------------------------------------------------------------------

async def test_a_failing_webhook_gets_the_notice_once_it_answers(store: Store) -> None:
    async with receiving() as hooks:
        hooks.scripts["/ops"] = [500, 500]
        async with central(store, settings(hook("ops", hooks.url + "/ops"))) as api:
            incident_id = await open_incident(api)
            [first] = await round_at(api, 0)
            assert first.failed == {"ops": 'HTTP 500: {"error": "scripted 500"}'}
            assert first.retry_at is not None
            assert T0 + dt.timedelta(seconds=5) <= first.retry_at <= T0 + dt.timedelta(seconds=10)
            assert await round_at(api, 0) == []                   # not due again yet
            [second] = await round_at(api, 11)
            assert second.failed and second.notice.attempts == 2
            [third] = await round_at(api, 22)
            assert third.told == ["ops"] and third.retry_at is None
            assert await round_at(api, 60) == []
    assert len(hooks.at("/ops")) == 3
    assert len({body["notice_id"] for body in hooks.at("/ops")}) == 1
    assert await notified(store, incident_id) == ["opened: told ops"]


async def test_a_refusal_is_not_retried(store: Store) -> None:
    async with receiving() as hooks:
        hooks.scripts["/ops"] = [400]
        async with central(store, settings(hook("ops", hooks.url + "/ops"))) as api:
            incident_id = await open_incident(api)
            [delivery] = await round_at(api, 0)
            assert delivery.refused == {"ops": 'HTTP 400: {"error": "scripted 400"}'}
            assert delivery.retry_at is None
            assert await round_at(api, 60) == []
    assert len(hooks.at("/ops")) == 1
    assert await notified(store, incident_id) == [
        'opened: ops refused it: HTTP 400: {"error": "scripted 400"}']


async def test_one_failing_channel_does_not_hold_back_the_others(store: Store) -> None:
    async with receiving() as hooks:
        hooks.scripts["/broken"] = [503]
        notify = settings(hook("ops", hooks.url + "/ops"), hook("broken", hooks.url + "/broken"))
        async with central(store, notify) as api:
            incident_id = await open_incident(api)
            [first] = await round_at(api, 0)
            [second] = await round_at(api, 11)
    assert (first.told, list(first.failed)) == (["ops"], ["broken"])
    assert second.told == ["broken"]                   # ops has it: not sent twice
    assert len(hooks.at("/ops")) == 1
    assert await notified(store, incident_id) == ["opened: told ops", "opened: told broken"]


async def test_delivery_is_given_up_after_retry_for(store: Store) -> None:
    async with receiving() as hooks:
        hooks.default = 503
        notify = settings(hook("ops", hooks.url + "/ops"), retry_for="1m")
        async with central(store, notify) as api:
            incident_id = await open_incident(api)
            [first] = await round_at(api, 0)
            assert first.failed
            [last] = await round_at(api, 2)
            assert await round_at(api, 60) == []
    assert last.given_up == {"ops": "retry_for (1m) has passed"}
    assert len(hooks.at("/ops")) == 1
    assert await notified(store, incident_id) == [
        "opened: could not tell ops: retry_for (1m) has passed"]


async def test_a_retry_past_retry_for_is_not_scheduled(store: Store) -> None:
    async with receiving() as hooks:
        hooks.default = 503
        # The first retry comes 5 to 10 s later: past the 5 s allowed.
        notify = settings(hook("ops", hooks.url + "/ops"), retry_for="5s")
        async with central(store, notify) as api:
            incident_id = await open_incident(api)
            [delivery] = await round_at(api, 0)
    assert delivery.retry_at is None
    assert await notified(store, incident_id) == [
        'opened: could not tell ops: HTTP 503: {"error": "scripted 503"} '
        "(attempt 1; retry_for 5s ends before the next)"]


async def test_a_notice_the_incident_outgrew_is_not_retried(store: Store) -> None:
    async with receiving() as hooks:
        hooks.scripts["/ops"] = [500]
        async with central(store, settings(hook("ops", hooks.url + "/ops"))) as api:
            incident_id = await open_incident(api)
            [opened] = await round_at(api, 0)
            assert opened.failed
            response = await api.post_events(recovery("shop"))
            assert response.status == 200
            # "opened" waits for its retry, which holds nothing back; at the retry it is
            # old news, and "resolved" goes out after it, in the same round.
            given_up, resolved = await round_at(api, 11)
    assert given_up.given_up == {"ops": "the incident was resolved before it got through"}
    assert resolved.told == ["ops"]
    assert [body["kind"] for body in hooks.at("/ops")] == ["opened", "resolved"]
    assert await notified(store, incident_id) == [
        "opened: could not tell ops: the incident was resolved before it got through",
        "resolved: told ops"]


async def test_the_api_answers_while_a_channel_hangs(store: Store) -> None:
    async with receiving() as hooks:
        hooks.scripts["/slow"] = [HANG]
        notify = settings(hook("slow", hooks.url + "/slow", timeout="2s"))
        async with central(store, notify) as api:
            await open_incident(api)
            delivering = asyncio.create_task(notify_once(api.app))
            await wait_until(hooks.arrived)              # the send is under way, hanging
            response = await api.post_events(heartbeat())
            assert response.status == 200
            assert (await api.get("/api/v1/incidents")).status == 200
            async with asyncio.timeout(WAIT_SECONDS):
                [delivery] = await delivering
    assert delivery.failed == {"slow": "no answer within 2s"}


async def test_secrets_stay_out_of_the_log(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with receiving() as hooks:
        hooks.scripts[f"/services/{SLACK_SECRET}"] = [500, 404]
        notify = settings(hook("team-chat", f"{hooks.url}/services/{SLACK_SECRET}", "slack"))
        async with central(store, notify) as api:
            incident_id = await open_incident(api)
            await round_at(api, 0)
            await round_at(api, 11)
    assert "team-chat" in caplog.text
    assert SLACK_SECRET not in caplog.text
    assert hooks.url not in caplog.text
    assert not any(SLACK_SECRET in text for text in await notified(store, incident_id))


# --- escalation ---------------------------------------------------------------------------

async def test_escalation_and_reminders_follow_the_clock_until_acknowledged(
        store: Store) -> None:
    async with receiving() as hooks:
        notify = settings(hook("first", hooks.url + "/first"),
                          hook("second", hooks.url + "/second"),
                          hook("team", hooks.url + "/team"),
                          chain=("first", "second"), escalate_at=0.5, renotify_every="10m")
        async with central(store, notify) as api:
            incident_id = await open_incident(api, "P1")      # due in 15 minutes
            await round_at(api, 0)
            assert await round_at(api, 7) == []               # half of 15 min: 7.5 min
            [escalated] = await round_at(api, 8)
            assert (escalated.notice.kind, escalated.notice.level) == ("escalated", 1)
            assert await round_at(api, 17) == []              # told at 8 min: 10 min later
            [reminder] = await round_at(api, 19)
            assert reminder.notice.kind == "renotify"
            await act(api, incident_id, "acknowledge", 20)
            await round_at(api, 20)
            assert await round_at(api, 45) == []              # acknowledged: no more
            assert await round_at(api, 90) == []
            await act(api, incident_id, "resolve", 91)
            await round_at(api, 91)

    def kinds(path: str) -> list[str]:
        return [body["kind"] for body in hooks.at(path)]

    assert kinds("/first") == ["opened", "renotify", "acknowledged", "resolved"]
    assert kinds("/second") == ["escalated", "renotify", "acknowledged", "resolved"]
    assert kinds("/team") == ["opened", "escalated", "renotify", "acknowledged", "resolved"]
    assert [body["level"] for body in hooks.at("/second")] == [1, 1, 1, 1]
    assert await notified(store, incident_id) == [
        "opened: told first, team", "escalated: told second, team",
        "still unacknowledged: told first, second, team",
        "acknowledged: told first, second, team", "resolved: told first, second, team"]


async def test_a_channel_hears_only_its_priorities(store: Store) -> None:
    async with receiving() as hooks:
        notify = settings(hook("pager", hooks.url + "/pager", priorities=["P1"]),
                          hook("ops", hooks.url + "/ops"))
        async with central(store, notify) as api:
            await open_incident(api, "P3")
            [delivery] = await round_at(api, 0)
            assert delivery.told == ["ops"]
            # A worse problem raises the priority: now the P1 channel hears of it.
            response = await api.post_events(problem("shop", "P1"))
            assert response.status == 200
            [raised] = await round_at(api, 1)
    assert raised.notice.kind == "escalated"
    assert raised.told == ["pager", "ops"]
    assert [body["kind"] for body in hooks.at("/pager")] == ["escalated"]
