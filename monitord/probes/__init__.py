"""The probe registry: probe kind -> (check model, probe function).

Config validation reads this table, so a probe kind is known exactly when it is listed.
Probe modules import their heavy libraries inside ``probe()``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from monitord.model import Observation
from monitord.probes import disk, http, load, memory, process, reboot, tcp
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
    "reboot": ProbeKind(reboot.Config, reboot.probe, "a reboot required by packages or kernel"),
}
