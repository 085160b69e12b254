"""HTTP sweep benchmark: monitord's HTTP checks over N name-based sites, beside Monit's.

Serves N sites (``siteNNNN.test``) on 127.0.0.1 from a private nginx instance (or, when
nginx is missing, an aiohttp server in another process), then for each N:

* monitord, on kept-alive connections and then on a new connection per check: a fresh
  Python process loads a generated TOML config with ``load_config``, starts an ``Agent``
  and runs every check concurrently (bounded by ``agent.max_concurrent_probes``) for one
  warm-up sweep plus ``--sweeps`` measured ones. It reports CPU (getrusage, measured
  sweeps only), peak RSS and the median sweep time.
* Monit (when installed): ``monit -I`` with one ``check host`` per site and a 1 s cycle.
  Its checks are counted in the access log by User-Agent; its CPU is read from
  /proc/PID/task/*/schedstat in the pause after the warm-up cycle and after the last one.
* With ``--hung H``: H more sites (``hungNNNN.test``) point at a listener on 127.0.0.1
  that accepts connections and never answers. monitord runs one sweep over the N healthy
  and H hung sites (every check with ``timeout`` = ``--hung-timeout``), Monit one cycle
  (``with timeout`` on the hung hosts), and a second table shows each one's wall time and
  what the hung sites added to a healthy-only sweep.

Run: ``.venv/bin/python benchmarks/http_sweep.py --sites 100,1000 --sweeps 5``.
This is a measurement, not a test: it prints a table and asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from monitord.durations import format_duration, parse_duration

NGINX = "/usr/sbin/nginx"
MONIT = "/usr/bin/monit"
ADDRESS = "127.0.0.1"
MONIT_AGENT = "monit-http-sweep"
LOG_FORMAT = "$msec|$http_user_agent|$host|$status"
READY_SECONDS = 10.0
CHILD_SECONDS = 120.0
MONIT_CYCLE_SECONDS = 1
POLL_SECONDS = 0.02
MIB = 1024 * 1024
HUNG_SPARE = 16  # connections the hung listener holds beyond H before leaving them queued


@dataclass
class Figures:
    tool: str
    sites: int
    checks: int
    cpu_seconds: float
    peak_rss_bytes: int
    sweep_seconds: float
    connections: str
    note: str = ""

    @property
    def cpu_per_1000(self) -> float:
        return self.cpu_seconds / self.checks * 1000


@dataclass
class LogLine:
    at: float
    agent: str
    host: str
    status: int


@dataclass
class HungFigures:
    tool: str
    sites: int
    hung: int
    timeout: float
    sweep_seconds: float      # one sweep over the N healthy + H hung sites
    healthy_seconds: float    # a sweep over the N healthy sites alone
    held_seconds: float       # median time a hung connection stayed open
    at_once: int              # most hung connections open at the same time
    note: str = ""

    @property
    def added_seconds(self) -> float:
        return self.sweep_seconds - self.healthy_seconds


@dataclass
class Hold:
    """One connection to the hung listener: accepted and closed by the peer (wall clock)."""

    opened: float
    closed: float | None = None


# ---------------------------------------------------------------------------- servers


@dataclass
class Server:
    """A running site server and its access log (one ``LOG_FORMAT`` line per request).

    The sites answer on two ports: ``port`` keeps connections alive, ``close_port`` closes
    each after its response, as a check run every minute sees it (aiohttp drops a pooled
    connection after 15 s idle, nginx after 75 s, Apache after 5 s).
    """

    kind: str
    process: subprocess.Popen[bytes]
    port: int
    close_port: int
    access_log: Path


def site_name(index: int) -> str:
    return f"site{index:04d}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((ADDRESS, 0))
        return int(sock.getsockname()[1])


def nginx_servers(port: int, sites: int, keepalive: str) -> str:
    return "\n".join(
        f"  server {{ listen {ADDRESS}:{port}; server_name {site_name(i)}.test; "
        f'keepalive_timeout {keepalive}; return 200 "{site_name(i)} ok\\n"; }}'
        for i in range(sites)
    )


def nginx_conf(directory: Path, ports: tuple[int, int], sites: int) -> str:
    temp = directory / "tmp"
    servers = nginx_servers(ports[0], sites, "75s") + "\n" + nginx_servers(ports[1], sites, "0")
    temp_paths = "\n".join(
        f"  {kind}_temp_path {temp / kind};" for kind in
        ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""worker_processes 1;
worker_rlimit_nofile 8192;
pid {directory / "nginx.pid"};
error_log {directory / "error.log"} warn;
events {{ worker_connections 4096; }}
http {{
  log_format sweep '{LOG_FORMAT}';
  access_log {directory / "access.log"} sweep;
  default_type text/plain;
  keepalive_requests 100000;
  server_names_hash_max_size {max(512, sites * 4)};
  server_names_hash_bucket_size 64;
{temp_paths}
  server {{ listen {ADDRESS}:{ports[0]} default_server; return 404; }}
  server {{ listen {ADDRESS}:{ports[1]} default_server; return 404; }}
{servers}
}}
"""


