"""Who hears which notice: the routing rules, as pure functions of the config.

- A channel hears only incidents of its ``priorities``, and only the kinds of notice its
  type takes (``HEARS``): mail is not told of acknowledgements (the person who
  acknowledged knows, and the inbox of the others should not fill up); chat, webhooks
  and PagerDuty are (a room wants to see who took it; PagerDuty must close its page).
- Channels outside ``[escalation] chain`` hear every notice of their priorities.
- The chain is told in order: ``chain[0]`` from the start, ``chain[n]`` once the incident
  reached level n. "opened", "renotify", "acknowledged" and "resolved" go to every chain
  member reached so far (``chain[0..level]``); "escalated" only to ``chain[level]``, the
  contact it brings in (the ones before it were told already and are reminded by
  "renotify"). A level past the chain's end means its last member.
"""

from __future__ import annotations

from monitord.central.notify.settings import ChannelConfig, ChannelType, Notifications
from monitord.store.protocol import NoticeKind

EVERY_KIND: frozenset[NoticeKind] = frozenset(
    ("opened", "escalated", "renotify", "acknowledged", "resolved", "flapping"))
HEARS: dict[ChannelType, frozenset[NoticeKind]] = {
    "mail": EVERY_KIND - {"acknowledged"},
    "webhook": EVERY_KIND,
    "slack": EVERY_KIND,
    "pagerduty": EVERY_KIND,
}


def contact(config: Notifications, level: int) -> str:
    """The chain member responsible at ``level`` ("" without a chain)."""
    chain = config.escalation.chain
    return chain[min(level, len(chain) - 1)] if chain else ""


def recipients(config: Notifications, kind: NoticeKind, level: int,
               priority: str) -> list[ChannelConfig]:
    """The channels a ``kind`` notice at ``level`` about a ``priority`` incident goes to,
    in config order."""
    chain = config.escalation.chain
    if kind == "escalated":
        reached = {contact(config, level)} if chain else set()
    else:
        reached = set(chain[: max(level, 0) + 1])
    return [channel for channel in config.channels
            if (channel.name not in chain or channel.name in reached)
            and priority in channel.priorities and kind in HEARS[channel.type]]
