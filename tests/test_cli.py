"""The monitord command as a real process: check-config, test, run and its signals."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "etc" / "monitord" / "monitord.toml"
BAD = Path(__file__).parent / "config" / "bad"


def monitord(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitord", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False)


def test_check_config_ok_prints_one_line_summary() -> None:
    done = monitord("check-config", "-c", str(EXAMPLE))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "OK: 6 checks from 2 files\n"


def test_check_config_reports_three_mistakes_and_fails() -> None:
    done = monitord("check-config", "-c", "three_mistakes.toml", cwd=BAD)
    assert done.returncode == 2
    expected = (BAD / "three_mistakes.expected").read_text().splitlines()
    assert done.stderr.splitlines() == [f"monitord: {line}" for line in expected]
    assert "Traceback" not in done.stderr


def test_missing_config_is_one_clear_line(tmp_path: Path) -> None:
    done = monitord("check-config", "-c", str(tmp_path / "none.toml"))
    assert done.returncode == 2
    assert done.stderr == f"monitord: {tmp_path / 'none.toml'}: no such file\n"


def test_test_command_on_closed_port_says_why_and_exits_critical(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = tmp_path / "c.toml"
        config.write_text(f'[[check]]\nname = "site"\nprobe = "http"\n'
                          f'url = "http://127.0.0.1:{port}/"\nhost_header = "shop.example"\n')
        done = monitord("test", "site", "-c", str(config))
    assert done.returncode == 2
    assert done.stdout.startswith(
        f"site: CRITICAL: cannot connect to http://127.0.0.1:{port}/ (Host: shop.example): "
        "connection refused")


def test_test_command_prints_metrics_and_exit_code() -> None:
    done = monitord("test", "load", "-c", str(EXAMPLE))
    assert done.returncode in (0, 1, 2), done.stderr
    assert done.stdout.startswith("load: ")
    assert "  load5_per_cpu = " in done.stdout


def test_test_command_unknown_check_suggests() -> None:
    done = monitord("test", "lod", "-c", str(EXAMPLE))
    assert done.returncode == 2
    assert done.stderr == 'monitord: no check named "lod"; did you mean "load"?\n'


@contextlib.contextmanager
def daemon(state_dir: Path) -> Iterator[subprocess.Popen[str]]:
    """``monitord run`` on the example config; killed and reaped whatever happens."""
    with subprocess.Popen(
        [sys.executable, "-m", "monitord", "run", "-c", str(EXAMPLE), "--state-dir",
         str(state_dir)], cwd=ROOT, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as proc:
        try:
            yield proc
        finally:
            proc.kill()


def read_until(proc: subprocess.Popen[str], needle: str, limit: int = 200) -> list[str]:
    """Lines of the daemon's log up to the first containing ``needle`` (bounded)."""
    assert proc.stderr is not None
    lines = []
    for _ in range(limit):
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if needle in line:
            return lines
    raise AssertionError(f"{needle!r} not logged; got {lines}")


def wait_for_first_results(proc: subprocess.Popen[str]) -> list[str]:
    """Log lines until each check of the system pack has logged its first result."""
    pending = {"load", "memory", "swap", "disk-space", "disk-inodes", "reboot-required"}
    lines: list[str] = []
    for _ in range(len(pending) + 4):   # a few lines more: e.g. a port another run holds
        line = read_until(proc, ": ")[-1]
        lines.append(line)
        pending.discard(line.split(" ", 3)[-1].split(":", 1)[0])
        if not pending:
            return lines
    raise AssertionError(f"no first result from {pending}; got {lines}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_run_logs_first_results_and_stops_cleanly_on_signal(
    tmp_path: Path, signum: signal.Signals
) -> None:
    with daemon(tmp_path) as proc:
        first = read_until(proc, "watching") + wait_for_first_results(proc)
        proc.send_signal(signum)
        rest = read_until(proc, "monitord: stopped")
        assert proc.wait(timeout=10) == 0
    assert "watching 6 checks from 2 files" in first[0]
    assert "Traceback" not in "\n".join(first + rest)


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    read_until(proc, "monitord: stopped")
    assert proc.wait(timeout=10) == 0


def test_run_restores_state_after_restart(tmp_path: Path) -> None:
    with daemon(tmp_path) as proc:
        assert "state of 0 restored" in read_until(proc, "watching")[-1]
        wait_for_first_results(proc)
        stop(proc)
    with daemon(tmp_path) as proc:
        assert "state of 6 restored" in read_until(proc, "watching")[-1]
        stop(proc)


def test_second_signal_exits_at_once(tmp_path: Path) -> None:
    with socket.socket() as silent:  # the kernel accepts; nobody ever answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        config = tmp_path / "m.toml"
        config.write_text(f"""
[agent]
state_dir = "{tmp_path / 'state'}"
shutdown_timeout = "5m"
[status]
listen = ""
[[check]]
name = "smtp"
probe = "tcp"
port = {silent.getsockname()[1]}
expect_banner = "^220"
every = "10m"
timeout = "9m"
""")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with subprocess.Popen([sys.executable, "-m", "monitord", "run", "-c", str(config)],
                              cwd=ROOT, stderr=subprocess.PIPE, text=True, env=env) as proc:
            try:
                read_until(proc, "watching 1 check ")
                proc.send_signal(signal.SIGTERM)
                read_until(proc, "monitord: stopping")  # waits for the hung probe...
                proc.send_signal(signal.SIGTERM)
                read_until(proc, "second SIGTERM, exiting at once")
                assert proc.wait(timeout=30) == 1
            finally:
                proc.kill()


def test_output_cut_short_by_its_reader_ends_quietly() -> None:
    """`monitord packs | head -1`: the reader goes away; no traceback, a clean exit."""
    with subprocess.Popen([sys.executable, "-m", "monitord", "packs"], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.read(10)
        proc.stdout.close()
        assert proc.wait(timeout=30) == 0
        assert proc.stderr.read() == b""


def test_packs_describe_each_pack_in_whole_sentences() -> None:
    out = monitord("packs").stdout
    heads = [line for line in out.splitlines() if line and not line.startswith((" ", "stock"))]
    assert heads and all(line.endswith((".", "!", "?")) for line in heads), heads
    assert any("copy this file into checks.d/ and change the process and unit names)." in line
               for line in heads)
