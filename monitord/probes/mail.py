"""A mail server's dialogue: SMTP, IMAP or POP3 greeting, STARTTLS or implicit TLS with
the certificate's days left, an optional login, and latency.

SMTP goes through aiosmtplib. IMAP and POP3 need four commands here (STARTTLS, LOGIN,
LOGOUT; STLS, USER, PASS, QUIT), spoken over asyncio streams by ``wire``, which the tls
probe shares: no maintained asyncio library covers both, and aioimaplib alone would add a
dependency for two of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, model_validator

from monitord import net
from monitord.durations import format_duration
from monitord.errors import ProbeError, Refused
from monitord.model import Observation, Status
from monitord.probes import wire
from monitord.probes.base import (
    AbsolutePath,
    CheckBase,
    Expectation,
    ProbeContext,
    Range,
    ca_file_needs_verify,
    parse_range,
    read_secret_file,
)

METRICS = {
    "connect_seconds": "time to open the TCP connection",
    "response_seconds": "time for the whole dialogue: greeting, TLS, login and logout",
    "cert_days_left": "days until the server certificate expires (with TLS)",
}
PORTS = {("smtp", False): 25, ("smtp", True): 465, ("imap", False): 143,
         ("imap", True): 993, ("pop3", False): 110, ("pop3", True): 995}
CONNECTING = "did not accept the connection"


class Config(CheckBase):
    METRICS = METRICS
    probe: Literal["mail"]
    protocol: Literal["smtp", "imap", "pop3"]
    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    tls: Literal["starttls", "implicit", "none"] = "starttls"
    server_name: str = Field(default="", max_length=253)
    verify_tls: bool = True
    ca_file: AbsolutePath = ""
    user: str = Field(default="", max_length=200)
    password_file: AbsolutePath = ""

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        if bool(self.user) != bool(self.password_file):
            raise ValueError("user and password_file: set both to log in, or neither")
        ca_file_needs_verify(self.ca_file, self.verify_tls)
        return self

    @property
    def target_port(self) -> int:
        return self.port or PORTS[(self.protocol, self.tls == "implicit")]

    def target(self) -> str:
        return f"{self.protocol.upper()} {net.host_port(self.host, self.target_port)}"

    def expectations(self) -> list[Expectation]:
        ready = wire.GREETING[self.protocol]
        found = [Expectation("greeting_ok", frozenset([True]),
                             f"expected a greeting starting {ready!r}")]
        if self.user:
            found.append(Expectation("login_ok", frozenset([True]),
                                     f"login as {self.user} refused"))
        return found

    def default_thresholds(self) -> tuple[dict[str, Range], dict[str, Range]]:
        """As the tls probe: below 21 days left is a warning, below 7 critical."""
        return {"cert_days_left": parse_range("21:")}, {"cert_days_left": parse_range("7:")}


@dataclass
class _Dialogue:
    """What happened so far; ``step`` names what is awaited, for a timeout's message."""

    step: str = CONNECTING
    connected: float = 0.0
    greeting: str = ""
    greeting_ok: bool = False
    der: bytes | None = None
    login_reply: str | None = None  # None: no login tried; "" accepted; else the refusal


async def probe(cfg: Config, ctx: ProbeContext) -> Observation:
    password = _password(cfg)
    context = None
    if cfg.tls != "none":
        context = net.client_context(cfg.verify_tls, cfg.ca_file, ctx.memory)
    where = f"{net.host_port(cfg.host, cfg.target_port)}"
    seen = _Dialogue()
    start = time.monotonic()
    try:
        async with asyncio.timeout(ctx.budget()):
            if cfg.protocol == "smtp":
                await _smtp(cfg, context, password, seen, ctx.timeout)
            else:
                await _streams(cfg, context, password, seen)
    except TimeoutError:
        raise ProbeError(f"{where} {seen.step} within "
                         f"{format_duration(time.monotonic() - start)}") from None
    except Refused as e:
        raise ProbeError(f"{where} refused STARTTLS: {e}") from None
    except (ssl.SSLError, ssl.CertificateError) as e:
        raise ProbeError(_tls_failure(where, e)) from None
    except OSError as e:
        if seen.step == CONNECTING:
            raise ProbeError(f"cannot connect to {where}: {net.reason(e)}") from None
        raise ProbeError(f"connection to {where} lost: {net.reason(e)}") from None
    return _observe(cfg, seen, where, time.monotonic() - start)


