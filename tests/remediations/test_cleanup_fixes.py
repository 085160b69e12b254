"""The stock cleanup fixes (free-disk, kill-runaway, clear-stale-pidfile), run as the healer
runs them: through ``run_command``, without a shell, with a clean environment plus
``MONITORD_*``, against trees and child processes that each test makes for itself.

The only departure from the healer's environment: the journalctl and apt-get tests put
stand-ins first on PATH (or nothing at all), so that no test vacuums the real journal or
cleans the real apt cache. The last tests hold every script in remediations/ (also those
added later) to the contract: executable, safe to run as root, a header stating its
arguments, environment, exit codes, scope and whether it is safe to repeat, and
shellcheck-clean when it is a shell script.
"""

from __future__ import annotations

import ast
import asyncio
import gzip
import itertools
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from monitord.commands import SAFE_PATH, CommandResult, run_command
from monitord.trust import unsafe_reason
from tests.conftest import unavailable

FIXES = Path(__file__).resolve().parents[2] / "remediations"
FREE_DISK = FIXES / "free-disk"
KILL_RUNAWAY = FIXES / "kill-runaway"
CLEAR_STALE_PIDFILE = FIXES / "clear-stale-pidfile"
FIX_TIMEOUT_SECONDS = 60.0
WAIT_SECONDS = 10.0
DAY_SECONDS = 86400
LOG_TEXT = "".join(f'127.0.0.1 - - "GET /page/{i} HTTP/1.1" 200 {i * 7}\n' for i in range(3000))

Spawn = Callable[..., subprocess.Popen[bytes]]
Mount = Callable[[Path], Path]

# --- helpers ----------------------------------------------------------------------------


@pytest.fixture
def fix_env(tmp_path: Path) -> dict[str, str]:
    """What the healer adds to a fix's clean environment (the state dir does not exist)."""
    return {
        "MONITORD_CHECK": "disk-root",
        "MONITORD_HOST": "web1.test",
        "MONITORD_STATUS": "CRITICAL",
        "MONITORD_SUMMARY": "/ is 97% full",
        "MONITORD_STATE_DIR": str(tmp_path / "var" / "fixes"),
    }


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """The test's directory without symlinks in its path, as the scripts print paths."""
    return tmp_path.resolve()


def dry(env: dict[str, str]) -> dict[str, str]:
    return {**env, "MONITORD_DRY_RUN": "1"}


async def run_fix(script: Path, *args: str, env: dict[str, str]) -> CommandResult:
    result = await run_command([str(script), *args], timeout=FIX_TIMEOUT_SECONDS, env=env)
    assert result.exit_code is not None, f"{script.name}: {result.describe()}\n{result.output}"
    return result


def age(path: Path, days: float) -> None:
    """Set the access and modification times of ``path`` itself (not a link's target)."""
    then = time.time() - days * DAY_SECONDS
    os.utime(path, (then, then), follow_symlinks=False)


