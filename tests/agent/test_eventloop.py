"""The daemon's loop: uvloop when it is installed, asyncio's own when it is not or when
MONITORD_EVENT_LOOP=asyncio says so; the daemon runs its checks on either."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monitord.agent import eventloop

ROOT = Path(__file__).resolve().parents[2]
RUN_A_MOMENT = """
import os, signal, sys, threading
if sys.argv[3] == "no-uvloop":
    sys.modules["uvloop"] = None   # as if it were not installed: importing it fails
from monitord.cli import main
threading.Timer(1.5, lambda: os.kill(os.getpid(), signal.SIGTERM)).start()
sys.exit(main(["run", "-c", sys.argv[1], "--state-dir", sys.argv[2], "-v"]))
"""


def test_uvloop_is_chosen_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    uvloop = pytest.importorskip("uvloop")
    monkeypatch.delenv(eventloop.ENV_VAR, raising=False)
    assert eventloop.loop_factory() is uvloop.new_event_loop


def test_the_environment_can_choose_asyncios_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(eventloop.ENV_VAR, "asyncio")
    assert eventloop.loop_factory() is None


def test_without_uvloop_asyncios_loop_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(eventloop.ENV_VAR, raising=False)
    monkeypatch.setitem(sys.modules, "uvloop", None)
    assert eventloop.loop_factory() is None


@pytest.mark.parametrize("loop", ["uvloop", "no-uvloop"])
def test_the_daemon_runs_its_checks_on_either_loop(tmp_path: Path, loop: str) -> None:
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    config = tmp_path / "monitord.toml"
    config.write_text('[status]\nlisten = ""\n[[check]]\nname = "load"\nprobe = "load"\n'
                      'every = "1s"\ntimeout = "1s"\n')
    done = subprocess.run([sys.executable, "-c", RUN_A_MOMENT, str(config),
                           str(tmp_path / "state"), loop], capture_output=True, text=True,
                          timeout=60, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    assert "load: OK" in done.stderr
    assert "monitord: stopped" in done.stderr
    expected = "event loop: uvloop" if loop == "uvloop" else "event loop: asyncio"
    assert expected in done.stderr
