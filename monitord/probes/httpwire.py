"""The http probe's wire: one HTTP/1.1 exchange on an asyncio protocol, parsed by httptools.

A check is one request and one response, thousands of times a minute on a hosting
server, so the path is kept short: a ``Protocol`` (no streams), the response parsed by
httptools (llhttp, the parser of Node.js, the one uvicorn uses), the request's bytes made
once per check. By default every request goes on a new connection with
``Connection: close``, as a visitor's first request does: a kept connection would not
notice a site that stopped accepting new ones. With ``keep_alive`` a check keeps its own
idle connection for its next run, and a kept connection the server has dropped is
replaced once, for the idempotent methods (RFC 9110, 9.2.2).

No ``Accept-Encoding`` is sent (as Monit does), so a body rule reads the page as served;
a server that compresses anyway is decompressed (gzip, deflate).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import time
import zlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import httptools

from monitord import __version__

USER_AGENT = f"monitord/{__version__}"
NAME_TTL_SECONDS = 300.0          # resolved names are kept this long (as aiohttp's cache did)
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT"})
UNSAFE_PATH = "%/:@!$&'()*+,;=-._~?"   # kept as they are in a request target (RFC 3986)


class Failed(Exception):
    """The exchange failed; ``stage`` says how far it got: "connect", "tls", "answer"
    (nothing came back), "response" (a bad or cut-off response)."""

    def __init__(self, stage: str, reason: str, error: BaseException | None = None) -> None:
        super().__init__(reason)
        self.stage = stage
        self.reason = reason
        self.error = error


@dataclass(frozen=True, slots=True)
class Request:
    """One request, ready to send: where it goes and its bytes."""

    scheme: str
    host: str
    port: int
    server_name: str | None    # the TLS server name (SNI, and the name verified)
    method: str
    data: bytes
    keep_alive: bool
    numeric: bool              # the host is an IP address: nothing to resolve

    @property
    def tls(self) -> bool:
        return self.scheme == "https"


def make_request(method: str, url: str, host_header: str, headers: dict[str, str],
                 body: bytes, keep_alive: bool) -> Request:
    """``method url`` with the site's Host header (and TLS server name) ``host_header``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    default_port = port == (443 if parts.scheme == "https" else 80)
    authority = f"[{host}]" if ":" in host else host
    site = host_header or (authority if default_port else f"{authority}:{port}")
    target = quote(parts.path or "/", safe=UNSAFE_PATH)
    if parts.query:
        target += "?" + quote(parts.query, safe=UNSAFE_PATH)
    fields = {"host": ("Host", site), "user-agent": ("User-Agent", USER_AGENT),
              "accept": ("Accept", "*/*")}
    for name, value in headers.items():
        if name.lower() != "host":
            fields[name.lower()] = (name, value)
    if host_header:
        fields["host"] = ("Host", host_header)
    fields["connection"] = ("Connection", "keep-alive" if keep_alive else "close")
    if body or method in ("POST", "PUT"):
        fields["content-length"] = ("Content-Length", str(len(body)))
    lines = [f"{method} {target} HTTP/1.1", *(f"{n}: {v}" for n, v in fields.values())]
    data = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body
    server_name = (host_header.rsplit(":", 1)[0] if host_header else host) \
        if parts.scheme == "https" else None
    return Request(parts.scheme, host, port, server_name, method, data, keep_alive,
                   _is_address(host))


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(slots=True)
class Reply:
    status: int
    location: str
    body: bytes
    reusable: bool
    ssl_object: Any          # the TLS connection's ssl.SSLObject, None for plain HTTP


@dataclass
class Pool:
    """What the http checks share: resolved names and the idle kept-alive connections."""

    names: dict[tuple[str, int], tuple[float, list[str]]] = field(default_factory=dict)
    idle: set[Exchange] = field(default_factory=set)

    async def addresses(self, host: str, port: int) -> list[str]:
        """``host``'s addresses, from the cache while it is fresh."""
        cached = self.names.get((host, port))
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        infos = await asyncio.get_running_loop().getaddrinfo(host, port,
                                                             type=socket.SOCK_STREAM)
        found = list(dict.fromkeys(str(info[4][0]) for info in infos))
        self.names[(host, port)] = (time.monotonic() + NAME_TTL_SECONDS, found)
        return found

    def close(self) -> None:
        for exchange in self.idle:
            exchange.abort()
        self.idle.clear()


async def fetch(request: Request, pool: Pool, tls: ssl.SSLContext | None,
                memory: dict[str, Any], limit: int) -> Reply:
    """Send ``request`` and read its response (the body up to ``limit`` bytes).

    With ``keep_alive``, the check's idle connection (kept in its ``memory``) is used if
    it leads to the same place, and the connection is kept for the next run if the
    response allows it.
    """
    kept: Exchange | None = memory.pop("http_connection", None) if request.keep_alive \
        else None
    key = (request.host, request.port, request.server_name, id(tls)) if request.keep_alive \
        else ()
    if kept is not None:
        pool.idle.discard(kept)
        if kept.key == key and kept.usable():
            try:
                return await _exchange(kept, request, pool, memory, limit)
            except Failed as e:
                if e.stage != "answer" or request.method not in IDEMPOTENT:
                    raise
        kept.abort()
    exchange = await _connect(request, pool, tls, key)
    return await _exchange(exchange, request, pool, memory, limit)


