"""The load, memory and disk probes, run through the real runner against this machine.

Disk tests mount real tmpfs filesystems (we run as root); a mount that hangs is made
through the ``Shared.statvfs`` seam, since a dead NFS server cannot be had here.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import subprocess
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from monitord.agent.runner import run_check
from monitord.model import Status
from monitord.probes.base import CheckBase, ProbeContext, Shared
from tests.conftest import make_check, unavailable
from tests.probes.readings import has_reading, number, reading, wait_for

# --- helpers ----------------------------------------------------------------------------


async def test_load_readings_describe_this_machine(ctx: ProbeContext) -> None:
    result = await run_check(make_check("load"), ctx)
    cpus = os.cpu_count()
    assert result.status is Status.OK
    assert reading(result, "cpus") == cpus
    for minutes in (1, 5, 15):
        load = number(result, f"load{minutes}")
        assert load >= 0
        assert number(result, f"load{minutes}_per_cpu") == pytest.approx(load / cpus, abs=1e-3)
    shown = re.fullmatch(r"load ([\d.]+) ([\d.]+) ([\d.]+) on (\d+) CPUs", result.summary)
    assert shown, result.summary
    for minutes, text in zip((1, 5, 15), shown.groups()[:3], strict=True):
        assert float(text) == pytest.approx(number(result, f"load{minutes}"), abs=0.006)
    assert shown[4] == str(cpus)


async def test_load_inside_critical_range_is_critical(ctx: ProbeContext) -> None:
    check = make_check("load", crit={"load1": "@0:1000000"})
    result = await run_check(check, ctx)
    assert result.status is Status.CRITICAL
    load1 = number(result, "load1")
    assert result.summary.endswith(f": load1 {load1:.4g} in 0..1e+06")


async def test_load_inside_warning_range_is_warning(ctx: ProbeContext) -> None:
    check = make_check("load", warn={"load5_per_cpu": "@0:1000000"})
    result = await run_check(check, ctx)
    assert result.status is Status.WARNING
    assert "load5_per_cpu" in result.summary


async def test_load_within_thresholds_is_ok(ctx: ProbeContext) -> None:
    check = make_check("load", warn={"load1_per_cpu": 1e6}, crit={"load15": "~:1000000"})
    result = await run_check(check, ctx)
    assert result.status is Status.OK
    assert result.summary.startswith("load ")


# --- memory -----------------------------------------------------------------------------


async def test_memory_readings_are_consistent(ctx: ProbeContext) -> None:
    result = await run_check(make_check("memory"), ctx)
    assert result.status is Status.OK
    total, available = number(result, "total_bytes"), number(result, "available_bytes")
    ratio = number(result, "available_ratio")
    assert total == psutil.virtual_memory().total
    assert 0 < available <= total
    assert 0 <= ratio <= 1
    assert ratio == pytest.approx(available / total, abs=1e-4)
    swap_total, swap_used = number(result, "swap_total_bytes"), number(result, "swap_used_bytes")
    assert 0 <= swap_used <= swap_total
    assert 0 <= number(result, "swap_used_ratio") <= 1


async def test_memory_summary_states_the_numbers(ctx: ProbeContext) -> None:
    result = await run_check(make_check("memory"), ctx)
    match = re.match(r"(\d+)% memory available \(([\d.]+ [MG]iB) of ([\d.]+ [MG]iB)\), ",
                     result.summary)
    assert match, result.summary
    assert abs(int(match[1]) - number(result, "available_ratio") * 100) <= 1
    if number(result, "swap_total_bytes") == 0:
        assert result.summary.endswith("no swap")
        assert number(result, "swap_used_ratio") == 0
    else:
        assert re.search(r"swap \d+% used$", result.summary)


async def test_memory_below_warning_floor_warns(ctx: ProbeContext) -> None:
    result = await run_check(make_check("memory", warn={"available_ratio": "2:"}), ctx)
    assert result.status is Status.WARNING
    ratio = number(result, "available_ratio")
    assert result.summary.endswith(f": available_ratio {ratio:.4g} < 2")


async def test_memory_critical_outranks_warning(ctx: ProbeContext) -> None:
    check = make_check("memory", warn={"available_ratio": "2:"}, crit={"total_bytes": "@1:"})
    result = await run_check(check, ctx)
    assert result.status is Status.CRITICAL
    critical, warning = result.summary.index("total_bytes"), result.summary.index("available_")
    assert critical < warning  # the reasons for the status come first


# --- disk: the root filesystem ----------------------------------------------------------


async def test_root_filesystem_readings_match_statvfs(ctx: ProbeContext) -> None:
    result = await run_check(make_check("disk", mounts=["/"]), ctx)
    st = os.statvfs("/")
    assert result.status is Status.OK
    assert number(result, "total_bytes", mount="/") == st.f_blocks * st.f_frsize
    assert 0 < number(result, "free_bytes", mount="/") <= st.f_blocks * st.f_frsize
    used = number(result, "used_ratio", mount="/")
    assert 0 <= used <= 1
    inodes = number(result, "inodes_used_ratio", mount="/")
    assert 0 <= inodes <= 1
    assert number(result, "inodes_free", mount="/") > 0
    assert reading(result, "read_only", mount="/") is False
    assert reading(result, "responding", mount="/") is True
    assert result.summary == (f"1 mount, fullest / at {used:.0%}, most inodes used on / "
                              f"({inodes:.0%})")


async def test_every_real_filesystem_is_watched_by_default(
    ctx: ProbeContext, tmpfs: Path
) -> None:
    result = await run_check(make_check("disk"), ctx)
    watched = {dict(r.labels)["mount"] for r in result.readings if r.name == "used_ratio"}
    assert "/" in watched
    assert str(tmpfs) not in watched  # tmpfs is not a real filesystem
    assert result.summary.startswith(f"{len(watched)} mount")


# --- disk: a real tmpfs -----------------------------------------------------------------


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs with 64 inodes, mounted for the test and always unmounted."""
    point = tmp_path / "mnt"
    point.mkdir()
    if os.geteuid() != 0:
        unavailable("mounting a tmpfs needs root")
    done = _run("mount", "-t", "tmpfs", "-o", "size=1m,nr_inodes=64", "tmpfs", str(point))
    if done.returncode != 0:
        unavailable(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield point
    finally:
        assert _run("umount", str(point)).returncode == 0


def fill(mount: Path, ratio: float) -> None:
    """Write one file so that about ``ratio`` of the filesystem's space is used."""
    st = os.statvfs(mount)
    target = int(st.f_blocks * ratio) - (st.f_blocks - st.f_bfree)
    (mount / "fill").write_bytes(bytes(max(target, 0) * st.f_frsize))


def remount_read_only(mount: Path) -> None:
    done = _run("mount", "-o", "remount,ro", str(mount))
    assert done.returncode == 0, done.stderr


async def test_full_filesystem_crosses_used_ratio_threshold(
    ctx: ProbeContext, tmpfs: Path
) -> None:
    check = make_check("disk", mounts=[str(tmpfs), "/"], crit={"used_ratio": 0.99},
                       warn={"used_ratio": 0.5})
    before = await run_check(check, ctx)
    assert number(before, "used_ratio", mount=str(tmpfs)) < 0.5
    fill(tmpfs, 0.9)
    after = await run_check(check, ctx)
    used = number(after, "used_ratio", mount=str(tmpfs))
    assert 0.8 < used < 0.99
    assert after.status is Status.WARNING
    assert f"{tmpfs} used_ratio {used:.4g} > 0.5" in after.summary
    assert number(after, "free_bytes", mount=str(tmpfs)) < 0.2 * 2**20


async def test_readonly_remount_is_critical(ctx: ProbeContext, tmpfs: Path) -> None:
    check = make_check("disk", mounts=[str(tmpfs)])
    assert (await run_check(check, ctx)).status is Status.OK
    remount_read_only(tmpfs)
    result = await run_check(check, ctx)
    assert result.status is Status.CRITICAL
    assert result.summary.endswith(f": {tmpfs} is mounted read-only")
    assert reading(result, "read_only", mount=str(tmpfs)) is True
    assert has_reading(result, "used_ratio", mount=str(tmpfs))


async def test_readonly_mount_is_ok_when_not_expected_writable(
    ctx: ProbeContext, tmpfs: Path
) -> None:
    remount_read_only(tmpfs)
    result = await run_check(make_check("disk", mounts=[str(tmpfs)], expect_writable=False), ctx)
    assert result.status is Status.OK
    assert reading(result, "read_only", mount=str(tmpfs)) is True


async def test_inode_exhaustion_crosses_inodes_threshold(ctx: ProbeContext, tmpfs: Path) -> None:
    check = make_check("disk", mounts=[str(tmpfs)], crit={"inodes_used_ratio": 0.5})
    assert (await run_check(check, ctx)).status is Status.OK
    for i in range(40):
        (tmpfs / f"session-{i}").touch()
    result = await run_check(check, ctx)
    st = os.statvfs(tmpfs)
    ratio = number(result, "inodes_used_ratio", mount=str(tmpfs))
    assert ratio == pytest.approx((st.f_files - st.f_ffree) / st.f_files, abs=1e-4)
    assert number(result, "inodes_free", mount=str(tmpfs)) == st.f_favail
    assert result.status is Status.CRITICAL
    assert f"{tmpfs} inodes_used_ratio {ratio:.4g} > 0.5" in result.summary


# --- disk: listed mounts that are missing -----------------------------------------------


async def test_listed_directory_that_is_not_mounted_is_critical(
    ctx: ProbeContext, tmp_path: Path
) -> None:
    result = await run_check(make_check("disk", mounts=[str(tmp_path), "/"]), ctx)
    assert result.status is Status.CRITICAL
    assert result.summary.endswith(f": {tmp_path} is not mounted")
    assert reading(result, "mounted", mount=str(tmp_path)) is False
    assert not has_reading(result, "used_ratio", mount=str(tmp_path))
    assert has_reading(result, "used_ratio", mount="/")


async def test_listed_mount_that_does_not_exist_is_critical(
    ctx: ProbeContext, tmp_path: Path
) -> None:
    missing = tmp_path / "backup"
    result = await run_check(make_check("disk", mounts=[str(missing)]), ctx)
    assert result.status is Status.CRITICAL
    assert f"{missing} is not mounted" in result.summary


async def test_listed_mount_is_found_despite_trailing_slash(
    ctx: ProbeContext, tmpfs: Path
) -> None:
    result = await run_check(make_check("disk", mounts=[f"{tmpfs}/"]), ctx)
    assert result.status is Status.OK
    assert reading(result, "mounted", mount=str(tmpfs)) is True


# --- disk: mounts that hang or fail, through the Shared.statvfs seam --------------------


@dataclass
class FaultyStatvfs:
    """``os.statvfs``, except that ``hang`` blocks until released and ``fail`` errors."""

    hang: str = ""
    fail: str = ""
    released: threading.Event = field(default_factory=threading.Event)
    calls: Counter[str] = field(default_factory=Counter)
    returned: Counter[str] = field(default_factory=Counter)

    def __call__(self, path: str) -> os.statvfs_result:
        self.calls[path] += 1
        try:
            if path == self.hang:
                assert self.released.wait(timeout=60), "the hung statvfs was never released"
            if path == self.fail:
                raise OSError(errno.ENOTCONN, os.strerror(errno.ENOTCONN), path)
            return os.statvfs(path)
        finally:
            self.returned[path] += 1


@pytest.fixture
def statvfs() -> FaultyStatvfs:
    return FaultyStatvfs()


@pytest.fixture
async def faulty_ctx(statvfs: FaultyStatvfs) -> AsyncIterator[ProbeContext]:
    shared = Shared(statvfs=statvfs)
    try:
        yield ProbeContext(shared)
    finally:
        statvfs.released.set()  # let the stuck worker thread finish before the pool goes
        await shared.close()


def hanging_check(mount: Path) -> CheckBase:
    """A disk check of ``mount`` and ``/`` that gives up on a statvfs call after 200 ms."""
    return make_check("disk", mounts=[str(mount), "/"], stat_timeout="200ms", timeout="5s")


async def test_hung_mount_is_unknown_and_other_mounts_still_report(
    tmpfs: Path, statvfs: FaultyStatvfs, faulty_ctx: ProbeContext
) -> None:
    statvfs.hang = str(tmpfs)
    result = await run_check(hanging_check(tmpfs), faulty_ctx)
    assert result.status is Status.UNKNOWN
    assert result.summary.endswith(f": {tmpfs} does not answer (statvfs hangs)")
    assert reading(result, "responding", mount=str(tmpfs)) is False
    assert not has_reading(result, "used_ratio", mount=str(tmpfs))
    assert 0 <= number(result, "used_ratio", mount="/") <= 1
    assert result.summary.startswith("2 mounts, fullest / at ")


async def test_hung_mount_is_not_called_again_while_stuck(
    tmpfs: Path, statvfs: FaultyStatvfs, faulty_ctx: ProbeContext
) -> None:
    statvfs.hang = str(tmpfs)
    check = hanging_check(tmpfs)
    await run_check(check, faulty_ctx)
    second = await run_check(check, faulty_ctx)
    assert second.status is Status.UNKNOWN
    assert f"{tmpfs} does not answer" in second.summary
    assert has_reading(second, "used_ratio", mount="/")
    assert statvfs.calls[str(tmpfs)] == 1
    assert statvfs.calls["/"] == 2


async def test_two_checks_of_one_mount_started_together_share_its_statvfs(
    tmpfs: Path, statvfs: FaultyStatvfs, faulty_ctx: ProbeContext
) -> None:
    # disk-space and disk-inodes start in the same instant; a slow (not hung) statvfs of
    # the first must not make the second say the mount hangs.
    statvfs.hang = str(tmpfs)
    checks = [make_check("disk", name=name, mounts=[str(tmpfs)], stat_timeout="5s",
                         timeout="10s") for name in ("disk-space", "disk-inodes")]
    release = threading.Timer(0.3, statvfs.released.set)
    release.start()
    try:
        results = await asyncio.gather(*(run_check(c, faulty_ctx) for c in checks))
    finally:
        release.cancel()
    assert [r.status for r in results] == [Status.OK, Status.OK], [r.summary for r in results]
    assert statvfs.calls[str(tmpfs)] == 1


async def test_hung_mount_is_probed_again_once_its_call_returns(
    tmpfs: Path, statvfs: FaultyStatvfs, faulty_ctx: ProbeContext
) -> None:
    statvfs.hang = str(tmpfs)
    check = hanging_check(tmpfs)
    assert (await run_check(check, faulty_ctx)).status is Status.UNKNOWN
    statvfs.hang = ""
    statvfs.released.set()
    wait_for(lambda: statvfs.returned[str(tmpfs)] == 1, "the hung statvfs to return")
    result = await run_check(check, faulty_ctx)
    assert result.status is Status.OK
    assert has_reading(result, "used_ratio", mount=str(tmpfs))
    assert statvfs.calls[str(tmpfs)] == 2


async def test_failing_mount_is_unknown_and_other_mounts_still_report(
    tmpfs: Path, statvfs: FaultyStatvfs, faulty_ctx: ProbeContext
) -> None:
    statvfs.fail = str(tmpfs)
    result = await run_check(make_check("disk", mounts=[str(tmpfs), "/"]), faulty_ctx)
    assert result.status is Status.UNKNOWN
    assert f"{tmpfs}: Transport endpoint is not connected" in result.summary
    assert result.summary.endswith(f": {tmpfs} cannot be read (statvfs fails)")
    assert reading(result, "readable", mount=str(tmpfs)) is False
    assert has_reading(result, "used_ratio", mount="/")


async def test_full_mount_outranks_a_hung_one(
    tmpfs: Path, statvfs: FaultyStatvfs, faulty_ctx: ProbeContext
) -> None:
    statvfs.hang = "/"
    fill(tmpfs, 0.9)
    check = make_check("disk", mounts=[str(tmpfs), "/"], stat_timeout="200ms",
                       crit={"used_ratio": 0.5})
    result = await run_check(check, faulty_ctx)
    assert result.status is Status.CRITICAL  # a known outage beats not knowing
    assert "/ does not answer" in result.summary
