"""What the mail and tls probes both speak: the greetings and STARTTLS commands of SMTP,
IMAP, POP3 and FTP over asyncio streams, and the certificate of the connection.

Not a probe module: it is listed in no registry. Every read is bounded (a line by the
stream's limit, a reply by MAX_REPLY_LINES); what a server says is untrusted and cut to
``net.shown`` before it reaches a summary.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any, Literal

from monitord.errors import ProbeError, Refused
from monitord.model import Status
from monitord.net import peer_certificate, shown

Protocol = Literal["smtp", "imap", "pop3", "ftp"]
MAX_LINE_BYTES = 8192   # the StreamReader limit: a longer line is an error, not a wait
MAX_REPLY_LINES = 100   # a multi-line reply (SMTP EHLO, IMAP CAPABILITY) longer than this
GREETING = {"smtp": "220", "imap": "* OK", "pop3": "+OK", "ftp": "220"}


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


def certificate(ssl_object: Any) -> bytes:
    """The server certificate (DER) of a TLS connection, verified or not."""
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        raise ProbeError("the connection is not using TLS", Status.UNKNOWN)
    der = peer_certificate(ssl_object)
    if der is None:
        raise ProbeError("the server sent no certificate")
    return der
