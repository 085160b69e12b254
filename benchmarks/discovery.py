"""Discovery benchmark: how long discovery takes for N vhosts, and what the daemon costs
per 1,000 checks and per site when every site is discovered, beside hand-written checks
of the same sites and Monit's figures for the same sites in the same run.

For each N (100, 1,000, 5,000 by default), a private nginx on 127.0.0.1 serves N sites
(``siteNNNN.test``, 50 server blocks per included file, ``return 200``, a new connection
per request as a check a minute apart sees it). Then, each in a fresh interpreter so its
memory is its own:

* ``discovered``: the config is only ``[sites]``; discovery runs five times (the median
  and the fastest are shown, and how long ``nginx -T`` alone takes), the config is loaded (the site
  rules expanded over the kept discovery), an ``Agent`` starts, one warm-up sweep and
  ``--sweeps`` measured sweeps run every generated site check concurrently.
* ``hand-written``: the same checks written as ``[[check]]`` tables, the same sweeps.
* Monit (when installed): ``monit -I`` with one ``check host`` per site (from
  ``http_sweep.py``).

CPU is the process's user + system time over the measured sweeps; "per site" memory is
the resident memory the sites added: after the sweeps less before the config was loaded
(imports and the HTTP session already in). Run:
``.venv/bin/python benchmarks/discovery.py --sites 100,1000,5000 --sweeps 3``.
A measurement, not a test: it prints a table and asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import http_sweep  # the sibling benchmark: its nginx log, Monit and sweep

NGINX = http_sweep.NGINX
PER_FILE = 50
CHILD_SECONDS = 600.0
DISCOVERIES = 5
MIB = 2**20


@dataclass
class Row:
    tool: str
    sites: int
    checks: int
    cpu_seconds: float
    peak_rss_bytes: int
    site_rss_bytes: int = 0
    discover_seconds: float = 0.0
    fastest_seconds: float = 0.0
    dump_seconds: float = 0.0
    load_seconds: float = 0.0

    @property
    def cpu_per_1000(self) -> float:
        return self.cpu_seconds / self.checks * 1000


def nginx_conf(directory: Path, port: int, sites: int) -> Path:
    """nginx.conf including sites/*.conf, PER_FILE vhosts per file."""
    temp = directory / "tmp"
    temp.mkdir()
    (directory / "sites").mkdir()
    for start in range(0, sites, PER_FILE):
        servers = [f"server {{ listen {http_sweep.ADDRESS}:{port}; server_name "
                   f"{http_sweep.site_name(i)}.test; keepalive_timeout 0; "
                   f'return 200 "{http_sweep.site_name(i)} ok\\n"; }}'
                   for i in range(start, min(sites, start + PER_FILE))]
        (directory / "sites" / f"{start // PER_FILE:04d}.conf").write_text("\n".join(servers))
    conf = directory / "nginx.conf"
    temps = "\n".join(f"  {k}_temp_path {temp / k};"
                      for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf.write_text(f"""worker_processes 1;
worker_rlimit_nofile 8192;
pid {directory / "nginx.pid"};
error_log {directory / "error.log"} warn;
events {{ worker_connections 4096; }}
http {{
  log_format sweep '{http_sweep.LOG_FORMAT}';
  access_log {directory / "access.log"} sweep;
  server_names_hash_max_size {max(512, sites * 4)};
  server_names_hash_bucket_size 64;
{temps}
  server {{ listen {http_sweep.ADDRESS}:{port} default_server; return 404; }}
  include sites/*.conf;
}}
""")
    return conf


def start_nginx(directory: Path, sites: int) -> tuple[http_sweep.Server, list[str]]:
    port = http_sweep.free_port()
    conf = nginx_conf(directory, port, sites)
    argv = [NGINX, "-p", str(directory), "-c", str(conf)]
    process = subprocess.Popen([*argv, "-g", "daemon off;"], stdin=subprocess.DEVNULL,
                               start_new_session=True)
    server = http_sweep.Server("nginx", process, port, port, directory / "access.log")
    http_sweep.wait_ready(server)
    return server, argv


# ---------------------------------------------------------------------------- the child


def config_text(argv: list[str], hand: list[dict[str, Any]] | None) -> str:
    if hand is None:
        return (f'[sites]\ndiscover = ["nginx"]\nexpect_status = [200]\n'
                f"nginx = {{ command = {json.dumps([*argv, '-T'])} }}\n"
                'php_fpm = { pool_files = [] }\n')
    tables = []
    for check in hand:
        lines = [f"{k} = {json.dumps(v)}" for k, v in check.items()]
        tables.append("[[check]]\n" + "\n".join(lines))
    return "\n\n".join(tables)


async def child(argv: list[str], sites: int, sweeps: int, work: Path, mode: str) -> Row:
    from monitord.agent.daemon import Agent
    from monitord.config import load_config
    from monitord.discover import snapshot
    from monitord.discover.rules import Sites
    from monitord.discover.run import discover

    state = work / "state"
    path = work / "monitord.toml"
    path.write_text(config_text(argv, None))
    rules = load_config(path, state_dir=str(state)).sites
    times = []
    for _ in range(DISCOVERIES):
        started = time.perf_counter()
        found = await discover(rules)
        times.append(time.perf_counter() - started)
    dump = await _dump_seconds(argv)
    snapshot.save(str(state), found, [])
    if mode == "hand-written":
        generated = load_config(path, state_dir=str(state))
        path.write_text(config_text(argv, [_hand(c) for c in generated.discovered.checks
                                           if c.probe == "http"]))
        snapshot.path_in(str(state)).unlink()
    del Sites
    before = _rss()
    started = time.perf_counter()
    config = load_config(path, state_dir=str(state))
    load_seconds = time.perf_counter() - started
    agent = Agent(config)
    await agent.start()
    checks = [c for c in config.checks if c.probe == "http"]
    try:
        await http_sweep.sweep(agent, checks)
        cpu, _ = await _measured(agent, checks, sweeps)
    finally:
        await agent.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return Row(mode, sites, sites * sweeps, cpu, peak, (_rss() - before) // sites,
               statistics.median(times), min(times), dump, load_seconds)


async def _dump_seconds(argv: list[str]) -> float:
    from monitord.commands import run_command

    done = await run_command([*argv, "-T"], timeout=60, max_output=2**28)
    return done.duration_seconds


def _hand(check: Any) -> dict[str, Any]:
    return {"name": check.name, "probe": "http", "url": check.url,
            "host_header": check.host_header, "expect_status": check.expect_status,
            "body_not_matches": check.body_not_matches.pattern, "every": "1m",
            "timeout": "10s", "priority": "P1"}


async def _measured(agent: Any, checks: list[Any], sweeps: int) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.monotonic()
    for _ in range(sweeps):
        await http_sweep.sweep(agent, checks)
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return cpu, time.monotonic() - started


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def child_main(args: argparse.Namespace) -> None:
    import asyncio

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    row = asyncio.run(child(json.loads(args.argv), int(args.sites), args.sweeps,
                            args.work_dir, args.mode))
    print(json.dumps(asdict(row)))


def run_child(argv: list[str], sites: int, sweeps: int, mode: str) -> Row:
    with tempfile.TemporaryDirectory(prefix="discovery-bench-") as tmp:
        command = [sys.executable, __file__, "--role", "child", "--argv", json.dumps(argv),
                   "--sites", str(sites), "--sweeps", str(sweeps), "--work-dir", tmp,
                   "--mode", mode]
        done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              timeout=CHILD_SECONDS, check=True)
    return Row(**json.loads(done.stdout.decode().strip().splitlines()[-1]))


# ---------------------------------------------------------------------------- the parent


def table(rows: list[Row]) -> str:
    head = (f"{'tool':<13} {'N':>5} {'discovery s':>11} {'fastest':>7} {'nginx -T s':>10} "
            f"{'load s':>7} "
            f"{'CPU s/1000 checks':>17} {'peak RSS MiB':>12} {'RSS/site KiB':>12}")
    body = []
    for r in rows:
        found = (f"{r.discover_seconds:>11.3f} {r.fastest_seconds:>7.3f} "
                 f"{r.dump_seconds:>10.3f}") if r.tool == "discovered" \
            else f"{'-':>11} {'-':>7} {'-':>10}"
        load = f"{r.load_seconds:>7.3f}" if r.load_seconds else f"{'-':>7}"
        per_site = f"{r.site_rss_bytes / 1024:>12.1f}" if r.site_rss_bytes else f"{'-':>12}"
        body.append(f"{r.tool:<13} {r.sites:>5} {found} {load} {r.cpu_per_1000:>17.3f} "
                    f"{r.peak_rss_bytes / MIB:>12.1f} {per_site}")
    return "\n".join([head, "-" * len(head), *body])


def parent_main(sites_list: list[int], sweeps: int) -> None:
    signal.signal(signal.SIGTERM, http_sweep.exit_on_sigterm)
    started = time.monotonic()
    rows: list[Row] = []
    for sites in sites_list:
        with tempfile.TemporaryDirectory(prefix="discovery-nginx-") as tmp:
            server, argv = start_nginx(Path(tmp), sites)
            try:
                rows.append(run_child(argv, sites, sweeps, "discovered"))
                rows.append(run_child(argv, sites, sweeps, "hand-written"))
                if http_sweep.has(http_sweep.MONIT):
                    monit = http_sweep.run_monit(server, sites, sweeps)
                    rows.append(Row("Monit", sites, monit.checks, monit.cpu_seconds,
                                    monit.peak_rss_bytes))
            finally:
                http_sweep.stop(server.process)
    print("\n".join(http_sweep.machine_lines("nginx")))
    print(f"load average {os.getloadavg()[0]:.2f}; sweeps: 1 warm-up + {sweeps} measured "
          f"per tool, a new connection per check; run took {time.monotonic() - started:.0f} s\n")
    print(table(rows))


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", default="100,1000,5000",
                        help="comma-separated numbers of vhosts (default 100,1000,5000)")
    parser.add_argument("--sweeps", type=int, default=3, help="measured sweeps (default 3)")
    hidden = argparse.SUPPRESS
    parser.add_argument("--role", choices=["parent", "child"], default="parent", help=hidden)
    parser.add_argument("--argv", help=hidden)
    parser.add_argument("--mode", help=hidden)
    parser.add_argument("--work-dir", type=Path, help=hidden)
    args = parser.parse_args(argv)
    if args.role == "child":
        child_main(args)
    else:
        parent_main([int(n) for n in args.sites.split(",")], args.sweeps)


if __name__ == "__main__":
    main(sys.argv[1:])
