"""Heal latency benchmark: a web server killed, broken or hung, monitord beside Monit.

One private nginx serves 20 name-based sites (``siteN.example``) on 127.0.0.1. Each round
starts one tool on it, waits until every check is OK, breaks nginx at a chosen moment of
the tool's cycle, and measures how long the tool took to notice and how long until the
sites answered 200 again, then stops the tool and counts what it filed and which fixes it
ran. The tools take turns, round after round, in the same run:

* monitord: the real daemon (``python -m monitord run``) on a fresh state dir, with an
  nginx process check and 20 site checks shaped like the stock nginx pack (every 10 s,
  timeout 5 s, ``fail_after = 2``, P1, sites ``depends_on`` nginx, each with a fix of its
  own that starts nginx) and ``[defaults] retry_every`` set per run.
* Monit 5.33 (``monit -I``, ``set daemon 10``): ``check process nginx`` with start and
  stop programs, and 20 ``check host`` that alert and depend on nginx.

Scenarios: ``kill`` (SIGKILL to nginx's master and workers), ``broken`` (nginx's config
made invalid, then SIGKILL: nothing can bring it back), ``hung`` (the sites proxy to an
upstream nginx that is frozen with SIGSTOP; both tools check and restart the upstream).

Run: ``.venv/bin/python benchmarks/heal_latency.py --retry 2s`` (about 23 minutes; see
benchmarks/README.md for the options). This is a measurement, not a test: it prints a
table and asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import platform
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from http_sweep import stop

from monitord.durations import format_duration, parse_duration

NGINX = "/usr/sbin/nginx"
MONIT = "/usr/bin/monit"
ADDRESS = "127.0.0.1"
HOST = "web1"
SITES = 20
CYCLE_SECONDS = 10            # monitord's every = "10s", Monit's set daemon 10
TIMEOUT_SECONDS = 5           # every check's timeout: the stock pack's, and Monit's default
PROXY_TIMEOUT_SECONDS = 4     # nginx answers 504 for a hung upstream before a check times out
SETTLE = "5s"                 # the stock pack's first rung waits this long, then re-probes
POLL_SECONDS = 0.025          # the benchmark asks site0 for / and reads the logs this often
HTTP_POLL_SECONDS = 0.25      # ... each request given up after this (a hung upstream)
READY_SECONDS = 40.0          # bounds on every wait: the script always ends
RECOVERY_SECONDS = 60.0
SETTLED_SECONDS = 60.0
BROKEN_WATCH_SECONDS = 30.0   # how long a broken nginx is watched (3 cycles)
STOP_SECONDS = 15.0
SERVICE_AGE_SECONDS = 35.0    # the hung upstream has run this long at the break (see old_enough)
SWEEP_GAP_SECONDS = 2.0       # requests of one tool closer than this are one sweep
BENCH_AGENT = "heal-bench"
PR_SET_CHILD_SUBREAPER = 36   # prctl(2)
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
SCENARIOS = {
    "kill": "nginx SIGKILL",
    "broken": "broken config + SIGKILL",
    "hung": "hung upstream (SIGSTOP)",
}
PARENT = {"kill": "nginx-process", "broken": "nginx-process", "hung": "upstream"}


# ------------------------------------------------------------------------------- nginx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((ADDRESS, 0))
        return int(sock.getsockname()[1])


def site_name(index: int) -> str:
    return f"site{index}"


def site_servers(port: int, upstream_port: int | None) -> str:
    where = (f"proxy_pass http://{ADDRESS}:{upstream_port};" if upstream_port
             else 'return 200 "$host\\n";')
    return "\n".join(
        f"  server {{ listen {ADDRESS}:{port}; server_name {site_name(i)}.example; "
        f"location / {{ {where} }} }}" for i in range(SITES))


def nginx_conf(prefix: Path, port: int, servers: str, access_log: bool, broken: bool) -> str:
    temp = "\n".join(f"  {kind}_temp_path {prefix / 'tmp' / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    log = (f"log_format heal '$msec|$http_user_agent|$host|$status';\n"
           f"  access_log {prefix / 'access.log'} heal;") if access_log else "access_log off;"
    timeouts = " ".join(f"proxy_{kind}_timeout {PROXY_TIMEOUT_SECONDS}s;"
                        for kind in ("connect", "send", "read"))
    return f"""worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"};
