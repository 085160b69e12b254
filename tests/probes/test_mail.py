"""The mail probe against real mail servers on 127.0.0.1 (aiosmtpd for SMTP, Dovecot for
IMAP and POP3), run through the real runner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from monitord.agent.runner import run_check
from monitord.model import Result, Status
from monitord.probes.base import ProbeContext
from tests.conftest import make_check
from tests.probes.mailservers import MAIL_PASSWORD, MAIL_USER, Dovecot, run_dovecot, serve_smtp
from tests.probes.readings import has_reading, number, reading
from tests.probes.servers import Authority, closed_port, greeter, serve_tcp, silent

HOST = "mail.example.test"


@pytest.fixture
def ca(tmp_path: Path) -> Authority:
    return Authority(tmp_path)


@pytest.fixture(scope="module")
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Dovecot, Path]]:
    """One Dovecot for the module: IMAP/POP3 with STARTTLS and implicit TLS ports."""
    ca = Authority(tmp_path_factory.mktemp("dovecot-ca"))
    with run_dovecot(ca.issue(HOST, days=60)) as server:
        yield server, ca.cert_file


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "password"
    path.write_text(MAIL_PASSWORD + "\n")
    return path


async def run_mail(ctx: ProbeContext, port: int, **fields: Any) -> Result:
    return await run_check(make_check("mail", port=port, **fields), ctx)


# --- SMTP -------------------------------------------------------------------------------


async def test_smtp_starttls_and_login_is_ok(
    ctx: ProbeContext, ca: Authority, password_file: Path
) -> None:
    async with serve_smtp(ca.issue(HOST, days=90)) as port:
        result = await run_mail(ctx, port, protocol="smtp", server_name=HOST,
                                ca_file=str(ca.cert_file), user=MAIL_USER,
                                password_file=str(password_file))
    assert result.status is Status.OK, result.summary
    assert result.summary.startswith(
        f"SMTP 127.0.0.1:{port} greeted '220 mail.example.test monitord test ESMTP' in ")
    assert result.summary.endswith(
        f", STARTTLS certificate expires in 90 days, logged in as {MAIL_USER}")
    assert reading(result, "greeting_ok") is True
    assert reading(result, "login_ok") is True
    assert 89 < number(result, "cert_days_left") <= 90
    assert number(result, "connect_seconds") <= number(result, "response_seconds")


async def test_smtp_implicit_tls_is_ok(ctx: ProbeContext, ca: Authority) -> None:
    async with serve_smtp(ca.issue(HOST, days=90), implicit=True) as port:
        result = await run_mail(ctx, port, protocol="smtp", tls="implicit", server_name=HOST,
                                ca_file=str(ca.cert_file))
    assert result.status is Status.OK, result.summary
    assert ", TLS certificate expires in 90 days" in result.summary


async def test_smtp_starttls_expiring_certificate_warns(ctx: ProbeContext, ca: Authority) -> None:
    async with serve_smtp(ca.issue(HOST, days=10)) as port:
        result = await run_mail(ctx, port, protocol="smtp", server_name=HOST,
                                ca_file=str(ca.cert_file))
    assert result.status is Status.WARNING
    assert "STARTTLS certificate expires in 10 days" in result.summary
    assert result.summary.endswith(" < 21") and "cert_days_left" in result.summary


async def test_smtp_without_starttls_is_critical(ctx: ProbeContext) -> None:
    async with serve_smtp(None) as port:
        plain = await run_mail(ctx, port, protocol="smtp", tls="none")
        result = await run_mail(ctx, port, protocol="smtp")
    assert plain.status is Status.OK, plain.summary
    assert not has_reading(plain, "cert_days_left")
    assert result.status is Status.CRITICAL
    assert result.summary == (
        f'127.0.0.1:{port} does not offer STARTTLS; set tls = "none" to skip it')


async def test_smtp_login_failure_is_critical(
    ctx: ProbeContext, ca: Authority, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not the password\n")
    async with serve_smtp(ca.issue(HOST)) as port:
        result = await run_mail(ctx, port, protocol="smtp", verify_tls=False, user=MAIL_USER,
                                password_file=str(wrong))
    assert result.status is Status.CRITICAL
    assert ", login answered '535 " in result.summary
    assert result.summary.endswith(f"login as {MAIL_USER} refused")
    assert reading(result, "login_ok") is False


async def test_smtp_bad_greeting_is_critical(ctx: ProbeContext) -> None:
    async with serve_tcp(greeter(b"554 mail.example.test no SMTP service here\r\n")) as port:
        result = await run_mail(ctx, port, protocol="smtp")
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(
        f"SMTP 127.0.0.1:{port} greeted '554 mail.example.test no SMTP service here' in ")
    assert result.summary.endswith("expected a greeting starting '220'")
    assert reading(result, "greeting_ok") is False


async def test_smtp_starttls_self_signed_is_rejected(ctx: ProbeContext, tmp_path: Path) -> None:
    from tests.probes.servers import self_signed

    async with serve_smtp(self_signed(tmp_path, HOST)) as port:
        result = await run_mail(ctx, port, protocol="smtp", server_name=HOST)
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(
        f"TLS certificate of 127.0.0.1:{port} rejected: self-signed certificate")


async def test_silent_server_times_out(ctx: ProbeContext) -> None:
    async with serve_tcp(silent) as port:
        smtp = await run_mail(ctx, port, protocol="smtp", timeout="1s")
        imap = await run_mail(ctx, port, protocol="imap", timeout="1s")
    for result in (smtp, imap):
        assert result.status is Status.CRITICAL
        assert result.summary.startswith(
            f"127.0.0.1:{port} accepted the connection but sent no greeting within ")


async def test_closed_port_is_critical(ctx: ProbeContext) -> None:
    with closed_port() as port:
        smtp = await run_mail(ctx, port, protocol="smtp")
        pop3 = await run_mail(ctx, port, protocol="pop3")
    for result in (smtp, pop3):
        assert result.status is Status.CRITICAL
        assert result.summary == f"cannot connect to 127.0.0.1:{port}: connection refused"


# --- IMAP and POP3 on Dovecot -----------------------------------------------------------


async def test_imap_starttls_and_login_is_ok(
    ctx: ProbeContext, dovecot: tuple[Dovecot, Path]
) -> None:
    server, ca_file = dovecot
    result = await run_mail(ctx, server.imap, protocol="imap", server_name=HOST,
                            ca_file=str(ca_file), user=MAIL_USER,
                            password_file=str(server.password_file))
    assert result.status is Status.OK, result.summary
    assert result.summary.startswith(f"IMAP 127.0.0.1:{server.imap} greeted '* OK ")
    assert result.summary.endswith(
        f", STARTTLS certificate expires in 60 days, logged in as {MAIL_USER}")


async def test_pop3_implicit_tls_and_login_is_ok(
    ctx: ProbeContext, dovecot: tuple[Dovecot, Path]
) -> None:
    server, ca_file = dovecot
    result = await run_mail(ctx, server.pop3s, protocol="pop3", tls="implicit",
                            server_name=HOST, ca_file=str(ca_file), user=MAIL_USER,
                            password_file=str(server.password_file))
    assert result.status is Status.OK, result.summary
    assert result.summary.startswith(f"POP3 127.0.0.1:{server.pop3s} greeted '+OK ")
    assert ", TLS certificate expires in 60 days" in result.summary


async def test_imap_and_pop3_login_failure_is_critical(
    ctx: ProbeContext, dovecot: tuple[Dovecot, Path]
) -> None:
    server, _ = dovecot
    imap = await run_mail(ctx, server.imaps, protocol="imap", tls="implicit",
                          verify_tls=False, user=MAIL_USER,
                          password_file=str(server.wrong_password_file))
    pop3 = await run_mail(ctx, server.pop3, protocol="pop3", verify_tls=False,
                          user=MAIL_USER, password_file=str(server.wrong_password_file))
    for result in (imap, pop3):
        assert result.status is Status.CRITICAL
        assert result.summary.endswith(f"login as {MAIL_USER} refused")
        assert reading(result, "login_ok") is False
    assert "login answered 'a2 NO [AUTHENTICATIONFAILED]" in imap.summary
    assert "login answered '-ERR [AUTH] Authentication failed.'" in pop3.summary


async def test_imap_bad_greeting_is_critical(ctx: ProbeContext) -> None:
    async with serve_tcp(greeter(b"* BYE too many connections\r\n")) as port:
        result = await run_mail(ctx, port, protocol="imap")
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(
        f"IMAP 127.0.0.1:{port} greeted '* BYE too many connections' in ")
    assert result.summary.endswith("expected a greeting starting '* OK'")


async def test_missing_password_file_is_unknown(ctx: ProbeContext, tmp_path: Path) -> None:
    with closed_port() as port:
        result = await run_mail(ctx, port, protocol="pop3", user=MAIL_USER,
                                password_file=str(tmp_path / "nope"))
    assert result.status is Status.UNKNOWN
    assert result.summary.startswith(f"cannot read password_file {tmp_path / 'nope'}: ")


def test_user_needs_password_file() -> None:
    with pytest.raises(ValidationError, match="set both to log in, or neither"):
        make_check("mail", protocol="imap", user=MAIL_USER)
