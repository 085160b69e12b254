"""System load averages, as they are and divided by the number of CPUs."""

from __future__ import annotations

import os
from typing import Literal

from monitord.model import Observation
from monitord.probes.base import CheckBase, ProbeContext

METRICS = {
    "load1": "1-minute load average",
    "load5": "5-minute load average",
    "load15": "15-minute load average",
    "load1_per_cpu": "1-minute load average divided by the CPU count",
    "load5_per_cpu": "5-minute load average divided by the CPU count",
    "load15_per_cpu": "15-minute load average divided by the CPU count",
    "cpus": "number of CPUs",
}


class Config(CheckBase):
    METRICS = METRICS
    probe: Literal["load"]


async def probe(cfg: Config, ctx: ProbeContext) -> Observation:
    averages = os.getloadavg()
    cpus = os.cpu_count() or 1
    obs = Observation(
        f"load {averages[0]:.2f} {averages[1]:.2f} {averages[2]:.2f} on {cpus} CPUs"
    )
    for minutes, value in zip((1, 5, 15), averages, strict=True):
        obs.add(f"load{minutes}", round(value, 3))
        obs.add(f"load{minutes}_per_cpu", round(value / cpus, 3))
    obs.add("cpus", cpus)
    return obs