def start_nginx(directory: Path, sites: int) -> Server:
    ports = (free_port(), free_port())
    (directory / "tmp").mkdir()
    conf = directory / "nginx.conf"
    conf.write_text(nginx_conf(directory, ports, sites))
    argv = [NGINX, "-p", str(directory), "-c", str(conf), "-e", str(directory / "error.log"),
            "-g", "daemon off;"]
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
    return Server("nginx", process, *ports, directory / "access.log")


def start_aiohttp(directory: Path, sites: int) -> Server:
    ports = (free_port(), free_port())
    log = directory / "access.log"
    argv = [sys.executable, __file__, "--role", "serve", "--port", str(ports[0]),
            "--close-port", str(ports[1]), "--sites", str(sites), "--access-log", str(log)]
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
    return Server("aiohttp", process, *ports, log)


def wait_ready(server: Server) -> None:
    """Poll until both ports answer 200, or fail if the server died or took too long."""
    deadline = time.monotonic() + READY_SECONDS
    for port in (server.port, server.close_port):
        while not answers(port):
            if server.process.poll() is not None:
                raise RuntimeError(f"{server.kind} exited with {server.process.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{server.kind} not answering on port {port} "
                                   f"after {READY_SECONDS:g} s")
            time.sleep(POLL_SECONDS)


