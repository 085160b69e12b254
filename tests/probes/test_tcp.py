"""The tcp probe against real listeners on 127.0.0.1, run through the real runner."""

from __future__ import annotations

import asyncio
from typing import Any

from monitord.agent.runner import run_check
from monitord.model import Result, Status, Value
from monitord.probes.base import ProbeContext
from tests.conftest import make_check
from tests.probes.servers import (
    closed_port,
    echo_line,
    greeter,
    reset,
    serve_tcp,
    silent,
    until_closed,
)

SMTP_BANNER = b"220 mail.example ESMTP Postfix\r\n"


async def run_tcp(ctx: ProbeContext, port: int, **fields: Any) -> Result:
    return await run_check(make_check("tcp", port=port, **fields), ctx)


def reading(result: Result, name: str) -> Value:
    values = [r.value for r in result.readings if r.name == name]
    assert len(values) == 1, f"expected one {name} reading in {result.readings}"
    return values[0]


async def test_banner_matching_expect_banner_is_ok(ctx: ProbeContext) -> None:
    async with serve_tcp(greeter(SMTP_BANNER)) as port:
        result = await run_tcp(ctx, port, expect_banner=r"^220 \S+ ESMTP")
    assert result.status is Status.OK, result.summary
    assert result.summary.startswith(
        f"TCP 127.0.0.1:{port} answered '220 mail.example ESMTP Postfix' in ")
    assert reading(result, "banner_matches") is True
    assert isinstance(reading(result, "connect_seconds"), float)
    assert isinstance(reading(result, "response_seconds"), float)


async def test_listener_without_banner_is_ok_once_connected(ctx: ProbeContext) -> None:
    async with serve_tcp(silent) as port:
        result = await run_tcp(ctx, port)
    assert result.status is Status.OK
    assert result.summary.startswith(f"TCP 127.0.0.1:{port} connected in ")
    assert {r.name for r in result.readings} == {"connect_seconds", "response_seconds"}


async def test_banner_not_matching_is_critical_and_shows_banner(ctx: ProbeContext) -> None:
    async with serve_tcp(greeter(b"554 mail.example no SMTP service here\r\n")) as port:
        result = await run_tcp(ctx, port, expect_banner="^220 ", timeout="1s")
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(
        f"TCP 127.0.0.1:{port} answered '554 mail.example no SMTP service here' in ")
    assert result.summary.endswith("banner does not match '^220 '")
    assert reading(result, "banner_matches") is False


async def say_and_hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(b"421 mail.example too many connections\r\n")
    await writer.drain()


async def test_banner_not_matching_before_hang_up_is_critical(ctx: ProbeContext) -> None:
    async with serve_tcp(say_and_hang_up) as port:
        result = await run_tcp(ctx, port, expect_banner="^220 ")
    assert result.status is Status.CRITICAL
    assert "answered '421 mail.example too many connections'" in result.summary
    assert result.summary.endswith("banner does not match '^220 '")


async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept and close at once, saying nothing."""


async def test_hang_up_without_banner_is_critical(ctx: ProbeContext) -> None:
    async with serve_tcp(hang_up) as port:
        result = await run_tcp(ctx, port, expect_banner="^220 ")
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(
        f"TCP 127.0.0.1:{port} closed the connection without a banner in ")
    assert result.summary.endswith("banner does not match '^220 '")


async def test_silent_server_with_expect_banner_times_out(ctx: ProbeContext) -> None:
    async with serve_tcp(silent) as port:
        result = await run_tcp(ctx, port, expect_banner="^220 ", timeout="1s")
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(
        f"127.0.0.1:{port} accepted the connection but sent no banner within ")


async def test_sent_text_echoed_back_matches(ctx: ProbeContext) -> None:
    async with serve_tcp(echo_line) as port:
        result = await run_tcp(ctx, port, send="PING monitord\r\n", expect_banner="^PING monitord")
    assert result.status is Status.OK, result.summary
    assert "answered 'PING monitord'" in result.summary


async def test_sent_text_not_echoed_fails_expectation(ctx: ProbeContext) -> None:
    async with serve_tcp(echo_line) as port:
        result = await run_tcp(ctx, port, send="QUIT\r\n", expect_banner="^PONG", timeout="1s")
    assert result.status is Status.CRITICAL
    assert result.summary.endswith("banner does not match '^PONG'")


async def test_closed_port_is_critical_connection_refused(ctx: ProbeContext) -> None:
    with closed_port() as port:
        result = await run_tcp(ctx, port)
    assert result.status is Status.CRITICAL
    assert result.summary == f"connection refused by 127.0.0.1:{port}"


async def test_connection_reset_is_critical(ctx: ProbeContext) -> None:
    async with serve_tcp(reset) as port:
        result = await run_tcp(ctx, port, expect_banner="^220 ")
    assert result.status is Status.CRITICAL
    assert result.summary == f"connection to 127.0.0.1:{port} lost: connection reset by peer"


async def slow_greeting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Greets after 0.3 s: a server too busy to answer at once."""
    await asyncio.sleep(0.3)
    writer.write(SMTP_BANNER)
    await writer.drain()
    await until_closed(reader)


async def test_slow_banner_over_crit_threshold_is_critical(ctx: ProbeContext) -> None:
    async with serve_tcp(slow_greeting) as port:
        result = await run_tcp(ctx, port, expect_banner="^220 ",
                               crit={"response_seconds": 0.1})
    assert result.status is Status.CRITICAL
    assert "answered '220 mail.example ESMTP Postfix'" in result.summary
    assert result.summary.endswith("> 0.1")