def write(path: Path, text: str = "", days_old: float = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    age(path, days_old)
    return path


def write_gz(path: Path, text: str, days_old: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(text.encode()))
    age(path, days_old)
    return path


def snapshot(top: Path) -> dict[str, tuple[int, int, int, int, str]]:
    """Every entry under ``top``: mode, size, inode, mtime, link target. Reads no file
    contents: reading would refresh access times, which free-disk --tmp looks at."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in [*dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            info = os.lstat(path)
            target = os.readlink(path) if stat.S_ISLNK(info.st_mode) else ""
            found[os.path.relpath(path, top)] = (info.st_mode, info.st_size, info.st_ino,
                                                 info.st_mtime_ns, target)
    return found


@pytest.fixture
def mount_tmpfs() -> Iterator[Mount]:
    """Mounts a small tmpfs (another filesystem) at a directory; unmounts it afterwards."""
    mounted: list[Path] = []

    def mount(where: Path) -> Path:
        where.mkdir(parents=True)
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)],
                              capture_output=True, text=True, timeout=30, check=False)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs (needs root): {done.stderr.strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", str(where)], check=True, timeout=30)


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Starts ``python -c CODE ARGS...`` children; kills and reaps them all afterwards."""
    children: list[subprocess.Popen[bytes]] = []

    def start(code: str, *args: str) -> subprocess.Popen[bytes]:
        child = subprocess.Popen([sys.executable, "-c", code, *args], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        children.append(child)
        return child

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=WAIT_SECONDS)


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {WAIT_SECONDS:.0f}s waiting for {what}")
        await asyncio.sleep(0.01)


def proc_text(pid: int, name: str) -> str:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes().decode().replace("\0", " ")
    except OSError:
        return ""


def stat_fields(pid: int) -> list[str]:
    """Fields 3 and on of /proc/PID/stat (state first); empty once the process is gone."""
    text = proc_text(pid, "stat")
    return text[text.rindex(")") + 2 :].split() if text else []


def open_files(pid: int) -> set[str]:
    """What the process has open; an fd closed between listing and reading is skipped."""
    found = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            found.add(os.readlink(fd))
        except OSError:
            continue
    return found


def cpu_ticks(pid: int) -> int:
    fields = stat_fields(pid)
    return int(fields[11]) + int(fields[12]) if fields else 0


def rss_bytes(pid: int) -> int:
    fields = stat_fields(pid)
    return int(fields[21]) * os.sysconf("SC_PAGE_SIZE") if fields else 0


def state(pid: int) -> str:
    fields = stat_fields(pid)
    return fields[0] if fields else ""


def comm(pid: int) -> str:
    return proc_text(pid, "comm").strip()


async def started(child: subprocess.Popen[bytes], marker: str) -> None:
    """Wait until the child has exec'd (before that it shows the test's command line)."""
    await wait_until(lambda: marker in proc_text(child.pid, "cmdline"),
                     f"PID {child.pid} to run with {marker} in its command line")


def assert_usage_error(result: CommandResult, name: str) -> None:
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"usage: {name} "), result.output
    assert result.output.count("\n") == 1, f"expected one line, got:\n{result.output}"


# --- free-disk ----------------------------------------------------------------------------


async def test_free_disk_never_touches_database_binary_logs(
    tree: Path, fix_env: dict[str, str]
) -> None:
    logs = tree / "logs"
    binlogs = [write(logs / "mysql" / "mysql-bin.000123", LOG_TEXT, 30),
               write(logs / "mysql" / "relay-bin.000002", LOG_TEXT, 30),
               write(logs / "data.5", LOG_TEXT, 30)]
    result = await run_fix(FREE_DISK, "--days", "7", "--logs", str(logs), env=fix_env)
    assert result.exit_code == 0, result.output
    assert all(path.read_text() == LOG_TEXT for path in binlogs)
    assert not list(logs.rglob("*.gz"))


async def test_free_disk_compresses_rotated_logs_and_removes_only_old_gz_files(
    tree: Path, fix_env: dict[str, str], mount_tmpfs: Mount
) -> None:
    logs, outside = tree / "logs", tree / "outside"
    live = write(logs / "app.log", LOG_TEXT)
    rotated = [write(logs / "app.log.1", LOG_TEXT), write(logs / "syslog.1", LOG_TEXT, 2)]
    old_gz = [write_gz(logs / "app.log.2.gz", LOG_TEXT, 10),
              write_gz(logs / "nginx" / "access.log.9.gz", LOG_TEXT, 30)]
    new_gz = write_gz(logs / "app.log.3.gz", LOG_TEXT, 1)
    shared = write(logs / "shared.log.1", LOG_TEXT)
    outside.mkdir()
    os.link(shared, outside / "shared-name")
    (logs / "gone.log.2.gz").symlink_to(write_gz(outside / "victim.log.2.gz", LOG_TEXT, 30))
    (logs / "gone.log.1").symlink_to(write(outside / "victim.log.1", LOG_TEXT))
    (logs / "linked-dir").symlink_to(outside)
    age(logs / "gone.log.2.gz", 30)
    other_fs = mount_tmpfs(logs / "mnt")
    write_gz(other_fs / "other.log.2.gz", LOG_TEXT, 30)
    write(other_fs / "other.log.1", LOG_TEXT)
    untouched = {top: snapshot(top) for top in (outside, other_fs)}
    rotated_stats = {path: path.stat() for path in rotated}
    removed_bytes = sum(path.stat().st_size for path in old_gz)

    result = await run_fix(FREE_DISK, "--days", "7", "--logs", str(logs), env=fix_env)

    assert result.exit_code == 0, result.output
    assert live.read_text() == LOG_TEXT and not live.with_name("app.log.gz").exists()
    for path, before in rotated_stats.items():
        packed = path.with_name(path.name + ".gz")
        assert not path.exists() and gzip.decompress(packed.read_bytes()).decode() == LOG_TEXT
        assert packed.stat().st_mtime_ns == before.st_mtime_ns  # keeps its age
    assert not any(path.exists() for path in old_gz)
    assert new_gz.exists()
    assert shared.exists(), "a file with another hard link frees nothing: it stays"
    assert all(link.is_symlink() for link in logs.glob("gone.*"))
    assert (logs / "linked-dir").is_symlink()
    assert {top: snapshot(top) for top in untouched} == untouched
    saved = sum(before.st_size - path.with_name(path.name + ".gz").stat().st_size
                for path, before in rotated_stats.items())
    freed = removed_bytes + saved
    assert f"logs {logs}: freed {freed} bytes (removed 2 files, compressed 2 files)" \
        in result.output
    assert f"kept {shared}: it has other hard links" in result.output
    assert f"total: freed {freed} bytes" in result.output

    again = await run_fix(FREE_DISK, "--days", "7", "--logs", str(logs), env=fix_env)
    assert again.exit_code == 0, again.output
    assert f"logs {logs}: nothing to free" in again.output
    assert "total: freed 0 bytes" in again.output


