"""The daemon as a real process heals a real nginx killed with SIGKILL, and says so."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.nginx import Nginx
from tests.test_cli import read_until

ROOT = Path(__file__).resolve().parent.parent


def test_killed_nginx_is_back_and_the_log_tells_the_story(tmp_path: Path) -> None:
    nginx = Nginx(tmp_path / "nginx")
    nginx.start()
    config = tmp_path / "monitord.toml"
    config.write_text(f"""
[healer]
grace = "0s"

[[check]]
name = "site"
probe = "http"
url = "http://127.0.0.1:{nginx.port}/"
every = "1s"
timeout = "1s"
fail_after = 2
priority = "P1"
start = {json.dumps(nginx.argv)}
heal = [{{ run = "start", settle = "500ms" }}]
""")
    argv = [sys.executable, "-m", "monitord", "run", "-c", str(config), "--state-dir",
            str(tmp_path / "state")]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        with subprocess.Popen(argv, cwd=ROOT, stderr=subprocess.PIPE, text=True,
                              env=env) as proc:
            try:
                read_until(proc, "site: OK")
                nginx.kill()
                story = read_until(proc, "site: healed")
                assert nginx.answers()
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    finally:
        nginx.stop()
    messages = [line.split(" ", 3)[3] for line in story]
    assert len(messages) == 6, "\n".join(messages)
    assert messages[0].startswith("site: CRITICAL (soft 1/2): cannot connect")
    assert messages[1].startswith("site: CRITICAL (hard, after 2 failures)")
    assert messages[2] == "site: running its fix ladder (1 fix; run 1 of 3 allowed per 1h)"
    assert messages[3].startswith("site: OK (recovering 1/2): HTTP 200")  # the re-probe
    assert messages[4].startswith(f"site: fix 1/1: start ({' '.join(nginx.argv)}): exit 0")
    assert "re-probe: OK: HTTP 200" in messages[4]
    assert messages[5] == "site: healed: fixed by start after 1 step"
