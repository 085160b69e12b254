"""One HTTP request: status, body patterns, latency, redirects and the TLS certificate.

A hosting server answers many sites on one address, so ``host_header`` names the site
(and the TLS server name) while ``url`` points at the local address. The request goes
over ``httpwire`` (an asyncio protocol and httptools): a new connection per run unless
the check sets ``keep_alive``.
"""

from __future__ import annotations

import re
import ssl
import time
from typing import Any, Literal
from urllib.parse import urljoin, urlsplit

from pydantic import Field, field_validator, model_validator

from monitord import net
from monitord.errors import ProbeError
from monitord.model import Observation, Reading, Status
from monitord.probes import httpwire
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
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_KEPT_READINGS = 1000
_READINGS: dict[tuple[str, int | str], Reading] = {}
TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")      # a header name (RFC 9110, 5.1)
FIELD_VALUE = re.compile(r"^[^\x00-\x08\x0a-\x1f\x7f]*$")  # no line breaks or controls


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
    # A new connection per run sees a site that stopped accepting connections; a kept one
    # does not, but costs the server and the agent less.
    keep_alive: bool = False

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError('expected an http:// or https:// URL like "http://127.0.0.1/"')
        return value

    @field_validator("host_header")
    @classmethod
    def _one_name(cls, value: str) -> str:
        if not FIELD_VALUE.match(value) or " " in value:
            raise ValueError('expected a site name like "shop.example"')
        return value

    @field_validator("headers")
    @classmethod
    def _header_fields(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not TOKEN.match(name) or not FIELD_VALUE.match(text):
                raise ValueError(f"expected header names and one-line values, got {name!r}")
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


async def probe(cfg: Config, ctx: ProbeContext) -> Observation:
    pool = ctx.shared.kept("http", httpwire.Pool)
    request = _first_request(cfg, ctx.memory)
    url, redirects = cfg.url, 0
    start = time.monotonic()
    while True:
        tls = _tls(cfg, ctx) if request.tls else None
        try:
            reply = await httpwire.fetch(request, pool, tls, ctx.memory, cfg.max_body_bytes)
        except httpwire.Failed as e:
            raise _failure(cfg, e) from None
        if not (cfg.follow_redirects and reply.status in REDIRECTS and reply.location):
            break
        if redirects == cfg.max_redirects:
            raise ProbeError(f"more than {cfg.max_redirects} redirects from {_target(cfg)}")
        redirects += 1
        url = urljoin(url, reply.location)
        request = _redirected(cfg, request, url, reply.status)
    elapsed = time.monotonic() - start
    days = net.certificate_days_left(reply.ssl_object) if reply.ssl_object else None
    return _observe(cfg, reply, redirects, days, elapsed)


def _first_request(cfg: Config, memory: dict[str, Any]) -> httpwire.Request:
    """The check's request, made once (its bytes do not change between runs)."""
    made = memory.get("http_request")
    if made is None or made[0] is not cfg:
        request = httpwire.make_request(cfg.method, cfg.url, cfg.host_header, cfg.headers,
                                        cfg.body.encode(), cfg.keep_alive)
        made = memory["http_request"] = (cfg, request)
    first: httpwire.Request = made[1]
    return first


def _redirected(cfg: Config, previous: httpwire.Request, url: str,
                status: int) -> httpwire.Request:
    """The request after a redirect to ``url``: GET after 303 (and after 301 or 302 to a
    POST, as browsers do), the body dropped with the method; the site's Host header while
    the redirect stays on the configured address, the new URL's own host otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProbeError(f"redirect to {net.shown(url, MAX_LOCATION_CHARS)!r}, not an http "
                         f"or https URL, from {_target(cfg)}")
    method, body = previous.method, cfg.body.encode()
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, body = "GET", b""
    configured = urlsplit(cfg.url)
    same_place = (parts.hostname, parts.port) == (configured.hostname, configured.port)
    host_header = cfg.host_header if same_place else ""
    return httpwire.make_request(method, url, host_header, cfg.headers, body, cfg.keep_alive)


def _observe(cfg: Config, reply: httpwire.Reply, redirects: int, days: float | None,
             elapsed: float) -> Observation:
    status, body = reply.status, reply.body
    obs = Observation(f"HTTP {status} from {_target(cfg)} in {elapsed * 1000:.0f} ms",
                      [_reading("status_code", status),
                       _reading("status_class", f"{status // 100}xx"),
                       Reading("response_seconds", round(elapsed, 6)),
                       Reading("content_bytes", len(body)),
                       _reading("redirects", redirects)])
    if 300 <= status < 400 and reply.location:
        obs.summary += f", redirect to {net.shown(reply.location, MAX_LOCATION_CHARS)}"
    if cfg.body_matches is not None or cfg.body_not_matches is not None \
            or cfg.error_page is not None:
        text = body.decode("utf-8", "replace")
        if cfg.body_matches is not None:
            obs.add("body_matches", bool(cfg.body_matches.search(text)))
        if cfg.body_not_matches is not None:
            obs.add("body_not_matches", not cfg.body_not_matches.search(text))
        if cfg.error_page is not None:
            obs.add("error_page", bool(cfg.error_page.search(text)))
    if days is not None:
        obs.add("cert_days_left", round(days, 2))
        obs.summary += f", certificate expires in {days:.0f} days"
    return obs


def _reading(name: str, value: int | str) -> Reading:
    """The same few readings (status 200, class 2xx, no redirects) every run: made once."""
    key = (name, value)
    reading = _READINGS.get(key)
    if reading is None:
        reading = Reading(name, value)
        if len(_READINGS) < MAX_KEPT_READINGS:
            _READINGS[key] = reading
    return reading


def _tls(cfg: Config, ctx: ProbeContext) -> ssl.SSLContext:
    """The client context: no verification, the system store, or one trusting ca_file;
    one per kind, shared by every check (a context holds the whole CA store)."""
    contexts: dict[tuple[bool, str], dict[str, Any]] = ctx.shared.kept("tls contexts", dict)
    memory = contexts.setdefault((cfg.verify_tls, cfg.ca_file), {})
    return net.client_context(cfg.verify_tls, cfg.ca_file, memory)


def _failure(cfg: Config, failure: httpwire.Failed) -> ProbeError:
    """A message a person can act on for each way the exchange can fail."""
    target, error = _target(cfg), failure.error
    if failure.stage == "tls" and isinstance(error, ssl.SSLCertVerificationError):
        return ProbeError(f"TLS certificate of {target} rejected: {net.reason(error)}; fix the "
                          "certificate, set ca_file to an internal CA or set verify_tls = false")
    if failure.stage == "tls" and error is not None:
        return ProbeError(f"TLS handshake with {target} failed: {net.reason(error)}")
    if failure.stage == "connect" and error is not None:
        return ProbeError(f"cannot connect to {target}: {net.reason(error)}")
    if failure.stage == "answer":
        return ProbeError(f"{target} closed the connection without answering")
    return ProbeError(f"bad HTTP response from {target}: {net.shown(failure.reason)}")


def _target(cfg: Config) -> str:
    return f"{cfg.url} (Host: {cfg.host_header})" if cfg.host_header else cfg.url
