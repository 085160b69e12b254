"""``monitord central`` as a real process: tokens made by the CLI, a batch over a real
socket, a clean stop on SIGTERM or SIGINT, and clear errors without tracebacks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from monitord.central import auth
from monitord.central.config import load_central_config
from monitord.store.migrations import schema_files
from monitord.store.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parents[2]
READY_SECONDS = 30.0
POLL_SECONDS = 0.05


def central(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "monitord", "central", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, **(env or {})})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_config(tmp_path: Path, port: int = 8460) -> Path:
    path = tmp_path / "central.toml"
    path.write_text(f'[central]\nlisten = "127.0.0.1:{port}"\n'
                    f'store_url = "sqlite://{tmp_path / "db" / "central.db"}"\n')
    return path


@contextlib.contextmanager
def service(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``monitord central -c config``, its log in ``log``; killed and reaped whatever happens."""
    with log.open("wb") as err, subprocess.Popen(
        [sys.executable, "-m", "monitord", "central", "-c", str(config)], cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=err,
    ) as proc:
        try:
            yield proc
        finally:
            proc.kill()


def request(url: str, body: object = None, token: str | None = None) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data, headers),
                                    timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def wait_healthy(base: str, proc: subprocess.Popen[bytes]) -> None:
    """Poll /healthz until it answers 200: bounded, and failing at once if the process dies."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"monitord central exited with {proc.returncode}"
        with contextlib.suppress(OSError):
            if request(f"{base}/healthz") == (200, {"status": "ok"}):
                return
        time.sleep(POLL_SECONDS)   # between polls, not instead of them
    raise AssertionError(f"no healthy /healthz within {READY_SECONDS:g}s")


async def post_until_told(config: Path, log: Path, base: str, token: str,
                          events: list[dict[str, object]], told: Callable[[], object]) -> None:
    """Start the service, post ``events``, wait (bounded) until ``told()`` is true, then
    stop it with SIGTERM and check that it stopped cleanly."""
    with service(config, log) as proc:
        await asyncio.to_thread(wait_healthy, base, proc)
        answer = await asyncio.to_thread(request, f"{base}/api/v1/events",
                                         {"events": events}, token)
        assert answer == (200, {"applied": len(events), "duplicates": 0})
        deadline = time.monotonic() + READY_SECONDS
        while not told():
            if proc.poll() is not None or time.monotonic() >= deadline:
                raise AssertionError(await asyncio.to_thread(log.read_text))
            await asyncio.sleep(POLL_SECONDS)    # between polls, not instead of them
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_central_serves_a_batch_and_stops_cleanly_on_signal(
    tmp_path: Path, signum: signal.Signals
) -> None:
    port = free_port()
    config = write_config(tmp_path, port)
    made = central("add-agent", "web1", "-c", str(config))
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    base = f"http://127.0.0.1:{port}"
    event = {"id": uuid.uuid4().hex, "kind": "heartbeat", "host": "web1",
             "at": "2026-11-25T17:00:00Z", "interval_seconds": 60}
    log = tmp_path / "central.log"
    with service(config, log) as proc:
        wait_healthy(base, proc)
        assert request(f"{base}/api/v1/events", {"events": [event]}, token) == (
            200, {"applied": 1, "duplicates": 0})
        assert request(f"{base}/api/v1/events", {"events": [event]}, "wrong")[0] == 401
        proc.send_signal(signum)
        assert proc.wait(timeout=30) == 0
    logged = log.read_text()
    assert f"central: listening on {base}/" in logged
    assert "central: stopped" in logged
    assert "Traceback" not in logged and token not in logged


async def owner(config: Path, token: str) -> tuple[str | None, str | None]:
    """(agent host, operator name) the token belongs to, read from the service's store."""
    loaded = load_central_config(config)
    store = await SQLiteStore.open(loaded.sqlite_path, loaded.store_policy)
    try:
        return await auth.agent_for(store, token), await auth.operator_for(store, token)
    finally:
        await store.close()


