"""The certificate of any TLS port: implicit TLS or STARTTLS (SMTP, IMAP, POP3, FTP),
with the site's server name (SNI), verified or only read."""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Literal

from pydantic import Field, model_validator

from monitord import net
from monitord.durations import format_duration
from monitord.errors import ProbeError, Refused
from monitord.model import Observation
from monitord.probes import wire
from monitord.probes.base import (
    AbsolutePath,
    CheckBase,
    ProbeContext,
    Range,
    ca_file_needs_verify,
    parse_range,
)

METRICS = {
    "cert_days_left": "days until the server certificate expires (negative once expired)",
    "handshake_seconds": "time to connect, ask for STARTTLS and finish the TLS handshake",
}
# Below 21 days is a warning (a renewal that should have happened), below 7 critical.
DEFAULT_WARN_DAYS = "21:"
DEFAULT_CRIT_DAYS = "7:"
# The dialogue gives up after this share of the check's timeout, so the result says
# which step the server did not answer.
CONNECTING = "did not accept the connection"


class Config(CheckBase):
    METRICS = METRICS
    probe: Literal["tls"]
    host: str = "127.0.0.1"
    port: int = Field(ge=1, le=65535)
    starttls: Literal["", "smtp", "imap", "pop3", "ftp"] = ""
    server_name: str = Field(default="", max_length=253)
    verify_tls: bool = True
    ca_file: AbsolutePath = ""

    @model_validator(mode="after")
    def _ca_file_verifies(self) -> Config:
        ca_file_needs_verify(self.ca_file, self.verify_tls)
        return self

    def target(self) -> str:
        return _target(self)

    def default_thresholds(self) -> tuple[dict[str, Range], dict[str, Range]]:
        return ({"cert_days_left": parse_range(DEFAULT_WARN_DAYS)},
                {"cert_days_left": parse_range(DEFAULT_CRIT_DAYS)})


async def probe(cfg: Config, ctx: ProbeContext) -> Observation:
    context = net.client_context(cfg.verify_tls, cfg.ca_file, ctx.memory)
    where = _target(cfg)
    step = [CONNECTING]
    start = time.monotonic()
    writer = None
    try:
        async with asyncio.timeout(ctx.budget()):
            writer = await _handshake(cfg, context, step)
            der = wire.certificate(writer.get_extra_info("ssl_object"))
    except TimeoutError:
        raise ProbeError(f"{where} {step[0]} within "
                         f"{format_duration(time.monotonic() - start)}") from None
    except Refused as e:
        raise ProbeError(f"{where} refused STARTTLS: {e}") from None
    except (ssl.SSLError, ssl.CertificateError) as e:
        raise ProbeError(_tls_failure(where, e)) from None
    except OSError as e:
        if step[0] == CONNECTING or isinstance(e, ConnectionRefusedError):
            raise ProbeError(f"cannot connect to {where}: {net.reason(e)}") from None
        raise ProbeError(f"connection to {where} lost: {net.reason(e)}") from None
    finally:
        if writer is not None:
            writer.transport.abort()  # nothing to say: skip the close_notify exchange
    elapsed = time.monotonic() - start
    days = net.days_left(der)
    obs = Observation(f"TLS {where}: certificate {net.subject(der)} "
                      f"{_expiry(days)}, handshake in {elapsed * 1000:.0f} ms")
    obs.add("cert_days_left", round(days, 2))
    obs.add("handshake_seconds", round(elapsed, 6))
    return obs


async def _handshake(
    cfg: Config, context: ssl.SSLContext, step: list[str]
) -> asyncio.StreamWriter:
    """The connection, in TLS; ``step`` says what it is waiting for, for the timeout."""
    name = cfg.server_name or cfg.host
    if not cfg.starttls:
        step[0] = "did not finish the TLS handshake"
        _, writer = await asyncio.open_connection(
            cfg.host, cfg.port, ssl=context, server_hostname=name, limit=wire.MAX_LINE_BYTES)
        return writer
    reader, writer = await asyncio.open_connection(cfg.host, cfg.port,
                                                  limit=wire.MAX_LINE_BYTES)
    try:
        step[0] = "accepted the connection but sent no greeting"
        ready, said = await wire.greeting(cfg.starttls, reader)
        if not ready:
            raise Refused(f"it greeted {net.shown(said)!r}")
        step[0] = "did not answer STARTTLS"
        await wire.starttls(cfg.starttls, reader, writer)
        step[0] = "did not finish the TLS handshake"
        await writer.start_tls(context, server_hostname=name)
    except BaseException:
        writer.transport.abort()
        raise
    return writer


def _tls_failure(where: str, error: Exception) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        return (f"TLS certificate of {where} rejected: {net.reason(error)}; fix the "
                "certificate, set ca_file to an internal CA or set verify_tls = false")
    return f"TLS handshake with {where} failed: {net.reason(error)}"


def _expiry(days: float) -> str:
    if days < 0:
        return f"expired {-days:.0f} days ago"
    return f"expires in {days:.0f} days"


def _target(cfg: Config) -> str:
    where = net.host_port(cfg.host, cfg.port)
    extras = [f"STARTTLS {cfg.starttls.upper()}"] if cfg.starttls else []
    if cfg.server_name:
        extras.append(f"SNI {cfg.server_name}")
    return f"{where} ({', '.join(extras)})" if extras else where
