"""``monitord maintenance on|off``, run as a real command: a window and the event that
tells the store of it are written in one transaction of the state file, so the store
never keeps a window the host no longer has; on a full disk the command says so in one
line, fails, and leaves both as they were."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import small_tmpfs
from tests.processes import read_rows
from tests.test_disk_full import fill

ROOT = Path(__file__).resolve().parents[2]
TMPFS_SIZE = "2m"


def maintenance(config: Path, state_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitord", "maintenance", "-c", str(config),
                           "--state-dir", str(state_dir), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)


def outbox(state_dir: Path) -> list[dict[str, object]]:
    """The maintenance events waiting in the outbox, oldest first."""
    rows = read_rows(state_dir / "state.db",
                     "SELECT body FROM outbox WHERE kind = 'maintenance' ORDER BY seq")
    return [json.loads(body) for (body,) in rows]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "monitord.toml"
    path.write_text('[[check]]\nname = "shop"\nprobe = "tcp"\nhost = "127.0.0.1"\n'
                    'port = 1\n')
    return path


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "state", TMPFS_SIZE) as where:
        yield where


def test_on_and_off_write_the_window_and_its_event_together(
        config: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    on = maintenance(config, state, "on", "shop", "--for", "2h", "--reason", "cache flush")
    assert on.returncode == 0, on.stderr
    [told] = outbox(state)
    assert (told["check"], told["reason"]) == ("shop", "cache flush") and told["until"]
    assert "check shop: until" in maintenance(config, state, "list").stdout
    off = maintenance(config, state, "off", "shop")
    assert (off.returncode, off.stdout.strip()) == (0, "maintenance ended for check shop")
    assert [e["until"] for e in outbox(state)] == [told["until"], None]
    again = maintenance(config, state, "off", "shop")
    assert again.stdout.strip() == "check shop was not in maintenance"
    assert len(outbox(state)) == 2                       # nothing to tell the store


def refused(done: subprocess.CompletedProcess[str]) -> str:
    """The one line a command that could not write says; it failed, without a traceback."""
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    [line] = done.stderr.splitlines()
    assert line.startswith("monitord: ")
    return line


def window_and_told(db: sqlite3.Connection) -> tuple[int, list[object]]:
    """(windows in the state file, the ``until`` of each maintenance event in its
    outbox), read on the test's own connection (a read needs no room)."""
    [(windows,)] = db.execute("SELECT count(*) FROM maintenance").fetchall()
    told = [json.loads(body)["until"] for (body,) in db.execute(
        "SELECT body FROM outbox WHERE kind = 'maintenance' ORDER BY seq")]
    return windows, told


@pytest.mark.timeout(300)
@pytest.mark.parametrize("action", ["on", "off"])
def test_a_disk_that_refuses_leaves_the_window_and_its_event_in_step(
        config: Path, small_disk: Path, action: str) -> None:
    """With the disk full but for 0 to 40 KiB, the command either does both (the window
    and its event) or fails in one line and does neither; at some room it fails."""
    refusals = 0
    for room in range(0, 41 * 1024, 4096):                       # bounded: 11 tries
        for leftover in small_disk.iterdir():
            leftover.unlink()
        start = ("on", "--for", "2h", "--reason", "disks") if action == "off" else ("list",)
        assert maintenance(config, small_disk, *start).returncode == 0
        # Kept open, so the state file's WAL and shared-memory files stay (as the
        # daemon's connection keeps them), and the command needs room only to write.
        with contextlib.closing(sqlite3.connect(small_disk / "state.db")) as db:
            before = window_and_told(db)
            filler = fill(small_disk)
            os.truncate(filler, filler.stat().st_size - room)
            args = ("on", "--for", "2h", "--reason", "disks") if action == "on" else ("off",)
            done = maintenance(config, small_disk, *args)
            after = window_and_told(db)
            filler.unlink()
        if done.returncode == 0:                  # both: the window and its event
            windows, told = after
            assert windows == (1 if action == "on" else 0), (room, after)
            assert len(told) == len(before[1]) + 1, (room, after)
            assert (told[-1] is None) == (action == "off"), (room, after)
        else:
            assert "nothing was changed" in refused(done), room
            assert after == before, (room, after)
            refusals += 1
    assert refusals, "the disk never refused: the test shows nothing"
