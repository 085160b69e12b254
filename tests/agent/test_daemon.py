"""The agent over real probes: state changes logged once, suppression, state kept on disk."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitord.agent.daemon import Agent
from monitord.config import Config, load_config
from monitord.model import Result, Status
from monitord.probes.base import CheckBase


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections (bound, never listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def config(tmp_path: Path, port: int) -> Config:
    path = tmp_path / "monitord.toml"
    path.write_text(f"""
[agent]
state_dir = "{tmp_path / 'state'}"

[[check]]
name = "mysql-port"
probe = "tcp"
port = {port}
fail_after = 2
recover_after = 1
priority = "P1"

[[check]]
name = "shop"
probe = "http"
url = "http://127.0.0.1:{port}/"
fail_after = 1
depends_on = ["mysql-port"]
""")
    return load_config(path)


async def test_state_changes_are_logged_once_each(
    tmp_path: Path, closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="monitord")
    agent = Agent(config(tmp_path, closed_port))
    await agent.start()
    check = agent.config.check("mysql-port")
    for _ in range(4):
        await agent.run_once(check)
        await agent.wait_for_ladders()
    await agent.close()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("mysql-port")]
    assert lines == [
        f"mysql-port: CRITICAL (soft 1/2): connection refused by 127.0.0.1:{closed_port}",
        f"mysql-port: CRITICAL (hard, after 2 failures): connection refused by "
        f"127.0.0.1:{closed_port}",
        # No fix to run, so the start-up grace (for fixes) does not hold the page back.
        f"mysql-port: escalating P1 problem: no fix configured: connection refused by "
        f"127.0.0.1:{closed_port}",
    ]


async def test_child_of_a_hard_failing_parent_is_suppressed(
    tmp_path: Path, closed_port: int
) -> None:
    agent = Agent(config(tmp_path, closed_port))
    await agent.start()
    parent, child = agent.config.check("mysql-port"), agent.config.check("shop")
    await agent.run_once(child)
    # The parent has not been probed since the child failed: the child waits on it.
    assert agent.states["shop"].suppressed_by == "mysql-port"
    await agent.run_once(parent)
    await agent.run_once(parent)
    result = await agent.run_once(child)
    await agent.close()
    assert result.status is Status.CRITICAL
    assert agent.states["shop"].hard_failing
    assert agent.states["shop"].suppressed_by == "mysql-port"


async def test_restart_restores_hard_failure(tmp_path: Path, closed_port: int) -> None:
    agent = Agent(config(tmp_path, closed_port))
    await agent.start()
    for _ in range(2):
        await agent.run_once(agent.config.check("mysql-port"))
    await agent.close()

    again = Agent(config(tmp_path, closed_port))
    await again.start()
    state = again.states["mysql-port"]
    await again.close()
    assert state.hard_failing and state.hard_status is Status.CRITICAL
    assert state.fail_count == 2
    assert "connection refused" in state.summary


async def test_failing_children_ask_their_parent_once_not_once_each(
        tmp_path: Path, closed_port: int) -> None:
    """Five sites failing at once probe their parent once; its failure is then confirmed
    at its own retry pace (an hour here), not by five probes in a row."""
    children = "".join(f'''
[[check]]
name = "site{i}"
probe = "tcp"
port = {closed_port}
every = "1h"
timeout = "1s"
fail_after = 1
depends_on = ["parent"]
''' for i in range(5))
    path = tmp_path / "monitord.toml"
    path.write_text(f"""
[agent]
state_dir = "{tmp_path / 'state'}"
start_rate = 10.0          # one check every 100 ms: each site fails on its own
[status]
listen = ""
[[check]]
name = "parent"
probe = "tcp"
port = {closed_port}
every = "1h"
timeout = "1s"
retry_every = "1h"
fail_after = 2
{children}""")
    agent = Agent(load_config(path))
    ran: list[str] = []
    everyone = asyncio.Event()

    def count(check: CheckBase, result: Result) -> None:
        ran.append(check.name)
        if {f"site{i}" for i in range(5)} | {"parent"} <= set(ran):
            everyone.set()

    agent.result_hooks.append(count)
    await agent.start()
    stop = asyncio.Event()
    running = asyncio.create_task(agent.run(stop))
    try:
        async with asyncio.timeout(30):
            await everyone.wait()
            await agent.wait_for_ladders()
    finally:
        stop.set()
        await running
    parent = agent.states["parent"]
    assert ran.count("parent") == 1, ran
    assert parent.phase == "soft" and parent.fail_count == 1
    assert all(agent.states[f"site{i}"].suppressed_by == "parent" for i in range(5))
