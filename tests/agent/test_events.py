"""From a hard failure to one incident in the embedded store, and back to resolved."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from monitord.agent.daemon import Agent
from monitord.agent.events import event_renderer as Renderer
from monitord.agent.healer import Outcome, Step
from monitord.config import load_config
from monitord.model import Result, Status
from monitord.store.policy import Policy
from monitord.store.sqlite import SQLiteStore
from tests.nginx import Nginx


def write_config(tmp_path: Path, nginx: Nginx, heal: str = "[]") -> Path:
    path = tmp_path / "monitord.toml"
    path.write_text(f"""
[agent]
host = "web1"
state_dir = "{tmp_path / 'state'}"

[healer]
grace = "0s"

[templates]
dir = "{tmp_path / 'templates'}"

[[check]]
name = "site"
probe = "http"
url = "http://127.0.0.1:{nginx.port}/"
every = "1s"
timeout = "1s"
fail_after = 2
recover_after = 1
priority = "P1"
start = {json.dumps(nginx.argv)}
heal = {heal}
""")
    return path


async def run_until_delivered(agent: Agent, runs: int) -> None:
    check = agent.config.check("site")
    for _ in range(runs):
        await agent.run_once(check)
    await agent.wait_for_ladders()
    assert agent.deliverer is not None
    while await agent.deliverer.deliver_once():
        pass


async def test_unfixable_failure_opens_one_incident_resolved_on_recovery(tmp_path: Path) -> None:
    nginx = Nginx(tmp_path / "nginx")
    config = load_config(write_config(tmp_path, nginx, heal="[]"))
    agent = Agent(config)
    await agent.start()
    try:
        await run_until_delivered(agent, runs=4)  # hard after 2; no second problem after
        store = SQLiteStore(tmp_path / "state" / "incidents.db", Policy.from_config(config.policy))
        (incident,) = await store.incidents()
        assert (incident.key, incident.priority, incident.status) == ("web1/site", "P1", "open")
        assert incident.due_at - incident.opened_at == dt.timedelta(minutes=15)
        assert "connection refused" in incident.summary
        nginx.start()
        await run_until_delivered(agent, runs=1)
        (resolved,) = await store.incidents(status=["resolved"])
        assert resolved.id == incident.id and resolved.resolved_by == "monitord"
        assert not await store.incidents()
        await store.close()
    finally:
        nginx.stop()
        await agent.close()


def test_admin_template_overrides_the_stock_one(tmp_path: Path) -> None:
    (tmp_path / "problem.title.j2").write_text("[{{ priority }}] {{ check }} needs you")
    renderer = Renderer(str(tmp_path))
    title, body = renderer.render("problem", _context())
    assert title == "[P1] site needs you"
    assert "restart-service nginx" in body  # the stock body is still used


def test_broken_admin_template_falls_back_to_the_stock_one(tmp_path: Path) -> None:
    (tmp_path / "problem.title.j2").write_text("{{ no_such_field }} {% if %}")
    title, _ = Renderer(str(tmp_path)).render("problem", _context())
    assert title.startswith("web1/site: CRITICAL - HTTP 502")


@pytest.mark.parametrize(("text", "error"), [
    ("{{ 1 / 0 }}", "ZeroDivisionError"),
    ("{{ summary + 1 }}", "TypeError"),
])
def test_admin_template_failing_as_it_renders_falls_back_to_the_stock_one(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str, error: str) -> None:
    (tmp_path / "problem.title.j2").write_text(text)
    title, _ = Renderer(str(tmp_path)).render("problem", _context())
    assert title.startswith("web1/site: CRITICAL - HTTP 502")
    assert f"template for problem events failed ({error}: " in caplog.text


def test_unreadable_admin_template_falls_back_to_the_stock_one(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "problem.title.j2").write_bytes(b"\xff\xfe{{ check }}\x80")  # not UTF-8
    title, _ = Renderer(str(tmp_path)).render("problem", _context())
    assert title.startswith("web1/site: CRITICAL - HTTP 502")
    assert "(UnicodeDecodeError: " in caplog.text


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a mode-000 file anyway")
def test_admin_template_without_read_permission_falls_back_to_the_stock_one(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "problem.title.j2"
    path.write_text("[{{ priority }}] {{ check }}")
    path.chmod(0)
    try:
        title, _ = Renderer(str(tmp_path)).render("problem", _context())
    finally:
        path.chmod(0o600)
    assert title.startswith("web1/site: CRITICAL - HTTP 502")
    assert "(PermissionError: " in caplog.text


def test_problem_body_carries_the_transcript(tmp_path: Path) -> None:
    _, body = Renderer(str(tmp_path)).render("problem", _context())
    assert "Why it is escalated: not fixed: 1 fix tried" in body
    assert "Readings: response_seconds=0.041" in body
    assert "1. restart-service: /x/restart-service nginx" in body
    assert "exit 1 in 0.2s" in body and "Job for nginx.service failed" in body


def _context() -> dict[str, object]:
    step = Step("restart-service", ("/x/restart-service", "nginx"), 1, 0.2,
                "Job for nginx.service failed\n", "exit 1 in 0.2s")
    outcome = Outcome("problem", "site", "P1", "not fixed: 1 fix tried",
                      Result(Status.CRITICAL, "HTTP 502"), (step,))
    return {
        "host": "web1", "check": outcome.check, "priority": outcome.priority,
        "status": "CRITICAL", "summary": outcome.result.summary, "reason": outcome.reason,
        "recurring": False, "suppressed_by": None, "fix": "restart-service", "flapping": False,
        "failure": "", "readings": "response_seconds=0.041",
        "steps": [{"fix": step.fix, "argv": list(step.argv), "ended": step.ended,
                   "output": step.output, "reprobe_status": None, "reprobe_summary": ""}],
    }


def test_stopped_and_maintenance_events_are_valid_wire_events() -> None:
    from monitord.agent.events import EventMaker, maintenance
    from monitord.events import Batch

    maker = EventMaker("web1", Renderer("/nonexistent"))
    stopped = maker.stopped()
    assert (stopped.kind, stopped.host, stopped.check) == ("stopped", "web1", None)
    window = maintenance("web1", "shop", 1_800_000_000.0, "root", "PHP upgrade")
    assert window.until == dt.datetime.fromtimestamp(1_800_000_000.0, dt.UTC)
    assert (window.key, window.owner, window.reason) == ("web1/shop", "root", "PHP upgrade")
    ended = maintenance("web1", None, None, "root")
    assert (ended.key, ended.until) == ("web1", None)
    wire = Batch(events=[stopped, window, ended]).model_dump_json()
    assert Batch.model_validate_json(wire).events == [stopped, window, ended]


def test_a_problem_whose_title_names_its_priority_carries_it_at_each_priority(
        tmp_path: Path) -> None:
    from monitord.agent.events import EventMaker
    from monitord.events import Batch

    (tmp_path / "problem.title.j2").write_text("[{{ priority }}] {{ host }}/{{ check }}")
    outcome = Outcome("problem", "site", "P3", "no fix", Result(Status.CRITICAL, "HTTP 502"))
    event = EventMaker("web1", Renderer(str(tmp_path))).from_outcome(outcome)
    assert event.title == "[P3] web1/site"
    assert event.titles == {"P1": "[P1] web1/site", "P2": "[P2] web1/site",
                            "P3": "[P3] web1/site"}
    wire = Batch(events=[event]).model_dump_json()
    assert Batch.model_validate_json(wire).events == [event]


def test_a_title_that_does_not_name_the_priority_is_sent_once(tmp_path: Path) -> None:
    from monitord.agent.events import EventMaker

    outcome = Outcome("problem", "site", "P3", "no fix", Result(Status.CRITICAL, "HTTP 502"))
    event = EventMaker("web1", Renderer(str(tmp_path))).from_outcome(outcome)
    assert event.title.startswith("web1/site: CRITICAL") and event.titles == {}
