"""The unit files pass systemd-analyze verify (with ExecStart pointed at this install), and
the per-port template stays the central unit plus its port."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import unavailable

UNITS = Path(__file__).resolve().parent.parent / "systemd"
INSTALLED = "/usr/bin/monitord"


@pytest.mark.parametrize(
    "unit", ["monitord.service", "monitord-central.service", "monitord-central@.service"])
def test_unit_file_verifies(unit: str, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        unavailable("systemd-analyze is not installed (Debian package systemd)")
    text = (UNITS / unit).read_text()
    assert f"ExecStart={INSTALLED} " in text
    # verify checks that ExecStart exists: point it at the monitord of this checkout. The
    # man pages in Documentation= exist once the package is installed (tests/test_deb.py
    # verifies the installed units with them).
    here = str(Path(sys.executable).with_name("monitord"))
    (tmp_path / unit).write_text(text.replace(INSTALLED, here))
    done = subprocess.run([analyze, "verify", "--man=no", str(tmp_path / unit)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr


def test_agent_unit_is_a_notify_service_with_a_watchdog() -> None:
    text = (UNITS / "monitord.service").read_text()
    for line in ("Type=notify", "WatchdogSec=", "Restart=on-failure",
                 "ExecReload=/bin/kill -HUP $MAINPID", "StateDirectory=monitord",
                 "ConfigurationDirectory=monitord"):
        assert line in text


def test_central_runs_as_its_own_system_user() -> None:
    text = (UNITS / "monitord-central.service").read_text()
    assert "User=monitord-central\nGroup=monitord-central\n" in text
    assert "\nDynamicUser=" not in text  # the package makes the user; files can be given to it


def test_central_template_is_the_central_unit_with_a_port() -> None:
    central = (UNITS / "monitord-central.service").read_text()
    template = (UNITS / "monitord-central@.service").read_text()

    def body(text: str) -> str:
        return text[text.index("[Unit]"):]

    expected = body(central).replace(
        "Description=monitord central incident service\n",
        "Description=monitord central incident service on port %i\n").replace(
        "central.toml\n", "central.toml --listen 127.0.0.1:%i\n", 1)
    assert body(template) == expected
