"""systemd's notify protocol and reload, on the real daemon with a socket owned by the test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD = """
[agent]
state_dir = "{state}"
[[check]]
name = "load"
probe = "load"
every = "1s"
timeout = "1s"
"""


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(20)
    yield sock
    sock.close()


def messages_until(sock: socket.socket, wanted: str, limit: int = 500) -> list[str]:
    """Datagrams received until one carries ``wanted`` (bounded)."""
    got = []
    for _ in range(limit):
        fields = sock.recv(4096).decode().split("\n")
        got.extend(fields)
        if wanted in fields or any(f.startswith(wanted) for f in fields):
            return got
    raise AssertionError(f"{wanted!r} never sent; got {got}")


def test_ready_status_watchdog_reload_and_stopping(tmp_path: Path,
                                                   notify_socket: socket.socket) -> None:
    config = tmp_path / "monitord.toml"
    config.write_text(GOOD.format(state=tmp_path / "state"))
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "400000"}
    with subprocess.Popen([sys.executable, "-m", "monitord", "run", "-c", str(config)],
                          cwd=ROOT, env=env, stderr=subprocess.DEVNULL) as proc:
        try:
            first = messages_until(notify_socket, "READY=1")
            assert any(f.startswith("STATUS=1 checks, 0 failing, 0 fixing, outbox") for f in first)
            beats = messages_until(notify_socket, "WATCHDOG=1")
            beats += messages_until(notify_socket, "WATCHDOG=1")
            assert beats.count("WATCHDOG=1") >= 2

            proc.send_signal(signal.SIGHUP)  # the same, valid config
            reload = messages_until(notify_socket, "READY=1")
            assert "RELOADING=1" in reload
            assert any(f.startswith("MONOTONIC_USEC=") for f in reload)

            config.write_text("[[check]]\nname = 'x'\nprobe = 'nope'\n")
            proc.send_signal(signal.SIGHUP)
            refused = messages_until(notify_socket, "STATUS=reload refused")
            assert "READY=1" in refused
            assert proc.poll() is None  # the old config goes on

            proc.send_signal(signal.SIGTERM)
            assert "STOPPING=1" in messages_until(notify_socket, "STOPPING=1")
            assert proc.wait(timeout=30) == 0
        finally:
            proc.kill()


def test_nothing_is_sent_outside_systemd(tmp_path: Path) -> None:
    from monitord.agent.systemd import Notifier

    environ = {"WATCHDOG_USEC": "1000000"}
    notifier = Notifier(environ)
    assert not notifier.enabled
    notifier.ready("x")  # no socket: a no-op, not an error
    assert environ == {}


def test_children_never_inherit_the_notify_variables(tmp_path: Path) -> None:
    from monitord.agent.systemd import Notifier

    environ = {"NOTIFY_SOCKET": str(tmp_path / "n"), "WATCHDOG_USEC": "1000000",
               "WATCHDOG_PID": str(os.getpid()), "PATH": "/bin"}
    notifier = Notifier(environ)
    assert environ == {"PATH": "/bin"}
    assert notifier.watchdog_seconds == 0.5


BLOCK_SECONDS = 1.0


async def test_watchdog_pings_stop_while_the_event_loop_is_blocked(
    tmp_path: Path, notify_socket: socket.socket
) -> None:
    import asyncio
    import threading
    import time

    from monitord.agent.daemon import Agent
    from monitord.agent.systemd import Notifier
    from monitord.config import load_config

    config = tmp_path / "monitord.toml"
    config.write_text(GOOD.format(state=tmp_path / "state") + '[status]\nlisten = ""\n')
    notifier = Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "100000"})
    pings: list[float] = []
    done = threading.Event()
    arrived = threading.Condition()

    def wait_for_pings(count: int) -> None:
        with arrived:
            assert arrived.wait_for(lambda: len(pings) >= count, timeout=10), pings

    def receive() -> None:  # another thread: it sees what the blocked loop does not send
        notify_socket.settimeout(0.2)
        while not done.is_set():
            try:
                if b"WATCHDOG=1" in notify_socket.recv(4096):
                    with arrived:
                        pings.append(time.monotonic())
                        arrived.notify_all()
            except TimeoutError:
                continue

    receiver = threading.Thread(target=receive)
    receiver.start()
    agent = Agent(load_config(config), notifier=notifier)
    await agent.start()
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        await asyncio.to_thread(wait_for_pings, 3)
        blocked_at = time.monotonic()
        time.sleep(BLOCK_SECONDS)  # noqa: ASYNC251  the whole event loop stalls, on purpose
        unblocked_at = time.monotonic()
        await asyncio.to_thread(wait_for_pings, len(pings) + 2)
    finally:
        stop.set()
        await task
        done.set()
        receiver.join()
    during = [t for t in pings if blocked_at + 0.1 < t < unblocked_at]
    assert during == []  # no ping while stalled: systemd would restart the daemon
    assert any(t > unblocked_at for t in pings)  # and they come back once it runs