def answers(port: int) -> bool:
    request = urllib.request.Request(f"http://{ADDRESS}:{port}/")
    request.add_header("Host", f"{site_name(0)}.test")
    try:
        with urllib.request.urlopen(request, timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def stop(process: subprocess.Popen[Any], grace_seconds: float = 5.0) -> int | None:
    """SIGTERM the process, then SIGKILL its process group if it has not gone in time;
    its exit code. The other benchmarks stop their processes with this too."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace_seconds)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(grace_seconds)
    return process.returncode


@contextlib.contextmanager
def site_server(kind: str, sites: int) -> Iterator[Server]:
    with tempfile.TemporaryDirectory(prefix=f"http-sweep-{kind}-") as tmp:
        starter = start_nginx if kind == "nginx" else start_aiohttp
        server = starter(Path(tmp), sites)
        try:
            wait_ready(server)
            yield server
        finally:
            stop(server.process)


def serve_aiohttp(ports: tuple[int, int], sites: int, access_log: Path) -> None:
    """The fallback server: one aiohttp app answering ``siteNNNN.test`` by Host header."""
    import asyncio

    from aiohttp import web

    names = {f"{site_name(i)}.test" for i in range(sites)}
    log = access_log.open("a", buffering=1)

    async def answer(request: web.Request) -> web.Response:
        host = request.host.split(":")[0]
        status = 200 if host in names else 404
        agent = request.headers.get("User-Agent", "-")
        log.write(f"{time.time():.3f}|{agent}|{host}|{status}\n")
        response = web.Response(status=status, text=f"{host} ok\n")
        transport = request.transport
        if transport is not None and transport.get_extra_info("sockname")[1] == ports[1]:
            response.force_close()
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    asyncio.run(serve_forever(app, ports))


async def serve_forever(app: Any, ports: tuple[int, int]) -> None:
    import asyncio

    from aiohttp import web

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    for port in ports:
        await web.TCPSite(runner, ADDRESS, port).start()
    await asyncio.Event().wait()  # until the parent's SIGTERM ends the process


# ----------------------------------------------------------------------- hung listener


def hung_name(index: int) -> str:
    return f"hung{index:04d}"


class HungListener:
    """A TCP listener on 127.0.0.1 that accepts connections and never answers.

    A thread in this process accepts up to ``limit`` connections at once (more wait in the
    kernel's backlog), reads and discards what they send, and notes when it accepted each
    and when the peer closed it, by the wall clock like nginx's ``$msec``.
    """

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._listener = socket.socket()
        self._listener.bind((ADDRESS, 0))
        self._listener.listen(limit)
        self._listener.setblocking(False)
        self.port = int(self._listener.getsockname()[1])
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ)
        self._accepting = True
        self._open: dict[socket.socket, Hold] = {}
        self._closed: list[Hold] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="hung-listener", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            for key, _ in self._selector.select(timeout=0.05):
                if key.fileobj is self._listener:
                    self._accept()
                else:
                    self._read(key.fileobj)  # type: ignore[arg-type]

    def _accept(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except BlockingIOError:
            return
        conn.setblocking(False)
        with self._lock:
            self._open[conn] = Hold(time.time())
            if len(self._open) >= self._limit:  # full: leave the rest in the backlog
                self._selector.unregister(self._listener)
                self._accepting = False
        self._selector.register(conn, selectors.EVENT_READ)

    def _read(self, conn: socket.socket) -> None:
        try:
            if conn.recv(65536):
                return  # a request: read, never answered
        except BlockingIOError:
            return
        except OSError:
            pass
        self._selector.unregister(conn)
        conn.close()
        with self._lock:
            hold = self._open.pop(conn)
            hold.closed = time.time()
            self._closed.append(hold)
            if not self._accepting:
                self._selector.register(self._listener, selectors.EVENT_READ)
                self._accepting = True

    def take(self) -> tuple[list[Hold], int]:
        """The connections closed since the last call, and how many are open now."""
        with self._lock:
            closed, self._closed = self._closed, []
            return closed, len(self._open)

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(5)
        for conn in list(self._open):
            conn.close()
        self._listener.close()
        self._selector.close()


@contextlib.contextmanager
def hung_listener(hung: int) -> Iterator[HungListener | None]:
    if not hung:
        yield None
        return
    listener = HungListener(hung + HUNG_SPARE)
    try:
        yield listener
    finally:
        listener.close()


def most_at_once(holds: list[Hold]) -> int:
    events = sorted([(h.opened, 1) for h in holds] +
                    [(h.closed if h.closed is not None else h.opened, -1) for h in holds],
                    key=lambda e: (e[0], e[1]))
    peak = now = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


def held_seconds(holds: list[Hold]) -> float:
    return statistics.median((h.closed or h.opened) - h.opened for h in holds)


def wait_for_holds(listener: HungListener, hung: int, seconds: float) -> list[Hold]:
    """The ``hung`` connections, once their peer has closed them all."""
    holds: list[Hold] = []
    deadline = time.monotonic() + seconds
    while True:
        closed, still_open = listener.take()
        holds += closed
        if len(holds) >= hung and not still_open:
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"hung listener: {len(holds)} connections closed, "
                               f"{still_open} open; expected {hung}")
        time.sleep(POLL_SECONDS)
    if len(holds) != hung:
        raise RuntimeError(f"hung listener saw {len(holds)} connections, expected {hung}")
    return holds


# ------------------------------------------------------------------------- access log


class AccessLog:
    """Reads new lines of the server's access log as they are written."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("r")
        self._file.seek(0, os.SEEK_END)
        self._partial = ""

    def new_lines(self) -> list[LogLine]:
        text = self._partial + self._file.read()
        *complete, self._partial = text.split("\n")
        return [parse_line(line) for line in complete if line]

    def close(self) -> None:
        self._file.close()


def parse_line(line: str) -> LogLine:
    at, agent, host, status = line.rsplit("|", 3)
    return LogLine(float(at), agent, host, int(status))


def check_log(lines: list[LogLine], sites: int, sweeps: int, who: str) -> None:
    """Every site got one 200 per sweep, as the server saw it."""
    bad = [line for line in lines if line.status != 200]
    hosts = {line.host for line in lines}
    if bad or len(lines) != sites * sweeps or len(hosts) != sites:
        raise RuntimeError(f"{who}: server saw {len(lines)} requests to {len(hosts)} sites, "
                           f"{len(bad)} not 200; expected {sites * sweeps} to {sites}")


# ---------------------------------------------------------------------------- monitord


def run_monitord(server: Server, sites: int, sweeps: int, reuse: bool,
                 profile: bool) -> Figures:
    """Run the monitord sweep in a fresh interpreter so its RSS is its own."""
    log = AccessLog(server.access_log)
    port = server.port if reuse else server.close_port
    try:
        with tempfile.TemporaryDirectory(prefix="http-sweep-monitord-") as tmp:
            output = run_child(port, sites, sweeps, Path(tmp), profile,
                               ["--keep-alive"] if reuse else [])
        lines = [line for line in log.new_lines() if line.agent != MONIT_AGENT]
    finally:
        log.close()
    check_log(lines, sites, sweeps + 1, "monitord")
    figures = Figures(**json.loads(output.strip().splitlines()[-1]))
    return replace(figures, connections="reused" if reuse else "new")


def run_monitord_hung(server: Server, sites: int, listener: HungListener, hung: int,
                      timeout: float) -> HungFigures:
    """One sweep over N healthy + H hung sites (new connections), beside a healthy-only one."""
    log = AccessLog(server.access_log)
    listener.take()
    try:
        with tempfile.TemporaryDirectory(prefix="http-sweep-monitord-hung-") as tmp:
            extra = ["--hung", str(hung), "--hung-port", str(listener.port),
                     "--hung-timeout", f"{timeout:g}s"]
            output = run_child(server.close_port, sites, 1, Path(tmp), False, extra)
        holds = wait_for_holds(listener, hung, 5.0)
        lines = [line for line in log.new_lines() if line.agent != MONIT_AGENT]
    finally:
        log.close()
    check_log(lines, sites, 3, "monitord (hung)")  # warm-up, healthy-only, healthy + hung
    walls = json.loads(output.strip().splitlines()[-1])
    return HungFigures("monitord", sites, hung, timeout, walls["sweep"], walls["healthy"],
                       held_seconds(holds), most_at_once(holds), "new connections")


def run_child(port: int, sites: int, sweeps: int, work_dir: Path, profile: bool,
              extra: list[str] | None = None) -> str:
    """The child's stdout (its figures as JSON); its stderr passes through."""
    argv = [sys.executable, __file__, "--role", "child", "--port", str(port),
            "--sites", str(sites), "--sweeps", str(sweeps), "--work-dir", str(work_dir)]
    argv += ["--profile"] if profile else []
    argv += extra or []
    child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             start_new_session=True)
    try:
        output, _ = child.communicate(timeout=CHILD_SECONDS)
    finally:
        stop(child)
    if child.returncode != 0:
        raise RuntimeError(f"monitord sweep for {sites} sites failed "
                           f"(exit {child.returncode}); see its stderr above")
    return output.decode()


def child_main(port: int, sites: int, sweeps: int, work_dir: Path, profile: bool,
               hung: tuple[int, int, float], keep_alive: bool) -> None:
    from monitord.agent.eventloop import run  # the daemon's loop: uvloop if installed

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hung[0]:
        print(json.dumps(run(child_hung_sweep(port, sites, work_dir, hung))))
        return
    figures = run(child_sweeps(port, sites, sweeps, work_dir, profile, keep_alive))
    print(json.dumps(asdict(figures)))


def write_config(path: Path, port: int, sites: int,
                 hung: tuple[int, int, float] = (0, 0, 0.0), keep_alive: bool = False) -> None:
    count, hung_port, timeout = hung
    limit = f'timeout = "{format_duration(timeout)}"\n' if count else ""
    limit += "keep_alive = true\n" if keep_alive else ""
    checks = [
        f'[[check]]\nname = "{name}"\nprobe = "http"\n'
        f'url = "http://{ADDRESS}:{where}/"\nhost_header = "{name}.test"\n'
        f"expect_status = [200]\n{limit}"
        for name, where in [(site_name(i), port) for i in range(sites)] +
                           [(hung_name(i), hung_port) for i in range(count)]
    ]
    path.write_text("\n".join(checks))


async def child_sweeps(port: int, sites: int, sweeps: int, work_dir: Path,
                       profile: bool, keep_alive: bool) -> Figures:
    from monitord.agent.daemon import Agent
    from monitord.config import load_config

    path = work_dir / "monitord.toml"
    write_config(path, port, sites, keep_alive=keep_alive)
    config = load_config(path, state_dir=str(work_dir / "state"))
    agent = Agent(config)
    await agent.start()
    try:
        await sweep(agent)  # warm-up: imports the http probe, opens kept connections
        cpu, walls = await measured_sweeps(agent, sweeps, profile)
    finally:
        await agent.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    note = "profiled" if profile else f"concurrency {config.agent.max_concurrent_probes}"
    return Figures("monitord", sites, sites * sweeps, cpu, peak, statistics.median(walls),
                   "", note)


async def child_hung_sweep(port: int, sites: int, work_dir: Path,
                           hung: tuple[int, int, float]) -> dict[str, float]:
    """A warm-up and a timed sweep over the healthy sites, then one over healthy + hung."""
    from monitord.agent.daemon import Agent
    from monitord.config import load_config

    path = work_dir / "monitord.toml"
    write_config(path, port, sites, hung)
    config = load_config(path, state_dir=str(work_dir / "state"))
    healthy = config.checks[:sites]
    hung_names = frozenset(c.name for c in config.checks[sites:])
    agent = Agent(config)
    await agent.start()
    try:
        await sweep(agent, healthy)  # warm-up: imports the http probe
        start = time.monotonic()
        await sweep(agent, healthy)
        middle = time.monotonic()
        await sweep(agent, config.checks, hung_names)
        end = time.monotonic()
    finally:
        await agent.close()
    return {"healthy": middle - start, "sweep": end - middle}


async def measured_sweeps(agent: Any, sweeps: int, profile: bool) -> tuple[float, list[float]]:
    """CPU seconds (user + sys, all threads) spent in ``sweeps`` sweeps, and each one's time."""
    import cProfile

    profiler = cProfile.Profile() if profile else None
    before = resource.getrusage(resource.RUSAGE_SELF)
    if profiler is not None:
        profiler.enable()
    walls = [await timed_sweep(agent) for _ in range(sweeps)]
    after = resource.getrusage(resource.RUSAGE_SELF)
    if profiler is not None:
        profiler.disable()
        report_profile(profiler)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return cpu, walls


async def timed_sweep(agent: Any) -> float:
    start = time.monotonic()
    await sweep(agent)
    return time.monotonic() - start


async def sweep(agent: Any, checks: list[Any] | None = None,
                hung: frozenset[str] = frozenset()) -> None:
    """Run every check once, concurrently up to max_concurrent_probes; all must be OK
    but the ``hung`` ones, which must all fail."""
    import asyncio

    from monitord.model import Status

    limit = asyncio.Semaphore(agent.config.agent.max_concurrent_probes)

    async def bounded(check: Any) -> Any:
        async with limit:
            return await agent.run_once(check)

    checks = agent.config.checks if checks is None else checks
    results = await asyncio.gather(*(bounded(c) for c in checks))
    wrong = [f"{c.name}: {r.summary}" for c, r in zip(checks, results, strict=True)
             if (r.status is Status.OK) == (c.name in hung)]
    if wrong:
        raise RuntimeError(f"{len(wrong)} of {len(results)} checks not as expected "
                           f"(OK, or failed if hung), e.g. {wrong[0]}")


def report_profile(profiler: Any) -> None:
    import pstats

    stats = pstats.Stats(profiler, stream=sys.stderr)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)


