"""Daemon cost benchmark: the real ``monitord run`` beside Monit, CPU per check and memory.

For each N, a private nginx serves N name-based sites (``siteNNNN.test``) on 127.0.0.1,
on one port per tool so that its access log tells the tools apart. Three processes then
run side by side, as users run them:

* Monit (``monit -I``): one ``check host ... protocol http`` per site, ``set daemon 10``,
  ``with timeout 5 seconds``;
* ``monitord run``, a new connection per check (the default);
* ``monitord run``, connections kept alive (``keep_alive = true``).

monitord gets one ``probe = "http"`` check per site (``host_header``, ``every = "10s"``,
``timeout = "5s"``), everything else default. Once every tool has checked every site
(the first full cycle), the script measures ``--windows`` windows of ``--window``
seconds: CPU-seconds of each process (user + system of its threads from
``/proc/PID/task/*/schedstat``, in nanoseconds, plus its children's from
``/proc/PID/stat``), divided by the requests nginx logged for that tool in the window,
and the resident memory (VmRSS) at the end of each window; it prints the medians and
the ratios to Monit. Start-up is the process's CPU when its first result is in (monitord:
its first check's log line; Monit: its first request in nginx's log).

``--hung H`` adds a round at ``--hung-sites`` N (1,000) with H sites that accept
connections and never answer (``timeout`` 5 s): how far apart each healthy site's checks
come, beside Monit's. ``--system`` measures the daemon idle on the stock ``system`` pack
(start-up CPU and RSS over ``--startups`` starts) beside Monit with the equivalent
``check system``, ``check filesystem`` and ``check file``.

Run: ``.venv/bin/python benchmarks/daemon_cost.py --sites 100,1000,5000 --hung 20 --system``
(about 12 minutes). This is a measurement, not a test: it prints tables and asserts
nothing about speed; it fails if a check does not answer 200 or a process dies.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import BinaryIO

from http_sweep import HungListener, command_version, free_port, stop
from profile_summary import profile_agent

NGINX = "/usr/sbin/nginx"
MONIT = "/usr/bin/monit"
ADDRESS = "127.0.0.1"
EVERY_SECONDS = 10
TIMEOUT_SECONDS = 5
LOG_FORMAT = "$msec|$server_port|$host|$status"
MIB = 1024 * 1024
TICK = os.sysconf("SC_CLK_TCK")
POLL_SECONDS = 0.01
START_SECONDS = 60.0          # a process must have made its first full cycle by then
FIRST_RESULT = re.compile(r" INFO (site\d+|load|memory|swap|disk-\w+|reboot-required): ")
ROOT = Path(__file__).resolve().parent.parent


def site_name(index: int) -> str:
    return f"site{index:04d}"


def hung_name(index: int) -> str:
    return f"hung{index:04d}"


# --------------------------------------------------------------------------- /proc


def cpu_seconds(pid: int) -> float:
    """User + system CPU of every thread of ``pid`` (ns precision), plus its waited-for
    children's (ticks). A thread that ended is missing from the sum; the agent's threads
    live as long as it does."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            total += int((task / "schedstat").read_text().split()[0])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return total / 1e9 + (int(fields[13]) + int(fields[14])) / TICK


