"""The probe registry: probe kind -> (check model, probe function).

Config validation reads this table, so a probe kind is known exactly when it is listed.
Probe modules import their heavy libraries inside ``probe()``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from monitord.model import Observation
from monitord.probes import (
    disk,
    dns,
    http,
    load,
    mail,
    memory,
    mysql,
    nagios,
    postgres,
    process,
    reboot,
    snmp,
    systemd,
    tcp,
    tls,
)
from monitord.probes.base import CheckBase, ProbeContext

ProbeFn = Callable[[Any, ProbeContext], Awaitable[Observation]]


@dataclass(frozen=True)
class ProbeKind:
    config: type[CheckBase]
    probe: ProbeFn
    summary: str


REGISTRY: dict[str, ProbeKind] = {
    "load": ProbeKind(load.Config, load.probe, "load averages, total and per CPU"),
    "memory": ProbeKind(memory.Config, memory.probe, "available memory and swap use"),
    "disk": ProbeKind(disk.Config, disk.probe, "space, inodes and read-only mounts"),
    "process": ProbeKind(process.Config, process.probe, "processes by name, pattern or pidfile"),
    "tcp": ProbeKind(tcp.Config, tcp.probe, "TCP connect, banner and latency"),
    "http": ProbeKind(http.Config, http.probe, "HTTP status, body, latency and certificate"),
    "mysql": ProbeKind(mysql.Config, mysql.probe, "MySQL/MariaDB login, connections, slow queries"),
    "postgres": ProbeKind(postgres.Config, postgres.probe, "PostgreSQL connections, lag, size"),
    "dns": ProbeKind(dns.Config, dns.probe, "one DNS query: response code, answers, latency"),
    "nagios": ProbeKind(nagios.Config, nagios.probe, "any Nagios plugin: status, text, perfdata"),
    "systemd": ProbeKind(systemd.Config, systemd.probe, "a systemd unit's state and restarts"),
    "mail": ProbeKind(mail.Config, mail.probe, "SMTP/IMAP/POP3 greeting, STARTTLS, login"),
    "tls": ProbeKind(tls.Config, tls.probe, "TLS certificate days left, implicit or STARTTLS"),
    "reboot": ProbeKind(reboot.Config, reboot.probe, "a reboot required by packages or kernel"),
    "snmp": ProbeKind(snmp.Config, snmp.probe, "SNMP values, counter rates, interfaces down"),
}
