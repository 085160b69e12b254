"""Logging: plain lines with syslog priorities for the journal, timestamps elsewhere, or
JSON for log shippers; secrets registered once are scrubbed from every line.

Under systemd, stderr goes to the journal when ``JOURNAL_STREAM`` names it (see
systemd.exec(5)); journald stamps the time itself and reads a leading ``<N>`` as the
line's priority (sd-daemon(3)): ``<3>`` error, ``<4>`` warning, ``<6>`` info, ``<7>`` debug.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
from collections.abc import MutableMapping
from typing import TextIO

SYSLOG_PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4,
                   logging.INFO: 6, logging.DEBUG: 7}
MIN_SECRET_CHARS = 6
_secrets: set[str] = set()


def register_secret(secret: str) -> None:
    """Never log ``secret`` (a token, a password); short strings would scrub too much."""
    if len(secret) >= MIN_SECRET_CHARS:
        _secrets.add(secret)


def scrub(text: str) -> str:
    for secret in _secrets:
        text = text.replace(secret, "***")
    return text


class _Journal(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        priority = SYSLOG_PRIORITY.get(record.levelno, 6)
        return "\n".join(f"<{priority}>{line}" for line in scrub(super().format(record))
                         .splitlines() or [""])


class _Plain(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


class _Json(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": scrub(record.getMessage()),
        }
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry)


def setup(level: int, log_format: str = "auto", stream: TextIO = sys.stderr,
          environ: MutableMapping[str, str] = os.environ) -> None:
    """``auto``: journal lines under systemd's journal, timestamped lines elsewhere."""
    handler = logging.StreamHandler(stream)
    if log_format == "json":
        handler.setFormatter(_Json())
    elif log_format == "journal" or (log_format == "auto" and environ.get("JOURNAL_STREAM")):
        handler.setFormatter(_Journal("%(message)s"))
    else:
        handler.setFormatter(_Plain("%(asctime)s %(levelname)s %(message)s",
                                    "%Y-%m-%d %H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    if level > logging.DEBUG:
        logging.getLogger("asyncio").setLevel(logging.WARNING)
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
