"""Notices carry the evidence: the last reading, what the junior tier tried (each fix, its
exit code and the re-probe) and the incident's link, with long output trimmed. The
problem comes from the agent's own event maker and templates, through the real API into
a real store (every backend), and out to real servers on 127.0.0.1: mail to an SMTP
server, a webhook and a PagerDuty Events API stand-in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from monitord.agent.events import EventMaker, event_renderer
from monitord.agent.healer import Outcome, Step
from monitord.central.notify.evidence import trim
from monitord.model import Priority, Reading, Result, Status
from monitord.store.protocol import Store
from tests.central.apiclient import T0
from tests.central.receivers import PAGERDUTY_PATH, mail_server, receiving
from tests.central.test_notify import ROUTING_KEY, central, hook, round_at, settings

PUBLIC_URL = "https://central.example"
LONG_OUTPUT = "start of the output\n" + "x" * 15000 + "\nJob for nginx.service failed\n"


def problem_event(tmp_path: Path) -> dict[str, Any]:
    """A problem as the agent makes it: two fixes tried, the second one's output long."""
    result = Result(Status.CRITICAL, "HTTP 502 from http://127.0.0.1/ in 41 ms",
                    (Reading("response_seconds", 0.041), Reading("status_code", 502),
                     Reading("used_ratio", 0.96, (("mount", "/var"),))))
    steps = (
        Step("reload-service", ("reload-service", "nginx"), 0, 0.3, "reloaded\n",
             "exit 0 in 0.3s", Status.CRITICAL, "HTTP 502 from http://127.0.0.1/"),
        Step("restart-service", ("restart-service", "nginx"), 1, 2.5, LONG_OUTPUT,
             "exit 1 in 2.5s", Status.CRITICAL, "HTTP 502 from http://127.0.0.1/"),
    )
    outcome = Outcome("problem", "shop", Priority.P1, "not fixed: 2 fixes tried", result,
                      steps)
    maker = EventMaker("web1", event_renderer(str(tmp_path / "no-templates")))
    document: dict[str, Any] = maker.from_outcome(outcome).model_dump(mode="json")
    document["at"] = T0.isoformat()    # the service's clock in these tests, not the present
    return document


def assert_transcript(tried: list[dict[str, Any]]) -> None:
    reload_, restart = tried
    assert (reload_["fix"], reload_["exit_code"], reload_["reprobe_status"]) == (
        "reload-service", 0, "CRITICAL")
    assert restart["command"] == "restart-service nginx"
    assert (restart["exit_code"], restart["ended"]) == (1, "exit 1 in 2.5s")
    assert restart["reprobe_summary"] == "HTTP 502 from http://127.0.0.1/"
    assert restart["output"].startswith("start of the output")
    assert restart["output"].rstrip().endswith("Job for nginx.service failed")
    assert "… [trimmed 13," in restart["output"] and " bytes] …" in restart["output"]
    assert len(restart["output"].encode()) < 2200


async def test_a_mail_shows_the_reading_the_fixes_and_the_link(store: Store,
                                                                 tmp_path: Path) -> None:
    async with mail_server() as (port, mailbox):
        notify = settings({"name": "oncall-mail", "type": "mail", "to": ["oncall@example.com"]},
                          mail={"host": "127.0.0.1", "port": port,
                                "from": "monitord@central.example"})
        async with central(store, notify, PUBLIC_URL) as api:
            response = await api.post_events(problem_event(tmp_path))
            assert response.status == 200, await response.text()
            [delivery] = await round_at(api, 0)
            assert delivery.told == ["oncall-mail"]
    [(_, message)] = mailbox.messages
    body = message.get_content().replace("\r\n", "\n")
    assert "What it sees:  HTTP 502 from http://127.0.0.1/ in 41 ms" in body
    assert "Readings:      response_seconds=0.041, status_code=502, " \
           "used_ratio{mount=/var}=0.96" in body
    assert "1. reload-service: reload-service nginx" in body
    assert "exit 0 in 0.3s; re-probe: CRITICAL: HTTP 502 from http://127.0.0.1/" in body
    assert "2. restart-service: restart-service nginx" in body
    assert "      Job for nginx.service failed" in body
    assert "… [trimmed 13," in body
    assert "x" * 3000 not in body
    assert f"Incident:      {PUBLIC_URL}/console/incidents/1" in body


async def test_the_webhook_body_carries_the_evidence(store: Store, tmp_path: Path) -> None:
    async with receiving() as hooks:
        notify = settings(hook("ops", hooks.url + "/ops"))
        async with central(store, notify, PUBLIC_URL) as api:
            response = await api.post_events(problem_event(tmp_path))
            assert response.status == 200, await response.text()
            await round_at(api, 0)
    [document] = hooks.at("/ops")
    evidence = document["evidence"]
    assert evidence["last_reading"] == {
        "summary": "HTTP 502 from http://127.0.0.1/ in 41 ms",
        "readings": "response_seconds=0.041, status_code=502, used_ratio{mount=/var}=0.96",
        "seen_at": "2026-11-25T17:00:00Z"}
    assert_transcript(evidence["tried"])
    assert evidence["tried_left_out"] == 0
    assert evidence["url"] == f"{PUBLIC_URL}/console/incidents/1"


async def test_pagerduty_custom_details_carry_the_evidence(store: Store,
                                                            tmp_path: Path) -> None:
    key_file = tmp_path / "pagerduty.key"
    key_file.write_text(ROUTING_KEY + "\n")
    async with receiving() as pd:
        notify = settings(hook("pager", pd.url + PAGERDUTY_PATH, "pagerduty",
                               routing_key_file=str(key_file)))
        async with central(store, notify, PUBLIC_URL) as api:
            response = await api.post_events(problem_event(tmp_path))
            assert response.status == 200, await response.text()
            [delivery] = await round_at(api, 0)
            assert delivery.told == ["pager"]     # the stand-in took it as valid
    [trigger] = pd.at(PAGERDUTY_PATH)
    details = trigger["payload"]["custom_details"]
    assert details["last_reading"]["summary"] == "HTTP 502 from http://127.0.0.1/ in 41 ms"
    assert details["last_reading"]["readings"].startswith("response_seconds=0.041")
    assert_transcript(details["tried"])
    assert details["url"] == trigger["client_url"] == f"{PUBLIC_URL}/console/incidents/1"


def test_trimming_keeps_both_ends_and_says_how_much_went() -> None:
    text = "a" * 1000 + "é" * 1000 + "z" * 1000
    trimmed = trim(text, 400)
    assert trimmed.startswith("a" * 100) and trimmed.endswith("z" * 300)
    assert "\n… [trimmed 3,600 bytes] …\n" in trimmed
    assert trim("short", 400) == "short"
