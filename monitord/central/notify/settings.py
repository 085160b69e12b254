"""The notification part of the central config: ``[mail]``, ``[[channel]]``, ``[escalation]``.

Loaded by ``load_central_config`` with the agent config's helpers, so every problem is
reported at once in the same words (``FILE: channel "NAME": KEY: expected ..., got ...``).
Channel URLs are secrets (a Slack webhook URL is its own password), so no message ever
echoes one; routing keys and the SMTP password live in files, read at delivery time.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, ValidationError, model_validator

from monitord.central.notify.signing import header_name_problem
from monitord.loader import Loader, section
from monitord.model import Priority
from monitord.schema import (
    NAME_PATTERN,
    AbsolutePath,
    Duration,
    DurationOrZero,
    PriorityField,
    StrictModel,
    ca_file_needs_verify,
    found,
    messages,
    suggest,
)

ChannelType = Literal["mail", "webhook", "slack", "pagerduty"]
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
DEFAULT_TEMPLATES_DIR = "/etc/monitord/templates"
KEYS_DIR_NAME = "pagerduty.d"   # beside the config file, unless [notify] says otherwise
DEFAULT_KEYS_DIR = f"/etc/monitord/{KEYS_DIR_NAME}"
MAX_TIMEOUT_SECONDS = 60.0    # the notifier's lease on a notice must outlast its sends
SECTIONS = {"mail", "channel", "escalation", "notify"}
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_ADDRESS = re.compile(r"[^@\s<>,;:\"()\[\]\\]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")


def mail_address(value: str) -> str:
    """``value`` if it is a plain mail address; ValueError saying what is expected."""
    if not _ADDRESS.fullmatch(value):
        raise ValueError('expected a plain address like "oncall@example.com"')
    return value


def _host(value: str) -> str:
    if not value or any(c.isspace() for c in value):
        raise ValueError('expected a host name or address like "smtp.example.com"')
    return value


def _optional_address(value: str) -> str:
    return value and mail_address(value)


MailAddress = Annotated[str, AfterValidator(mail_address)]


def _network(value: str) -> str:
    try:
        ipaddress.ip_network(value)
    except ValueError:
        raise ValueError('expected a network like "127.0.0.1/32" or "10.20.0.0/16" (its '
                         "host bits zero)") from None
    return value


class NotifySection(StrictModel):
    """``[notify]``: what people's own contact methods (``monitord central contact add``,
    the console's People page) may reach."""

    pagerduty_keys_dir: AbsolutePath = ""      # "" = pagerduty.d beside the config file
    allow_internal_webhooks: list[Annotated[str, AfterValidator(_network)]] = []


class MailSection(StrictModel):
    """The SMTP server every mail channel sends through."""

    host: Annotated[str, AfterValidator(_host)] = Field(default="127.0.0.1", max_length=253)
    port: int = Field(default=25, ge=1, le=65535)
    sender: Annotated[str, AfterValidator(_optional_address)] = Field(
        default="", alias="from")     # "" = monitord@ this server's name
    tls: Literal["none", "starttls", "implicit"] = "none"
    verify_tls: bool = True
    ca_file: AbsolutePath = ""
    username: str = Field(default="", max_length=200)
    password_file: AbsolutePath = ""
    templates_dir: str = DEFAULT_TEMPLATES_DIR

    @model_validator(mode="after")
    def _consistent(self) -> MailSection:
        if bool(self.username) != bool(self.password_file):
            raise ValueError("username and password_file: set both to log in, or neither")
        ca_file_needs_verify(self.ca_file, self.verify_tls)
        return self

    @property
    def from_address(self) -> str:
        return self.sender or f"monitord@{socket.gethostname()}"


class ChannelConfig(StrictModel):
    """One place people are told: a mailbox list, a webhook, a Slack room, a PagerDuty
    service. Which keys apply depends on ``type``; ``check_channel`` says which."""

    name: str = Field(pattern=NAME_PATTERN, max_length=100)
    type: ChannelType
    to: list[MailAddress] = []
    url: str = ""
    routing_key_file: AbsolutePath = ""
    secret_file: AbsolutePath = ""      # webhook: sign each POST (notify/signing.py)
    header_files: dict[str, AbsolutePath] = {}   # webhook: header name -> file of its value
    priorities: list[PriorityField] = list(Priority)
    timeout: Duration = 10.0

    @property
    def endpoint(self) -> str:
        return self.url or (PAGERDUTY_URL if self.type == "pagerduty" else "")


class ContactChannel(ChannelConfig):
    """A channel made at send time for a person's contact method (``notify.people``),
    never read from a config file: what it may reach is what ``[notify]`` allows. A
    pagerduty one's ``routing_key_file`` must be in ``keys_dir`` (``notify.keyfiles``);
    a webhook or Slack one may reach only the ``internal`` networks of the internal ones
    (``notify.addresses``)."""

    keys_dir: str = DEFAULT_KEYS_DIR
    internal: tuple[Network, ...] = ()


class EscalationSection(StrictModel):
    """The SLA rules: who is told next, how often, and how long a delivery is retried."""

    chain: list[str] = []
    escalate_at: float = Field(default=0.5, ge=0, le=1)
    renotify_every: DurationOrZero = 600.0
    retry_for: Duration = 86400.0
    check_every: Duration = 5.0