async def _exchange(exchange: Exchange, request: Request, pool: Pool, memory: dict[str, Any],
                    limit: int) -> Reply:
    try:
        reply = await exchange.send(request.data, request.method == "HEAD", limit)
    except BaseException:
        exchange.abort()   # failed, or cancelled by the runner's deadline
        raise
    if request.keep_alive and reply.reusable:
        memory["http_connection"] = exchange
        pool.idle.add(exchange)
    else:
        exchange.abort()
    return reply


async def _connect(request: Request, pool: Pool, tls: ssl.SSLContext | None,
                   key: tuple[Any, ...]) -> Exchange:
    loop = asyncio.get_running_loop()
    try:
        addresses = [request.host] if request.numeric \
            else await pool.addresses(request.host, request.port)
    except OSError as e:
        raise Failed("connect", "", e) from None
    error: BaseException | None = None
    for address in addresses:
        try:
            _, exchange = await loop.create_connection(
                Exchange, address, request.port, ssl=tls,
                server_hostname=request.server_name if tls is not None else None)
        except ssl.SSLError as e:   # an answer, not an unreachable address: no other try
            raise Failed("tls", "", e) from None
        except OSError as e:
            error = e
            continue
        exchange.key, exchange.tls = key, tls is not None
        return exchange
    raise Failed("connect", "", error) from None


class Exchange(asyncio.Protocol):
    """One HTTP/1.1 connection: a request at a time, its response parsed as it arrives."""

    __slots__ = ("_body", "_done", "_encoding", "_framed", "_head", "_headers_done",
                 "_limit", "_location", "_parser", "_size", "_status", "closed", "key", "tls",
                 "transport")

    def __init__(self) -> None:
        self.key: tuple[Any, ...] = ()
        self.tls = False
        self.transport: Any = None
        self.closed = False
        self._done: asyncio.Future[Reply] | None = None
        self._parser: Any = None
        self._status = 0
        self._location = ""
        self._encoding = b""
        self._framed = False        # Content-Length or chunked: the body's end is known
        self._headers_done = False
        self._head = False
        self._body: list[bytes] = []
        self._size = 0
        self._limit = 0

    def usable(self) -> bool:
        return not self.closed and self.transport is not None \
            and not self.transport.is_closing()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def send(self, data: bytes, head: bool, limit: int) -> asyncio.Future[Reply]:
        self._done = asyncio.get_running_loop().create_future()
        self._parser = httptools.HttpResponseParser(self)
        self._status, self._location, self._encoding = 0, "", b""
        self._framed = self._headers_done = False
        self._head, self._limit, self._body, self._size = head, limit, [], 0
        self.transport.write(data)
        return self._done

    # --- asyncio.Protocol

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._done is None or self._done.done():
            self.abort()          # nothing was asked: the connection is not ours to trust
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._finish(reusable=False)
        except httptools.HttpParserError as e:
            self._fail(Failed("response", str(e).strip() or "cannot parse it"))

    def eof_received(self) -> bool:
        return False              # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._done is None or self._done.done():
            return
        if self._headers_done and not self._framed:
            self._finish(reusable=False)    # the body ran to the end of the connection
        elif self._headers_done:
            self._fail(Failed("response", "the connection closed in the middle of the body",
                              exc))
        else:
            self._fail(Failed("answer", "", exc))

    # --- httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"location":
            self._location = value.decode("latin-1")
        elif name in (b"content-length", b"transfer-encoding"):
            self._framed = True
        elif name == b"content-encoding":
            self._encoding = value.strip().lower()

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:     # informational: the real response follows
            self._location, self._encoding, self._framed = "", b"", False
            return
        self._status, self._headers_done = status, True
        if self._head:
            self._finish(reusable=self._parser.should_keep_alive())

    def on_body(self, body: bytes) -> None:
        if self._done is None or self._done.done():
            return
        self._body.append(body)
        self._size += len(body)
        if self._size >= self._limit:
            self._finish(reusable=False)    # the rest is not read: the connection is spent

    def on_message_complete(self) -> None:
        if self._headers_done and self._done is not None and not self._done.done():
            self._finish(reusable=self._parser.should_keep_alive())

    # ---

    def _finish(self, reusable: bool) -> None:
        assert self._done is not None
        body = b"".join(self._body)[: self._limit]
        if self._encoding in (b"gzip", b"deflate", b"x-gzip") and body:
            try:
                body = _decompress(body, self._limit)
            except zlib.error as e:
                self._fail(Failed("response", f"cannot decompress the body: {e}"))
                return
        ssl_object = self.transport.get_extra_info("ssl_object") if self.tls else None
        self._done.set_result(Reply(self._status, self._location, body, reusable, ssl_object))

    def _fail(self, failure: Failed) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_exception(failure)
        self.abort()


def _decompress(body: bytes, limit: int) -> bytes:
    """A gzip or zlib (deflate) body, up to ``limit`` bytes (automatic header detection)."""
    return zlib.decompressobj(47).decompress(body, limit)
