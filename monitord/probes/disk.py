"""Space and inodes per mount, read-only remounts, and mounts that hang.

``os.statvfs`` on a dead network mount blocks forever and cannot be interrupted, so each
call runs in the shared blocking pool under the check's deadline share; a mount whose
earlier call has not returned is reported ``unknown`` and skipped until it does.
"""

from __future__ import annotations

import asyncio
from typing import Literal

import psutil
from pydantic import Field

from monitord.errors import ProbeError
from monitord.model import Observation, Status
from monitord.probes.base import CheckBase, Expectation, ProbeContext, Stuck

METRICS = {
    "used_ratio": "space used as a share of the space available to users",
    "free_bytes": "space free for unprivileged users",
    "total_bytes": "size of the filesystem",
    "inodes_used_ratio": "inodes used as a share of all inodes (0 where the filesystem has none)",
    "inodes_free": "inodes free",
}


class Config(CheckBase):
    METRICS = METRICS
    probe: Literal["disk"]
    mounts: list[str] = []
    ignore_fstypes: list[str] = ["squashfs", "iso9660", "udf", "tmpfs", "devtmpfs", "overlay"]
    expect_writable: bool = True
    stat_timeout: float = Field(default=2.0, gt=0)

    def expectations(self) -> list[Expectation]:
        found = [
            Expectation("responding", frozenset([True]), "does not answer (statvfs hangs)",
                        Status.UNKNOWN),
        ]
        if self.expect_writable:
            found.append(Expectation("read_only", frozenset([False]), "is mounted read-only"))
        return found


async def probe(cfg: Config, ctx: ProbeContext) -> Observation:
    mounts = _mounts(cfg)
    budget = min(cfg.stat_timeout, ctx.timeout * 0.8)
    results = await asyncio.gather(*(_stat(ctx, m, budget) for m in mounts))
    obs = Observation("")
    worst_mount, worst_used = "", -1.0
    for (path, read_only), stat in zip(mounts, results, strict=True):
        obs.add("read_only", read_only, mount=path)
        obs.add("responding", stat is not None, mount=path)
        if stat is None:
            continue
        used, free, total, inodes_used, inodes_free = stat
        for name, value in (("used_ratio", used), ("free_bytes", free), ("total_bytes", total),
                            ("inodes_used_ratio", inodes_used), ("inodes_free", inodes_free)):
            obs.add(name, value, mount=path)
        if used > worst_used:
            worst_mount, worst_used = path, used
    fullest = f", fullest {worst_mount} at {worst_used:.0%}" if worst_used >= 0 else ""
    obs.summary = f"{len(mounts)} mount{'s' if len(mounts) != 1 else ''}{fullest}"
    return obs


def _mounts(cfg: Config) -> list[tuple[str, bool]]:
    """(mount point, mounted read-only) for the configured mounts or every real one."""
    parts = {p.mountpoint: p for p in psutil.disk_partitions(all=bool(cfg.mounts))}
    if cfg.mounts:
        chosen = []
        for path in cfg.mounts:
            part = parts.get(path)
            chosen.append((path, part is not None and "ro" in part.opts.split(",")))
        return chosen
    return [
        (p.mountpoint, "ro" in p.opts.split(","))
        for p in sorted(parts.values(), key=lambda p: p.mountpoint)
        if p.fstype not in cfg.ignore_fstypes
    ]


async def _stat(
    ctx: ProbeContext, mount: tuple[str, bool], budget: float
) -> tuple[float, int, int, float, int] | None:
    path = mount[0]
    try:
        async with asyncio.timeout(budget):
            st = await ctx.shared.blocking.call(f"statvfs:{path}", ctx.shared.statvfs, path)
    except (Stuck, TimeoutError):
        return None
    except OSError as e:
        raise ProbeError(f"cannot read {path}: {e.strerror}; fix the mount or remove it "
                         "from mounts", Status.UNKNOWN) from None
    usable = st.f_blocks - st.f_bfree + st.f_bavail
    used = (st.f_blocks - st.f_bfree) / usable if usable else 0.0
    inodes_used = (st.f_files - st.f_ffree) / st.f_files if st.f_files else 0.0
    return (round(used, 4), st.f_bavail * st.f_frsize, st.f_blocks * st.f_frsize,
            round(inodes_used, 4), st.f_favail)
