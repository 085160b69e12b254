"""SIGHUP on the real daemon: a config that validates but cannot start falls back to the
one that ran, and the daemon keeps watching."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.test_cli import read_until

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """
[agent]
state_dir = "{state}"
[status]
listen = ""
[store]
url = "{url}"
token_file = "{token}"
[[check]]
name = "load"
probe = "load"
every = "1s"
timeout = "1s"
"""


def test_reload_that_cannot_start_goes_back_to_the_running_config(tmp_path: Path) -> None:
    config = tmp_path / "monitord.toml"
    config.write_text(CONFIG.format(state=tmp_path / "state", url="", token=""))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen([sys.executable, "-m", "monitord", "run", "-c", str(config)],
                          cwd=ROOT, stderr=subprocess.PIPE, text=True, env=env) as proc:
        try:
            read_until(proc, "load: OK")
            config.write_text(CONFIG.format(state=tmp_path / "state",
                                            url="http://127.0.0.1:9/",
                                            token=tmp_path / "missing-token"))
            proc.send_signal(signal.SIGHUP)
            lines = read_until(proc, "going back to the previous config")
            assert "cannot read" in lines[-1] and "missing-token" in lines[-1]
            read_until(proc, "watching 1 check ")  # the old config runs again
            assert proc.poll() is None
            proc.send_signal(signal.SIGTERM)
            read_until(proc, "monitord: stopped")
            assert proc.wait(timeout=30) == 0
        finally:
            proc.kill()