def test_add_agent_replaces_the_hosts_old_token(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    old = central("add-agent", "web1", "-c", str(config)).stdout.strip()
    new = central("-c", str(config), "add-agent", "web1").stdout.strip()
    assert old != new and len(new) >= 43
    assert asyncio.run(owner(config, old)) == (None, None)
    assert asyncio.run(owner(config, new)) == ("web1", None)


def test_add_operator_reads_the_config_from_the_environment(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    made = central("add-operator", "alice", env={"MONITORD_CENTRAL_CONFIG": str(config)})
    assert made.returncode == 0, made.stderr
    assert asyncio.run(owner(config, made.stdout.strip())) == (None, "alice")


def test_bad_name_is_one_clear_line(tmp_path: Path) -> None:
    done = central("add-agent", "web 1", "-c", str(write_config(tmp_path)))
    assert done.returncode == 2
    assert done.stderr == ("monitord: agent name 'web 1': expected letters, digits, \".\", "
                           "\"_\", \":\" or \"-\", starting with a letter or digit\n")


@pytest.mark.parametrize(("action", "name"), [("add-user", "monitord"),
                                            ("add-operator", "monitord"),
                                            ("add-operator", "MonitorD")])
def test_people_may_not_be_called_monitord(tmp_path: Path, action: str, name: str) -> None:
    done = central(action, name, "-c", str(write_config(tmp_path)))
    assert done.returncode == 2
    kind = action.removeprefix("add-")
    assert done.stderr == (f"monitord: {kind} name {name!r}: reserved for monitord's own "
                           "entries; choose another\n")


def test_bad_config_is_reported_without_traceback(tmp_path: Path) -> None:
    config = tmp_path / "central.toml"
    config.write_text('[central]\nstore_url = "postgresql://db.example/"\n')
    done = central("-c", str(config))
    assert done.returncode == 2
    assert done.stderr.startswith(
        f"monitord: {config}: [central] store_url: expected a database name")
    assert "Traceback" not in done.stderr


def test_port_in_use_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = central("-c", str(write_config(tmp_path, port)))
    assert done.returncode == 2
    assert f"monitord: cannot listen on 127.0.0.1:{port}: " in done.stderr
    assert "Traceback" not in done.stderr


def test_agent_that_hangs_up_mid_request_is_no_error(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, port)
    token = central("add-agent", "web1", "-c", str(config)).stdout.strip()
    log = tmp_path / "central.log"
    with service(config, log) as proc:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(f"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         f"Authorization: Bearer {token}\r\nContent-Length: 5000\r\n\r\n"
                         '{"events": ['.encode())   # then gone, as an agent killed mid-send
        deadline = time.monotonic() + READY_SECONDS
        while "before the request was read" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(POLL_SECONDS)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert "Traceback" not in log.read_text()


def test_bad_listen_override_is_one_clear_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, free_port())
    done = central("--listen", "127.0.0.1", "-c", str(config))
    assert done.returncode == 2
    assert done.stderr == ('monitord: --listen: expected "HOST:PORT" like "127.0.0.1:8460" '
                           'or "[::1]:8460", got "127.0.0.1"\n')


@pytest.mark.parametrize("slashes", ["///", "////"])
def test_migrate_takes_both_spellings_of_an_absolute_sqlite_path(
        tmp_path: Path, slashes: str) -> None:
    config = tmp_path / "central.toml"
    config.write_text(f'[central]\nstore_url = "sqlite:{slashes}{str(tmp_path).lstrip("/")}'
                      '/central.db"\n')
    first = central("migrate", "-c", str(config))
    assert first.returncode == 0, first.stderr
    every = ", ".join(f"schema version {n}" for n, _, _ in schema_files("sqlite"))
    assert first.stdout.endswith(f"applied {every}\n")
    assert (tmp_path / "central.db").is_file()
    again = central("migrate", "-c", str(config))
    assert again.stdout.endswith(": the schema is up to date; nothing to do\n")


def get(url: str, token: str) -> int:
    with contextlib.suppress(urllib.error.HTTPError):
        request_ = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request_, timeout=10) as response:
            return int(response.status)
    return 0


def test_add_scraper_makes_a_token_that_only_reads_metrics(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(tmp_path, port)
    made = central("add-scraper", "prometheus", "-c", str(config))
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert asyncio.run(owner(config, token)) == (None, None)   # no agent's, no person's
    base = f"http://127.0.0.1:{port}"
    event = {"id": uuid.uuid4().hex, "kind": "heartbeat", "host": "web1",
             "at": "2026-11-25T17:00:00Z", "interval_seconds": 60}
    log = tmp_path / "central.log"
    with service(config, log) as proc:
        wait_healthy(base, proc)
        assert get(f"{base}/metrics", token) == 200
        assert request(f"{base}/api/v1/events", {"events": [event]}, token)[0] == 403
        assert request(f"{base}/api/v1/maintenance", {"host": "web1", "reason": "x",
                                                      "until": "2099-01-01T00:00:00Z"},
                       token)[0] == 403
        assert request(f"{base}/api/v1/incidents/1/resolve", {}, token)[0] == 403
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    assert token not in log.read_text()