# ------------------------------------------------------------------------------- monit


def monitrc(directory: Path, port: int, sites: int,
            hung: tuple[int, int, float] = (0, 0, 0.0)) -> str:
    head = "\n".join([
        f"set daemon {MONIT_CYCLE_SECONDS}",
        f"set logfile {directory / 'monit.log'}",
        f"set pidfile {directory / 'monit.pid'}",
        f"set idfile {directory / 'monit.id'}",
        f"set statefile {directory / 'monit.state'}",
    ])
    checks = "\n".join(
        f"check host {site_name(i)} with address {ADDRESS}\n"
        f'  if failed port {port} protocol http method GET request "/"\n'
        f"     with http headers [Host: {site_name(i)}.test, User-Agent: {MONIT_AGENT}]\n"
        f"  then alert"
        for i in range(sites)
    )
    count, hung_port, timeout = hung
    hung_checks = "".join(
        f"check host {hung_name(i)} with address {ADDRESS}\n"
        f'  if failed port {hung_port} protocol http method GET request "/"\n'
        f"     with http headers [Host: {hung_name(i)}.test, User-Agent: {MONIT_AGENT}]\n"
        f"     with timeout {round(timeout)} seconds\n"
        f"  then alert\n"
        for i in range(count)
    )
    return f"{head}\n{checks}\n{hung_checks}"