async def test_free_disk_removes_only_old_regular_files_from_tmp(
    tree: Path, fix_env: dict[str, str], mount_tmpfs: Mount
) -> None:
    tmp, outside = tree / "tmp", tree / "outside"
    old = [write(tmp / "old.txt", "o" * 1000, 8),
           write(tmp / "a" / "b" / "old.bin", "b" * 3000, 30)]
    new = write(tmp / "new.txt", "n" * 500, 1)
    held = write(tmp / "held-open.txt", "h" * 200, 30)
    old_dir = tmp / "old-empty-dir"
    old_dir.mkdir()
    os.mkfifo(tmp / "old.fifo")
    (tmp / "old-link.txt").symlink_to(write(outside / "victim.txt", "v" * 100, 30))
    (tmp / "linked-dir").symlink_to(outside)
    for path in (old_dir, tmp / "old.fifo", tmp / "old-link.txt", tmp / "a" / "b", tmp / "a"):
        age(path, 30)
    other_fs = mount_tmpfs(tmp / "mnt")
    on_other_fs = write(other_fs / "old-elsewhere.txt", "e" * 100, 30)

    with held.open():
        result = await run_fix(FREE_DISK, "--tmp", str(tmp), env=fix_env)

    assert result.exit_code == 0, result.output
    assert not any(path.exists() for path in old)
    assert new.exists() and held.exists() and on_other_fs.exists()
    assert old_dir.is_dir() and (tmp / "a" / "b").is_dir(), "directories are never removed"
    assert (tmp / "old.fifo").exists() and (tmp / "old-link.txt").is_symlink()
    assert (outside / "victim.txt").read_text() == "v" * 100
    assert f"tmp {tmp}: freed 4000 bytes (removed 2 files)" in result.output
    assert f"kept {held}: a process still has it open" in result.output
    assert "total: freed 4000 bytes" in result.output


async def test_free_disk_dry_run_changes_nothing(tree: Path, fix_env: dict[str, str]) -> None:
    logs, tmp = tree / "log", tree / "tmp"
    rotated = write(logs / "app.log.1", LOG_TEXT)
    old_gz = write_gz(logs / "app.log.2.gz", LOG_TEXT, 30)
    old_tmp = write(tmp / "old.txt", "o" * 1234, 30)
    before = snapshot(tree)

    result = await run_fix(FREE_DISK, "--logs", str(logs), "--tmp", str(tmp), env=dry(fix_env))

    assert result.exit_code == 0, result.output
    assert snapshot(tree) == before
    assert result.output.startswith("dry run: nothing will be changed\n")
    assert f"would compress {rotated} ({len(LOG_TEXT)} bytes)" in result.output
    assert f"would remove {old_gz} ({old_gz.stat().st_size} bytes)" in result.output
    assert f"would remove {old_tmp} (1234 bytes)" in result.output
    assert f"total: would free {old_gz.stat().st_size + 1234} bytes" in result.output


