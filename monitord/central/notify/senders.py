"""Which module sends to which channel type: one literal table, one signature."""

from __future__ import annotations

from monitord.central.notify import mail, pagerduty, slack, webhook
from monitord.central.notify.message import Sender

SENDERS: dict[str, Sender] = {
    "mail": mail.send,
    "webhook": webhook.send,
    "slack": slack.send,
    "pagerduty": pagerduty.send,
}