def task_cpu_seconds(pid: int) -> float:
    """CPU of all the process's threads, in ns precision from schedstat (ticks otherwise)."""
    tasks = list(Path(f"/proc/{pid}/task").iterdir())
    try:
        return sum(int((t / "schedstat").read_text().split()[0]) for t in tasks) / 1e9
    except (OSError, ValueError):
        return stat_cpu_seconds(pid)


def stat_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM in /proc/{pid}/status")


def run_monit(server: Server, sites: int, sweeps: int) -> Figures:
    with tempfile.TemporaryDirectory(prefix="http-sweep-monit-") as tmp:
        directory = Path(tmp)
        rc = directory / "monitrc"
        rc.write_text(monitrc(directory, server.port, sites))
        rc.chmod(0o600)
        subprocess.run([MONIT, "-t", "-c", str(rc)], check=True, stdout=subprocess.DEVNULL,
                       stdin=subprocess.DEVNULL)
        log = AccessLog(server.access_log)
        process = subprocess.Popen([MONIT, "-I", "-c", str(rc)], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, start_new_session=True)
        try:
            return watch_monit(process, log, sites, sweeps)
        finally:
            stop(process)
            log.close()


def watch_monit(process: subprocess.Popen[bytes], log: AccessLog, sites: int,
                sweeps: int) -> Figures:
    """Sample Monit's CPU in the pause after its warm-up cycle and after the last sweep."""
    deadline = time.monotonic() + 30 + sweeps * (MONIT_CYCLE_SECONDS + sites * 0.005)
    lines: list[LogLine] = []
    samples: list[float] = []
    while len(samples) < 2:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"monit stopped or overran: {len(lines)} checks seen")
        time.sleep(POLL_SECONDS)
        lines += [line for line in log.new_lines() if line.agent == MONIT_AGENT]
        target = sites * (1 if not samples else sweeps + 1)
        if len(lines) >= target:
            time.sleep(0.1)  # let it finish reading the last response
            samples.append(task_cpu_seconds(process.pid))
            lines += [line for line in log.new_lines() if line.agent == MONIT_AGENT]
            if len(lines) != target:
                raise RuntimeError(f"monit cycle boundary missed: {len(lines)} != {target}")
    peak = peak_rss_bytes(process.pid)
    check_log(lines, sites, sweeps + 1, "monit")
    spans = [cycle[-1].at - cycle[0].at for cycle in cycles(lines[sites:], sites)]
    note = f"sequential, {MONIT_CYCLE_SECONDS} s cycle"
    return Figures("monit", sites, sites * sweeps, samples[1] - samples[0], peak,
                   statistics.median(spans), "new", note)