events {{ worker_connections 1024; }}
http {{
  {log}
{temp}
  {timeouts}
  server {{ listen {ADDRESS}:{port} default_server; return 200 "default\\n"; }}
{servers}
{"  this_is_not_a_directive on;" if broken else ""}
}}
"""


class Nginx:
    """A private nginx: own prefix, config, pidfile and logs, on 127.0.0.1:``port``.

    It runs as nginx does on a server, as a daemon (the start command returns once the
    master has forked), so whatever starts it, the master is re-parented to this script,
    which reaps it like an init would (see ``Reaper``).
    """

    def __init__(self, prefix: Path, access_log: bool) -> None:
        (prefix / "tmp").mkdir(parents=True)
        self.prefix = prefix
        self.port = free_port()
        self.conf = prefix / "nginx.conf"
        self.pidfile = prefix / "nginx.pid"
        self.access_log = prefix / "access.log"
        self.servers = ""
        self._logged = access_log

    def write(self, broken: bool = False) -> None:
        self.conf.write_text(nginx_conf(self.prefix, self.port, self.servers, self._logged,
                                        broken))

    @property
    def argv(self) -> list[str]:
        return [NGINX, "-p", str(self.prefix), "-c", str(self.conf), "-e",
                str(self.prefix / "error.log")]

    @property
    def kill_argv(self) -> list[str]:
        """A stop command that works on a frozen nginx: SIGKILL to its process group (the
        master is its session and group leader; SIGTERM would wait for a SIGCONT)."""
        return ["/bin/sh", "-c", f"kill -KILL -$(cat {self.pidfile})"]

    def master(self) -> int | None:
        """The master's pid, if it runs (a zombie does not)."""
        try:
            pid = int(self.pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return pid if process_state(pid) not in ("", "Z", "X") else None

    def processes(self) -> list[int]:
        """The master and its workers."""
        pid = self.master()
        if pid is None:
            return []
        children: list[int] = []
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                children += map(int, (task / "children").read_text().split())
        return [pid, *children]

    def age_seconds(self) -> float:
        """How long the master has run (0 if it does not)."""
        pid = self.master()
        if pid is None:
            return 0.0
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - ticks / os.sysconf("SC_CLK_TCK")

    def start(self) -> None:
        subprocess.run(self.argv, check=True, capture_output=True, timeout=30,
                       stdin=subprocess.DEVNULL)

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the master and its workers (its process group)."""
        pid = self.master()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signum)


def process_state(pid: int) -> str:
    """The state letter of ``pid`` (R, S, T, Z...), "" if there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def http_ok(port: int, host: str, timeout: float) -> bool:
    """Whether GET / for ``host`` answers 200 within ``timeout``."""
    request = (f"GET / HTTP/1.0\r\nHost: {host}\r\nUser-Agent: {BENCH_AGENT}\r\n\r\n").encode()
    try:
        with socket.create_connection((ADDRESS, port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(request)
            return sock.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


# ------------------------------------------------------------------------ the watcher


class Reaper:
    """Makes this script the reaper of orphans below it (prctl PR_SET_CHILD_SUBREAPER).

    nginx daemonizes, so its master is an orphan whoever started it. On a server, init
    reaps it the moment it dies; here PID 1 may never do so, and a killed master would
    stay a zombie (Monit calls that a failure of its own, a zombie, and waits for it to go
    before restarting). ``reap`` collects every exited child that is not one of ``own``.
    """

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")
        self.own: set[int] = set()

    def reap(self) -> None:
        for task in Path(f"/proc/{os.getpid()}/task").iterdir():
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for pid in map(int, children):
                if pid not in self.own:
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(pid, os.WNOHANG)


class Poller:
    """Asks site0 for / every ``POLL_SECONDS`` in a thread while armed, and notes when it
    first answered 200 in a request started after the moment it was armed with."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._lock = threading.Lock()
        self._since: float | None = None
        self._served: float | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="poller", daemon=True)
        self._thread.start()

    def arm(self, since: float | None) -> None:
        with self._lock:
            self._since, self._served = since, None

    def served(self) -> float | None:
        with self._lock:
            return self._served

    def _run(self) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            with self._lock:
                since = self._since
            if since is not None and self._served is None:
                ok = http_ok(self._port, f"{site_name(0)}.example", HTTP_POLL_SECONDS)
                with self._lock:
                    if ok and self._since == since and started >= since:
                        self._served = time.monotonic()
            self._stopping.wait(max(POLL_SECONDS - (time.monotonic() - started), 0.001))

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(5)


class Tail:
    """A log file's new lines, each with the moment (monotonic) it was first seen."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: list[tuple[float, str]] = []
        self._offset = 0
        self._partial = ""

    def read(self) -> list[str]:
        try:
            with self.path.open("r", errors="replace") as f:
                f.seek(self._offset)
                text = f.read()
                self._offset = f.tell()
        except FileNotFoundError:
            return []
        *complete, self._partial = (self._partial + text).split("\n")
        now = time.monotonic()
        self.lines += [(now, line) for line in complete]
        return complete

    def first(self, pattern: re.Pattern[str], after: float) -> float | None:
        return next((at for at, line in self.lines if at >= after and pattern.search(line)),
                    None)

    def count(self, pattern: re.Pattern[str], after: float) -> int:
        return sum(1 for at, line in self.lines if at >= after and pattern.search(line))


@dataclass(frozen=True)
class Request:
    at: float        # wall clock, nginx's $msec
    agent: str
    host: str
    status: int


def parse_request(line: str) -> Request | None:
    try:
        at, agent, host, status = line.rsplit("|", 3)
        return Request(float(at), agent, host, int(status))
    except ValueError:
        return None


def sweeps(requests: list[Request], agent: str, after: float) -> list[float]:
    """Wall times at which the sweeps of ``agent`` after ``after`` began, counting only
    those in which every site answered 200. A sweep ends where a site comes round again or
    the requests pause for ``SWEEP_GAP_SECONDS``."""
    groups: list[list[Request]] = []
    for request in requests:
        if not request.agent.startswith(agent) or request.at < after:
            continue
        if groups and request.at - groups[-1][-1].at < SWEEP_GAP_SECONDS and \
                request.host not in {r.host for r in groups[-1]}:
            groups[-1].append(request)
        else:
            groups.append([request])
    return [g[0].at for g in groups if len({r.host for r in g if r.status == 200}) == SITES]


# ------------------------------------------------------------------------------- tools


@dataclass
class Tally:
    """What a tool did in one round, read after it stopped."""

    filed: int = 0             # monitord: incidents in its store; Monit: error events logged
    attached: int = 0          # monitord: checks attached to those incidents
    parent_fixes: int = 0      # fixes or restarts of the broken service
    child_fixes: int = 0       # fixes run by the site checks
    paged: float | None = None  # monotonic time of the first escalation or alert


class Tool(Protocol):
    label: str
    agent: str
    log: Tail

    def start(self) -> None: ...
    def ready(self) -> bool: ...
    def settled(self) -> bool: ...
    def stop(self) -> int | None: ...
    def tally(self, since: float) -> Tally: ...


class Bench:
    """The servers, the watchers and the clock of one run."""

    def __init__(self, directory: Path, reaper: Reaper) -> None:
        self.reaper = reaper
        self.upstream = Nginx(directory / "upstream", access_log=False)
        self.nginx = Nginx(directory / "nginx", access_log=True)
        self.access = Tail(self.nginx.access_log)
        self.requests: list[Request] = []
        self.poller = Poller(self.nginx.port)
        self.wall_offset = time.time() - time.monotonic()

    def healthy(self, scenario: str) -> None:
        """Serve the sites as ``scenario`` wants them (directly, or through the upstream
        for ``hung``), each server on a good config and answering."""
        servers = [self.upstream, self.nginx] if scenario == "hung" else [self.nginx]
        upstream = self.upstream.port if scenario == "hung" else None
        wanted = site_servers(self.nginx.port, upstream)
        if wanted != self.nginx.servers:
            self.nginx.servers = wanted
            self.restart(self.nginx)
        for server in servers:
            server.write()
            if server.master() is not None and not http_ok(server.port, "site0.example", 1):
                self.restart(server)      # frozen, or up on a broken config
            if server.master() is None:
                server.start()
        self.wait(lambda: all(http_ok(s.port, "site0.example", 1) for s in servers),
                  READY_SECONDS, "nginx answering")

    def restart(self, server: Nginx) -> None:
        server.signal(signal.SIGKILL)
        self.wait(lambda: server.master() is None, 10, f"{server.prefix.name} to stop")
        server.write()
        server.start()

    def close(self) -> None:
        self.poller.close()
        for server in (self.nginx, self.upstream):
            server.signal(signal.SIGKILL)
        with contextlib.suppress(TimeoutError):
            self.wait(lambda: self.nginx.master() is None and self.upstream.master() is None,
                      10, "nginx to stop")

    def tick(self, tools: tuple[Tool, ...] = ()) -> None:
        """One poll: reap orphans, read new log lines."""
        self.reaper.reap()
        self.requests += filter(None, map(parse_request, self.access.read()))
        for tool in tools:
            tool.log.read()

    def wait(self, condition: Callable[[], object], limit: float, what: str,
             tools: tuple[Tool, ...] = ()) -> None:
        if not self.watch(time.monotonic() + limit, tools, condition):
            raise TimeoutError(f"gave up after {limit:g} s waiting for {what}")

    def watch(self, until: float, tools: tuple[Tool, ...], done: Callable[[], object]) -> bool:
        """Poll until ``done()`` or the monotonic time ``until``; whether it was done."""
        while True:
            self.tick(tools)
            if done():
                return True
            if time.monotonic() >= until:
                return False
            time.sleep(min(POLL_SECONDS, max(until - time.monotonic(), 0)))

    def wall(self, monotonic: float) -> float:
        return monotonic + self.wall_offset

    def monotonic(self, wall: float) -> float:
        return wall - self.wall_offset


class Monitord:
    """The real daemon: ``python -m monitord run`` on a config of its own."""

    agent = "monitord/"   # the http probe's User-Agent, "monitord/VERSION"

    def __init__(self, bench: Bench, directory: Path, scenario: str, retry: str,
                 spread: bool) -> None:
        directory.mkdir(parents=True)
        self.label = f"monitord (retry_every {retry}{', spread' if spread else ''})"
        self.bench = bench
        self.scenario = scenario
        self.state = directory / "state"
        self.status_port = free_port()
        self.config = directory / "monitord.toml"
        self.config.write_text(monitord_config(bench, scenario, retry, self.status_port,
                                               spread))
        self.log = Tail(directory / "monitord.log")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [sys.executable, "-m", "monitord", "run", "-c", str(self.config),
                "--state-dir", str(self.state)]
        with self.log.path.open("ab") as out:
            self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                            stderr=out, start_new_session=True,
                                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.bench.reaper.own.add(self.process.pid)

    def checks(self) -> list[dict[str, object]]:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"monitord exited; see {self.log.path}")
        url = f"http://{ADDRESS}:{self.status_port}/status"
        try:
            with NO_PROXY.open(url, timeout=2) as answer:
                checks: list[dict[str, object]] = json.load(answer)["checks"]
                return checks
        except OSError:
            return []

    def ready(self) -> bool:
        checks = self.checks()
        return len(checks) == expected_checks(self.scenario) and \
            all(c["phase"] == "ok" for c in checks)

    def settled(self) -> bool:
        """Every check's last result OK (a hard failure may still count its recoveries)
        and no ladder running."""
        checks = self.checks()
        return len(checks) == expected_checks(self.scenario) and \
            all(c["status"] == "OK" and not c["fixing"] for c in checks)

    def stop(self) -> int | None:
        return stop_process(self.process)

    def tally(self, since: float) -> Tally:
        parent = PARENT[self.scenario]
        incidents, fix_runs = store_rows(self.state / "incidents.db")
        runs = {check: sum(r[3] for r in fix_runs if r[1] == check)
                for check in {r[1] for r in fix_runs}}
        ladders = self.log.count(re.compile(r" site\d+: running its fix ladder"), since)
        return Tally(
            filed=len(incidents),
            attached=sum(len(i) for i in incidents),
            parent_fixes=runs.get(parent, 0),
            child_fixes=max(sum(n for c, n in runs.items() if c != parent), ladders),
            paged=self.log.first(re.compile(r": escalating P\d problem"), since),
        )


def expected_checks(scenario: str) -> int:
    return SITES + (2 if scenario == "hung" else 1)


def toml_list(argv: list[str]) -> str:
    return json.dumps(argv)


def monitord_config(bench: Bench, scenario: str, retry: str, status_port: int,
                    spread: bool) -> str:
    """Shaped like the stock nginx pack (every 10 s here, as Monit's cycle), by pidfile
    since other nginx instances may run on the machine."""
    nginx = bench.nginx
    parents = ["nginx-process"]
    checks = [own_service("nginx-process", "process", f'pidfile = "{nginx.pidfile}"',
                          nginx.argv, [], "start")]
    if scenario == "hung":
        upstream = bench.upstream
        checks.append(own_service("upstream", "http",
                                  f'url = "http://{ADDRESS}:{upstream.port}/"',
                                  upstream.argv, upstream.kill_argv, "restart"))
        parents.append("upstream")
    for i in range(SITES):
        checks.append(f"""
[[check]]
name = "{site_name(i)}"
probe = "http"
url = "http://{ADDRESS}:{nginx.port}/"
host_header = "{site_name(i)}.example"
every = "{CYCLE_SECONDS}s"
timeout = "{TIMEOUT_SECONDS}s"
fail_after = 2
priority = "P1"
depends_on = {toml_list(parents)}
start = {toml_list(nginx.argv)}
heal = [{{ run = "start", settle = "{SETTLE}" }}]
""")
    # Spread: first runs one per every/checks seconds, so the checks are evenly spaced
    # over the cycle instead of one burst at the default 50 a second.
    rate = f"start_rate = {expected_checks(scenario) / CYCLE_SECONDS}\n" if spread else ""
    return f"""[agent]
host = "{HOST}"
{rate}
[healer]
grace = "0s"

[status]
listen = "{ADDRESS}:{status_port}"

[defaults]
retry_every = "{retry}"
{"".join(checks)}"""


def own_service(name: str, probe: str, what: str, start: list[str], stop: list[str],
                fix: str) -> str:
    stop_line = f"stop = {toml_list(stop)}\n" if stop else ""
    return f"""
[[check]]
name = "{name}"
probe = "{probe}"
{what}
every = "{CYCLE_SECONDS}s"
timeout = "{TIMEOUT_SECONDS}s"
fail_after = 2
priority = "P1"
start = {toml_list(start)}
{stop_line}heal = [{{ run = "{fix}", settle = "{SETTLE}" }}]
"""


def store_rows(path: Path) -> tuple[list[tuple[str, ...]], list[tuple[str, str, str, int, int]]]:
    """The keys attached to each incident in the embedded store, and its fix runs."""
    from monitord.store.policy import Policy
    from monitord.store.sqlite import SQLiteStore

    async def read() -> tuple[list[tuple[str, ...]], list[tuple[str, str, str, int, int]]]:
        store = await SQLiteStore.open(path, Policy())
        try:
            found = await store.incidents(status=("open", "acknowledged", "resolved"))
            attached = [(await store.incident(i.id)).attached for i in found]
            return attached, await store.fix_runs()
        finally:
            await store.close()

    if not path.exists():
        return [], []
    return asyncio.run(read())


class Monit:
    """Monit 5.33 in the foreground (``monit -I``) on a control file of its own."""

    agent = "Monit/"

    def __init__(self, bench: Bench, directory: Path, scenario: str) -> None:
        directory.mkdir(parents=True)
        self.label = "Monit 5.33"
        self.bench = bench
        self.rc = directory / "monitrc"
        self.rc.write_text(monitrc(bench, scenario, directory))
        self.rc.chmod(0o600)
        self.log = Tail(directory / "monit.log")
        self.parent = "upstream" if scenario == "hung" else "nginx"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        subprocess.run([MONIT, "-t", "-c", str(self.rc)], check=True, capture_output=True,
                       timeout=30, stdin=subprocess.DEVNULL)
        self.process = subprocess.Popen([MONIT, "-I", "-c", str(self.rc)],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        self.bench.reaper.own.add(self.process.pid)

    def ready(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"monit exited; see {self.log.path}")
        return True     # its sweep of 200s in the access log says the rest

    def settled(self) -> bool:
        return True

    def stop(self) -> int | None:
        return stop_process(self.process)

    def tally(self, since: float) -> Tally:
        errors = re.compile(r"\] error\s+:")
        return Tally(
            filed=self.log.count(errors, since),
            parent_fixes=self.log.count(re.compile(rf"'{self.parent}' (re)?start: "), since),
            paged=self.log.first(errors, since),
        )


def monitrc(bench: Bench, scenario: str, directory: Path) -> str:
    """Control file as an admin writes it: restart what can be restarted, alert on the
    sites (a host check has nothing to restart) and tie them to what they depend on."""
    nginx = bench.nginx
    quoted = " ".join(nginx.argv)
    lines = [
        f"set daemon {CYCLE_SECONDS}",
        f"set logfile {directory / 'monit.log'}",
        f"set pidfile {directory / 'monit.pid'}",
        f"set idfile {directory / 'monit.id'}",
        f"set statefile {directory / 'monit.state'}",
        f"check process nginx with pidfile {nginx.pidfile}",
        f'  start program = "{quoted}"',
        f'  stop program = "{quoted} -s stop"',
    ]
    parents = "nginx"
    if scenario == "hung":
        up = bench.upstream
        kill = f"/bin/sh -c 'kill -KILL -$(cat {up.pidfile})'"
        lines += [
            f"check process upstream with pidfile {up.pidfile}",
            f'  start program = "{" ".join(up.argv)}"',
            f'  stop program = "{kill}"',
            f"  if failed port {up.port} protocol http with timeout {TIMEOUT_SECONDS} seconds",
            "     then restart",
        ]
        parents = "nginx, upstream"
    for i in range(SITES):
        lines += [
            f"check host {site_name(i)} with address {ADDRESS}",
            f'  if failed port {nginx.port} protocol http request "/"',
            f"     with http headers [Host: {site_name(i)}.example]",
            f"     with timeout {TIMEOUT_SECONDS} seconds then alert",
            f"  depends on {parents}",
        ]
    return "\n".join(lines) + "\n"


def stop_process(process: subprocess.Popen[bytes] | None) -> int | None:
    """SIGTERM, a bounded wait, then SIGKILL to its group; its exit code."""
    return None if process is None else stop(process, STOP_SECONDS)


# ------------------------------------------------------------------------------ rounds


@dataclass
class Round:
    scenario: str
    tool: str
    phase: float               # seconds after the start of the tool's sweep
    detect: float | None       # the break to the first failure logged
    serving: float | None      # the break to site0's first 200
    paged: float | None        # the break to the first escalation (monitord) or alert (Monit)
    tally: Tally
    exit_code: int | None
    note: str = ""


FAILED = re.compile(r": (CRITICAL|WARNING|UNKNOWN) \((soft|hard)|\] error\s+:")


def breaking(bench: Bench, scenario: str) -> None:
    """Break nginx, and return once the break has taken effect (every process gone, or
    stopped), so that a request that started before it cannot count as served after."""
    if scenario == "broken":
        bench.nginx.write(broken=True)
    server = bench.upstream if scenario == "hung" else bench.nginx
    processes = server.processes()
    if scenario == "hung":
        server.signal(signal.SIGSTOP)
        bench.wait(lambda: all(process_state(p) in ("T", "") for p in processes), 5,
                   "the upstream to stop")
    else:
        server.signal(signal.SIGKILL)
        bench.wait(lambda: all(process_state(p) in ("Z", "X", "") for p in processes), 5,
                   "nginx to die")


def run_round(bench: Bench, scenario: str, tool: Tool, phase: float) -> Round:
    """Start ``tool``, break nginx ``phase`` seconds into one of its sweeps, watch, stop."""
    bench.healthy(scenario)
    started = time.time()
    tool.start()
    broke = served = None
    note = ""
    try:
        # The second sweep: the first one of a fresh daemon runs late (imports).
        bench.wait(lambda: len(sweeps(bench.requests, tool.agent, started)) >= 2
                   and tool.ready(), READY_SECONDS, f"{tool.label} to see every check OK",
                   (tool,))
        at = bench.monotonic(sweeps(bench.requests, tool.agent, started)[-1]) + phase
        while at < time.monotonic() + 0.2 + old_enough(bench, scenario):
            at += CYCLE_SECONDS
        bench.watch(at, (tool,), lambda: False)
        broke = time.monotonic()
        breaking(bench, scenario)
        bench.poller.arm(time.monotonic())
        note = watch_after_break(bench, scenario, tool, broke)
        served = bench.poller.served()
    finally:
        bench.poller.arm(None)
        code = tool.stop()
    tool.log.read()
    tally = tool.tally(broke)
    if code not in (0, None):
        note = f"{note}; exit {code}".lstrip("; ")
    return Round(scenario, tool.label, phase, since(tool.log.first(FAILED, broke), broke),
                 since(served, broke), since(tally.paged, broke), tally, code, note)


def old_enough(bench: Bench, scenario: str) -> float:
    """Seconds until the service to be hung has run for ``SERVICE_AGE_SECONDS``: Monit
    pauses the port tests of a process younger than its start timeout (30 s by default;
    it logs "connection test paused for 29 s while the process is starting"), and a
    server's upstream is rarely that young. The tools restart it round after round."""
    if scenario != "hung":
        return 0.0
    return max(SERVICE_AGE_SECONDS - bench.upstream.age_seconds(), 0.0)


def watch_after_break(bench: Bench, scenario: str, tool: Tool, broke: float) -> str:
    """Watch until the sites serve again and the tool has settled (every check OK, no fix
    running, one more sweep of 200s), or, for a broken nginx, for a fixed time. A note if
    a bound was reached."""
    if scenario == "broken":
        bench.watch(broke + BROKEN_WATCH_SECONDS, (tool,), lambda: False)
        return ""
    if not bench.watch(broke + RECOVERY_SECONDS, (tool,),
                       lambda: bench.poller.served() is not None):
        return f"not serving after {RECOVERY_SECONDS:g} s"
    served = bench.wall(bench.poller.served() or broke)
    if not bench.watch(time.monotonic() + SETTLED_SECONDS, (tool,),
                       lambda: sweeps(bench.requests, tool.agent, served)
                       and tool.settled()):
        return f"not settled {SETTLED_SECONDS:g} s after serving"
    return ""


def since(at: float | None, start: float | None) -> float | None:
    return None if at is None or start is None else at - start


def phases(rounds: int, rng: random.Random) -> list[float]:
    """One moment per round, spread evenly over the cycle (the middle of each of ``rounds``
    equal slices), in a random order: every tool meets the same moments."""
    moments = [(i + 0.5) * CYCLE_SECONDS / rounds for i in range(rounds)]
    rng.shuffle(moments)
    return moments


ToolMaker = Callable[[Path, str], Tool]


def tool_makers(bench: Bench, retries: list[str], spread_retries: list[str],
                monit: bool) -> list[tuple[str, ToolMaker]]:
    """A maker of each tool's round: monitord with each ``retry_every`` (then with the
    checks spread over the cycle), then Monit."""

    def monitord(retry: str, spread: bool) -> ToolMaker:
        return lambda directory, scenario: Monitord(bench, directory, scenario, retry, spread)

    makers = [(f"monitord-{retry}", monitord(retry, False)) for retry in retries]
    makers += [(f"monitord-{retry}-spread", monitord(retry, True))
               for retry in spread_retries]
    if monit:
        makers.append(("monit", lambda directory, scenario: Monit(bench, directory, scenario)))
    return makers


def run_scenario(bench: Bench, directory: Path, scenario: str,
                 makers: list[tuple[str, ToolMaker]], rounds: int, rng: random.Random,
                 results: list[Round]) -> None:
    """``rounds`` rounds; in each, every tool in turn (the order rotating each round)."""
    for index, phase in enumerate(phases(rounds, rng)):
        turn = makers[index % len(makers):] + makers[:index % len(makers)]
        for slug, make in turn:
            tool = make(directory / f"{scenario}-{index}-{slug}", scenario)
            try:
                result = run_round(bench, scenario, tool, phase)
            except (TimeoutError, RuntimeError, subprocess.SubprocessError) as e:
                result = Round(scenario, tool.label, phase, None, None, None, Tally(), None,
                               f"round {index + 1} failed: {e}")
            print(round_line(result, index + 1, rounds), file=sys.stderr, flush=True)
            results.append(result)


# ------------------------------------------------------------------------------ report


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def round_line(r: Round, index: int, rounds: int) -> str:
    t = r.tally
    return (f"{r.scenario} {index}/{rounds} {r.tool}: break {r.phase:.1f} s into its sweep; "
            f"detect {seconds(r.detect)} s, serving {seconds(r.serving)} s, "
            f"paged {seconds(r.paged)} s; filed {t.filed} ({t.attached} attached), "
            f"fixes {t.parent_fixes}, child fixes {t.child_fixes}"
            + (f" [{r.note}]" if r.note else ""))


def median_range(values: list[float | None]) -> str:
    """Median (min-max) of the values there are, and how many are missing."""
    present = [v for v in values if v is not None]
    if not present:
        return "-"
    text = f"{statistics.median(present):.2f} ({min(present):.2f}-{max(present):.2f})"
    missing = len(values) - len(present)
    return text + (f" {missing} none" if missing else "")


def counts(values: list[int]) -> str:
    return str(values[0]) if len(set(values)) == 1 else "/".join(map(str, values))


COLUMNS = ("scenario", "tool", "detect s", "serving again s", "paged s", "filed",
           "attached", "fixes", "child fixes")


def table(results: list[Round]) -> str:
    """Per scenario and tool: median (min-max) of the times, and each round's counts."""
    rows = []
    for scenario, tool in dict.fromkeys((r.scenario, r.tool) for r in results):
        mine = [r for r in results if (r.scenario, r.tool) == (scenario, tool)]
        monit = tool.startswith("Monit")
        rows.append((
            SCENARIOS[scenario], tool,
            median_range([r.detect for r in mine]), median_range([r.serving for r in mine]),
            median_range([r.paged for r in mine]),
            counts([r.tally.filed for r in mine]),
            "-" if monit else counts([r.tally.attached for r in mine]),
            counts([r.tally.parent_fixes for r in mine]),
            "-" if monit else counts([r.tally.child_fixes for r in mine]),
        ))
    widths = [max(len(cell) for cell in column) for column in zip(COLUMNS, *rows, strict=True)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
             for row in [COLUMNS, *rows]]
    lines.insert(1, "-" * len(lines[0]))
    notes = sorted({f"{r.scenario} {r.tool}: {r.note}" for r in results if r.note})
    return "\n".join(lines + [f"note: {n}" for n in notes])


def command_version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False,
                              stdin=subprocess.DEVNULL)
    except OSError:
        return "not installed"
    return (done.stdout or done.stderr).strip().splitlines()[0]


def machine_lines() -> list[str]:
    from importlib.metadata import version

    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return [
        f"machine: {os.cpu_count()} cores, {model}, {platform.system()} {platform.release()}",
        f"python {platform.python_version()}, monitord {version('monitord')}, "
        f"aiohttp {version('aiohttp')}, {command_version([NGINX, '-v'])}, "
        f"{command_version([MONIT, '-V'])}",
    ]


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


# -------------------------------------------------------------------------------- main


def exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop servers


@contextlib.contextmanager
def work_dir(keep: bool) -> Iterator[Path]:
    if keep:
        path = Path(tempfile.mkdtemp(prefix="heal-latency-"))
        print(f"keeping logs and configs in {path}", file=sys.stderr)
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="heal-latency-") as tmp:
        yield Path(tmp)


def run(args: argparse.Namespace) -> None:
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    reaper = Reaper()
    monit = Path(MONIT).exists() and not args.no_monit
    rng = random.Random(args.seed)
    started, load_before = time.monotonic(), load()
    results: list[Round] = []
    try:
        with work_dir(args.keep) as directory:
            bench = Bench(directory, reaper)
            try:
                makers = tool_makers(bench, args.retry, args.spread, monit)
                for scenario in args.scenarios:
                    run_scenario(bench, directory / "rounds", scenario, makers, args.rounds,
                                 rng, results)
            finally:
                bench.close()
    finally:   # what was measured, even when stopped early
        print("\n".join(machine_lines()))
        print(f"{args.rounds} rounds per tool and scenario, the tools in turn; load average "
              f"{load_before} before, {load()} after; run took "
              f"{format_duration(round(time.monotonic() - started))}\n")
        print(table(results))


def duration_list(text: str) -> list[str]:
    values = [v.strip() for v in text.split(",") if v.strip()]
    for value in values:
        parse_duration(value)   # raises ValueError with the reason
    return values


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds per tool and scenario (default 5)")
    parser.add_argument("--scenarios", type=lambda s: s.split(","), default=list(SCENARIOS),
                        help="comma-separated, of kill, broken, hung (default all)")
    parser.add_argument("--retry", type=duration_list, default=["1s", "2s", "5s"],
                        help="monitord's [defaults] retry_every, one run of monitord per "
                             "value (default 1s,2s,5s)")
    parser.add_argument("--spread", type=duration_list, default=[],
                        help="also run monitord with these retry_every values and its checks "
                             "spread over the cycle ([agent] start_rate = checks / every) "
                             "(default none)")
    parser.add_argument("--seed", type=int, default=1,
                        help="orders the moments of the breaks (default 1)")
    parser.add_argument("--no-monit", action="store_true", help="run monitord only")
    parser.add_argument("--keep", action="store_true",
                        help="keep every round's config and logs in a temp dir")
    args = parser.parse_args(argv)
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario {', '.join(sorted(unknown))}; "
                     f"expected {', '.join(SCENARIOS)}")
    return args


def main(argv: list[str]) -> None:
    run(parse_args(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
