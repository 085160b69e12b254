"""A full state disk loses no problem and fakes no server-down: a real agent whose state
directory is a small tmpfs, filled to the last byte, delivering to a real central service.

While the disk is full the problems wait in memory and go to the central service
straight away; the heartbeat never needs the disk, so the host is never "down"; when the
central service is away too, they arrive once it is back and space has returned.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import small_tmpfs
from tests.nginx import free_port
from tests.processes import HOST, Agent, Central, Processes, processes, wait_for

CHECKS = 5
TMPFS_SIZE = "4m"


@pytest.fixture
def running() -> Iterator[Processes]:
    with processes() as started:
        yield started


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with small_tmpfs(tmp_path / "state", TMPFS_SIZE) as where:
        yield where


def fill(disk: Path) -> Path:
    """Fill ``disk`` to its last byte; the filler, to remove to free the space."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as f:   # unbuffered: no flush to fail at close
        for chunk in (65536, 512, 1):
            try:
                while True:
                    f.write(b"\0" * chunk)
            except OSError:
                pass
    return filler


def checks_on(port: int) -> str:
    return "".join(f'''
[[check]]
name = "svc{i}"
probe = "tcp"
port = {port}
every = "1s"
timeout = "1s"
fail_after = 1
priority = "P2"
''' for i in range(CHECKS))


def problem_keys(central: Central) -> set[str]:
    return {i["key"] for i in central.incidents() if i["key"].startswith(f"{HOST}/svc")}


def server_down(central: Central) -> list[object]:
    return [i for i in central.incidents() if i["key"] == f"{HOST}/server-down"]


@pytest.mark.timeout(180)
def test_problems_on_a_full_disk_arrive_and_the_host_is_never_down(
        running: Processes, tmp_path: Path, small_disk: Path) -> None:
    central = Central(running, tmp_path / "central", central='sweep_every = "200ms"',
                      policy='missed_heartbeats = 2\nmin_silence = "3s"')
    central.start()
    listener = socket.create_server(("127.0.0.1", free_port()))
    port = listener.getsockname()[1]
    agent = Agent(running, tmp_path / "agent", central,
                  '[heartbeat]\nevery = "500ms"\n' + checks_on(port),
                  min_free_bytes=100 * 2**20, state_dir=small_disk)   # always below floor
    proc = agent.start()
    wait_for(lambda: agent.logged().count(": OK: TCP") >= CHECKS, "every check OK",
             alive=(proc,))
    filler = fill(small_disk)
    listener.close()                                # every check fails on a full disk
    wait_for(lambda: problem_keys(central) == {f"{HOST}/svc{i}" for i in range(CHECKS)},
             "every problem at the central service", alive=(proc, central.proc))
    assert "events wait in memory" in agent.logged()

    central.stop()                                  # a second wave, nobody to take it
    listener = socket.create_server(("127.0.0.1", port))
    wait_for(lambda: agent.logged().count("OK (recovered)") >= CHECKS, "the recoveries",
             alive=(proc,))
    filler.unlink()                                 # space returns
    central.start()
    wait_for(lambda: not problem_keys(central) - {
        i["key"] for i in central.incidents(status="resolved")}, "every recovery applied",
        limit=120, alive=(proc, central.proc))
    assert server_down(central) == []
    agent.stop()
    listener.close()
    assert "Traceback" not in agent.logged() + central.log.read_text()
