"""Signed webhooks: what a receiver checks to know a notice came from this service and is
not a replay.

Every webhook POST of a channel with a ``secret_file`` carries two headers:

    X-Monitord-Timestamp: 1764090000          (Unix seconds when it was sent)
    X-Monitord-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>

The receiver recomputes the HMAC over the timestamp, a dot and the raw body bytes, compares
in constant time, refuses a timestamp more than a few minutes from its own clock, and
remembers the signatures it took within that tolerance to refuse the same request twice
(README.md, "Signed webhooks", has a complete receiver). A delivery that is retried is
signed again with a new timestamp, so a retry is not a replay; the same notice twice has
the same ``notice_id`` in the body, for receivers that drop repeats.

Optional custom headers (``header_files``: a header's name in the config, its value in a
secret file, like ``Authorization = "/etc/monitord/hook-auth"``) are read at each send
and never logged. The secret and the values are read at each send, so a rotated file needs
no restart, by ``keyfiles.read_secret``: in a thread (``request_headers`` blocks; the
webhook sender runs it in one), and only from a regular file, so a FIFO named by mistake
fails the send with one line instead of holding it.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from monitord.central.notify.keyfiles import read_secret
from monitord.errors import MonitordError, SendError

TIMESTAMP_HEADER = "X-Monitord-Timestamp"
SIGNATURE_HEADER = "X-Monitord-Signature"
VERSION = "v1"
TOLERANCE_SECONDS = 300        # what the README's receiver accepts; a receiver's choice
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")     # RFC 9110 token
RESERVED_HEADERS = frozenset({"content-type", "content-length", "host", "connection",
                              "transfer-encoding", TIMESTAMP_HEADER.lower(),
                              SIGNATURE_HEADER.lower()})


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``v1=`` and the hex HMAC-SHA256 of ``"<timestamp>." + body`` under ``secret``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"{VERSION}={mac.hexdigest()}"


def header_name_problem(name: str) -> str:
    """What is wrong with a custom header's name, or ""."""
    if not HEADER_NAME.fullmatch(name):
        return "expected a header name of letters, digits and \"-\", like \"Authorization\""
    if name.lower() in RESERVED_HEADERS:
        return "monitord sets this header itself; choose another"
    return ""


def request_headers(secret_file: str, header_files: dict[str, str], body: bytes,
                    now: float) -> dict[str, str]:
    """The custom headers and, with a secret, the signature headers of one POST of
    ``body`` at ``now`` (Unix seconds), read from their files (blocking: call it in a
    thread). A file that cannot be read is a SendError worth a retry (the admin can fix
    it); its message names the file, never a value."""
    headers: dict[str, str] = {}
    try:
        for name, path in header_files.items():
            headers[name] = read_secret(path, f"header_files.{name}", required=True)
        if secret_file:
            secret = read_secret(secret_file, "secret_file", required=True)
            timestamp = int(now)
            headers[TIMESTAMP_HEADER] = str(timestamp)
            headers[SIGNATURE_HEADER] = signature(secret, timestamp, body)
    except MonitordError as e:
        raise SendError(str(e), retry=True) from None
    return headers
