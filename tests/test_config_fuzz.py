"""The config loader against generated configs: every one ends in a Config or in clear
one-line problems, never in a traceback or a hang (hypothesis, 600 examples a run); and
a running daemon SIGHUPed with generated configs keeps running on its old one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from monitord.config import Config, load_config
from monitord.errors import ConfigError
from tests.fuzz.configs import config_bytes
from tests.processes import ROOT, wait_for


@pytest.mark.timeout(300)
@settings(max_examples=600, deadline=None, derandomize=False,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(raw=config_bytes())
def test_any_config_loads_or_says_what_is_wrong_in_one_line_each(raw: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "monitord.toml"
        path.write_bytes(raw)
        try:
            config = load_config(path)
        except ConfigError as e:
            assert e.problems, "a refused config says why"
            for problem in e.problems:
                assert problem and "\n" not in problem and len(problem) < 2000, problem
                assert problem.split(":", 1)[0].endswith("monitord.toml"), problem
        else:
            assert isinstance(config, Config)


GOOD = """
[agent]
state_dir = "{state}"
[status]
listen = ""
[[check]]
name = "load"
probe = "load"
every = "1s"
timeout = "1s"
"""
RELOAD_SECONDS = 30.0


class Daemon:
    """A real `monitord run`, its log in a file the test reads as it grows."""

    def __init__(self, directory: Path) -> None:
        self.config = directory / "monitord.toml"
        self.state = directory / "state"
        self.config.write_text(GOOD.format(state=self.state))
        self.log = directory / "agent.log"
        self._out = self.log.open("wb")
        self.proc = subprocess.Popen(   # --state-dir wins over any config's state_dir
            [sys.executable, "-m", "monitord", "run", "-c", str(self.config),
             "--state-dir", str(self.state)],
            cwd=ROOT, stdout=self._out, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def count(self, needle: str) -> int:
        return self.log.read_text(errors="replace").count(needle)

    def reload(self, raw: bytes) -> None:
        """Write ``raw`` as the config, SIGHUP, and wait until the daemon said what it did."""
        before = self.count("reload refused") + self.count("reloading:")
        self.config.write_bytes(raw)
        self.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: self.count("reload refused") + self.count("reloading:") > before,
                 "the daemon's word on the reload", limit=RELOAD_SECONDS, alive=(self.proc,))

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self._out.close()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    running = Daemon(tmp_path_factory.mktemp("sighup"))
    try:
        wait_for(lambda: running.count("load: OK"), "the first result", alive=(running.proc,))
        yield running
    finally:
        running.close()


@pytest.mark.timeout(600)
@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(raw=config_bytes(contained=True))
def test_a_reload_with_any_config_never_ends_the_daemon(daemon: Daemon, raw: bytes) -> None:
    daemon.reload(raw)
    assert daemon.proc.poll() is None, daemon.log.read_text(errors="replace")[-2000:]


def test_after_bad_reloads_a_good_config_runs_again(daemon: Daemon) -> None:
    daemon.reload(b"this is not toml [")
    checks = daemon.count("load: ")
    daemon.reload(GOOD.format(state=daemon.state).encode())
    wait_for(lambda: daemon.count("load: ") > checks or daemon.count("watching 1 check "),
             "the good config at work", alive=(daemon.proc,))
    assert daemon.proc.poll() is None
    assert "Traceback" not in daemon.log.read_text(errors="replace")