def run_monit_hung(server: Server, sites: int, listener: HungListener, hung: int,
                   timeout: float, healthy_seconds: float) -> HungFigures:
    """Monit's first cycle over N healthy + H hung sites, from its first request (or
    connection) to its last request or the close of its last hung connection."""
    with tempfile.TemporaryDirectory(prefix="http-sweep-monit-hung-") as tmp:
        directory = Path(tmp)
        rc = directory / "monitrc"
        rc.write_text(monitrc(directory, server.port, sites, (hung, listener.port, timeout)))
        rc.chmod(0o600)
        subprocess.run([MONIT, "-t", "-c", str(rc)], check=True, stdout=subprocess.DEVNULL,
                       stdin=subprocess.DEVNULL)
        log = AccessLog(server.access_log)
        listener.take()
        errors = directory / "monit.stderr"  # it reports every failed test there too
        with errors.open("wb") as sink:
            process = subprocess.Popen([MONIT, "-I", "-c", str(rc)], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=sink,
                                       start_new_session=True)
        try:
            lines, holds = watch_monit_hung(process, log, listener, sites, hung, timeout)
        except RuntimeError as e:
            tail = errors.read_text(errors="replace").splitlines()[-5:]
            raise RuntimeError("\n".join([str(e), "monit's stderr ends:", *tail])) from e
        finally:
            stop(process)
            log.close()
    check_log(lines, sites, 1, "monit (hung)")
    times = [line.at for line in lines] + [h.opened for h in holds] + \
        [h.closed for h in holds if h.closed is not None]
    return HungFigures("monit", sites, hung, timeout, max(times) - min(times),
                       healthy_seconds, held_seconds(holds), most_at_once(holds),
                       "healthy-only: monit row above")


