"""Whether the server waits for a reboot: a package asked for one, or a newer kernel is
installed than the one running. monitord never reboots; a person does, at a quiet hour."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from monitord.model import Observation
from monitord.probes.base import CheckBase, Expectation, ProbeContext

METRICS = {"uptime_seconds": "time since the server booted"}


class Config(CheckBase):
    METRICS = METRICS
    probe: Literal["reboot"]
    flag_file: str = "/var/run/reboot-required"
    boot_dir: str = "/boot"

    def expectations(self) -> list[Expectation]:
        return [Expectation("reboot_required", frozenset([False]),
                            "a reboot is required; schedule one at a quiet hour")]


async def probe(cfg: Config, ctx: ProbeContext) -> Observation:
    reasons = _reasons(cfg)
    obs = Observation("; ".join(reasons) if reasons else f"no reboot pending (kernel "
                      f"{os.uname().release})")
    obs.add("reboot_required", bool(reasons))
    uptime = _uptime()
    if uptime is not None:
        obs.add("uptime_seconds", round(uptime))
    return obs


def _reasons(cfg: Config) -> list[str]:
    reasons = []
    flag = Path(cfg.flag_file)
    if flag.exists():
        packages = _packages(flag.with_name(flag.name + ".pkgs"))
        reasons.append(f"{flag} exists" + (f" (for {packages})" if packages else ""))
    running = os.uname().release
    newest = _newest_kernel(Path(cfg.boot_dir))
    if newest is not None and _version_key(newest) > _version_key(running):
        reasons.append(f"kernel {newest} is installed, {running} is running")
    return reasons


def _packages(path: Path) -> str:
    try:
        names = sorted(set(path.read_text(errors="replace").split()))
    except OSError:
        return ""
    shown = ", ".join(names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _newest_kernel(boot: Path) -> str | None:
    try:
        versions = [p.name.removeprefix("vmlinuz-") for p in boot.glob("vmlinuz-*")]
    except OSError:
        return None
    return max(versions, key=_version_key, default=None)


def _version_key(version: str) -> tuple[int, ...]:
    """"6.1.0-27-amd64" -> (6, 1, 0, 27): numbers compared in order, suffixes ignored."""
    return tuple(int(n) for n in re.findall(r"\d+", version.split("+")[0]))


def _uptime() -> float | None:
    try:
        with open("/proc/uptime", encoding="ascii") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
