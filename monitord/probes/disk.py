"""Space and inodes per mount, read-only remounts, missing mounts and mounts that hang.

``os.statvfs`` on a dead network mount blocks forever and cannot be interrupted, so each
call runs in the shared blocking pool under the check's deadline share; a mount whose
earlier call has not returned is reported ``unknown`` and skipped until it does. One
mount that hangs, fails or is missing never hides the readings of the others.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Literal

import psutil

from monitord.model import Observation, Status
from monitord.probes.base import CheckBase, Duration, Expectation, ProbeContext, Stuck

METRICS = {
    "used_ratio": "space used as a share of the space available to users",
    "free_bytes": "space free for unprivileged users",
    "total_bytes": "size of the filesystem",
    "inodes_used_ratio": "inodes used as a share of all inodes (0 where the filesystem has none)",
    "inodes_free": "inodes free",
}

# Network filesystems are "nodev" in /proc/filesystems, so psutil's list of physical
# partitions leaves them out; they are the mounts most likely to fill up or hang.
NETWORK_FSTYPES = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "fuse.cephfs", "glusterfs",
    "fuse.glusterfs", "fuse.sshfs", "lustre", "afs", "9p",
})


class Config(CheckBase):
    METRICS = METRICS
    probe: Literal["disk"]
    mounts: list[str] = []
    ignore_fstypes: list[str] = ["squashfs", "iso9660", "udf", "tmpfs", "devtmpfs", "overlay"]
    expect_writable: bool = True
    stat_timeout: Duration = 2.0

    def expectations(self) -> list[Expectation]:
        found = [
            Expectation("mounted", frozenset([True]), "is not mounted"),
            Expectation("responding", frozenset([True]), "does not answer (statvfs hangs)",
                        Status.UNKNOWN),
            Expectation("readable", frozenset([True]), "cannot be read (statvfs fails)",
                        Status.UNKNOWN),
        ]
        if self.expect_writable:
            found.append(Expectation("read_only", frozenset([False]), "is mounted read-only"))
        return found


@dataclass(frozen=True, slots=True)
class _Mount:
    path: str
    mounted: bool
    read_only: bool  # as the mount table says; statvfs's f_flag is checked too


async def probe(cfg: Config, ctx: ProbeContext) -> Observation:
    mounts = _mounts(cfg)
    budget = min(cfg.stat_timeout, ctx.timeout * 0.8)
    stats = await asyncio.gather(*(_stat(ctx, m, budget) for m in mounts))
    obs = Observation("")
    for mount, stat in zip(mounts, stats, strict=True):
        _record(obs, mount, stat)
    obs.summary = _summary(mounts, stats)
    return obs


def _mounts(cfg: Config) -> list[_Mount]:
    """The configured mounts, or every real filesystem (local disks and network mounts)."""
    # Later entries win: the last mount on a mount point is the one statvfs sees.
    table = {p.mountpoint: p for p in psutil.disk_partitions(all=True)}
    if cfg.mounts:
        # normpath, not realpath: resolving a path stats it, which hangs on a dead mount.
        paths = [os.path.normpath(path) for path in cfg.mounts]
        return [_Mount(path, path in table, path in table and _ro(table[path].opts))
                for path in paths]
    physical = set(psutil.disk_partitions(all=False))
    return [
        _Mount(p.mountpoint, True, _ro(p.opts))
        for p in sorted(table.values(), key=lambda p: p.mountpoint)
        if (p in physical or p.fstype in NETWORK_FSTYPES) and p.fstype not in cfg.ignore_fstypes
    ]


def _ro(opts: str) -> bool:
    return "ro" in opts.split(",")


_Stat = os.statvfs_result | OSError | None  # None: the call hangs


async def _stat(ctx: ProbeContext, mount: _Mount, budget: float) -> _Stat:
    if not mount.mounted:  # statvfs would describe the filesystem underneath instead
        return None
    try:
        async with asyncio.timeout(budget):
            return await ctx.shared.blocking.call(
                f"statvfs:{mount.path}", ctx.shared.statvfs, mount.path, join=True
            )
    except (Stuck, TimeoutError):
        return None
    except OSError as e:
        return e


def _record(obs: Observation, mount: _Mount, stat: _Stat) -> None:
    path = mount.path
    obs.add("mounted", mount.mounted, mount=path)
    if not mount.mounted:
        return
    obs.add("responding", stat is not None, mount=path)
    obs.add("readable", not isinstance(stat, OSError), mount=path)
    if not isinstance(stat, os.statvfs_result):
        obs.add("read_only", mount.read_only, mount=path)
        return
    # f_flag is read now; /etc/mtab (which psutil prefers) may be a stale regular file.
    obs.add("read_only", mount.read_only or bool(stat.f_flag & os.ST_RDONLY), mount=path)
    for name, value in _space(stat).items():
        obs.add(name, value, mount=path)


def _space(st: os.statvfs_result) -> dict[str, float | int]:
    usable = st.f_blocks - st.f_bfree + st.f_bavail  # as df: root's reserve does not count
    used = (st.f_blocks - st.f_bfree) / usable if usable else 0.0
    inodes_used = (st.f_files - st.f_ffree) / st.f_files if st.f_files else 0.0
    return {
        "used_ratio": round(used, 4),
        "free_bytes": st.f_bavail * st.f_frsize,
        "total_bytes": st.f_blocks * st.f_frsize,
        "inodes_used_ratio": round(inodes_used, 4),
        "inodes_free": st.f_favail,
    }


def _summary(mounts: list[_Mount], stats: list[_Stat]) -> str:
    text = f"{len(mounts)} mount{'s' if len(mounts) != 1 else ''}"
    answered = [(m.path, _space(s)) for m, s in zip(mounts, stats, strict=True)
                if isinstance(s, os.statvfs_result)]
    if answered:
        path, space = max(answered, key=lambda pair: pair[1]["used_ratio"])
        text += f", fullest {path} at {space['used_ratio']:.0%}"
        path, inodes = max(answered, key=lambda pair: pair[1]["inodes_used_ratio"])
        text += f", most inodes used on {path} ({inodes['inodes_used_ratio']:.0%})"
    errors = [f"{m.path}: {s.strerror or s}" for m, s in zip(mounts, stats, strict=True)
              if isinstance(s, OSError)]
    return "; ".join([text, *errors])
