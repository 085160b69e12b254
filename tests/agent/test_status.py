"""The local status endpoint on the real agent: /status against its schema, /metrics parsed
by Prometheus' own parser, and `monitord status` as a person reads it."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import jsonschema
import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitord.agent.daemon import Agent
from monitord.config import load_config
from tests.nginx import free_port

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = {
    "type": "object",
    "required": ["host", "summary", "checks"],
    "properties": {
        "host": {"type": "string"},
        "summary": {"type": "string"},
        "checks": {"type": "array", "items": {
            "type": "object",
            "required": ["name", "probe", "priority", "status", "phase", "hard_failing",
                         "since", "last_run", "summary", "flapping", "suppressed_by",
                         "fixing", "heal_budget_left"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string"},
                "probe": {"type": "string"},
                "priority": {"enum": ["P1", "P2", "P3"]},
                "last_run": {"type": ["string", "null"]},
                "summary": {"type": "string"},
                "flapping": {"type": "boolean"},
                "suppressed_by": {"type": ["string", "null"]},
                "fixing": {"type": "boolean"},
                "status": {"enum": ["OK", "WARNING", "CRITICAL", "UNKNOWN"]},
                "phase": {"enum": ["pending", "ok", "soft", "hard", "recovering"]},
                "hard_failing": {"type": "boolean"},
                "since": {"type": ["string", "null"]},
                "heal_budget_left": {"type": "integer", "minimum": 0},
            },
        }},
    },
}


@pytest.fixture
async def agent_running(tmp_path: Path) -> AsyncIterator[tuple[Path, str]]:
    port = free_port()
    config = tmp_path / "monitord.toml"
    config.write_text(f"""
[agent]
host = "web1"
state_dir = "{tmp_path / 'state'}"
[status]
listen = "127.0.0.1:{port}"
[[check]]
name = "load"
probe = "load"
every = "1s"
timeout = "1s"
[[check]]
name = "db"
probe = "tcp"
port = {free_port()}
every = "1s"
timeout = "1s"
fail_after = 1
""")
    agent = Agent(load_config(config))
    await agent.start()
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_until_failing(base)
        yield config, base
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def get(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, await resp.text()


async def wait_until_failing(base: str) -> None:
    """Until the endpoint answers and the db check has failed hard (bounded)."""
    for _ in range(200):
        with contextlib.suppress(aiohttp.ClientError):
            status, body = await get(f"{base}/status")
            if status == 200 and '"hard_failing": true' in body:
                return
        await asyncio.sleep(0.05)
    raise AssertionError("the status endpoint never showed the failing check")


async def test_status_matches_its_schema(agent_running: tuple[Path, str]) -> None:
    _, base = agent_running
    async with aiohttp.ClientSession() as session, session.get(f"{base}/status") as resp:
        document = await resp.json()
    jsonschema.validate(document, SCHEMA)
    by_name = {c["name"]: c for c in document["checks"]}
    assert by_name["db"]["status"] == "CRITICAL" and by_name["db"]["phase"] == "hard"
    assert by_name["load"]["heal_budget_left"] == 3
    assert document["summary"].startswith("2 checks, 1 failing, 0 fixing, outbox ")


async def test_metrics_parse_as_prometheus_text(agent_running: tuple[Path, str]) -> None:
    _, base = agent_running
    status, text = await get(f"{base}/metrics")
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {(s.name, s.labels.get("check")): s.value
               for f in families.values() for s in f.samples}
    assert samples[("monitord_check_status", "db")] == 2
    assert samples[("monitord_check_hard_failing", "load")] == 0
    assert ("monitord_probe_duration_seconds", "load") in samples
    assert "monitord_outbox_depth" in families and "monitord_events_sent" in families
    assert samples[("monitord_outbox_dead_letters_total", None)] == 0
    assert samples[("monitord_outbox_kept_in_memory_total", None)] == 0
    healthz = await get(f"{base}/healthz")
    assert healthz[0] == 200


async def test_status_command_lists_failing_first_and_exits_2(
    agent_running: tuple[Path, str]
) -> None:
    config, _ = agent_running
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", "monitord", "status", "-c", str(config)],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    lines = done.stdout.splitlines()
    assert done.returncode == 2, done.stderr
    assert lines[0].startswith("web1: 2 checks, 1 failing")
    assert lines[1].split()[:3] == ["CHECK", "STATUS", "STATE"]
    assert lines[2].split()[:3] == ["db", "CRITICAL", "hard"]
    assert lines[3].split()[:3] == ["load", "OK", "ok"]


def test_status_command_without_a_daemon_says_so_in_one_line_and_exits_3(
    tmp_path: Path
) -> None:
    port = free_port()
    for listen in (f"127.0.0.1:{port}", f"unix:{tmp_path}/gone.sock"):
        config = tmp_path / "m.toml"
        config.write_text(f'[status]\nlisten = "{listen}"\n')
        done = subprocess.run([sys.executable, "-m", "monitord", "status", "-c", str(config)],
                              capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
        assert done.returncode == 3  # UNKNOWN: nothing to judge by
        assert done.stderr == f"no monitord answering on {listen}: is it running?\n"
        assert done.stdout == ""
