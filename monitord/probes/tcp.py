"""A TCP connect, an optional line sent, an optional banner that must match, and latency."""

from __future__ import annotations

import asyncio
import time
from typing import Literal

from pydantic import Field

from monitord.errors import ProbeError
from monitord.model import Observation
from monitord.probes.base import CheckBase, Expectation, ProbeContext, Regex

METRICS = {
    "connect_seconds": "time to open the connection",
    "response_seconds": "time to open the connection and read the banner",
}
MAX_BANNER_BYTES = 4096


class Config(CheckBase):
    METRICS = METRICS
    probe: Literal["tcp"]
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    send: str = ""
    expect_banner: Regex | None = None

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
    connected = time.monotonic()
    obs = Observation(f"TCP {where} connected in {_ms(connected - start)}")
    obs.add("connect_seconds", round(connected - start, 6))
    try:
        if cfg.send:
            writer.write(cfg.send.encode())
            await writer.drain()
        if cfg.expect_banner is not None:
            banner = await _read_until(reader, cfg.expect_banner)
            elapsed = time.monotonic() - start
            first_line = banner.splitlines()[0] if banner else ""
            obs.summary = f"TCP {where} answered {first_line[:80]!r} in {_ms(elapsed)}"
            obs.add("response_seconds", round(elapsed, 6))
            obs.add("banner_matches", bool(cfg.expect_banner.search(banner)))
        else:
            obs.add("response_seconds", round(connected - start, 6))
    finally:
        writer.close()
    return obs


async def _read_until(reader: asyncio.StreamReader, pattern: object) -> str:
    """Read until the banner matches, the peer closes, or MAX_BANNER_BYTES arrived."""
    data = b""
    while len(data) < MAX_BANNER_BYTES:
        chunk = await reader.read(MAX_BANNER_BYTES - len(data))
        if not chunk:
            break
        data += chunk
        if pattern.search(data.decode("utf-8", "replace")):  # type: ignore[attr-defined]
            break
    return data.decode("utf-8", "replace")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"