def watch_monit_hung(process: subprocess.Popen[bytes], log: AccessLog,
                     listener: HungListener, sites: int, hung: int,
                     timeout: float) -> tuple[list[LogLine], list[Hold]]:
    """Wait for one whole cycle: N requests in the log and H hung connections closed."""
    deadline = time.monotonic() + 30 + hung * timeout * 2 + sites * 0.01
    lines: list[LogLine] = []
    holds: list[Hold] = []
    while len(lines) < sites or len(holds) < hung:
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"monit stopped or overran: {len(lines)} requests and "
                               f"{len(holds)} hung connections seen")
        time.sleep(POLL_SECONDS)
        lines += [line for line in log.new_lines() if line.agent == MONIT_AGENT]
        holds += listener.take()[0]
    if len(lines) != sites or len(holds) != hung:
        raise RuntimeError(f"monit cycle boundary missed: {len(lines)} requests, "
                           f"{len(holds)} hung connections")
    return lines, holds


def cycles(lines: list[LogLine], sites: int) -> list[list[LogLine]]:
    return [lines[i : i + sites] for i in range(0, len(lines), sites)]


# ------------------------------------------------------------------------------ report


def command_version(argv: list[str]) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "not installed"
    return (done.stdout or done.stderr).strip().splitlines()[0]


def machine_lines(server_kind: str) -> list[str]:
    from importlib.metadata import version

    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    server = command_version([NGINX, "-v"]) if server_kind == "nginx" else "aiohttp"
    return [
        f"machine: {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), {model}, "
        f"{platform.system()} {platform.release()}",
        f"python {platform.python_version()}, monitord {version('monitord')}, "
        f"httptools {version('httptools')}, pydantic {version('pydantic')}",
        f"server: {server_kind} ({server})",
        f"peer: {command_version([MONIT, '-V']) if has(MONIT) else 'monit not installed'}",
    ]


def table(rows: list[Figures]) -> str:
    head = (f"{'tool':<9} {'N':>5} {'conns':<6} {'CPU s/1000 checks':>18} "
            f"{'peak RSS MiB':>13} {'sweep wall s':>13} {'checks':>7}  note")
    body = [
        f"{r.tool:<9} {r.sites:>5} {r.connections:<6} {r.cpu_per_1000:>18.4f} "
        f"{r.peak_rss_bytes / MIB:>13.1f} {r.sweep_seconds:>13.4f} {r.checks:>7}  {r.note}"
        for r in rows
    ]
    return "\n".join([head, "-" * len(head), *body])