async def test_free_disk_runs_journalctl_and_apt_get_with_the_given_size(
    tmp_path: Path, fix_env: dict[str, str]
) -> None:
    stand_ins, calls = tmp_path / "bin", tmp_path / "calls"
    stand_ins.mkdir()
    for tool in ("journalctl", "apt-get"):
        script = stand_ins / tool
        script.write_text(f'#!/bin/sh\necho "${{0##*/}} $*" >> {calls}\n')
        script.chmod(0o755)
    env = {**fix_env, "PATH": str(stand_ins)}

    planned = await run_fix(FREE_DISK, "--journal", "200M", "--apt-cache", env=dry(env))
    assert planned.exit_code == 0, planned.output
    assert not calls.exists(), "a dry run must not run the tools"
    assert "journal: would run journalctl --vacuum-size=200M" in planned.output

    result = await run_fix(FREE_DISK, "--journal", "200M", "--apt-cache", env=env)
    assert result.exit_code == 0, result.output
    assert calls.read_text().splitlines() == ["journalctl --vacuum-size=200M", "apt-get clean"]
    assert re.search(r"^journal: freed \d+ bytes \(journalctl --vacuum-size=200M\)$",
                     result.output, re.M), result.output


async def test_free_disk_is_not_applicable_without_journalctl_and_apt_get(
    tmp_path: Path, fix_env: dict[str, str]
) -> None:
    no_tools = tmp_path / "empty-bin"
    no_tools.mkdir()
    env = {**fix_env, "PATH": str(no_tools)}

    result = await run_fix(FREE_DISK, "--journal", "200M", "--apt-cache", env=env)

    assert result.exit_code == 3, result.output
    assert "journal: skipped: journalctl is not installed" in result.output
    assert "apt cache: skipped: apt-get is not installed" in result.output


# --- kill-runaway -------------------------------------------------------------------------

BUSY = "while True: pass"
CPU_BOUND = "5"  # percent: an idle child uses none; a busy one may share a loaded machine
IDLE = "import time\nwhile True: time.sleep(60)"
HOG = "import time\nheld = b'x' * (64 << 20)\nwhile True: time.sleep(60)"


@pytest.fixture
def marker() -> str:
    """A word only this test's children (and kill-runaway's own --pattern) carry."""
    return f"runaway-test-{uuid.uuid4().hex}"


async def busy_child(spawn: Spawn, marker: str) -> subprocess.Popen[bytes]:
    child = spawn(BUSY, marker)
    await started(child, marker)
    await wait_until(lambda: cpu_ticks(child.pid) >= 10, f"PID {child.pid} to spin")
    return child


async def test_kill_runaway_stops_a_busy_process_and_spares_an_idle_one(
    spawn: Spawn, marker: str, fix_env: dict[str, str]
) -> None:
    idle = spawn(IDLE, marker)
    await started(idle, marker)
    busy = await busy_child(spawn, marker)

    result = await run_fix(KILL_RUNAWAY, "--pattern", marker, "--cpu", CPU_BOUND, "--for", "1",
                           env=fix_env)

    assert result.exit_code == 0, result.output
    assert busy.wait(timeout=WAIT_SECONDS) == -signal.SIGTERM
    assert idle.poll() is None
    assert re.search(rf"^stopped PID {busy.pid} \(.*{marker}\): cpu \d+%, rss [\d.]+ MiB: "
                     "exited after SIGTERM$", result.output, re.M), result.output
    assert f"PID {idle.pid} " not in result.output


async def test_kill_runaway_stops_a_process_above_the_memory_bound(
    spawn: Spawn, marker: str, fix_env: dict[str, str]
) -> None:
    idle = spawn(IDLE, marker)
    hog = spawn(HOG, marker)
    await started(idle, marker)
    await wait_until(lambda: rss_bytes(hog.pid) >= 64 << 20, f"PID {hog.pid} to fill 64 MiB")

    result = await run_fix(KILL_RUNAWAY, "--pattern", marker, "--rss", "48", "--for", "0.5",
                           env=fix_env)

    assert result.exit_code == 0, result.output
    assert hog.wait(timeout=WAIT_SECONDS) == -signal.SIGTERM
    assert idle.poll() is None
    assert f"stopped PID {hog.pid} " in result.output


