"""Import cost: what an idle agent on the stock ``system`` pack loads, and what it costs.

A fresh interpreter takes the agent's own steps one at a time (the event loop, pydantic,
the config with the ``system`` pack, the agent's modules, the embedded store) and then
runs the real daemon (``monitord.cli.main(["run", ...])``) until its first results are
in; after each step it notes its resident memory (VmRSS) and CPU time. Then, each in a
fresh interpreter that has taken the same steps, the libraries an idle agent does *not*
load are imported one by one, to show what each would cost it.

Run: ``.venv/bin/python benchmarks/import_cost.py`` (about 20 s). A measurement, not a
test: it prints tables and asserts nothing.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import threading
from pathlib import Path
from typing import Any

# The child process imports only what is above (the agent imports all of it anyway):
# what the parent needs is imported in its own functions.

MIB = 1024 * 1024
ROOT = Path(__file__).resolve().parent.parent

# (label, code) in the order the agent takes them.
STEPS = [
    ("ssl (asyncio imports it)", "import ssl"),
    ("asyncio", "import asyncio"),
    ("uvloop", "import uvloop"),
    ("pydantic, pydantic-core", "import pydantic, pydantic_core"),
    ("pydantic: the first model (schema builder, plugin lookup)",
     "class _First(pydantic.BaseModel):\n    x: int = 0"),
    ("monitord.schema (the shared vocabulary)", "import monitord.schema"),
    ("monitord.config, the probe registry", "import monitord.config"),
    ("the config with pack:system (load, memory, disk, reboot probes; psutil)",
     "config = monitord.config.load_config(CONFIG)"),
    ("the agent's modules (daemon, flow, state, outbox, status, sqlite3)",
     "import monitord.cli, monitord.agent.service, monitord.agent.eventloop"),
    ("the embedded store (monitord.store.sqlite)", "import monitord.store.sqlite"),
]
# What an idle agent on the system pack does not load: what each would add.
OPTIONAL = [
    ("the http probe (httptools, httpwire)", "import monitord.probes.http"),
    ("prometheus_client (/metrics, on the first scrape)", "import monitord.agent.metrics"),
    ("jinja2 (event texts, on the first problem)", "import jinja2.sandbox"),
    ("cryptography.x509 (an unverified certificate's expiry)", "import cryptography.x509"),
    ("aiohttp (client: a central store's delivery)", "import aiohttp"),
    ("aiohttp.web (the old status endpoint)", "import aiohttp.web"),
    ("dnspython (dns probe)", "import dns.asyncquery, dns.message"),
    ("pysnmp (snmp probe)", "import pysnmp.hlapi.v3arch.asyncio"),
    ("asyncpg (postgres probe)", "import asyncpg"),
    ("aiomysql (mysql probe)", "import aiomysql"),
    ("the central service (monitord.central.app)", "import monitord.central.app"),
]


def rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(config: str, state: str, extra: str, run_seconds: float) -> None:
    """Take the steps, printing one JSON line per step; then ``extra`` or the daemon."""
    scope: dict[str, object] = {"CONFIG": config}
    print(json.dumps({"step": "the interpreter (python, site; json, typing, argparse)",
                      "rss": rss(), "cpu": cpu()}),
          flush=True)
    for label, code in STEPS:
        exec(code, scope)   # the benchmark's own fixed steps
        print(json.dumps({"step": label, "rss": rss(), "cpu": cpu()}), flush=True)
    if extra:
        exec(extra, scope)
        print(json.dumps({"step": "extra", "rss": rss(), "cpu": cpu()}), flush=True)
        return
    run_daemon(config, state, run_seconds)


def run_daemon(config: str, state: str, seconds: float) -> None:
    """The real ``monitord run`` in this process, stopped after ``seconds``."""
    from monitord.cli import main

    def note_and_stop() -> None:
        modules = sorted(sys.modules)
        tops: dict[str, int] = {}
        for name in modules:
            tops[name.split(".")[0]] = tops.get(name.split(".")[0], 0) + 1
        print(json.dumps({"step": f"the daemon running, first results in ({seconds:g} s)",
                          "rss": rss(), "cpu": cpu(), "modules": len(modules),
                          "packages": tops}), flush=True)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Timer(seconds, note_and_stop).start()
    main(["run", "-c", config, "--state-dir", state, "--log-format", "plain"])


def run_child(extra: str, run_seconds: float) -> list[dict[str, Any]]:
    import socket
    import subprocess
    import tempfile

    with socket.socket() as probe_port:
        probe_port.bind(("127.0.0.1", 0))
        port = probe_port.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="import-cost-") as tmp:
        config = Path(tmp) / "monitord.toml"
        config.write_text(f'include = ["pack:system"]\n[status]\nlisten = "127.0.0.1:{port}"\n')
        argv = [sys.executable, __file__, "--role", "child", "--config", str(config),
                "--state", str(Path(tmp) / "state"), "--extra", extra,
                "--run-seconds", str(run_seconds)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False,
                              cwd=ROOT)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode not in (0, -signal.SIGTERM) or not lines:
        raise RuntimeError(f"child failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return lines


def median_rows(runs: list[list[dict[str, Any]]]) -> list[tuple[str, float, float]]:
    """Per step: median RSS (MiB) and median CPU (s) across runs."""
    import statistics

    rows = []
    for index, first in enumerate(runs[0]):
        rss_values = [float(run[index]["rss"]) for run in runs]
        cpu_values = [float(run[index]["cpu"]) for run in runs]
        rows.append((str(first["step"]), statistics.median(rss_values) / MIB,
                     statistics.median(cpu_values)))
    return rows


def main(argv: list[str]) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--run-seconds", type=float, default=3.0,
                        help="how long the daemon runs before its RSS is read")
    parser.add_argument("--role", default="parent", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    parser.add_argument("--extra", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "child":
        child(args.config, args.state, args.extra, args.run_seconds)
        return
    report(args.repeat, args.run_seconds)


def report(repeat: int, run_seconds: float) -> None:
    import statistics

    runs = [run_child("", run_seconds) for _ in range(repeat)]
    print(f"python {sys.version.split()[0]}; median of {repeat} fresh interpreters\n")
    print("| step | RSS after | added | CPU after |\n|---|---:|---:|---:|")
    previous = 0.0
    for label, mib, seconds in median_rows(runs):
        print(f"| {label} | {mib:.1f} MiB | {mib - previous:+.1f} | {seconds:.3f} s |")
        previous = mib
    daemon = runs[0][-1]
    packages = sorted(daemon.get("packages", {}).items(), key=lambda kv: (-kv[1], kv[0]))
    print(f"\nthe running daemon holds {daemon.get('modules')} modules; by package: "
          + ", ".join(f"{name} {count}" for name, count in packages if count > 1))
    print("\nwhat an idle agent on the system pack does not load, and what each would add:\n")
    print("| import | added RSS | added CPU |\n|---|---:|---:|")
    for label, code in OPTIONAL:
        extra = [run_child(code, 0)[-2:] for _ in range(repeat)]
        added = statistics.median(e[1]["rss"] - e[0]["rss"] for e in extra)
        seconds = statistics.median(e[1]["cpu"] - e[0]["cpu"] for e in extra)
        print(f"| {label} | {added / MIB:+.1f} MiB | {seconds:.3f} s |")


if __name__ == "__main__":
    main(sys.argv[1:])
