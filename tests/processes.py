"""Real monitord processes for end-to-end tests: the central service and agents, each with
its own directory under tmp_path, listening on a free port of 127.0.0.1 only.

Every process is started through one ``Processes`` registry, whose ``close`` (run by the
tests' fixture, whatever happened) kills and reaps what is still running. Readiness is
always a real condition polled in a bounded loop (``wait_for``), never a fixed sleep.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from tests.nginx import free_port

ROOT = Path(__file__).resolve().parent.parent
POLL_SECONDS = 0.05
WAIT_SECONDS = 30.0
EXIT_SECONDS = 30.0
HOST = "web1"
OPERATOR = "alice"

T = TypeVar("T")
Json = dict[str, Any]
_LOGS: weakref.WeakKeyDictionary[subprocess.Popen[bytes], Path] = weakref.WeakKeyDictionary()


Alive = tuple[subprocess.Popen[bytes] | None, ...]


def wait_for(condition: Callable[[], T | None], what: str, limit: float = WAIT_SECONDS,
             alive: Alive = ()) -> T:
    """The first truthy value of ``condition()``, polled for at most ``limit`` seconds;
    fails at once if one of the ``alive`` processes has exited."""
    deadline = time.monotonic() + limit
    while True:
        value = condition()
        if value:
            return value
        for proc in filter(None, alive):
            assert proc.poll() is None, f"{proc.args!r} exited with {proc.returncode}{_tail(proc)}"
        if time.monotonic() > deadline:
            logs = "".join(_tail(proc) for proc in filter(None, alive))
            raise AssertionError(f"gave up after {limit:g}s waiting for {what}{logs}")
        time.sleep(POLL_SECONDS)   # between polls, not instead of them


def _tail(proc: subprocess.Popen[bytes], lines: int = 20) -> str:
    """The end of the process's log, for a failure message."""
    log = _LOGS.get(proc)
    if log is None or not log.exists():
        return ""
    end = log.read_text(errors="replace").splitlines()[-lines:]
    return f"\n{log} ends:\n" + "\n".join(end)


