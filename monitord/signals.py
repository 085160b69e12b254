"""Signals for the long-running commands (the agent and the central service).

SIGTERM or SIGINT asks for a clean stop; a second one exits at once (a shutdown that
hangs must not need SIGKILL). SIGHUP, where the command reloads, asks for a reload.
Handlers only set events; the command's own loop does the work.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

log = logging.getLogger("monitord")


def handle_signals(stop: asyncio.Event, reload: asyncio.Event | None = None) -> None:
    """Set ``stop`` on SIGTERM/SIGINT (exit at once on the second), ``reload`` on SIGHUP."""
    loop = asyncio.get_running_loop()

    def on_stop(signum: int) -> None:
        if stop.is_set():
            log.warning("monitord: second %s, exiting at once", signal.Signals(signum).name)
            os._exit(1)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_stop, signum)
    if reload is not None:
        loop.add_signal_handler(signal.SIGHUP, reload.set)
