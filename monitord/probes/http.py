"""One HTTP request: status, body patterns, latency, redirects and the TLS certificate.

A hosting server answers many sites on one address, so ``host_header`` names the site
(and the TLS server name) while ``url`` points at the local address.
"""

from __future__ import annotations

import datetime as dt
import ssl
import time
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from monitord.errors import ProbeError
from monitord.model import Observation
from monitord.probes.base import CheckBase, Expectation, ProbeContext, Regex

METRICS = {
    "response_seconds": "time from sending the request to the end of the body",
    "status_code": "HTTP status of the last response",
    "content_bytes": "size of the body read (bounded by max_body_bytes)",
    "redirects": "redirects followed",
    "cert_days_left": "days until the server certificate expires (HTTPS only)",
}


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
    follow_redirects: bool = False
    max_redirects: int = Field(default=5, ge=0, le=30)
    verify_tls: bool = True
    max_body_bytes: int = Field(default=1048576, ge=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError('expected an http:// or https:// URL like "http://127.0.0.1/"')
        return value

    def expectations(self) -> list[Expectation]:
        found = []
        if self.expect_status:
            codes = ", ".join(str(c) for c in self.expect_status)
            found.append(Expectation("status_code", frozenset(self.expect_status),
                                     f"expected status {codes}"))
        else:
            found.append(Expectation("status_class", frozenset(["2xx", "3xx"]),
                                     "expected a status below 400"))
        if self.body_matches is not None:
            found.append(Expectation("body_matches", frozenset([True]),
                                     f"body does not match {self.body_matches.pattern!r}"))
        if self.body_not_matches is not None:
            found.append(Expectation("body_not_matches", frozenset([True]),
                                     f"body matches {self.body_not_matches.pattern!r}"))
        return found


async def probe(cfg: Config, ctx: ProbeContext) -> Observation:
    import aiohttp

    session = ctx.shared.http()
    headers = dict(cfg.headers)
    if cfg.host_header:
        headers["Host"] = cfg.host_header
    https = urlsplit(cfg.url).scheme == "https"
    extra: dict[str, Any] = {"ssl": True if cfg.verify_tls else False}
    if https and cfg.host_header:
        extra["server_hostname"] = cfg.host_header.split(":")[0]
    start = time.monotonic()
    try:
        async with session.request(
            cfg.method, cfg.url, headers=headers, data=cfg.body.encode() or None,
            allow_redirects=cfg.follow_redirects, max_redirects=cfg.max_redirects, **extra,
        ) as resp:
            der = _peer_certificate(resp) if https else None
            body = await resp.content.read(cfg.max_body_bytes) if cfg.max_body_bytes else b""
            redirects = len(resp.history)
            status = resp.status
    except aiohttp.TooManyRedirects:
        raise ProbeError(f"more than {cfg.max_redirects} redirects from {_target(cfg)}") from None
    except aiohttp.ClientConnectorCertificateError as e:
        raise ProbeError(f"TLS certificate of {_target(cfg)} rejected: "
                         f"{_reason(e.certificate_error)}; fix the certificate or set "
                         "verify_tls = false") from None
    except aiohttp.ClientConnectorError as e:
        raise ProbeError(f"cannot connect to {_target(cfg)}: {_reason(e.os_error)}") from None
    except aiohttp.ServerDisconnectedError:
        raise ProbeError(f"{_target(cfg)} closed the connection without answering") from None
    except aiohttp.ClientResponseError as e:
        raise ProbeError(f"bad HTTP response from {_target(cfg)}: {e.message}") from None
    except aiohttp.ClientError as e:
        raise ProbeError(f"HTTP request to {_target(cfg)} failed: {e}") from None
    elapsed = time.monotonic() - start
    return _observe(cfg, status, body, redirects, der, elapsed)


def _observe(
    cfg: Config, status: int, body: bytes, redirects: int, der: bytes | None, elapsed: float
) -> Observation:
    obs = Observation(f"HTTP {status} from {_target(cfg)} in {elapsed * 1000:.0f} ms")
    obs.add("status_code", status)
    obs.add("status_class", f"{status // 100}xx")
    obs.add("response_seconds", round(elapsed, 6))
    obs.add("content_bytes", len(body))
    obs.add("redirects", redirects)
    text = body.decode("utf-8", "replace")
    if cfg.body_matches is not None:
        obs.add("body_matches", bool(cfg.body_matches.search(text)))
    if cfg.body_not_matches is not None:
        obs.add("body_not_matches", not cfg.body_not_matches.search(text))
    if der is not None:
        days = _days_left(der)
        obs.add("cert_days_left", round(days, 2))
        obs.summary += f", certificate expires in {days:.0f} days"
    return obs


def _peer_certificate(resp: Any) -> bytes | None:
    connection = resp.connection
    transport = connection.transport if connection is not None else None
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    return ssl_object.getpeercert(binary_form=True)


def _days_left(der: bytes) -> float:
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    remaining = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    return remaining.total_seconds() / 86400


def _target(cfg: Config) -> str:
    return f"{cfg.url} (Host: {cfg.host_header})" if cfg.host_header else cfg.url


def _reason(error: BaseException) -> str:
    if isinstance(error, ssl.SSLCertVerificationError):
        return error.verify_message or str(error)
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower() if error.strerror[0].isupper() else error.strerror
    return str(error)
