"""`make install` stages a working monitord (virtualenv, packs, fixes, config, units), and
`make uninstall` removes it but the admin's config."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def make(target: str, destdir: Path) -> None:
    done = subprocess.run(["make", target, f"DESTDIR={destdir}", f"PYTHON={sys.executable}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.timeout(600)      # pip installs every dependency into a new virtualenv
def test_install_then_uninstall(tmp_path: Path) -> None:
    if shutil.which("make") is None:
        raise AssertionError("make is needed to install")
    stage = tmp_path / "root"
    make("install", stage)
    monitord = stage / "opt/monitord/bin/monitord"
    site = next((stage / "opt/monitord/lib").glob("python3*/site-packages/monitord"))
    assert (site / "templates/events/problem.body.j2").is_file()
    assert (site / "central/openapi.json").is_file()
    assert (site / "templates/console/incident.html.j2").is_file()
    assert (site / "store/schema/sqlite/001_initial.sql").is_file()
    assert (stage / "usr/share/monitord/checks/system.toml").is_file()
    fix = stage / "usr/share/monitord/remediations/restart-service"
    assert fix.stat().st_mode & 0o777 == 0o755
    assert (stage / "etc/monitord/remediations.d").stat().st_mode & 0o777 == 0o700
    assert (stage / "etc/monitord/central.toml").stat().st_mode & 0o777 == 0o640
    units = stage / "etc/systemd/system"
    assert ("ExecStart=/opt/monitord/bin/monitord run -c /etc/monitord/monitord.toml\n"
            in (units / "monitord.service").read_text())
    assert ("ExecStart=/opt/monitord/bin/monitord central -c /etc/monitord/central.toml\n"
            in (units / "monitord-central.service").read_text())
    assert ("ExecStart=/opt/monitord/bin/monitord central -c /etc/monitord/central.toml "
            "--listen 127.0.0.1:%i\n" in (units / "monitord-central@.service").read_text())

    config = tmp_path / "m.toml"
    config.write_text('[[check]]\nname = "load"\nprobe = "load"\n')
    done = subprocess.run([str(monitord), "test", "load", "-c", str(config)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode in (0, 1, 2) and done.stdout.startswith("load: "), done.stderr

    (stage / "etc/monitord/monitord.toml").write_text("# mine\n")
    make("install", stage)  # again: the admin's config is never overwritten
    assert (stage / "etc/monitord/monitord.toml").read_text() == "# mine\n"

    make("uninstall", stage)
    assert not (stage / "opt/monitord").exists()
    assert not (stage / "usr/share/monitord").exists()
    assert not (stage / "etc/systemd/system/monitord.service").exists()
    assert not (stage / "etc/systemd/system/monitord-central@.service").exists()
    assert (stage / "etc/monitord/monitord.toml").read_text() == "# mine\n"