def _observe(cfg: Config, seen: _Dialogue, where: str, elapsed: float) -> Observation:
    said = f"{cfg.protocol.upper()} {where} greeted {net.shown(seen.greeting)!r}"
    obs = Observation(f"{said} in {elapsed * 1000:.0f} ms")
    obs.add("greeting_ok", seen.greeting_ok)
    obs.add("connect_seconds", round(seen.connected, 6))
    obs.add("response_seconds", round(elapsed, 6))
    if seen.der is not None:
        days = net.days_left(seen.der)
        obs.add("cert_days_left", round(days, 2))
        obs.summary += f", {'STARTTLS' if cfg.tls == 'starttls' else 'TLS'} certificate "
        obs.summary += (f"expired {-days:.0f} days ago" if days < 0
                        else f"expires in {days:.0f} days")
    if seen.login_reply is not None:
        obs.add("login_ok", not seen.login_reply)
        obs.summary += (f", logged in as {cfg.user}" if not seen.login_reply
                        else f", login answered {seen.login_reply!r}")
    return obs


# --- SMTP -------------------------------------------------------------------------------


async def _smtp(cfg: Config, context: ssl.SSLContext | None, password: str,
                seen: _Dialogue, timeout: float) -> None:
    import aiosmtplib

    sock = await _connect(cfg, seen)
    client = aiosmtplib.SMTP(
        hostname=cfg.server_name or cfg.host, sock=sock, use_tls=cfg.tls == "implicit",
        start_tls=False, tls_context=context, timeout=timeout,
        local_hostname="monitord.invalid")
    try:
        await _smtp_dialogue(cfg, client, context, password, seen)
    except aiosmtplib.SMTPConnectResponseError as e:
        seen.greeting = f"{e.code} {e.message}"
    except aiosmtplib.SMTPResponseException as e:
        raise ProbeError(f"{net.host_port(cfg.host, cfg.target_port)} {seen.step}: "
                         f"{net.shown(f'{e.code} {e.message}')!r}") from None
    except aiosmtplib.SMTPException as e:
        raise _smtp_failure(cfg, seen, e) from None
    finally:
        transport = client.transport
        if isinstance(transport, asyncio.Transport):  # a TLS close would wait for the peer
            transport.abort()
        client.close()
        sock.close()


async def _smtp_dialogue(cfg: Config, client: Any, context: ssl.SSLContext | None,
                         password: str, seen: _Dialogue) -> None:
    import aiosmtplib

    seen.step = ("accepted the connection but sent no greeting" if cfg.tls != "implicit"
                 else "did not finish the TLS handshake or sent no greeting")
    response = await client.connect()
    seen.greeting, seen.greeting_ok = f"{response.code} {response.message}", True
    seen.step = "refused EHLO"
    await client.ehlo()
    if cfg.tls == "starttls":
        seen.step = "refused STARTTLS"
        await client.starttls(server_hostname=cfg.server_name or cfg.host, tls_context=context)
    if context is not None:
        seen.der = wire.certificate(client.get_transport_info("ssl_object"))
    if cfg.user:
        seen.step = "did not answer the login"
        try:
            await client.login(cfg.user, password)
            seen.login_reply = ""
        except aiosmtplib.SMTPAuthenticationError as e:
            seen.login_reply = net.shown(f"{e.code} {e.message}")
    seen.step = "did not answer QUIT"
    with contextlib.suppress(aiosmtplib.SMTPException):
        await client.quit()


