"""The probe registry: probe kind -> (check model, probe function), loaded on first use.

Config validation reads this table, so a probe kind is known exactly when it is listed.
Each kind is listed by its module's name and loaded the first time a check uses it
(``REGISTRY[kind].config`` or ``.probe``): an agent whose checks are all ``load``,
``memory`` and ``disk`` never imports the http, SNMP or database probes, nor what they
import. Probe modules import their heavy libraries inside ``probe()`` as well.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable
from functools import cached_property
from typing import Any

from monitord.model import Observation
from monitord.probes.base import CheckBase, ProbeContext

ProbeFn = Callable[[Any, ProbeContext], Awaitable[Observation]]


class ProbeKind:
    """One probe kind: its module, loaded when its model or function is first asked for."""

    def __init__(self, module: str, summary: str) -> None:
        self.module = module
        self.summary = summary

    @cached_property
    def config(self) -> type[CheckBase]:
        model: type[CheckBase] = self._loaded().Config
        return model

    @cached_property
    def probe(self) -> ProbeFn:
        function: ProbeFn = self._loaded().probe
        return function

    def _loaded(self) -> Any:
        return importlib.import_module(f"monitord.probes.{self.module}")


REGISTRY: dict[str, ProbeKind] = {
    "load": ProbeKind("load", "load averages, total and per CPU"),
    "memory": ProbeKind("memory", "available memory and swap use"),
    "disk": ProbeKind("disk", "space, inodes and read-only mounts"),
    "process": ProbeKind("process", "processes by name, pattern or pidfile"),
    "tcp": ProbeKind("tcp", "TCP connect, banner and latency"),
    "http": ProbeKind("http", "HTTP status, body, latency and certificate"),
    "mysql": ProbeKind("mysql", "MySQL/MariaDB login, connections, slow queries"),
    "postgres": ProbeKind("postgres", "PostgreSQL connections, lag, size"),
    "dns": ProbeKind("dns", "one DNS query: response code, answers, latency"),
    "nagios": ProbeKind("nagios", "any Nagios plugin: status, text, perfdata"),
    "systemd": ProbeKind("systemd", "a systemd unit's state and restarts"),
    "mail": ProbeKind("mail", "SMTP/IMAP/POP3 greeting, STARTTLS, login"),
    "tls": ProbeKind("tls", "TLS certificate days left, implicit or STARTTLS"),
    "reboot": ProbeKind("reboot", "a reboot required by packages or kernel"),
    "snmp": ProbeKind("snmp", "SNMP values, counter rates, interfaces down"),
}
