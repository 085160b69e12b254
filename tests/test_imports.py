"""An agent imports only what its checks use: the daemon on the stock system pack, run for
real in a fresh interpreter, loads none of the other probes, the central service, jinja2,
aiohttp, prometheus_client or the database, SNMP and DNS libraries."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from monitord import cli_central
from tests.nginx import free_port

ROOT = Path(__file__).resolve().parent.parent
RUN_AND_LIST = """
import json, os, signal, sys, threading
from monitord.cli import main

def stop():
    print(json.dumps(sorted(sys.modules)), flush=True)
    os.kill(os.getpid(), signal.SIGTERM)

threading.Timer(1.5, stop).start()
sys.exit(main(["run", "-c", sys.argv[1], "--state-dir", sys.argv[2]]))
"""
NEVER_IN_AN_IDLE_AGENT = [
    "monitord.central", "monitord.probes.http", "monitord.probes.snmp",
    "monitord.probes.mysql", "monitord.probes.postgres", "monitord.probes.dns",
    "monitord.probes.mail", "monitord.agent.metrics", "jinja2", "aiohttp",
    "prometheus_client", "pysnmp", "asyncpg", "aiomysql", "dns", "aiosmtplib",
    "cryptography", "httptools",
]


def modules_of_a_running_agent(tmp_path: Path, config: str) -> set[str]:
    path = tmp_path / "monitord.toml"
    path.write_text(config)
    done = subprocess.run([sys.executable, "-c", RUN_AND_LIST, str(path), str(tmp_path / "s")],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


def test_an_agent_on_the_system_pack_imports_only_what_it_uses(tmp_path: Path) -> None:
    loaded = modules_of_a_running_agent(
        tmp_path, f'include = ["pack:system"]\n[status]\nlisten = "127.0.0.1:{free_port()}"\n')
    assert {"monitord.probes.load", "monitord.probes.disk", "monitord.agent.status"} <= loaded
    unexpected = sorted(m for m in loaded
                        if any(m == p or m.startswith(p + ".") for p in NEVER_IN_AN_IDLE_AGENT))
    assert not unexpected


def test_an_http_check_loads_the_http_probe_and_not_aiohttp(tmp_path: Path) -> None:
    loaded = modules_of_a_running_agent(
        tmp_path, '[status]\nlisten = ""\n[[check]]\nname = "web"\nprobe = "http"\n'
                  'url = "http://127.0.0.1:1/"\n')
    assert {"monitord.probes.http", "httptools"} <= loaded
    assert not [m for m in loaded if m.split(".")[0] in ("aiohttp", "jinja2")]


def test_the_parser_names_the_central_config_the_central_service_reads() -> None:
    from monitord.central import config

    assert ((cli_central.CENTRAL_CONFIG, cli_central.CENTRAL_CONFIG_ENV)
            == (config.DEFAULT_PATH, config.ENV_VAR))