async def test_kill_runaway_spares_a_protected_name(
    spawn: Spawn, marker: str, fix_env: dict[str, str]
) -> None:
    busy = await busy_child(spawn, marker)

    result = await run_fix(KILL_RUNAWAY, "--pattern", marker, "--cpu", CPU_BOUND, "--for", "0.5",
                           "--protect", comm(busy.pid), env=fix_env)

    assert result.exit_code == 0, result.output
    assert busy.poll() is None
    assert f"spared PID {busy.pid} " in result.output and "protected" in result.output


async def test_kill_runaway_dry_run_stops_nothing(
    spawn: Spawn, marker: str, fix_env: dict[str, str]
) -> None:
    busy = await busy_child(spawn, marker)

    result = await run_fix(KILL_RUNAWAY, "--pattern", marker, "--cpu", CPU_BOUND, "--for", "1",
                           env=dry(fix_env))

    assert result.exit_code == 0, result.output
    assert busy.poll() is None
    assert f"dry run: would stop PID {busy.pid} " in result.output


async def test_kill_runaway_never_matches_itself(marker: str, fix_env: dict[str, str]) -> None:
    # Its own command line carries the pattern, and its memory is above 1 MiB.
    result = await run_fix(KILL_RUNAWAY, "--pattern", marker, "--rss", "1", "--for", "0.2",
                           env=fix_env)

    assert result.exit_code == 0, result.output
    assert "no process to watch" in result.output


# --- clear-stale-pidfile ------------------------------------------------------------------


async def test_clear_stale_pidfile_removes_the_pidfile_of_a_dead_process(
    tmp_path: Path, spawn: Spawn, fix_env: dict[str, str]
) -> None:
    ended = spawn("pass")
    ended.wait(timeout=WAIT_SECONDS)
    pidfile = write(tmp_path / "app.pid", f"{ended.pid}\n")

    result = await run_fix(CLEAR_STALE_PIDFILE, str(pidfile), env=fix_env)

    assert result.exit_code == 0, result.output
    assert not pidfile.exists()
    assert f"removed {pidfile}: PID {ended.pid} is not running" in result.output

    again = await run_fix(CLEAR_STALE_PIDFILE, str(pidfile), env=fix_env)
    assert again.exit_code == 0, again.output
    assert f"{pidfile}: already gone, nothing to do" in again.output


async def test_clear_stale_pidfile_removes_the_pidfile_of_a_zombie(
    tmp_path: Path, spawn: Spawn, fix_env: dict[str, str]
) -> None:
    zombie = spawn("pass")  # not reaped until teardown: it stays a zombie
    await wait_until(lambda: state(zombie.pid) == "Z", f"PID {zombie.pid} to be a zombie")
    pidfile = write(tmp_path / "app.pid", f"{zombie.pid}\n")

    result = await run_fix(CLEAR_STALE_PIDFILE, str(pidfile), env=fix_env)

    assert result.exit_code == 0, result.output
    assert not pidfile.exists()
    assert f"PID {zombie.pid} is a zombie" in result.output


async def test_clear_stale_pidfile_keeps_the_pidfile_of_a_live_matching_process(
    tmp_path: Path, spawn: Spawn, fix_env: dict[str, str]
) -> None:
    marker = f"pidfile-test-{uuid.uuid4().hex}"
    alive = spawn(IDLE, marker)
    await started(alive, marker)
    pidfile = write(tmp_path / "app.pid", f"{alive.pid}\n")

    for args in ([], ["--name", comm(alive.pid)]):
        result = await run_fix(CLEAR_STALE_PIDFILE, *args, str(pidfile), env=fix_env)
        assert result.exit_code == 0, result.output
        assert pidfile.read_text() == f"{alive.pid}\n"
        assert f"kept {pidfile}: PID {alive.pid} ({comm(alive.pid)}) is running" in result.output


