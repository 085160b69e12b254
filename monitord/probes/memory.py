"""Available memory and swap in use."""

from __future__ import annotations

from typing import Literal

import psutil

from monitord.model import Observation
from monitord.probes.base import CheckBase, ProbeContext

METRICS = {
    "available_ratio": "memory available to new work, as a share of the total",
    "available_bytes": "memory available to new work",
    "total_bytes": "physical memory",
    "swap_used_ratio": "swap in use as a share of the swap space (0 with no swap)",
    "swap_used_bytes": "swap in use",
    "swap_total_bytes": "swap space",
}


class Config(CheckBase):
    METRICS = METRICS
    probe: Literal["memory"]


async def probe(cfg: Config, ctx: ProbeContext) -> Observation:
    mem = psutil.virtual_memory()
    swap = psutil.swap_memory()
    available = mem.available / mem.total if mem.total else 0.0
    swap_used = swap.used / swap.total if swap.total else 0.0
    swap_text = f"swap {swap_used:.0%} used" if swap.total else "no swap"
    obs = Observation(
        f"{available:.0%} memory available ({_mib(mem.available)} of {_mib(mem.total)}), "
        + swap_text
    )
    obs.add("available_ratio", round(available, 4))
    obs.add("available_bytes", mem.available)
    obs.add("total_bytes", mem.total)
    obs.add("swap_used_ratio", round(swap_used, 4))
    obs.add("swap_used_bytes", swap.used)
    obs.add("swap_total_bytes", swap.total)
    return obs


def _mib(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"
