"""Network helpers every part shares: why a connection failed (in words for a summary),
client TLS contexts, certificate facts, and URLs with their passwords taken out.

Nothing here opens a connection. What a server sends is untrusted: ``shown`` makes it
printable, one line and bounded before it reaches a summary or a log line.
"""

from __future__ import annotations

import datetime as dt
import os
import ssl
from typing import Any
from urllib.parse import urlsplit

from monitord.errors import CAFileError

MAX_SHOWN_CHARS = 120


def reason(error: BaseException) -> str:
    """An OSError or TLS error as lower-case words: "connection refused", "certificate has
    expired", "no route to host"."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return error.verify_message or str(error)
    if isinstance(error, ssl.SSLError):
        return error.reason.lower().replace("_", " ") if error.reason else str(error)
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    text = (error.strerror if isinstance(error, OSError) else None) or str(error)
    text = text or type(error).__name__
    return text[0].lower() + text[1:]


def shown(text: str, limit: int = MAX_SHOWN_CHARS) -> str:
    """Server text fit for a summary: printable, one line, at most ``limit`` characters."""
    clean = "".join(c if c.isprintable() else " " for c in text)
    return clean[:limit]


def host_port(host: str, port: int) -> str:
    """"host:port", with an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def redact_url(url: str) -> str:
    """``url`` without the password its user part may carry."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user, _, host = parts.netloc.rpartition("@")
    return parts._replace(netloc=f"{user.partition(':')[0]}@{host}").geturl()


def client_context(verify: bool, ca_file: str, memory: dict[str, Any]) -> ssl.SSLContext:
    """A client context: the system store, ``ca_file`` or no verification at all.

    One context per (verify, CA file and its time) for the whole process, made anew when
    the CA file changes: loading the system store costs about 0.8 MiB, so a context per
    check made 5,000 sites cost 4 GiB; a new context per connection would cost a file read
    each time and defeat connection pools, which key on the context. ``memory`` (a
    check's, or a channel's) remembers which one it uses.
    """
    try:
        stamp = (verify, ca_file, os.stat(ca_file).st_mtime_ns if ca_file else 0)
        context = _CONTEXTS.get(stamp)
        if context is None:
            context = ssl.create_default_context(cafile=ca_file or None) if verify \
                else unverified_context()
            _CONTEXTS[stamp] = context
            while len(_CONTEXTS) > MAX_CONTEXTS:    # CA files replaced many times
                del _CONTEXTS[next(iter(_CONTEXTS))]
    except (OSError, ValueError) as e:
        raise CAFileError(f"cannot load ca_file {ca_file}: {reason(e)}") from None
    memory["tls_context"] = (stamp, context)
    return context


MAX_CONTEXTS = 64
_CONTEXTS: dict[tuple[bool, str, int], ssl.SSLContext] = {}


def unverified_context() -> ssl.SSLContext:
    """TLS without verification: to read a certificate, or where the admin asked for it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def peer_certificate(ssl_object: Any) -> bytes | None:
    """The server certificate (DER) of a TLS connection, verified or not; None if the
    connection does not use TLS or the server sent none."""
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    return ssl_object.getpeercert(binary_form=True)


def certificate_days_left(ssl_object: Any) -> float | None:
    """Days until the peer certificate of a TLS connection expires; None without one.

    A verified connection has the certificate decoded by ssl already; only an unverified
    one (whose ``getpeercert()`` is empty) needs the DER parsed, and cryptography loaded.
    """
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    decoded = ssl_object.getpeercert()
    if decoded and "notAfter" in decoded:
        expires = ssl.cert_time_to_seconds(str(decoded["notAfter"]))
        return (expires - dt.datetime.now(dt.UTC).timestamp()) / 86400
    der = ssl_object.getpeercert(binary_form=True)
    return days_left(der) if der else None


def days_left(der: bytes) -> float:
    """Days until the certificate's notAfter (negative once it has expired)."""
    from cryptography import x509

    cert = x509.load_der_x509_certificate(der)
    remaining = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    return remaining.total_seconds() / 86400


def subject(der: bytes) -> str:
    """The certificate's subject as RFC 4514 text, bounded."""
    from cryptography import x509

    return shown(x509.load_der_x509_certificate(der).subject.rfc4514_string())