@dataclass(frozen=True)
class Notifications:
    mail: MailSection | None = None
    channels: tuple[ChannelConfig, ...] = ()
    escalation: EscalationSection = field(default_factory=EscalationSection)
    pagerduty_keys_dir: str = DEFAULT_KEYS_DIR       # [notify], resolved beside the config
    internal_webhooks: tuple[Network, ...] = ()      # [notify] allow_internal_webhooks

    def channel(self, name: str) -> ChannelConfig:
        for channel in self.channels:
            if channel.name == name:
                return channel
        raise KeyError(name)


def load_notifications(loader: Loader, path: Path, data: dict[str, Any]) -> Notifications:
    """[mail], [[channel]], [escalation] and [notify] of ``data``; problems go to
    ``loader``."""
    mail = section(loader, path, data, "mail", MailSection) if "mail" in data else None
    escalation = section(loader, path, data, "escalation", EscalationSection)
    notify = section(loader, path, data, "notify", NotifySection) or NotifySection()
    raw = data.get("channel", [])
    if not isinstance(raw, list) or not all(isinstance(c, dict) for c in raw):
        loader.fail(path, "channel: expected [[channel]] tables")
        raw = []
    channels: list[ChannelConfig] = []
    seen: set[str] = set()
    for index, table in enumerate(raw):
        name = table.get("name")
        label = f'channel "{name}"' if isinstance(name, str) and name else f"channel #{index + 1}"
        if isinstance(name, str) and name in seen:
            loader.fail(path, f"{label}: name: already used by another channel")
            continue
        if isinstance(name, str):
            seen.add(name)
        try:
            channel = ChannelConfig.model_validate(table)
        except ValidationError as e:
            for message in messages(e, ChannelConfig):
                loader.fail(path, f"{label}: {message}")
            continue
        for problem in check_channel(channel, mail_section="mail" in data):
            loader.fail(path, f"{label}: {problem}")
        channels.append(channel)
    # The chain is checked even when the rest of [escalation] is wrong: all at once.
    chain = data.get("escalation", {}).get("chain") if isinstance(
        data.get("escalation"), dict) else None
    if isinstance(chain, list) and all(isinstance(name, str) for name in chain):
        for problem in _chain_problems(chain, sorted(seen)):
            loader.fail(path, f"[escalation] chain: {problem}")
    keys_dir = notify.pagerduty_keys_dir or os.path.join(
        os.path.dirname(os.path.abspath(path)), KEYS_DIR_NAME)
    return Notifications(mail, tuple(channels), escalation or EscalationSection(), keys_dir,
                         tuple(ipaddress.ip_network(n) for n in notify.allow_internal_webhooks))


def check_channel(channel: ChannelConfig, mail_section: bool) -> list[str]:
    """What is wrong with the keys ``channel`` sets for its type (none: [])."""
    kind = channel.type
    problems = []
    if kind == "mail" and not mail_section:
        problems.append('type: "mail" needs a [mail] section (the SMTP server to send through)')
    if kind == "mail" and not channel.to:
        problems.append('to: a mail channel needs at least one address, like '
                        '["oncall@example.com"]')
    if kind != "mail" and channel.to:
        problems.append(f"to: only mail channels have recipients, not a {kind} channel")
    if kind == "mail" and channel.url:
        problems.append("url: a mail channel has none; it sends through [mail]")
    if kind in ("webhook", "slack") and not channel.url:
        problems.append(f"url: required for a {kind} channel")
    if channel.url and url_problem(channel.url):
        problems.append(f"url: {url_problem(channel.url)}")
    if kind == "pagerduty" and not channel.routing_key_file:
        problems.append("routing_key_file: required for a pagerduty channel (a file whose "
                        "first line is the service's integration key)")
    if kind != "pagerduty" and channel.routing_key_file:
        problems.append(f"routing_key_file: only pagerduty channels have one, not a {kind} "
                        "channel")
    problems.extend(_webhook_problems(channel))
    if not channel.priorities:
        every = ", ".join(f'"{p}"' for p in Priority)
        problems.append(f"priorities: expected one or more of {every}, got []")
    if channel.timeout > MAX_TIMEOUT_SECONDS:
        problems.append(f"timeout: expected at most {MAX_TIMEOUT_SECONDS:g}s, "
                        f"got {channel.timeout:g}s")
    return problems


def _webhook_problems(channel: ChannelConfig) -> list[str]:
    """What is wrong with the signing and header keys of ``channel``."""
    problems = []
    for key in ("secret_file", "header_files"):
        if channel.type != "webhook" and getattr(channel, key):
            problems.append(f"{key}: only webhook channels have one, not a {channel.type} "
                            "channel")
    if channel.type == "webhook":
        problems.extend(f"header_files: {found(name)}: {header_name_problem(name)}"
                        for name in channel.header_files if header_name_problem(name))
    return problems


def url_problem(url: str) -> str:
    """What is wrong with a channel URL, or "". Never echoes it: it may be a secret."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        got = f'a "{parts.scheme}:" URL' if parts.scheme else "no scheme"
        return f'expected an "https://" (or "http://") URL, got {got}'
    try:
        parts.port    # noqa: B018 -- parsing it is the check
    except ValueError:
        return "expected a port from 1 to 65535 in the URL"
    if not parts.hostname:
        return "expected a host name in the URL"
    return ""


def _chain_problems(chain: list[str], names: list[str]) -> list[str]:
    problems = []
    for index, name in enumerate(chain):
        if name in chain[:index]:
            problems.append(f"{found(name)} is listed twice; each contact once")
        elif name not in names:
            known = ", ".join(names) or "none defined"
            problems.append(f"no channel named {found(name)}{suggest(name, names)} "
                            f"(channels: {known})")
    return problems
