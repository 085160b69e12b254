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
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

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


def stop(process: subprocess.Popen[bytes], grace_seconds: float = 5.0) -> None:
    """SIGTERM the process, then SIGKILL its process group if it has not gone in time."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace_seconds)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(grace_seconds)


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
            output = run_child(port, sites, sweeps, Path(tmp), profile)
        lines = [line for line in log.new_lines() if line.agent != MONIT_AGENT]
    finally:
        log.close()
    check_log(lines, sites, sweeps + 1, "monitord")
    figures = Figures(**json.loads(output.strip().splitlines()[-1]))
    return replace(figures, connections="reused" if reuse else "new")


def run_child(port: int, sites: int, sweeps: int, work_dir: Path, profile: bool) -> str:
    """The child's stdout (its figures as JSON); its stderr passes through."""
    argv = [sys.executable, __file__, "--role", "child", "--port", str(port),
            "--sites", str(sites), "--sweeps", str(sweeps), "--work-dir", str(work_dir)]
    argv += ["--profile"] if profile else []
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


def child_main(port: int, sites: int, sweeps: int, work_dir: Path, profile: bool) -> None:
    import asyncio

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    figures = asyncio.run(child_sweeps(port, sites, sweeps, work_dir, profile))
    print(json.dumps(asdict(figures)))


def write_config(path: Path, port: int, sites: int) -> None:
    checks = "\n".join(
        f'[[check]]\nname = "{site_name(i)}"\nprobe = "http"\n'
        f'url = "http://{ADDRESS}:{port}/"\nhost_header = "{site_name(i)}.test"\n'
        f"expect_status = [200]\n"
        for i in range(sites)
    )
    path.write_text(checks)


async def child_sweeps(port: int, sites: int, sweeps: int, work_dir: Path,
                       profile: bool) -> Figures:
    from monitord.agent.daemon import Agent
    from monitord.config import load_config

    path = work_dir / "monitord.toml"
    write_config(path, port, sites)
    config = load_config(path, state_dir=str(work_dir / "state"))
    agent = Agent(config)
    await agent.start()
    try:
        await sweep(agent)  # warm-up: imports aiohttp, opens the connections
        cpu, walls = await measured_sweeps(agent, sweeps, profile)
    finally:
        await agent.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    note = "profiled" if profile else f"concurrency {config.agent.max_concurrent_probes}"
    return Figures("monitord", sites, sites * sweeps, cpu, peak, statistics.median(walls),
                   "", note)


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


async def sweep(agent: Any) -> None:
    """Run every check once, concurrently up to max_concurrent_probes; all must be OK."""
    import asyncio

    from monitord.model import Status

    limit = asyncio.Semaphore(agent.config.agent.max_concurrent_probes)

    async def bounded(check: Any) -> Any:
        async with limit:
            return await agent.run_once(check)

    results = await asyncio.gather(*(bounded(c) for c in agent.config.checks))
    failed = [r.summary for r in results if r.status is not Status.OK]
    if failed:
        raise RuntimeError(f"{len(failed)} of {len(results)} checks not OK, e.g. {failed[0]}")


def report_profile(profiler: Any) -> None:
    import pstats

    stats = pstats.Stats(profiler, stream=sys.stderr)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)


# ------------------------------------------------------------------------------- monit


def monitrc(directory: Path, port: int, sites: int) -> str:
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
    return f"{head}\n{checks}\n"


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
        f"aiohttp {version('aiohttp')}, pydantic {version('pydantic')}",
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


def has(path: str) -> bool:
    return shutil.which(path) is not None


def exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop servers


def parent_main(sites_list: list[int], sweeps: int, server_kind: str, profile: bool) -> None:
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    kind = server_kind if server_kind != "auto" else ("nginx" if has(NGINX) else "aiohttp")
    started = time.monotonic()
    rows: list[Figures] = []
    for sites in sites_list:
        with site_server(kind, sites) as server:
            rows.append(run_monitord(server, sites, sweeps, True, profile))
            rows.append(run_monitord(server, sites, sweeps, False, profile))
            if has(MONIT):
                rows.append(run_monit(server, sites, sweeps))
    print("\n".join(machine_lines(kind)))
    print(f"sweeps: 1 warm-up + {sweeps} measured per tool; "
          f"run took {time.monotonic() - started:.0f} s\n")
    print(table(rows))


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
    hidden = argparse.SUPPRESS
    parser.add_argument("--role", choices=["parent", "child", "serve"], default="parent",
                        help=hidden)
    parser.add_argument("--port", type=int, default=0, help=hidden)
    parser.add_argument("--close-port", type=int, default=0, help=hidden)
    parser.add_argument("--work-dir", type=Path, help=hidden)
    parser.add_argument("--access-log", type=Path, help=hidden)
    return parser.parse_args(argv)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    if args.role == "child":
        child_main(args.port, int(args.sites), args.sweeps, args.work_dir, args.profile)
    elif args.role == "serve":
        serve_aiohttp((args.port, args.close_port), int(args.sites), args.access_log)
    else:
        sites = [int(n) for n in args.sites.split(",")]
        parent_main(sites, args.sweeps, args.server, args.profile)


if __name__ == "__main__":
    main(sys.argv[1:])
