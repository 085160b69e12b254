"""Shutdown: nothing new starts, running probes may finish, the late ones are cancelled
and counted."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from monitord.agent.daemon import Agent
from monitord.config import load_config


@pytest.fixture
async def silent_port() -> AsyncIterator[tuple[int, asyncio.Event]]:
    """A server that accepts and never says a word."""
    accepted = asyncio.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        with contextlib.suppress(ConnectionError):
            await reader.read()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1], accepted
    server.close()
    await server.wait_closed()


async def run_and_stop(tmp_path: Path, silent: tuple[int, asyncio.Event],
                       shutdown_timeout: str) -> Agent:
    port, accepted = silent
    config = tmp_path / "monitord.toml"
    config.write_text(f"""
[agent]
state_dir = "{tmp_path / 'state'}"
shutdown_timeout = "{shutdown_timeout}"
[status]
listen = ""
[[check]]
name = "smtp"
probe = "tcp"
port = {port}
expect_banner = "^220"
every = "10s"
timeout = "2s"
""")
    agent = Agent(load_config(config))
    await agent.start()
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    async with asyncio.timeout(10):
        await accepted.wait()  # the probe is connected and waiting for its banner
    stop.set()
    await task
    return agent


async def test_late_probes_are_cancelled_and_counted(
    tmp_path: Path, silent_port: tuple[int, asyncio.Event], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="monitord")
    agent = await run_and_stop(tmp_path, silent_port, "100ms")
    assert "cancelling 1 running probes and 0 fix ladders" in caplog.text
    assert "smtp" not in agent.last_duration  # it never finished


async def test_running_probes_may_finish_within_the_timeout(
    tmp_path: Path, silent_port: tuple[int, asyncio.Event], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="monitord")
    agent = await run_and_stop(tmp_path, silent_port, "30s")
    assert "cancelling" not in caplog.text
    assert agent.states["smtp"].summary.endswith("sent no banner within 1.8s")