class Processes:
    """Every process a test started; ``close`` kills and reaps those still running."""

    def __init__(self) -> None:
        self._started: list[subprocess.Popen[bytes]] = []

    def start(self, args: list[str], log: Path) -> subprocess.Popen[bytes]:
        """``python -m monitord ARGS``, its output appended to ``log``."""
        with log.open("ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "monitord", *args], cwd=ROOT,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self._started.append(proc)
        _LOGS[proc] = log
        return proc

    def close(self) -> None:
        for proc in self._started:
            if proc.poll() is None:
                proc.kill()    # SIGKILL ends a stopped (SIGSTOP) process too
            proc.wait(timeout=EXIT_SECONDS)


@contextlib.contextmanager
def processes() -> Iterator[Processes]:
    running = Processes()
    try:
        yield running
    finally:
        running.close()


def monitord(*args: str) -> str:
    """Run ``monitord ARGS`` to its end; its standard output (it must succeed)."""
    done = subprocess.run([sys.executable, "-m", "monitord", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, and a clean exit within a bounded time."""
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=EXIT_SECONDS)
    assert code == 0, f"{proc.args!r} exited with {code}{_tail(proc)}"


def kill(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait(timeout=EXIT_SECONDS)


def read_rows(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of a query on an SQLite file another process may be writing (WAL: no waiting)."""
    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(path, timeout=10)) as db:
        try:
            return db.execute(sql, params).fetchall()
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):   # the process has not made its schema yet
                return []
            raise


class Central:
    """``monitord central`` with its config, store and log under ``directory``."""

    def __init__(self, running: Processes, directory: Path, central: str = "",
                 policy: str = "", store_url: str = "") -> None:
        self.running = running
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = directory / "central.db"
        self.log = directory / "central.log"
        self.config = directory / "central.toml"
        self.config.write_text(f'[central]\nlisten = "127.0.0.1:{self.port}"\n'
                               f'store_url = "{store_url or f"sqlite://{self.db}"}"\n'
                               f"{central}\n"
                               f"[policy]\n{policy}\n")
        self.operator_token = monitord("central", "add-operator", OPERATOR, "-c",
                                       str(self.config)).strip()
        self.proc: subprocess.Popen[bytes] | None = None

    def add_agent(self, host: str) -> str:
        return monitord("central", "add-agent", host, "-c", str(self.config)).strip()

    def start(self) -> None:
        self.proc = self.running.start(["central", "-c", str(self.config)], self.log)
        wait_for(self._healthy, f"{self.url}/healthz to answer", alive=(self.proc,))

    def stop(self) -> None:
        assert self.proc is not None
        stop(self.proc)
        self.proc = None

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=5) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.HTTPError):
            return False

    def get(self, path: str, **query: str) -> Json:
        """GET an operator's API path; the JSON answer (it must be a 200)."""
        url = f"{self.url}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        request = urllib.request.Request(
            url, headers={"Authorization": f"Bearer {self.operator_token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
            answer: Json = json.load(response)
            return answer

    def incidents(self, status: str = "open,acknowledged,resolved", **query: str) -> list[Json]:
        found: list[Json] = self.get("/api/v1/incidents", status=status, **query)["incidents"]
        return found

    def incident(self, incident_id: int) -> Json:
        found: Json = self.get(f"/api/v1/incidents/{incident_id}")["incident"]
        return found

    def applied(self, kind: str = "problem") -> list[str]:
        """Ids of the events of ``kind`` the store applied, read from its file."""
        rows = read_rows(self.db, "SELECT id FROM event WHERE kind = ?", (kind,))
        return [row[0] for row in rows]


class Agent:
    """``monitord run`` for ``host``, delivering to ``central``; state and log in ``directory``.

    ``settings`` is TOML added to the config (sections and ``[[check]]`` tables).
    """

    def __init__(self, running: Processes, directory: Path, central: Central, settings: str,
                 host: str = HOST, batch: int = 100, min_free_bytes: int = 0,
                 state_dir: Path | None = None) -> None:
        self.running = running
        directory.mkdir(parents=True, exist_ok=True)
        self.state_dir = state_dir or directory / "state"
        self.outbox = self.state_dir / "state.db"     # the outbox is in the state file
        self.log = directory / "agent.log"
        token = directory / "token"
        token.write_text(central.add_agent(host) + "\n")
        token.chmod(0o600)
        self.config = directory / "monitord.toml"
        self.config.write_text(
            f'[agent]\nhost = "{host}"\nstart_rate = 1000.0\n'
            f'[store]\nurl = "{central.url}"\ntoken_file = "{token}"\n'
            f"[outbox]\nmin_free_bytes = {min_free_bytes}\nbatch = {batch}\n{settings}\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> subprocess.Popen[bytes]:
        self.proc = self.running.start(["run", "-c", str(self.config), "--state-dir",
                                        str(self.state_dir)], self.log)
        return self.proc

    def stop(self) -> None:
        assert self.proc is not None
        stop(self.proc)
        self.proc = None

    def kill(self) -> None:
        assert self.proc is not None
        kill(self.proc)
        self.proc = None

    def waiting(self, kind: str = "problem") -> list[str]:
        """Ids of the events of ``kind`` still in the outbox."""
        rows = read_rows(self.outbox, "SELECT body FROM outbox WHERE kind = ?", (kind,))
        return [json.loads(body)["id"] for (body,) in rows]

    def logged(self) -> str:
        return self.log.read_text(errors="replace")


class LocalAgent:
    """``monitord run`` on a config of its own (``write(status_port)`` makes it), keeping its
    incidents in its embedded store; state and log in ``directory``."""

    def __init__(self, running: Processes, directory: Path,
                 write: Callable[[int], Path]) -> None:
        self.port = free_port()
        self.state = directory / "state"
        self.config = write(self.port)
        self.log = directory / "agent.log"
        self.proc = running.start(["run", "-c", str(self.config), "--state-dir",
                                   str(self.state)], self.log)

    def checks(self) -> dict[str, dict[str, Any]]:
        """Its checks by name, from /status; {} while it does not answer."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/status",
                                        timeout=5) as answer:
                return {c["name"]: c for c in json.load(answer)["checks"]}
        except OSError:
            return {}

    def logged(self) -> str:
        return self.log.read_text(errors="replace")
