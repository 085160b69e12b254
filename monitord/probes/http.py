"""One HTTP request: status, body patterns, latency, redirects and the TLS certificate.

A hosting server answers many sites on one address, so ``host_header`` names the site
(and the TLS server name) while ``url`` points at the local address.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import ssl
import time
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from monitord import net
from monitord.errors import ProbeError
from monitord.model import Observation, Status
from monitord.probes.base import (
    AbsolutePath,
    CheckBase,
    Expectation,
    ProbeContext,
    Regex,
    ca_file_needs_verify,
)

METRICS = {
    "response_seconds": "time from sending the request to the end of the body",
    "status_code": "HTTP status of the last response",
    "content_bytes": "size of the body read (bounded by max_body_bytes)",
    "redirects": "redirects followed",
    "cert_days_left": "days until the server certificate expires (HTTPS only)",
}
MAX_LOCATION_CHARS = 200


class Config(CheckBase):
    METRICS = METRICS
    probe: Literal["http"]
    url: str
    method: Literal["GET", "HEAD", "POST", "PUT", "OPTIONS"] = "GET"
    host_header: str = ""
    headers: dict[str, str] = {}
    body: str = ""
    expect_status: list[int] = []
    body_matches: Regex | None = None
    body_not_matches: Regex | None = None
    # The application's own error page (a PHP fatal error, a database connection error):
    # a match is a script error, WARNING (so warning_priority, P3 for sites), whatever the
    # status; the site is not down, its code or its database is broken.
    error_page: Regex | None = None
    follow_redirects: bool = False
    max_redirects: int = Field(default=5, ge=0, le=30)
    verify_tls: bool = True
    # PEM file of the CAs to trust instead of the system store (sites behind an internal CA).
    ca_file: AbsolutePath = ""
    max_body_bytes: int = Field(default=1048576, ge=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError('expected an http:// or https:// URL like "http://127.0.0.1/"')
        return value

    @model_validator(mode="after")
    def _ca_file_verifies(self) -> Config:
        ca_file_needs_verify(self.ca_file, self.verify_tls)
        return self

    def expectations(self) -> list[Expectation]:
        found = []
        unless = "error_page" if self.error_page is not None else ""
        if self.expect_status:
            codes = ", ".join(str(c) for c in self.expect_status)
            found.append(Expectation("status_code", frozenset(self.expect_status),
                                     f"expected status {codes}", unless=unless))
        else:
            found.append(Expectation("status_class", frozenset(["2xx", "3xx"]),
                                     "expected a status below 400", unless=unless))
        if self.error_page is not None:
            found.append(Expectation("error_page", frozenset([False]),
                                     "the application's error page (a script or database "
                                     "error)", Status.WARNING))
        if self.body_matches is not None:
            found.append(Expectation("body_matches", frozenset([True]),
                                     f"body does not match {self.body_matches.pattern!r}"))
        if self.body_not_matches is not None:
            found.append(Expectation("body_not_matches", frozenset([True]),
                                     f"body matches {self.body_not_matches.pattern!r}"))
        return found

    def target(self) -> str:
        return _target(self)


@dataclasses.dataclass(frozen=True, slots=True)
class _Response:
    status: int
    body: bytes
    redirects: int
    location: str
    der: bytes | None
    elapsed: float


async def probe(cfg: Config, ctx: ProbeContext) -> Observation:
    import aiohttp

    session = ctx.shared.http()
    tls = _tls(cfg, ctx)
    headers = dict(cfg.headers)
    if cfg.host_header:
        headers["Host"] = cfg.host_header
    start = time.monotonic()
    try:
        # aiohttp raises on reaching max_redirects redirects, and takes 0 as "no limit".
        async with session.request(
            cfg.method, cfg.url, headers=headers, data=cfg.body.encode() or None,
            allow_redirects=cfg.follow_redirects, max_redirects=cfg.max_redirects + 1,
            ssl=tls, server_hostname=_server_name(cfg),
        ) as resp:
            der = _peer_certificate(resp)
            body = await _read_body(resp.content, cfg.max_body_bytes)
            elapsed = time.monotonic() - start
            location = resp.headers.get("Location", "")[:MAX_LOCATION_CHARS]
            seen = _Response(resp.status, body, len(resp.history), location, der, elapsed)
            final_url = resp.url
    except aiohttp.ClientError as e:
        raise _failure(cfg, e) from None
    if seen.der is None and final_url.scheme == "https":
        der = await _handshake_certificate(cfg, final_url.host or "", final_url.port)
        seen = dataclasses.replace(seen, der=der)
    return _observe(cfg, seen)


def _observe(cfg: Config, seen: _Response) -> Observation:
    obs = Observation(f"HTTP {seen.status} from {_target(cfg)} in {seen.elapsed * 1000:.0f} ms")
    obs.add("status_code", seen.status)
    obs.add("status_class", f"{seen.status // 100}xx")
    obs.add("response_seconds", round(seen.elapsed, 6))
    obs.add("content_bytes", len(seen.body))
    obs.add("redirects", seen.redirects)
    if 300 <= seen.status < 400 and seen.location:
        obs.summary += f", redirect to {seen.location}"
    text = seen.body.decode("utf-8", "replace")
    if cfg.body_matches is not None:
        obs.add("body_matches", bool(cfg.body_matches.search(text)))
    if cfg.body_not_matches is not None:
        obs.add("body_not_matches", not cfg.body_not_matches.search(text))
    if cfg.error_page is not None:
        obs.add("error_page", bool(cfg.error_page.search(text)))
    if seen.der is not None:
        days = _days_left(seen.der)
        obs.add("cert_days_left", round(days, 2))
        obs.summary += f", certificate expires in {days:.0f} days"
    return obs


def _tls(cfg: Config, ctx: ProbeContext) -> ssl.SSLContext:
    """The client context: no verification, the system store, or one trusting ca_file.
    Kept between runs: aiohttp pools connections by context, so a new one per run would
    defeat keep-alive."""
    return net.client_context(cfg.verify_tls, cfg.ca_file, ctx.memory)


def _server_name(cfg: Config) -> str | None:
    """The TLS server name (SNI, and the name verified): the site's, not the address."""
    if cfg.host_header and urlsplit(cfg.url).scheme == "https":
        return cfg.host_header.split(":")[0]
    return None