async def test_clear_stale_pidfile_removes_a_pidfile_whose_pid_runs_another_program(
    tmp_path: Path, spawn: Spawn, fix_env: dict[str, str]
) -> None:
    marker = f"pidfile-test-{uuid.uuid4().hex}"
    other = spawn(IDLE, marker)
    await started(other, marker)
    pidfile = write(tmp_path / "nginx.pid", f"{other.pid}\n")

    result = await run_fix(CLEAR_STALE_PIDFILE, "--name", "nginx", str(pidfile), env=fix_env)

    assert result.exit_code == 0, result.output
    assert not pidfile.exists()
    assert other.poll() is None, "the process itself is never touched"
    assert f"PID {other.pid} runs {comm(other.pid)}, not nginx" in result.output


async def test_clear_stale_pidfile_keeps_a_lock_file_held_open_by_a_live_process(
    tree: Path, spawn: Spawn, fix_env: dict[str, str]
) -> None:
    held = write(tree / "held.lock", "", 1 / 24)
    stale = write(tree / "stale.lock", "", 1 / 24)
    fresh = write(tree / "fresh.lock")
    holder = spawn("import sys, time\nlock = open(sys.argv[1])\nwhile True: time.sleep(60)",
                   str(held))
    await wait_until(lambda: str(held) in open_files(holder.pid),
                     f"PID {holder.pid} to open {held}")

    result = await run_fix(CLEAR_STALE_PIDFILE, "--older-than", "60", str(held), str(stale),
                           str(fresh), env=fix_env)

    assert result.exit_code == 0, result.output
    assert held.exists() and fresh.exists() and not stale.exists()
    assert f"still open in PID {holder.pid}" in result.output


async def test_clear_stale_pidfile_dry_run_removes_nothing(
    tmp_path: Path, spawn: Spawn, fix_env: dict[str, str]
) -> None:
    ended = spawn("pass")
    ended.wait(timeout=WAIT_SECONDS)
    pidfile = write(tmp_path / "app.pid", f"{ended.pid}\n")
    lock = write(tmp_path / "app.lock", "", 1)

    result = await run_fix(CLEAR_STALE_PIDFILE, "--older-than", "60", str(pidfile), str(lock),
                           env=dry(fix_env))

    assert result.exit_code == 0, result.output
    assert pidfile.exists() and lock.exists()
    assert f"dry run: would remove {pidfile}: PID {ended.pid} is not running" in result.output


async def test_clear_stale_pidfile_leaves_symlinks_and_directories_alone(
    tmp_path: Path, spawn: Spawn, fix_env: dict[str, str]
) -> None:
    ended = spawn("pass")
    ended.wait(timeout=WAIT_SECONDS)
    target = write(tmp_path / "elsewhere" / "important", f"{ended.pid}\n")
    link = tmp_path / "app.pid"
    link.symlink_to(target)
    directory = tmp_path / "run.pid"
    directory.mkdir()

    result = await run_fix(CLEAR_STALE_PIDFILE, str(link), str(directory), env=fix_env)

    assert result.exit_code == 1, result.output
    assert link.is_symlink() and target.exists() and directory.is_dir()
    assert f"left {link} alone: it is a symlink" in result.output


# --- bad arguments ------------------------------------------------------------------------

BAD_ARGUMENTS = {
    "free-disk-no-action": (FREE_DISK, []),
    "free-disk-days-not-a-number": (FREE_DISK, ["--days", "a week", "--tmp", "{dir}"]),
    "free-disk-root": (FREE_DISK, ["--logs", "/"]),
    "free-disk-a-file": (FREE_DISK, ["--tmp", "{file}"]),
    "free-disk-missing-dir": (FREE_DISK, ["--tmp", "{dir}/missing"]),
    "free-disk-relative-dir": (FREE_DISK, ["--tmp", "var/tmp"]),
    "free-disk-symlinked-dir": (FREE_DISK, ["--logs", "{link}"]),
    "free-disk-journal-size": (FREE_DISK, ["--journal", "lots"]),
    "free-disk-unknown-option": (FREE_DISK, ["--tmp", "{dir}", "--everything"]),
    "kill-runaway-no-bound": (KILL_RUNAWAY, ["--pattern", "{marker}"]),
    "kill-runaway-no-pattern": (KILL_RUNAWAY, ["--cpu", "90"]),
    "kill-runaway-bad-regex": (KILL_RUNAWAY, ["--pattern", "(", "--cpu", "90"]),
    "kill-runaway-matches-all": (KILL_RUNAWAY, ["--pattern", ".*", "--cpu", "100000"]),
    "kill-runaway-negative-cpu": (KILL_RUNAWAY, ["--pattern", "{marker}", "--cpu", "-5"]),
    "kill-runaway-zero-window": (KILL_RUNAWAY, ["--pattern", "{marker}", "--rss", "9",
                                                "--for", "0"]),
    "clear-stale-pidfile-no-file": (CLEAR_STALE_PIDFILE, []),
    "clear-stale-pidfile-age": (CLEAR_STALE_PIDFILE, ["--older-than", "1h", "{file}"]),
    "clear-stale-pidfile-relative": (CLEAR_STALE_PIDFILE, ["run/app.pid"]),
    "clear-stale-pidfile-option": (CLEAR_STALE_PIDFILE, ["--force", "{file}"]),
}