def _smtp_failure(cfg: Config, seen: _Dialogue, error: Exception) -> ProbeError:
    """aiosmtplib wraps OS and TLS errors; unwrap them for a message a person can act on."""
    where = net.host_port(cfg.host, cfg.target_port)
    cause = error.__cause__
    if isinstance(cause, ssl.SSLError | ssl.CertificateError):
        return ProbeError(_tls_failure(where, cause))
    if isinstance(cause, OSError):
        return ProbeError(f"connection to {where} lost: {net.reason(cause)}")
    text = str(error)
    if "STARTTLS extension not supported" in text:
        return ProbeError(f"{where} does not offer STARTTLS; set tls = \"none\" to skip it")
    if "authentication" in text.lower():
        return ProbeError(f"{where} offers no login method aiosmtplib supports: {text}")
    return ProbeError(f"SMTP dialogue with {where} failed: {net.shown(text)}")


# --- IMAP and POP3 ----------------------------------------------------------------------


async def _streams(cfg: Config, context: ssl.SSLContext | None, password: str,
                   seen: _Dialogue) -> None:
    protocol: Literal["imap", "pop3"] = "imap" if cfg.protocol == "imap" else "pop3"
    sock = await _connect(cfg, seen)
    reader, writer = await asyncio.open_connection(sock=sock, limit=wire.MAX_LINE_BYTES)
    try:
        if context is not None and cfg.tls == "implicit":
            await _start_tls(cfg, writer, context, seen)
        seen.step = "accepted the connection but sent no greeting"
        seen.greeting_ok, seen.greeting = await wire.greeting(protocol, reader)
        if not seen.greeting_ok:
            return
        if context is not None and cfg.tls == "starttls":
            seen.step = "did not answer STARTTLS"
            await wire.starttls(protocol, reader, writer)
            await _start_tls(cfg, writer, context, seen)
        if cfg.user:
            seen.step = "did not answer the login"
            seen.login_reply = await _login(protocol, reader, writer, cfg.user, password)
        seen.step = "did not answer LOGOUT" if protocol == "imap" else "did not answer QUIT"
        with contextlib.suppress(Refused, ConnectionError):
            await wire.command(protocol, reader, writer,
                               "LOGOUT" if protocol == "imap" else "QUIT", tag="a9")
    finally:
        writer.transport.abort()


async def _start_tls(cfg: Config, writer: asyncio.StreamWriter, context: ssl.SSLContext,
                     seen: _Dialogue) -> None:
    seen.step = "did not finish the TLS handshake"
    await writer.start_tls(context, server_hostname=cfg.server_name or cfg.host)
    seen.der = wire.certificate(writer.get_extra_info("ssl_object"))


async def _login(protocol: Literal["imap", "pop3"], reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, user: str, password: str) -> str:
    """"" when the server accepted the login, else its refusal."""
    try:
        if protocol == "imap":
            await wire.command("imap", reader, writer,
                               f"LOGIN {_quoted(user)} {_quoted(password)}", tag="a2")
        else:
            await wire.command("pop3", reader, writer, f"USER {user}")
            await wire.command("pop3", reader, writer, f"PASS {password}")
    except Refused as e:
        return str(e)
    return ""


def _quoted(text: str) -> str:
    """An IMAP quoted string (RFC 3501 section 4.3); ``_password`` rejected line ends."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# --- shared -----------------------------------------------------------------------------


async def _connect(cfg: Config, seen: _Dialogue) -> socket.socket:
    """A connected non-blocking socket: aiosmtplib takes one, and it times the connect
    alone, without the TLS handshake, for every protocol alike."""
    loop = asyncio.get_running_loop()
    start = time.monotonic()
    infos = await loop.getaddrinfo(cfg.host, cfg.target_port, type=socket.SOCK_STREAM)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, address)
    except BaseException:
        sock.close()
        raise
    seen.connected = time.monotonic() - start
    return sock


def _password(cfg: Config) -> str:
    """The password from password_file; a line end in it or in the user would end the
    protocol's command early, so both are refused."""
    if not cfg.password_file:
        return ""
    if any(c in cfg.user for c in "\r\n\0"):
        raise ProbeError("user: expected no line ends or NUL", Status.UNKNOWN)
    return read_secret_file(cfg.password_file, required=True)


def _tls_failure(where: str, error: Exception) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        return (f"TLS certificate of {where} rejected: {net.reason(error)}; fix the "
                "certificate, set ca_file to an internal CA or set verify_tls = false")
    return f"TLS handshake with {where} failed: {net.reason(error)}"
