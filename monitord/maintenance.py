"""``monitord maintenance on|off|list [CHECK]``: windows that pause fixes and escalation.

Every window has an owner (who set it), a reason and an expiry: there is no "forever".
Setting or ending one puts a ``maintenance`` event in the outbox in the same transaction
of the state file (``Outbox.put_window``), so the store, and the on-call through it,
knows of it and sends no notices for it. If the file cannot be written (a full or
read-only disk), neither is written: the command says so in one line and fails, and the
store is never left silencing a host whose window was ended here.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import time
from pathlib import Path

from monitord.agent import events
from monitord.agent.outbox import Outbox
from monitord.agent.statestore import HOST_SCOPE, Maintenance, StateStore
from monitord.config import load_config
from monitord.durations import format_duration, parse_duration
from monitord.errors import MonitordError, OutboxError

STATE_FILE = "state.db"
LONGEST = 7 * 86400.0


def command(config_path: str, state_dir: str | None, action: str, check: str | None,
            duration: str, reason: str) -> str:
    config = load_config(config_path, state_dir=state_dir)
    if check is not None:
        config.check(check)  # an unknown name is an error, with the nearest suggested
    store = StateStore(Path(config.agent.state_dir) / STATE_FILE)
    try:
        scope = check or HOST_SCOPE
        if action == "list":
            return _list(store)
        try:
            return _change(Outbox(store), config.host, check, scope, action, duration,
                           reason)
        except OutboxError as e:
            raise MonitordError(f"maintenance {action}: {e}; nothing was changed") from None
    finally:
        store.close()


def _change(outbox: Outbox, host: str, check: str | None, scope: str, action: str,
            duration: str, reason: str) -> str:
    """Set (``on``) or end (``off``) the window and tell the store, in one transaction."""
    if action == "on":
        said, window = _on(scope, duration, reason)
        outbox.put_window(events.maintenance(host, check, window.until, window.owner,
                                             window.reason), window, scope)
        return said
    what = "the whole host" if scope == HOST_SCOPE else f"check {scope}"
    ended = outbox.put_window(events.maintenance(host, check, None, _owner()), None, scope)
    return f"maintenance ended for {what}" if ended else f"{what} was not in maintenance"


def _on(scope: str, duration: str, reason: str) -> tuple[str, Maintenance]:
    try:
        seconds = parse_duration(duration)
    except ValueError as e:
        raise MonitordError(f"--for: {e}, got {duration!r}") from None
    if not 0 < seconds <= LONGEST:
        raise MonitordError(f"--for: expected a duration up to 7d, got {duration!r}")
    now = time.time()
    window = Maintenance(scope, now + seconds, reason or "no reason given", _owner(), now)
    return (f"maintenance on for {window.what} until {_clock(window.until)} "
            f"({format_duration(seconds)}): fixes and escalation paused"), window


def _list(store: StateStore) -> str:
    now = time.time()
    windows = store.maintenance(now)
    if not windows:
        return "no maintenance"
    return "\n".join(
        f"{w.what}: until {_clock(w.until)} ({format_duration(w.until - now)} left), "
        f"by {w.owner}: {w.reason}" for w in windows
    )


def _owner() -> str:
    return os.environ.get("SUDO_USER") or getpass.getuser()


def _clock(at: float) -> str:
    return dt.datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M")
