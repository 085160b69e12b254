"""The process probe, against real child processes started (and always reaped) by the tests.

Children are a copy of ``sleep`` under a unique name, so that ``process = NAME`` finds
exactly them, or Python one-liners carrying a unique marker in their command line.
"""

from __future__ import annotations

import asyncio
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from monitord.agent.runner import run_check
from monitord.model import Status
from monitord.probes.base import ProbeContext
from tests.conftest import make_check
from tests.probes.readings import has_reading, number, reading, wait_for

Spawn = Callable[..., subprocess.Popen[bytes]]

# --- helpers ----------------------------------------------------------------------------


def _shows(pid: int, argv: tuple[str, ...]) -> bool:
    """The process has exec'd ``argv`` (until then it is a copy of pytest)."""
    try:
        return tuple(psutil.Process(pid).cmdline()) == argv
    except psutil.NoSuchProcess:
        return False


def _is_zombie(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Start a child and wait until it runs its own program; kill and reap all at the end."""
    children: list[subprocess.Popen[bytes]] = []

    def start(*argv: str) -> subprocess.Popen[bytes]:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        children.append(child)
        wait_for(lambda: _shows(child.pid, argv), f"{argv[0]} to start")
        return child

    yield start
    for child in children:
        child.kill()  # does nothing for a child already reaped
        child.wait(timeout=10)


@pytest.fixture
def sleeper(tmp_path: Path) -> str:
    """A copy of sleep with a unique name (short enough to be its full kernel name)."""
    name = f"md{secrets.token_hex(4)}"
    source = shutil.which("sleep")
    assert source is not None
    shutil.copy(source, tmp_path / name)
    return str(tmp_path / name)


def name_of(path: str) -> str:
    return Path(path).name


def kill_and_reap(child: subprocess.Popen[bytes]) -> None:
    child.kill()
    child.wait(timeout=10)


def dead_pid(spawn: Spawn, sleeper: str) -> int:
    """The PID of a process that has exited and been reaped."""
    child = spawn(sleeper, "300")
    kill_and_reap(child)
    return child.pid


def zombie(spawn: Spawn, sleeper: str) -> subprocess.Popen[bytes]:
    """A child killed but not reaped (the spawn fixture reaps it at the end)."""
    child = spawn(sleeper, "300")
    child.send_signal(signal.SIGKILL)
    wait_for(lambda: _is_zombie(child.pid), "the killed child to become a zombie")
    return child


# --- by name ----------------------------------------------------------------------------


async def test_process_is_found_by_name(ctx: ProbeContext, spawn: Spawn, sleeper: str) -> None:
    child = spawn(sleeper, "300")
    result = await run_check(make_check("process", process=name_of(sleeper)), ctx)
    assert result.status is Status.OK
    assert result.summary == f"1 process matches {name_of(sleeper)!r} (PID {child.pid})"
    assert reading(result, "count") == 1
    assert number(result, "rss_bytes") > 0
    assert number(result, "max_rss_bytes") == number(result, "rss_bytes")


async def test_no_matching_process_is_critical(ctx: ProbeContext, sleeper: str) -> None:
    result = await run_check(make_check("process", process=name_of(sleeper)), ctx)
    assert result.status is Status.CRITICAL
    assert result.summary == f"no process matches {name_of(sleeper)!r}: count 0 < 1"
    assert reading(result, "count") == 0
    assert reading(result, "rss_bytes") == 0


async def test_several_processes_add_up(ctx: ProbeContext, spawn: Spawn, sleeper: str) -> None:
    children = [spawn(sleeper, "300") for _ in range(3)]
    result = await run_check(make_check("process", process=name_of(sleeper)), ctx)
    assert reading(result, "count") == 3
    pids = ", ".join(str(c.pid) for c in sorted(children, key=lambda c: c.pid))
    assert result.summary == f"3 processes match {name_of(sleeper)!r} (PID {pids})"
    rss = [psutil.Process(c.pid).memory_info().rss for c in children]  # idle: stable
    assert number(result, "rss_bytes") == sum(rss)
    assert number(result, "max_rss_bytes") == max(rss)


async def test_count_outside_range_is_critical(
    ctx: ProbeContext, spawn: Spawn, sleeper: str
) -> None:
    check = make_check("process", process=name_of(sleeper), crit={"count": "2:3"})
    first, _ = spawn(sleeper, "300"), spawn(sleeper, "300")
    assert (await run_check(check, ctx)).status is Status.OK
    kill_and_reap(first)
    result = await run_check(check, ctx)
    assert result.status is Status.CRITICAL
    assert result.summary.endswith(": count 1 outside 2..3")


async def test_expected_absence_is_critical_when_running(
    ctx: ProbeContext, spawn: Spawn, sleeper: str
) -> None:
    check = make_check("process", process=name_of(sleeper), crit={"count": 0})
    assert (await run_check(check, ctx)).status is Status.OK
    spawn(sleeper, "300")
    result = await run_check(check, ctx)
    assert result.status is Status.CRITICAL
    assert result.summary.endswith(": count 1 > 0")


async def test_zombie_is_not_counted_as_running(
    ctx: ProbeContext, spawn: Spawn, sleeper: str
) -> None:
    zombie(spawn, sleeper)
    result = await run_check(make_check("process", process=name_of(sleeper)), ctx)
    assert result.status is Status.CRITICAL
    assert reading(result, "count") == 0


async def test_user_narrows_the_match(ctx: ProbeContext, spawn: Spawn, sleeper: str) -> None:
    spawn(sleeper, "300")
    me = pwd.getpwuid(psutil.Process().uids().real).pw_name
    other = "nobody" if me != "nobody" else "root"
    mine = make_check("process", process=name_of(sleeper), user=me)
    theirs = make_check("process", process=name_of(sleeper), user=other)
    assert reading(await run_check(mine, ctx), "count") == 1
    assert reading(await run_check(theirs, ctx), "count") == 0


# --- by command line --------------------------------------------------------------------


@pytest.fixture
def marker() -> str:
    return f"monitord-test-{secrets.token_hex(6)}"


async def test_process_is_found_by_cmdline_pattern(
    ctx: ProbeContext, spawn: Spawn, marker: str
) -> None:
    child = spawn(sys.executable, "-c", "import time; time.sleep(300)", marker)
    pattern = re.escape(marker[:-4]) + r"[0-9a-f]{4}$"
    result = await run_check(make_check("process", cmdline=pattern), ctx)
    assert result.status is Status.OK
    assert result.summary == f"1 process matches {pattern!r} (PID {child.pid})"


async def test_cmdline_pattern_matching_nothing_is_critical(
    ctx: ProbeContext, marker: str
) -> None:
    result = await run_check(make_check("process", cmdline=re.escape(marker)), ctx)
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(f"no process matches {re.escape(marker)!r}")


async def test_name_and_cmdline_must_both_match(
    ctx: ProbeContext, spawn: Spawn, sleeper: str
) -> None:
    spawn(sleeper, "300")
    spawn(sleeper, "301")
    check = make_check("process", process=name_of(sleeper), cmdline=r" 301$")
    assert reading(await run_check(check, ctx), "count") == 1


# --- by pidfile -------------------------------------------------------------------------


def write_pidfile(tmp_path: Path, content: str) -> str:
    pidfile = tmp_path / "daemon.pid"
    pidfile.write_text(content)
    return str(pidfile)


async def test_pidfile_of_running_process_is_ok(
    ctx: ProbeContext, spawn: Spawn, sleeper: str, tmp_path: Path
) -> None:
    child = spawn(sleeper, "300")
    pidfile = write_pidfile(tmp_path, f"{child.pid}\n")
    result = await run_check(make_check("process", pidfile=pidfile), ctx)
    assert result.status is Status.OK
    assert result.summary == f"1 process matches {pidfile!r} (PID {child.pid})"
    assert number(result, "rss_bytes") > 0


async def test_stale_pidfile_is_critical(
    ctx: ProbeContext, spawn: Spawn, sleeper: str, tmp_path: Path
) -> None:
    pid = dead_pid(spawn, sleeper)
    pidfile = write_pidfile(tmp_path, f"{pid}\n")
    result = await run_check(make_check("process", pidfile=pidfile), ctx)
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(f"pidfile {pidfile} names PID {pid}, which is not running")


async def test_pidfile_naming_a_zombie_is_critical(
    ctx: ProbeContext, spawn: Spawn, sleeper: str, tmp_path: Path
) -> None:
    child = zombie(spawn, sleeper)
    pidfile = write_pidfile(tmp_path, str(child.pid))
    result = await run_check(make_check("process", pidfile=pidfile), ctx)
    assert result.status is Status.CRITICAL
    assert f"names PID {child.pid}, which is not running (a zombie)" in result.summary


async def test_missing_pidfile_is_critical(ctx: ProbeContext, tmp_path: Path) -> None:
    pidfile = str(tmp_path / "nginx.pid")
    result = await run_check(make_check("process", pidfile=pidfile), ctx)
    assert result.status is Status.CRITICAL
    assert result.summary == f"pidfile {pidfile} does not exist: count 0 < 1"


async def test_pidfile_naming_another_program_is_critical(
    ctx: ProbeContext, spawn: Spawn, sleeper: str, marker: str, tmp_path: Path
) -> None:
    other = spawn(sys.executable, "-c", "import time; time.sleep(300)", marker)
    pidfile = write_pidfile(tmp_path, f"{other.pid}\n")
    check = make_check("process", pidfile=pidfile, process=name_of(sleeper))
    result = await run_check(check, ctx)
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(
        f"pidfile {pidfile} names PID {other.pid}, which is another program"
    )


@pytest.mark.parametrize("content", ["", "\n", "nginx\n", "-5\n", "0\n", "99999999999999999999"])
async def test_pidfile_without_a_pid_is_critical(
    ctx: ProbeContext, tmp_path: Path, content: str
) -> None:
    pidfile = write_pidfile(tmp_path, content)
    result = await run_check(make_check("process", pidfile=pidfile), ctx)
    assert result.status is Status.CRITICAL
    assert result.summary == f"pidfile {pidfile} holds no PID: count 0 < 1"


# --- CPU --------------------------------------------------------------------------------


async def test_cpu_ratio_appears_from_the_second_run(
    ctx: ProbeContext, spawn: Spawn, sleeper: str
) -> None:
    spawn(sleeper, "300")
    check = make_check("process", process=name_of(sleeper))
    first = await run_check(check, ctx)
    assert not has_reading(first, "cpu_ratio")
    second = await run_check(check, ctx)
    assert number(second, "cpu_ratio") >= 0


async def test_busy_process_shows_high_cpu_ratio(
    ctx: ProbeContext, spawn: Spawn, marker: str
) -> None:
    child = spawn(sys.executable, "-c", "while True: pass", marker)
    check = make_check("process", cmdline=re.escape(marker), warn={"cpu_ratio": 0.2})
    assert (await run_check(check, ctx)).status is Status.OK
    start = cpu_seconds(child.pid)
    wait_for(lambda: cpu_seconds(child.pid) - start >= 0.5, "the child to burn 0.5 s of CPU",
             limit=30)
    result = await run_check(check, ctx)
    assert number(result, "cpu_ratio") > 0.2
    assert result.status is Status.WARNING
    assert "cpu_ratio" in result.summary


# --- a scan that hangs ------------------------------------------------------------------


async def test_scan_still_stuck_from_an_earlier_run_is_unknown(
    ctx: ProbeContext, sleeper: str
) -> None:
    check = make_check("process", process=name_of(sleeper))
    released = threading.Event()
    # Occupy the check's slot in the blocking pool as a scan hung in the kernel would.
    hung = asyncio.create_task(
        ctx.shared.blocking.call(f"process:{check.name}", released.wait, 60)
    )
    await asyncio.sleep(0)  # let the task submit its call
    try:
        result = await run_check(check, ctx)
    finally:
        released.set()
        await hung
    assert result.status is Status.UNKNOWN
    assert result.summary.startswith("the process scan of an earlier run has not returned")
