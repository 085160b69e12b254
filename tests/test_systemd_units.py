"""The unit files pass systemd-analyze verify (with ExecStart pointed at this install)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import unavailable

UNITS = Path(__file__).resolve().parent.parent / "systemd"
INSTALLED = "/opt/monitord/bin/monitord"


@pytest.mark.parametrize("unit", ["monitord.service", "monitord-central.service"])
def test_unit_file_verifies(unit: str, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        unavailable("systemd-analyze is not installed (Debian package systemd)")
    text = (UNITS / unit).read_text()
    assert INSTALLED in text
    # verify checks that ExecStart exists: point it at the monitord of this checkout.
    here = str(Path(sys.executable).with_name("monitord"))
    (tmp_path / unit).write_text(text.replace(INSTALLED, here))
    done = subprocess.run([analyze, "verify", str(tmp_path / unit)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr


def test_agent_unit_is_a_notify_service_with_a_watchdog() -> None:
    text = (UNITS / "monitord.service").read_text()
    for line in ("Type=notify", "WatchdogSec=", "Restart=on-failure",
                 "ExecReload=/bin/kill -HUP $MAINPID", "StateDirectory=monitord",
                 "ConfigurationDirectory=monitord"):
        assert line in text