def hung_table(rows: list[HungFigures]) -> str:
    head = (f"{'tool':<9} {'N':>5} {'H':>4} {'timeout':>7} {'sweep wall s':>13} "
            f"{'healthy-only s':>15} {'added s':>8} {'held s':>7} {'at once':>8}  note")
    body = [
        f"{r.tool:<9} {r.sites:>5} {r.hung:>4} {format_duration(r.timeout):>7} "
        f"{r.sweep_seconds:>13.3f} {r.healthy_seconds:>15.3f} {r.added_seconds:>8.3f} "
        f"{r.held_seconds:>7.3f} {r.at_once:>8}  {r.note}"
        for r in rows
    ]
    return "\n".join([head, "-" * len(head), *body])


def has(path: str) -> bool:
    return shutil.which(path) is not None


def exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop servers


def parent_main(sites_list: list[int], sweeps: int, server_kind: str, profile: bool,
                hung: int, hung_timeout: float) -> None:
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    kind = server_kind if server_kind != "auto" else ("nginx" if has(NGINX) else "aiohttp")
    started = time.monotonic()
    rows: list[Figures] = []
    hung_rows: list[HungFigures] = []
    with hung_listener(hung) as listener:
        for sites in sites_list:
            with site_server(kind, sites) as server:
                rows.append(run_monitord(server, sites, sweeps, True, profile))
                rows.append(run_monitord(server, sites, sweeps, False, profile))
                if has(MONIT):
                    rows.append(run_monit(server, sites, sweeps))
                if listener is not None:
                    hung_rows.append(run_monitord_hung(server, sites, listener, hung,
                                                       hung_timeout))
                    if has(MONIT):
                        hung_rows.append(run_monit_hung(server, sites, listener, hung,
                                                        hung_timeout, rows[-1].sweep_seconds))
    print("\n".join(machine_lines(kind)))
    print(f"sweeps: 1 warm-up + {sweeps} measured per tool; "
          f"run took {time.monotonic() - started:.0f} s\n")
    print(table(rows))
    if hung_rows:
        print(f"\none sweep over N healthy + H hung sites (a listener that accepts and never "
              f"answers), timeout {format_duration(hung_timeout)}:\n")
        print(hung_table(hung_rows))


def whole_seconds(text: str) -> float:
    """A duration of whole seconds, at least 1 (Monit's ``with timeout`` takes no less)."""
    seconds = parse_duration(text)
    if seconds < 1 or seconds != int(seconds):
        raise argparse.ArgumentTypeError("expected whole seconds, like 1s or 5s")
    return seconds


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", default="100,1000",
                        help="comma-separated numbers of sites (default 100,1000)")
    parser.add_argument("--sweeps", type=int, default=5, help="measured sweeps (default 5)")
    parser.add_argument("--server", choices=["auto", "nginx", "aiohttp"], default="auto",
                        help="what serves the sites (default: nginx if installed)")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile monitord's measured sweeps, stats to stderr "
                             "(inflates its CPU figure)")
    parser.add_argument("--hung", type=int, default=0, metavar="H",
                        help="also sweep N healthy + H hung sites, once per tool (default 0)")
    parser.add_argument("--hung-timeout", type=whole_seconds, default=1.0, metavar="T",
                        help="the checks' timeout in that sweep, whole seconds (default 1s)")
    hidden = argparse.SUPPRESS
    parser.add_argument("--role", choices=["parent", "child", "serve"], default="parent",
                        help=hidden)
    parser.add_argument("--port", type=int, default=0, help=hidden)
    parser.add_argument("--close-port", type=int, default=0, help=hidden)
    parser.add_argument("--hung-port", type=int, default=0, help=hidden)
    parser.add_argument("--work-dir", type=Path, help=hidden)
    parser.add_argument("--keep-alive", action="store_true", help=hidden)
    parser.add_argument("--access-log", type=Path, help=hidden)
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    if args.role == "child":
        child_main(args.port, int(args.sites), args.sweeps, args.work_dir, args.profile,
                   (args.hung, args.hung_port, args.hung_timeout), args.keep_alive)
    elif args.role == "serve":
        serve_aiohttp((args.port, args.close_port), int(args.sites), args.access_log)
    else:
        sites = [int(n) for n in args.sites.split(",")]
        parent_main(sites, args.sweeps, args.server, args.profile, args.hung,
                    args.hung_timeout)


if __name__ == "__main__":
    main(sys.argv[1:])
