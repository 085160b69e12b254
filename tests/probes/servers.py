"""Real servers on 127.0.0.1 for probe tests: aiohttp apps, raw TCP listeners, a closed
port, and X.509 certificates made on the spot with ``cryptography``.

Every server listens on an ephemeral port and is closed, with its connections, when its
``async with`` block ends, so no test leaks a socket (warnings are errors).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def serve_app(
    app: web.Application, tls: ssl.SSLContext | None = None
) -> AsyncIterator[int]:
    """Serve ``app`` on 127.0.0.1 (HTTPS with ``tls``) and yield its port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls)
        await site.start()
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def serve_tcp(handler: Handler) -> AsyncIterator[int]:
    """A raw TCP listener on 127.0.0.1 running ``handler`` per connection; yields its port.

    On exit the listener closes and every handler still running is cancelled and awaited;
    each connection's writer is closed whatever the handler did.
    """
    handlers: set[asyncio.Task[None]] = set()

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await handler(reader, writer)
        finally:
            handlers.discard(task)
            writer.close()

    server = await asyncio.start_server(connected, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in list(handlers):
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()


async def until_closed(reader: asyncio.StreamReader) -> None:
    """Read and drop what the client sends until it closes (or the server stops)."""
    while await reader.read(4096):
        pass


def greeter(banner: bytes) -> Handler:
    """A handler that sends ``banner`` on connect and then waits for the client to leave."""

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(banner)
        await writer.drain()
        await until_closed(reader)

    return greet


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept, never answer."""
    await until_closed(reader)


async def echo_line(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Send back the first line received, then wait for the client to leave."""
    writer.write(await reader.readline())
    await writer.drain()
    await until_closed(reader)


async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Accept and abort the connection with a TCP reset (SO_LINGER 0)."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port nothing listens on: bound (so nobody else takes it), never listening,
    so a connection attempt is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


# --- certificates -------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """A certificate and its private key, as PEM files."""

    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context


class Authority:
    """A private certificate authority that issues server certificates into ``folder``."""

    def __init__(self, folder: Path, name: str = "Test Hosting CA") -> None:
        self.folder = folder
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        builder = _builder(self._name, self._name, self._key, now - dt.timedelta(days=1),
                           now + dt.timedelta(days=365))
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None),
                                        critical=True)
        self._cert = builder.sign(self._key, hashes.SHA256())
        self.cert_file = folder / "ca.pem"
        self.cert_file.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, host: str, days: float = 90, expired: bool = False) -> Identity:
        """A certificate for ``host`` valid for ``days`` more days (or ended ``days`` ago)."""
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
        start, end = _validity(days, expired)
        builder = _builder(subject, self._name, key, start, end)
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]),
                                        critical=False)
        return _save(self.folder, host, builder.sign(self._key, hashes.SHA256()), key)


def self_signed(folder: Path, host: str, days: float = 90, expired: bool = False) -> Identity:
    """A self-signed certificate for ``host`` ending in ``days`` days (or, when
    ``expired``, ended ``days`` ago)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    start, end = _validity(days, expired)
    san = x509.SubjectAlternativeName([x509.DNSName(host)])
    cert = _builder(name, name, key, start, end).add_extension(san, critical=False)
    return _save(folder, f"self-{host}", cert.sign(key, hashes.SHA256()), key)


def _validity(days: float, expired: bool) -> tuple[dt.datetime, dt.datetime]:
    now = dt.datetime.now(dt.UTC)
    if expired:
        return now - dt.timedelta(days=days + 30), now - dt.timedelta(days=days)
    return now - dt.timedelta(days=1), now + dt.timedelta(days=days)


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey,
    start: dt.datetime, end: dt.datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
    )


def _save(
    folder: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> Identity:
    cert_file, key_file = folder / f"{stem}.pem", folder / f"{stem}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
    return Identity(cert_file, key_file)