@pytest.mark.parametrize(("script", "args"), list(BAD_ARGUMENTS.values()),
                         ids=list(BAD_ARGUMENTS))
async def test_bad_arguments_exit_2_with_a_one_line_usage(
    script: Path, args: list[str], tmp_path: Path, fix_env: dict[str, str]
) -> None:
    directory = tmp_path / "dir"
    file = write(directory / "file.pid", "1\n", 30)
    (tmp_path / "link").symlink_to(directory)
    places = {"dir": directory, "file": file, "link": tmp_path / "link",
              "marker": f"bad-args-{uuid.uuid4().hex}"}
    before = snapshot(tmp_path)

    # A dry run, so that arguments accepted by mistake still change nothing.
    result = await run_fix(script, *(arg.format(**places) for arg in args), env=dry(fix_env))

    assert_usage_error(result, script.name)
    assert snapshot(tmp_path) == before


# --- every script in remediations/ ---------------------------------------------------------

ALL_FIXES = sorted(p for p in FIXES.iterdir() if p.is_file() and not p.name.startswith("."))
HEADER_FIELDS = ("arguments", "environment", "exit codes", "scope", "safe to repeat")
SHEBANGS = ("#!/bin/sh", "#!/usr/bin/python3")


def header(text: str) -> str:
    """The comment block after the shebang, plus a Python script's docstring."""
    lines = text.splitlines()[1:]
    comments = "\n".join(itertools.takewhile(lambda line: line.startswith("#"), lines))
    if text.startswith("#!/usr/bin/python3"):
        comments += "\n" + (ast.get_docstring(ast.parse(text)) or "")
    return comments


def is_shell(path: Path) -> bool:
    first = path.read_bytes().split(b"\n", 1)[0]
    return re.fullmatch(rb"#!\s*(/bin/|/usr/bin/env\s+)(ba|da)?sh\b.*", first) is not None


@pytest.mark.parametrize("script", ALL_FIXES, ids=[p.name for p in ALL_FIXES])
def test_every_fix_is_executable_and_its_header_states_its_contract(script: Path) -> None:
    assert os.access(script, os.X_OK), f"{script} is not executable (chmod 755)"
    assert unsafe_reason(script) == "", "the healer would refuse to run it"
    text = script.read_text()
    assert text.splitlines()[0] in SHEBANGS, f"{script.name}: use one of {SHEBANGS}"
    opening = header(text).lower()
    missing = [name for name in HEADER_FIELDS if name not in opening]
    assert not missing, f"{script.name}: its header does not state {', '.join(missing)}"
    if text.startswith("#!/bin/sh"):
        assert re.search(r"^set -eu$", text, re.M), f"{script.name}: no 'set -eu'"


SHELL_FIXES = [p for p in ALL_FIXES if is_shell(p)]


@pytest.mark.parametrize("script", SHELL_FIXES, ids=[p.name for p in SHELL_FIXES])
async def test_every_shell_fix_passes_shellcheck(script: Path) -> None:
    shellcheck = shutil.which("shellcheck", path=SAFE_PATH)
    if shellcheck is None:
        unavailable("shellcheck is not installed (apt-get install shellcheck)")
    result = await run_command([shellcheck, str(script)], timeout=FIX_TIMEOUT_SECONDS)
    assert result.exit_code == 0, result.output
