"""systemd's notify protocol (sd_notify(3)): readiness, status, watchdog, stopping.

Only where systemd asked for it (``NOTIFY_SOCKET`` set); the variables are removed from
the environment once read, so no child ever inherits them (fix scripts get a scrubbed
environment anyway). The watchdog is pinged at half of ``WATCHDOG_USEC`` by a task on
the daemon's own event loop: when the loop stalls, the pings stop and systemd restarts
the daemon.

The protocol is one datagram per message on a unix socket; we send it ourselves rather
than through the sdnotify package (unmaintained since 2017), whose failed connect leaves
its socket open and which offers no way to close it.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import MutableMapping

NOTIFY_VARS = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


class Notifier:
    def __init__(self, environ: MutableMapping[str, str] = os.environ) -> None:
        socket_path = environ.get("NOTIFY_SOCKET", "")
        usec = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        for name in NOTIFY_VARS:
            environ.pop(name, None)
        self.enabled = bool(socket_path)
        self.watchdog_seconds: float | None = None
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_seconds = int(usec) / 1e6 / 2
        # An abstract socket is written "@name" and addressed with a leading NUL.
        self._address = ("\0" + socket_path[1:]) if socket_path.startswith("@") else socket_path

    def send(self, *fields: str) -> None:
        """One datagram; a missing or gone systemd is not the daemon's problem."""
        if not self._address:
            return
        with contextlib.suppress(OSError), \
                socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.sendto("\n".join(fields).encode(), self._address)

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        self.send(f"STATUS={status}")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")