def user_system(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of ``pid`` and its waited-for children (10 ms ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return ((int(fields[11]) + int(fields[13])) / TICK, (int(fields[12]) + int(fields[14])) / TICK)


def memory(pid: int) -> tuple[int, int]:
    """VmRSS and VmHWM of ``pid``, in bytes."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) * 1024
    return values["VmRSS"], values["VmHWM"]


# ---------------------------------------------------------------------------- nginx


def nginx_conf(directory: Path, ports: list[int], sites: int) -> str:
    listens = "".join(f"listen {ADDRESS}:{p}; " for p in ports)
    servers = "\n".join(
        f"  server {{ {listens}server_name {site_name(i)}.test; "
        f'return 200 "{site_name(i)} ok\\n"; }}' for i in range(sites))
    defaults = "\n".join(f"  server {{ listen {ADDRESS}:{p} default_server; return 404; }}"
                         for p in ports)
    temp = "\n".join(f"  {kind}_temp_path {directory / 'tmp' / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""worker_processes 1;
worker_rlimit_nofile 16384;
pid {directory / "nginx.pid"};
error_log {directory / "error.log"} warn;
events {{ worker_connections 12000; }}
http {{
  log_format cost '{LOG_FORMAT}';
  access_log {directory / "access.log"} cost;
  default_type text/plain;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  server_names_hash_max_size {max(512, sites * 4)};
  server_names_hash_bucket_size 64;
{temp}
{defaults}
{servers}
}}
"""


@contextlib.contextmanager
def nginx(sites: int, ports: list[int]) -> Iterator[Path]:
    """A private nginx serving ``sites`` sites on ``ports``; yields its access log."""
    with tempfile.TemporaryDirectory(prefix="daemon-cost-nginx-") as tmp:
        directory = Path(tmp)
        (directory / "tmp").mkdir()
        conf = directory / "nginx.conf"
        conf.write_text(nginx_conf(directory, ports, sites))
        argv = [NGINX, "-p", str(directory), "-c", str(conf), "-e",
                str(directory / "error.log"), "-g", "daemon off;"]
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            for port in ports:
                wait_answering(port, process)
            yield directory / "access.log"
        finally:
            stop(process)


def wait_answering(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited with {process.returncode}")
        request = urllib.request.Request(f"http://{ADDRESS}:{port}/")
        request.add_header("Host", f"{site_name(0)}.test")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(request, timeout=1) as resp:
                if resp.status == 200:
                    return
        time.sleep(0.05)
    raise RuntimeError(f"nginx not answering on port {port}")


@dataclass
class Request:
    at: float
    port: int
    host: str
    status: int


class AccessLog:
    """nginx's access log, read as it grows, kept by port."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("r")
        self._file.seek(0, os.SEEK_END)
        self._partial = ""
        self.by_port: dict[int, list[Request]] = {}

    def read(self) -> None:
        text = self._partial + self._file.read()
        *complete, self._partial = text.split("\n")
        for line in complete:
            at, port, host, status = line.split("|")
            self.by_port.setdefault(int(port), []).append(
                Request(float(at), int(port), host, int(status)))

    def close(self) -> None:
        self._file.close()


# ---------------------------------------------------------------------------- tools


@dataclass
class Tool:
    """One measured process: Monit or a ``monitord run``."""

    name: str
    port: int                         # the nginx port it checks
    argv: list[str]
    directory: Path
    status_port: int = 0              # monitord's status endpoint
    env: dict[str, str] | None = None
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0              # wall clock
    startup_cpu: float | None = None
    first_result: float | None = None  # wall clock
    reader: threading.Thread | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        log = (self.directory / "stderr.log").open("wb")
        self.started = time.time()
        self.process = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                        start_new_session=True, env=self.env)
        self.reader = threading.Thread(target=self._read, args=(log,), daemon=True)
        self.reader.start()

    def _read(self, log: BinaryIO) -> None:
        """Drain stderr to a file; note the CPU when the first result is logged."""
        assert self.process is not None and self.process.stderr is not None
        with log:
            for line in self.process.stderr:
                if self.startup_cpu is None and FIRST_RESULT.search(line.decode()):
                    self.note_first_result()
                log.write(line)

    def note_first_result(self) -> None:
        with contextlib.suppress(OSError):
            self.startup_cpu = cpu_seconds(self.pid)
            self.first_result = time.time()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)
            if self.reader is not None:
                self.reader.join(5)

    def tail(self) -> str:
        lines = (self.directory / "stderr.log").read_text(errors="replace").splitlines()
        return "\n".join(lines[-8:])


def monitord_argv(config: Path, state: Path) -> list[str]:
    script = Path(sys.executable).parent / "monitord"
    head = [str(script)] if script.exists() else [sys.executable, "-m", "monitord"]
    return [*head, "run", "-c", str(config), "--state-dir", str(state)]


def monitord_tool(name: str, directory: Path, port: int, sites: int, keep_alive: bool,
                  hung: tuple[int, int] = (0, 0), env: dict[str, str] | None = None) -> Tool:
    directory.mkdir()
    status_port = free_port()
    keep = "keep_alive = true\n" if keep_alive else ""
    checks = [
        f'[[check]]\nname = "{site_name(i)}"\nprobe = "http"\n'
        f'url = "http://{ADDRESS}:{port}/"\nhost_header = "{site_name(i)}.test"\n'
        f'every = "{EVERY_SECONDS}s"\ntimeout = "{TIMEOUT_SECONDS}s"\n{keep}'
        for i in range(sites)
    ]
    checks += [
        f'[[check]]\nname = "{hung_name(i)}"\nprobe = "http"\n'
        f'url = "http://{ADDRESS}:{hung[1]}/"\nhost_header = "{hung_name(i)}.test"\n'
        f'every = "{EVERY_SECONDS}s"\ntimeout = "{TIMEOUT_SECONDS}s"\n'
        for i in range(hung[0])
    ]
    config = directory / "monitord.toml"
    config.write_text(f'[status]\nlisten = "{ADDRESS}:{status_port}"\n\n' + "\n".join(checks))
    argv = monitord_argv(config, directory / "state")
    return Tool(name, port, argv, directory, status_port, env)


def monit_tool(directory: Path, port: int, sites: int, hung: tuple[int, int] = (0, 0),
               system: bool = False) -> Tool:
    directory.mkdir()
    head = [f"set daemon {EVERY_SECONDS}", f"set logfile {directory / 'monit.log'}",
            f"set pidfile {directory / 'monit.pid'}", f"set idfile {directory / 'monit.id'}",
            f"set statefile {directory / 'monit.state'}"]
    checks = [
        f"check host {name} with address {ADDRESS}\n"
        f'  if failed port {p} protocol http method GET request "/"\n'
        f"     with http headers [Host: {name}.test] with timeout {TIMEOUT_SECONDS} seconds\n"
        f"  then alert"
        for name, p in [(site_name(i), port) for i in range(sites)]
        + [(hung_name(i), hung[1]) for i in range(hung[0])]
    ]
    if system:
        checks = [MONIT_SYSTEM]
    rc = directory / "monitrc"
    rc.write_text("\n".join(head + checks) + "\n")
    rc.chmod(0o600)
    subprocess.run([MONIT, "-t", "-c", str(rc)], check=True, stdout=subprocess.DEVNULL,
                   stdin=subprocess.DEVNULL)
    return Tool("Monit", port, [MONIT, "-I", "-c", str(rc)], directory)


# The stock `system` pack in Monit's words: load, memory, swap, space and inodes of /,
# and a pending reboot (a file test).
MONIT_SYSTEM = """check system localhost
  if loadavg (5min) per core > 2 then alert
  if memory usage > 90% then alert
  if swap usage > 50% then alert
check filesystem root with path /
  if space usage > 85% then alert
  if inode usage > 85% then alert
check file reboot-required with path /var/run/reboot-required
  if exist then alert"""


# ---------------------------------------------------------------------------- rounds


@dataclass
class Figures:
    tool: str
    sites: int
    cpu_per_1000: list[float] = field(default_factory=list)   # one per window
    user_per_1000: list[float] = field(default_factory=list)  # from ticks: coarser
    system_per_1000: list[float] = field(default_factory=list)
    checks: list[int] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)
    hwm: int = 0
    startup_cpu: float | None = None
    startup_seconds: float | None = None

    def median_cpu(self) -> float:
        return statistics.median(self.cpu_per_1000)

    def median_rss(self) -> float:
        return statistics.median(self.rss) / MIB


def wait_first_cycle(tools: list[Tool], log: AccessLog, sites: int) -> None:
    """Until every tool has checked every site once (and Monit's start-up is noted)."""
    deadline = time.monotonic() + START_SECONDS + sites / 50
    while True:
        log.read()
        for tool in tools:
            if not tool.alive():
                raise RuntimeError(f"{tool.name} exited:\n{tool.tail()}")
            if tool.name == "Monit" and tool.startup_cpu is None and log.by_port.get(tool.port):
                tool.note_first_result()
        seen = [len({r.host for r in log.by_port.get(t.port, [])}) for t in tools]
        if all(n >= sites for n in seen):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"first cycle not complete: sites seen {seen} of {sites}")
        time.sleep(POLL_SECONDS * 5)


def measure_windows(tools: list[Tool], log: AccessLog, sites: int, window: float,
                    windows: int) -> list[Figures]:
    figures = [Figures(t.name, sites) for t in tools]
    for _ in range(windows):
        log.read()
        start = time.time()
        before = [cpu_seconds(t.pid) for t in tools]
        ticks_before = [user_system(t.pid) for t in tools]
        time.sleep(window)
        after = [cpu_seconds(t.pid) for t in tools]
        ticks = [tuple(b - a for a, b in zip(t0, user_system(t.pid), strict=True))
                 for t0, t in zip(ticks_before, tools, strict=True)]
        end = time.time()
        time.sleep(0.3)   # let requests of the window reach the log
        log.read()
        for tool, fig, cpu0, cpu1, split in zip(tools, figures, before, after, ticks,
                                                strict=True):
            if not tool.alive():
                raise RuntimeError(f"{tool.name} exited:\n{tool.tail()}")
            done = [r for r in log.by_port.get(tool.port, []) if start <= r.at < end]
            bad = [r for r in done if r.status != 200]
            if bad or not done:
                raise RuntimeError(f"{tool.name}: {len(done)} requests, {len(bad)} not 200")
            fig.cpu_per_1000.append((cpu1 - cpu0) / len(done) * 1000)
            fig.user_per_1000.append(split[0] / len(done) * 1000)
            fig.system_per_1000.append(split[1] / len(done) * 1000)
            fig.checks.append(len(done))
            fig.rss.append(memory(tool.pid)[0])
    for tool, fig in zip(tools, figures, strict=True):
        fig.hwm = memory(tool.pid)[1]
        fig.startup_cpu = tool.startup_cpu
        if tool.first_result is not None:
            fig.startup_seconds = tool.first_result - tool.started
    return figures


def status_counts(tool: Tool) -> dict[str, int]:
    """How many checks the agent's /status shows in each status."""
    with urllib.request.urlopen(f"http://{ADDRESS}:{tool.status_port}/status",
                                timeout=5) as resp:
        document = json.load(resp)
    counts: dict[str, int] = {}
    for check in document["checks"]:
        counts[check["status"]] = counts.get(check["status"], 0) + 1
    return counts


def verify_ok(tool: Tool, sites: int, hung: int = 0) -> None:
    counts = status_counts(tool)
    expected = {"OK": sites, **({"CRITICAL": hung} if hung else {})}
    if counts != expected:
        raise RuntimeError(f"{tool.name}: /status shows {counts}, expected {expected}")


@contextlib.contextmanager
def running(tools: list[Tool]) -> Iterator[list[Tool]]:
    try:
        for tool in tools:
            tool.start()
        yield tools
    finally:
        for tool in tools:
            tool.stop()


def cost_round(sites: int, args: argparse.Namespace, env: dict[str, str]) -> list[Figures]:
    """Monit and both monitord modes side by side over N sites."""
    ports = [free_port() for _ in range(3)]
    with nginx(sites, ports) as access, tempfile.TemporaryDirectory(
            prefix="daemon-cost-") as tmp:
        directory = Path(tmp)
        tools = [monit_tool(directory / "monit", ports[0], sites)] if has(MONIT) else []
        tools += [monitord_tool("monitord new", directory / "new", ports[1], sites, False,
                                env=env),
                  monitord_tool("monitord kept", directory / "kept", ports[2], sites, True,
                                env=env)]
        log = AccessLog(access)
        with running(tools):
            wait_first_cycle(tools, log, sites)
            time.sleep(2)
            figures = measure_windows(tools, log, sites, args.window, args.windows)
            if args.profile:
                profile_agent(tools[-2].pid, args.profile / f"daemon-{sites}")
            for tool in tools[-2:]:
                verify_ok(tool, sites)
        log.close()
    return figures


# ----------------------------------------------------------------------------- hung


@dataclass
class Lateness:
    tool: str
    sites: int
    hung: int
    intervals: list[float]     # between a healthy site's consecutive checks
    cycle: float = 0.0         # the longest stretch without a check of a healthy site


def hung_round(sites: int, hung: int, args: argparse.Namespace,
               env: dict[str, str]) -> list[Lateness]:
    ports = [free_port() for _ in range(2)]
    listener = HungListener(hung + 16)
    try:
        with nginx(sites, ports) as access, tempfile.TemporaryDirectory(
                prefix="daemon-cost-hung-") as tmp:
            directory = Path(tmp)
            tools = [monitord_tool("monitord new", directory / "new", ports[1], sites, False,
                                   (hung, listener.port), env)]
            if has(MONIT):
                tools.insert(0, monit_tool(directory / "monit", ports[0], sites,
                                           (hung, listener.port)))
            log = AccessLog(access)
            with running(tools):
                wait_first_cycle(tools, log, sites)
                # Long enough for Monit's second pass: its cycle waits out every hung site.
                span = max(args.window * args.windows,
                           EVERY_SECONDS + hung * TIMEOUT_SECONDS + 20 if has(MONIT) else 0)
                deadline = time.monotonic() + span
                while time.monotonic() < deadline:
                    time.sleep(1)
                    log.read()
                    listener.take()
                verify_ok(tools[-1], sites, hung)
            log.close()
            return [lateness(tool, log, sites, hung) for tool in tools]
    finally:
        listener.close()


def lateness(tool: Tool, log: AccessLog, sites: int, hung: int) -> Lateness:
    """The intervals between each healthy site's checks, as nginx logged them."""
    requests = log.by_port.get(tool.port, [])
    by_host: dict[str, list[float]] = {}
    for request in requests:
        by_host.setdefault(request.host, []).append(request.at)
    intervals = [b - a for times in by_host.values() for a, b in pairwise(times)]
    gaps = [b - a for a, b in pairwise(sorted(r.at for r in requests))]
    return Lateness(tool.name, sites, hung, intervals, max(gaps, default=0.0))


# ---------------------------------------------------------------------------- system


@dataclass
class Idle:
    tool: str
    startup_cpu: list[float] = field(default_factory=list)
    startup_seconds: list[float] = field(default_factory=list)
    rss: list[int] = field(default_factory=list)


def system_round(args: argparse.Namespace, env: dict[str, str]) -> list[Idle]:
    """Start-up and idle RSS on the stock system pack, ``--startups`` times each."""
    results = [Idle("monitord")] + ([Idle("Monit")] if has(MONIT) else [])
    for index in range(args.startups):
        with tempfile.TemporaryDirectory(prefix="daemon-cost-system-") as tmp:
            directory = Path(tmp)
            config = directory / "monitord.toml"
            config.write_text(f'include = ["pack:system"]\n[status]\n'
                              f'listen = "{ADDRESS}:{free_port()}"\n')
            tools = [Tool("monitord", 0, monitord_argv(config, directory / "state"),
                          directory, env=env)]
            if has(MONIT):
                tools.append(monit_tool(directory / "monit", 0, 0, system=True))
            with running(tools):
                deadline = time.monotonic() + 20
                while tools[0].startup_cpu is None and time.monotonic() < deadline:
                    time.sleep(POLL_SECONDS)
                time.sleep(args.idle)
                for tool, idle in zip(tools, results, strict=False):
                    if not tool.alive():
                        raise RuntimeError(f"{tool.name} exited:\n{tool.tail()}")
                    idle.rss.append(memory(tool.pid)[0])
                    if tool.name == "Monit":
                        idle.startup_cpu.append(cpu_seconds(tool.pid))
                if tools[0].startup_cpu is None or tools[0].first_result is None:
                    raise RuntimeError(f"monitord: no first result:\n{tools[0].tail()}")
                results[0].startup_cpu.append(tools[0].startup_cpu)
                results[0].startup_seconds.append(tools[0].first_result - tools[0].started)
        print(f"system pack: start {index + 1} of {args.startups} done", file=sys.stderr)
    return results


# ---------------------------------------------------------------------------- report


def has(path: str) -> bool:
    return Path(path).exists()


def machine_lines(env: dict[str, str]) -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    try:
        loop = "standard asyncio" if env.get("MONITORD_EVENT_LOOP") == "asyncio" else \
            f"uvloop {version('uvloop')}"
    except PackageNotFoundError:
        loop = "standard asyncio (uvloop not installed)"
    return [
        f"machine: {os.cpu_count()} cores, {model}, {platform.system()} {platform.release()}",
        f"python {platform.python_version()}, monitord {version('monitord')}, event loop: "
        f"{loop}",
        f"server: {command_version([NGINX, '-v'])}; peer: "
        f"{command_version([MONIT, '-V']) if has(MONIT) else 'monit not installed'}",
    ]


def cost_table(rows: list[list[Figures]]) -> str:
    head = ("| N sites | Monit CPU-s / 1,000 checks | monitord, new connection per check "
            "| monitord, kept alive | Monit RSS | monitord RSS (new / kept) "
            "| start-up CPU s: Monit / new / kept |")
    lines = [head, "|---:|---:|---:|---:|---:|---:|---:|"]
    for figures in rows:
        by = {f.tool: f for f in figures}
        monit, new, kept = by.get("Monit"), by["monitord new"], by["monitord kept"]
        base = monit.median_cpu() if monit else None
        starts = " / ".join(f"{f.startup_cpu:.2f}" if f and f.startup_cpu is not None
                            else "-" for f in (monit, new, kept))
        lines.append(
            f"| {new.sites:,} | {f'{base:.3f}' if base else '-'} | {cell(new, base)} "
            f"| {cell(kept, base)} "
            f"| {f'{monit.median_rss():.1f} MiB' if monit else '-'} "
            f"| {new.median_rss():.1f} / {kept.median_rss():.1f} MiB | {starts} |")
    return "\n".join(lines)


def cell(figures: Figures, base: float | None) -> str:
    ratio = f" ({figures.median_cpu() / base:.1f}x)" if base else ""
    return f"{figures.median_cpu():.3f}{ratio}"


def detail_lines(rows: list[list[Figures]]) -> list[str]:
    out = []
    for figures in rows:
        for f in figures:
            cpu = ", ".join(f"{c:.3f}" for c in f.cpu_per_1000)
            checks = ", ".join(str(c) for c in f.checks)
            split = (f"user {statistics.median(f.user_per_1000):.3f} + system "
                     f"{statistics.median(f.system_per_1000):.3f}")
            out.append(f"  N={f.sites:<5} {f.tool:<14} CPU/1000 per window: {cpu} ({split}); "
                       f"checks: {checks}; peak RSS {f.hwm / MIB:.1f} MiB; first result "
                       f"after {f.startup_seconds or 0:.2f} s")
    return out


def hung_table(rows: list[Lateness]) -> str:
    lines = ["| tool | N + hung | checks of healthy sites | interval median | p99 | max "
             "| late by > 1 s | note |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        ordered = sorted(r.intervals)
        p99 = ordered[int(len(ordered) * 0.99)] if ordered else 0.0
        late = sum(1 for i in ordered if i > EVERY_SECONDS + 1)
        note = (f"longest stretch without a healthy check {r.cycle:.1f} s"
                if r.tool == "Monit" else "")
        lines.append(f"| {r.tool} | {r.sites:,} + {r.hung} | {len(ordered) + r.sites:,} "
                     f"| {statistics.median(ordered):.3f} s | {p99:.3f} s "
                     f"| {ordered[-1]:.3f} s | {late} | {note} |")
    return "\n".join(lines)


def idle_table(rows: list[Idle]) -> str:
    lines = ["| tool | start-up CPU to first result | wall to first result | RSS idle |",
             "|---|---:|---:|---:|"]
    for r in rows:
        wall = f"{statistics.median(r.startup_seconds):.2f} s" if r.startup_seconds else "-"
        note = " (CPU after start-up and idle)" if r.tool == "Monit" else ""
        lines.append(f"| {r.tool} | {statistics.median(r.startup_cpu):.3f} s{note} | {wall} "
                     f"| {statistics.median(r.rss) / MIB:.1f} MiB |")
    return "\n".join(lines)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", default="100,1000,5000",
                        help="comma-separated numbers of sites (default 100,1000,5000)")
    parser.add_argument("--window", type=float, default=30.0,
                        help="seconds per measured window (default 30)")
    parser.add_argument("--windows", type=int, default=3, help="measured windows (default 3)")
    parser.add_argument("--hung", type=int, default=0, metavar="H",
                        help="also a round with H hung sites (default 0)")
    parser.add_argument("--hung-sites", type=int, default=1000, metavar="N",
                        help="healthy sites in that round (default 1000)")
    parser.add_argument("--system", action="store_true",
                        help="also start-up and idle RSS on the stock system pack")
    parser.add_argument("--startups", type=int, default=3,
                        help="starts on the system pack (default 3)")
    parser.add_argument("--idle", type=float, default=5.0,
                        help="seconds idle before the system pack's RSS is read (default 5)")
    parser.add_argument("--standard-loop", action="store_true",
                        help="run monitord on asyncio's own loop, not uvloop")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="py-spy samples of the new-connection agent per N, into DIR")
    return parser.parse_args(argv)


def exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)   # unwinds through the blocks that stop the processes


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    args = parse_args(argv)
    env = dict(os.environ, **({"MONITORD_EVENT_LOOP": "asyncio"} if args.standard_loop
                              else {}))
    sites = [int(n) for n in args.sites.split(",") if n]
    started = time.monotonic()
    rows = []
    for n in sites:
        rows.append(cost_round(n, args, env))
        print(f"N = {n} done", file=sys.stderr)
    hung = hung_round(args.hung_sites, args.hung, args, env) if args.hung else []
    idle = system_round(args, env) if args.system else []
    print("\n".join(machine_lines(env)))
    print(f"every {EVERY_SECONDS} s, timeout {TIMEOUT_SECONDS} s; {args.windows} windows of "
          f"{args.window:g} s per N; run took {time.monotonic() - started:.0f} s\n")
    if rows:
        print(cost_table(rows))
        print("\n".join(detail_lines(rows)))
    if hung:
        print(f"\n{args.hung} hung sites beside {args.hung_sites:,} healthy ones, timeout "
              f"{TIMEOUT_SECONDS} s: how far apart each healthy site's checks came\n")
        print(hung_table(hung))
    if idle:
        print(f"\nthe stock system pack, idle, median of {args.startups} starts\n")
        print(idle_table(idle))


if __name__ == "__main__":
    main(sys.argv[1:])
