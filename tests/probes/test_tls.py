"""The tls probe against real TLS servers on 127.0.0.1 (asyncio with an SSL context,
aiosmtpd with STARTTLS, Dovecot), run through the real runner."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from monitord.agent.runner import run_check
from monitord.model import Result, Status
from monitord.probes.base import ProbeContext
from tests.conftest import make_check
from tests.probes.mailservers import run_dovecot, serve_smtp
from tests.probes.readings import has_reading, number
from tests.probes.servers import (
    Authority,
    closed_port,
    greeter,
    self_signed,
    serve_tcp,
    silent,
    until_closed,
)

HOST = "mail.example.test"


@contextlib.asynccontextmanager
async def serve_tls(context: ssl.SSLContext) -> AsyncIterator[int]:
    """An asyncio TLS server that completes the handshake and waits for the client."""
    import asyncio

    async def wait(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            await until_closed(reader)
        writer.close()

    server = await asyncio.start_server(wait, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def run_tls(ctx: ProbeContext, port: int, **fields: Any) -> Result:
    return await run_check(make_check("tls", port=port, **fields), ctx)


@pytest.fixture
def ca(tmp_path: Path) -> Authority:
    return Authority(tmp_path)


async def test_valid_certificate_is_ok(ctx: ProbeContext, ca: Authority) -> None:
    async with serve_tls(ca.issue(HOST, days=90).server_context()) as port:
        result = await run_tls(ctx, port, server_name=HOST, ca_file=str(ca.cert_file))
    assert result.status is Status.OK, result.summary
    assert result.summary.startswith(
        f"TLS 127.0.0.1:{port} (SNI {HOST}): certificate CN={HOST} expires in 90 days, "
        "handshake in ")
    assert 89 < number(result, "cert_days_left") <= 90
    assert number(result, "handshake_seconds") >= 0


async def test_expiring_certificate_warns_then_goes_critical(
    ctx: ProbeContext, ca: Authority
) -> None:
    async with serve_tls(ca.issue(HOST, days=10).server_context()) as port:
        soon = await run_tls(ctx, port, server_name=HOST, ca_file=str(ca.cert_file))
    async with serve_tls(ca.issue(HOST, days=3).server_context()) as port:
        sooner = await run_tls(ctx, port, server_name=HOST, ca_file=str(ca.cert_file))
    assert soon.status is Status.WARNING
    assert "expires in 10 days" in soon.summary
    assert soon.summary.endswith(" < 21") and "cert_days_left" in soon.summary
    assert sooner.status is Status.CRITICAL
    assert sooner.summary.endswith(" < 7") and "cert_days_left" in sooner.summary


async def test_expired_certificate_is_rejected_when_verifying(
    ctx: ProbeContext, ca: Authority
) -> None:
    async with serve_tls(ca.issue(HOST, days=2, expired=True).server_context()) as port:
        result = await run_tls(ctx, port, server_name=HOST, ca_file=str(ca.cert_file))
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(f"TLS certificate of 127.0.0.1:{port} (SNI {HOST}) "
                                     "rejected: certificate has expired")


async def test_expired_certificate_read_without_verification(
    ctx: ProbeContext, ca: Authority
) -> None:
    async with serve_tls(ca.issue(HOST, days=2, expired=True).server_context()) as port:
        result = await run_tls(ctx, port, verify_tls=False)
    assert result.status is Status.CRITICAL
    assert "expired 2 days ago" in result.summary
    assert number(result, "cert_days_left") < 0


async def test_self_signed_certificate(ctx: ProbeContext, tmp_path: Path) -> None:
    async with serve_tls(self_signed(tmp_path, HOST).server_context()) as port:
        verified = await run_tls(ctx, port, server_name=HOST)
        read = await run_tls(ctx, port, server_name=HOST, verify_tls=False)
    assert verified.status is Status.CRITICAL
    assert "rejected: self-signed certificate" in verified.summary
    assert verified.summary.endswith("or set verify_tls = false")
    assert read.status is Status.OK, read.summary


async def test_wrong_server_name_is_rejected(ctx: ProbeContext, ca: Authority) -> None:
    async with serve_tls(ca.issue(HOST).server_context()) as port:
        result = await run_tls(ctx, port, server_name="shop.example.test",
                               ca_file=str(ca.cert_file))
    assert result.status is Status.CRITICAL
    assert "rejected: Hostname mismatch" in result.summary


async def test_smtp_starttls_certificate(ctx: ProbeContext, ca: Authority) -> None:
    async with serve_smtp(ca.issue(HOST, days=40)) as port:
        result = await run_tls(ctx, port, starttls="smtp", server_name=HOST,
                               ca_file=str(ca.cert_file))
    assert result.status is Status.OK, result.summary
    assert result.summary.startswith(
        f"TLS 127.0.0.1:{port} (STARTTLS SMTP, SNI {HOST}): certificate CN={HOST} "
        "expires in 40 days")


async def test_smtp_without_starttls_is_critical(ctx: ProbeContext) -> None:
    async with serve_smtp(None) as port:
        result = await run_tls(ctx, port, starttls="smtp", verify_tls=False)
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(f"127.0.0.1:{port} (STARTTLS SMTP) refused STARTTLS: ")


async def test_imap_and_pop3_starttls_on_dovecot(ctx: ProbeContext, ca: Authority) -> None:
    with run_dovecot(ca.issue(HOST, days=30)) as dovecot:
        imap = await run_tls(ctx, dovecot.imap, starttls="imap", server_name=HOST,
                             ca_file=str(ca.cert_file))
        pop3 = await run_tls(ctx, dovecot.pop3, starttls="pop3", server_name=HOST,
                             ca_file=str(ca.cert_file))
        imaps = await run_tls(ctx, dovecot.imaps, server_name=HOST,
                              ca_file=str(ca.cert_file))
    for result in (imap, pop3, imaps):
        assert result.status is Status.OK, result.summary
        assert "expires in 30 days" in result.summary


async def test_ftp_greeting_not_ready_is_refused(ctx: ProbeContext) -> None:
    async with serve_tcp(greeter(b"421 too many users\r\n")) as port:
        result = await run_tls(ctx, port, starttls="ftp", verify_tls=False)
    assert result.status is Status.CRITICAL
    assert result.summary == (
        f"127.0.0.1:{port} (STARTTLS FTP) refused STARTTLS: it greeted '421 too many users'")


async def test_silent_server_times_out_in_the_handshake(ctx: ProbeContext) -> None:
    async with serve_tcp(silent) as port:
        result = await run_tls(ctx, port, timeout="1s", verify_tls=False)
        greeting = await run_tls(ctx, port, timeout="1s", starttls="smtp", verify_tls=False)
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(
        f"127.0.0.1:{port} did not finish the TLS handshake within ")
    assert greeting.summary.startswith(
        f"127.0.0.1:{port} (STARTTLS SMTP) accepted the connection but sent no greeting "
        "within ")
    assert not has_reading(result, "cert_days_left")


async def test_closed_port_is_critical(ctx: ProbeContext) -> None:
    with closed_port() as port:
        result = await run_tls(ctx, port)
    assert result.status is Status.CRITICAL
    assert result.summary == f"cannot connect to 127.0.0.1:{port}: connection refused"


def test_ca_file_needs_verification() -> None:
    with pytest.raises(ValidationError, match="ca_file: needs verify_tls = true"):
        make_check("tls", port=443, ca_file="/etc/ssl/ca.pem", verify_tls=False)
