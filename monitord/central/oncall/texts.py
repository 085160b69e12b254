"""How on-call records are shown, the same on the command line and in the console: a
contact without its secret, a policy step's start in minutes of each response target."""

from __future__ import annotations

from urllib.parse import urlsplit

from monitord.central.config import CentralConfig
from monitord.durations import format_duration
from monitord.model import Priority
from monitord.store.people import Contact


def shown(contact: Contact) -> str:
    """A contact as it may be shown: a URL only as its scheme and host (it is a secret)."""
    if contact.kind in ("webhook", "slack"):
        parts = urlsplit(contact.address)
        return f"{contact.kind} {parts.scheme}://{parts.hostname or '?'}/..."
    return f"{contact.kind} {contact.address}"


def step_when(share: float, priorities: tuple[Priority, ...], config: CentralConfig) -> str:
    """When a step with ``share`` starts: "at once", or after how long for each priority."""
    if share == 0:
        return "at once"
    targets = config.policy.targets()
    after = ", ".join(f"{p} {format_duration(share * targets[p])}" for p in priorities
                      if p in targets)
    return f"after {share:.0%} of the response target ({after})"
