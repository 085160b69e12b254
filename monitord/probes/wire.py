"""What the mail and tls probes both speak: the greetings and STARTTLS commands of SMTP,
IMAP, POP3 and FTP over asyncio streams, client TLS contexts, and certificate expiry.

Not a probe module: it is listed in no registry. Every read is bounded (a line by the
stream's limit, a reply by MAX_REPLY_LINES); what a server says is untrusted and cut to
MAX_SHOWN_CHARS before it reaches a summary.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import ssl
from typing import Any, Literal

from monitord.errors import ProbeError
from monitord.model import Status

Protocol = Literal["smtp", "imap", "pop3", "ftp"]
MAX_LINE_BYTES = 8192   # the StreamReader limit: a longer line is an error, not a wait
MAX_REPLY_LINES = 100   # a multi-line reply (SMTP EHLO, IMAP CAPABILITY) longer than this
MAX_SHOWN_CHARS = 120
GREETING = {"smtp": "220", "imap": "* OK", "pop3": "+OK", "ftp": "220"}


class Refused(Exception):
    """The server answered a command with a refusal; the message is its (bounded) reply."""


def shown(text: str) -> str:
    """Server text fit for a summary: printable, one line, bounded."""
    clean = "".join(c if c.isprintable() else " " for c in text)
    return clean[:MAX_SHOWN_CHARS]


async def read_line(reader: asyncio.StreamReader) -> str:
    """One line without its line end; ConnectionError when the server has hung up."""
    try:
        raw = await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError:
        raise ConnectionResetError("the server closed the connection") from None
    except asyncio.LimitOverrunError:
        raise ConnectionError(f"the server sent a line over {MAX_LINE_BYTES} bytes") from None
    return raw.decode("utf-8", "replace").rstrip("\r\n")


async def read_reply(reader: asyncio.StreamReader) -> tuple[str, list[str]]:
    """An SMTP or FTP reply: its code and its lines ("250-a", "250 b" -> "250", [a, b])."""
    lines = []
    for _ in range(MAX_REPLY_LINES):
        line = await read_line(reader)
        lines.append(line[4:])
        if len(line) < 4 or line[3] != "-":
            return line[:3], lines
    raise ConnectionError(f"the server sent a reply over {MAX_REPLY_LINES} lines")


async def greeting(protocol: Protocol, reader: asyncio.StreamReader) -> tuple[bool, str]:
    """Whether the server's first words are the protocol's "ready", and those words."""
    if protocol in ("smtp", "ftp"):
        code, lines = await read_reply(reader)
        return code == GREETING[protocol], f"{code} {lines[0]}".strip()
    line = await read_line(reader)
    ready = line.startswith(GREETING[protocol]) or (
        protocol == "imap" and line.startswith("* PREAUTH"))
    return ready, line


async def command(
    protocol: Literal["imap", "pop3"], reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter, text: str, tag: str = "a1",
) -> None:
    """Send one IMAP (tagged) or POP3 command and raise Refused unless it succeeded."""
    writer.write(f"{tag} {text}\r\n".encode() if protocol == "imap" else f"{text}\r\n".encode())
    await writer.drain()
    if protocol == "pop3":
        line = await read_line(reader)
        if not line.startswith("+OK"):
            raise Refused(shown(line))
        return
    for _ in range(MAX_REPLY_LINES):
        line = await read_line(reader)
        if line.startswith(f"{tag} "):
            if line[len(tag) + 1:].upper().startswith("OK"):
                return
            raise Refused(shown(line))
    raise ConnectionError(f"the server sent a reply over {MAX_REPLY_LINES} lines")


async def starttls(
    protocol: Protocol, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Ask for TLS after the greeting (the caller then calls ``writer.start_tls``)."""
    if protocol == "imap":
        await command("imap", reader, writer, "STARTTLS", tag="t1")
    elif protocol == "pop3":
        await command("pop3", reader, writer, "STLS")
    else:
        if protocol == "smtp":
            writer.write(b"EHLO monitord.invalid\r\n")
            await writer.drain()
            code, lines = await read_reply(reader)
            if code != "250":
                raise Refused(shown(f"{code} {lines[0]}"))
        writer.write(b"STARTTLS\r\n" if protocol == "smtp" else b"AUTH TLS\r\n")
        await writer.drain()
        code, lines = await read_reply(reader)
        if code != ("220" if protocol == "smtp" else "234"):
            raise Refused(shown(f"{code} {lines[0]}"))


def client_context(verify: bool, ca_file: str, memory: dict[str, Any]) -> ssl.SSLContext:
    """A client context: the system store, ``ca_file`` or no verification at all.

    Kept in the check's memory between runs and reloaded when ca_file changes.
    """
    try:
        stamp = (verify, ca_file, os.stat(ca_file).st_mtime_ns if ca_file else 0)
        cached = memory.get("tls_context")
        if cached is not None and cached[0] == stamp:
            context: ssl.SSLContext = cached[1]
            return context
        if verify:
            context = ssl.create_default_context(cafile=ca_file or None)
        else:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    except (OSError, ValueError) as e:
        raise ProbeError(f"cannot load ca_file {ca_file}: {reason(e)}", Status.UNKNOWN) from None
    memory["tls_context"] = (stamp, context)
    return context


def peer_certificate(ssl_object: Any) -> bytes:
    """The server certificate (DER) of a TLS connection, verified or not."""
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        raise ProbeError("the connection is not using TLS", Status.UNKNOWN)
    der = ssl_object.getpeercert(binary_form=True)
    if der is None:
        raise ProbeError("the server sent no certificate")
    return der


def days_left(der: bytes) -> float:
    """Days until the certificate's notAfter (negative once expired); a copy of the http
    probe's ``_days_left``."""
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    remaining = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    return remaining.total_seconds() / 86400


def subject(der: bytes) -> str:
    """The certificate's subject as RFC 4514 text, bounded."""
    from cryptography import x509

    return shown(x509.load_der_x509_certificate(der).subject.rfc4514_string())


def reason(error: BaseException) -> str:
    """An OSError or SSL error as lower-case words for a summary."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return error.verify_message or str(error)
    if isinstance(error, ssl.SSLError):
        return error.reason.lower().replace("_", " ") if error.reason else str(error)
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    text = (error.strerror if isinstance(error, OSError) else None) or str(error)
    text = text or type(error).__name__
    return text[0].lower() + text[1:]


def host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
