"""The one subprocess path: no shell, scrubbed environment, bounded output, group kills."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path

import psutil
import pytest

from monitord.commands import run_command


def gone(pid: int) -> bool:
    """True once ``pid`` has exited (a zombie waiting for its reaper counts as exited)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


async def test_exit_code_and_merged_output() -> None:
    result = await run_command(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"], timeout=10)
    assert (result.exit_code, result.output) == (3, "out\nerr\n")
    assert result.describe().startswith("exit 3 in ")


async def test_arguments_are_never_interpreted_by_a_shell(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    result = await run_command(["/bin/echo", f"; touch {marker}", "$(id)"], timeout=10)
    assert result.output == f"; touch {marker} $(id)\n"
    assert not marker.exists()


async def test_timeout_kills_whole_process_group() -> None:
    script = "sleep 300 & echo $!; sleep 300 & echo $!; wait"
    result = await run_command(["/bin/sh", "-c", script], timeout=1, kill_grace=0.5)
    assert result.timed_out and result.exit_code is None
    children = [int(line) for line in result.output.split()]
    assert len(children) == 2
    assert all(gone(pid) for pid in children)
    assert "its process group was killed" in result.describe()


async def test_group_is_killed_even_when_the_leader_ignores_sigterm() -> None:
    script = "trap '' TERM; sleep 300 & echo $!; wait"
    result = await run_command(["/bin/sh", "-c", script], timeout=1, kill_grace=0.5)
    assert result.timed_out
    assert gone(int(result.output.split()[0]))


async def test_cancelling_the_caller_kills_the_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    script = f"sleep 300 & echo $! > {pidfile}; wait"
    task = asyncio.create_task(run_command(["/bin/sh", "-c", script], timeout=60,
                                           kill_grace=0.5))
    for _ in range(500):
        if pidfile.exists() and pidfile.read_text().strip():
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert gone(int(pidfile.read_text()))


async def test_environment_is_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/systemd/notify")
    monkeypatch.setenv("WATCHDOG_USEC", "1000")
    monkeypatch.setenv("MONITORD_SECRET_TOKEN", "s3cret")
    result = await run_command(["/usr/bin/env"], timeout=10, env={"MONITORD_CHECK": "web"})
    env = dict(line.split("=", 1) for line in result.output.splitlines())
    assert env["MONITORD_CHECK"] == "web"
    assert "NOTIFY_SOCKET" not in env and "WATCHDOG_USEC" not in env
    assert "s3cret" not in result.output
    assert env["PATH"].startswith("/usr/local/sbin")


async def test_output_is_bounded_but_the_child_is_not_blocked() -> None:
    code = "import sys; sys.stdout.write('x' * 5_000_000)"
    result = await run_command([sys.executable, "-c", code], timeout=30, max_output=1000)
    assert result.exit_code == 0
    assert len(result.output) == 1000 and result.truncated


async def test_missing_program_is_reported_not_raised() -> None:
    result = await run_command(["/nonexistent/fix"], timeout=10)
    assert result.exit_code is None
    assert result.describe() == "could not run: /nonexistent/fix: No such file or directory"


async def test_child_runs_in_its_own_session() -> None:
    result = await run_command(["/bin/sh", "-c", "ps -o sid= -p $$"], timeout=10)
    assert int(result.output) != os.getsid(0)