async def _read_body(content: Any, limit: int) -> bytes:
    """Up to ``limit`` bytes of the body. ``StreamReader.read(n)`` returns what is buffered,
    which may be less than ``n``, so read until the end or the limit."""
    body = bytearray()
    while len(body) < limit:
        chunk = await content.read(limit - len(body))
        if not chunk:
            break
        body += chunk
    return bytes(body)


def _peer_certificate(resp: Any) -> bytes | None:
    """The server certificate (DER) of the response's connection, if it is still open.

    aiohttp hands the connection back to its pool as soon as the whole body is buffered,
    often before ``request()`` returns (aio-libs/aiohttp#2205), and has no public way to the
    certificate (#2816); the response's protocol still holds a kept-alive transport.
    """
    connection = resp.connection
    protocol = connection.protocol if connection is not None else getattr(resp, "_protocol", None)
    transport = getattr(protocol, "transport", None)
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    return ssl_object.getpeercert(binary_form=True)


async def _handshake_certificate(cfg: Config, host: str, port: int | None) -> bytes:
    """The certificate by a handshake of its own, for when the server closed the request's
    connection (``Connection: close``) before it could be read. The request has already
    verified the certificate, if asked to; this only reads it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        _, writer = await asyncio.open_connection(
            host, port or 443, ssl=context, server_hostname=_server_name(cfg) or host)
    except OSError as e:  # ssl.SSLError is an OSError
        raise ProbeError(f"cannot read the TLS certificate of {_target(cfg)}: "
                         f"{net.reason(e)}") from None
    try:
        der: bytes = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.transport.abort()  # skips the close_notify exchange: nothing was sent
    return der


def _days_left(der: bytes) -> float:
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    remaining = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    return remaining.total_seconds() / 86400


def _failure(cfg: Config, e: Exception) -> ProbeError:
    """A message a person can act on for each way the request can fail."""
    import aiohttp

    target = _target(cfg)
    if isinstance(e, aiohttp.TooManyRedirects):
        return ProbeError(f"more than {cfg.max_redirects} redirects from {target}")
    if isinstance(e, aiohttp.ClientConnectorCertificateError):
        return ProbeError(f"TLS certificate of {target} rejected: "
                          f"{net.reason(e.certificate_error)}; fix the certificate, set ca_file "
                          "to an internal CA or set verify_tls = false")
    if isinstance(e, aiohttp.ClientConnectorSSLError):
        return ProbeError(f"TLS handshake with {target} failed: {net.reason(e.os_error)}")
    if isinstance(e, aiohttp.ClientConnectorError):
        return ProbeError(f"cannot connect to {target}: {net.reason(e.os_error)}")
    if isinstance(e, aiohttp.ServerDisconnectedError):
        return ProbeError(f"{target} closed the connection without answering")
    if isinstance(e, aiohttp.ClientResponseError):
        return ProbeError(f"bad HTTP response from {target}: {e.message}")
    return ProbeError(f"HTTP request to {target} failed: {e}")


def _target(cfg: Config) -> str:
    return f"{cfg.url} (Host: {cfg.host_header})" if cfg.host_header else cfg.url
