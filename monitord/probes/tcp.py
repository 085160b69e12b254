"""A TCP connect, an optional line sent, an optional banner that must match, and latency."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Literal

from pydantic import Field

from monitord import net
from monitord.durations import format_duration
from monitord.errors import ProbeError
from monitord.model import Observation
from monitord.probes.base import CheckBase, Expectation, ProbeContext, Regex

METRICS = {
    "connect_seconds": "time to open the connection",
    "response_seconds": "time to open the connection and read the banner",
}
MAX_BANNER_BYTES = 4096
# A banner that never matches is read until this share of the check's timeout has passed,
# so the result can show what the server said instead of a bare "timed out".


class Config(CheckBase):
    METRICS = METRICS
    probe: Literal["tcp"]
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    send: str = ""
    expect_banner: Regex | None = None

    def target(self) -> str:
        return f"{self.host}:{self.port}"

    def expectations(self) -> list[Expectation]:
        if self.expect_banner is None:
            return []
        pattern = self.expect_banner.pattern
        return [Expectation("banner_matches", frozenset([True]),
                            f"banner does not match {pattern!r}")]


async def probe(cfg: Config, ctx: ProbeContext) -> Observation:
    where = f"{cfg.host}:{cfg.port}"
    start = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection(cfg.host, cfg.port)
    except ConnectionRefusedError:
        raise ProbeError(f"connection refused by {where}") from None
    except OSError as e:
        raise ProbeError(f"cannot connect to {where}: {e.strerror or e}") from None
    connected = time.monotonic() - start
    obs = Observation(f"TCP {where} connected in {_ms(connected)}")
    obs.add("connect_seconds", round(connected, 6))
    try:
        if cfg.send:
            writer.write(cfg.send.encode())
            await writer.drain()
        if cfg.expect_banner is None:
            obs.add("response_seconds", round(connected, 6))
        else:
            budget = ctx.budget()
            await _judge_banner(obs, reader, cfg.expect_banner, where, budget, start)
    except OSError as e:
        raise ProbeError(f"connection to {where} lost: {net.reason(e)}") from None
    finally:
        writer.close()
    return obs


async def _judge_banner(
    obs: Observation, reader: asyncio.StreamReader, pattern: re.Pattern[str], where: str,
    budget: float, start: float,
) -> None:
    banner, waited_out = await _read_banner(reader, pattern, budget)
    elapsed = time.monotonic() - start
    if waited_out and not banner:
        raise ProbeError(f"{where} accepted the connection but sent no banner "
                         f"within {format_duration(elapsed)}")
    if banner:
        first_line = banner.splitlines()[0]
        obs.summary = f"TCP {where} answered {first_line[:80]!r} in {_ms(elapsed)}"
    else:
        obs.summary = f"TCP {where} closed the connection without a banner in {_ms(elapsed)}"
    obs.add("response_seconds", round(elapsed, 6))
    obs.add("banner_matches", bool(pattern.search(banner)))


async def _read_banner(
    reader: asyncio.StreamReader, pattern: re.Pattern[str], budget: float
) -> tuple[str, bool]:
    """What arrived until the banner matched, the peer closed, MAX_BANNER_BYTES arrived or
    ``budget`` seconds passed; and whether the budget ran out."""
    data = bytearray()
    try:
        async with asyncio.timeout(max(budget, 0.0)):
            while len(data) < MAX_BANNER_BYTES:
                chunk = await reader.read(MAX_BANNER_BYTES - len(data))
                if not chunk:
                    break
                data += chunk
                if pattern.search(data.decode("utf-8", "replace")):
                    break
    except TimeoutError:
        return data.decode("utf-8", "replace"), True
    return data.decode("utf-8", "replace"), False


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"
