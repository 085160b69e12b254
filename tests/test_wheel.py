"""The sdist and the wheel as PyPI would get them: `python -m build` makes them, `twine
check` accepts their metadata, and the wheel installs in a fresh virtualenv where
monitord runs from it (its templates and schema files included). Needs PyPI, or pip's
cache, for the build backend and monitord's dependencies."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from monitord import __version__

# A virtualenv with every dependency installed takes a while.
pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parent.parent
WHEEL = f"monitord-{__version__}-py3-none-any.whl"
SDIST = f"monitord-{__version__}.tar.gz"


def run(argv: list[str], cwd: Path, timeout: float = 240) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          check=False)
    assert done.returncode == 0, f"{argv}: exit {done.returncode}\n{done.stdout}{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)], cwd=ROOT)
    assert sorted(p.name for p in out.iterdir()) == [WHEEL, SDIST]
    return out


def test_twine_accepts_both(dist: Path) -> None:
    said = run([sys.executable, "-m", "twine", "check", "--strict", str(dist / WHEEL),
                str(dist / SDIST)], cwd=dist)
    assert said.count("PASSED") == 2, said


def test_wheel_metadata_caps_every_runtime_dependency(dist: Path) -> None:
    with zipfile.ZipFile(dist / WHEEL) as wheel:
        metadata = wheel.read(f"monitord-{__version__}.dist-info/METADATA").decode()
        names = wheel.namelist()
    assert "License-Expression: MIT" in metadata
    runtime = [line for line in metadata.splitlines()
               if line.startswith("Requires-Dist:") and "extra ==" not in line]
    assert len(runtime) >= 11
    for line in runtime:
        assert re.search(r"<\d", line) and re.search(r">=\d", line), line
    assert "monitord/central/openapi.json" in names
    assert any(n.endswith("/schema/sqlite/001_initial.sql") for n in names)
    assert "monitord/templates/events/problem.body.j2" in names
    assert not [n for n in names if not n.startswith(("monitord/", "monitord-"))]


def test_sdist_is_the_whole_source(dist: Path) -> None:
    with tarfile.open(dist / SDIST) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    for path in ("LICENSE", "Makefile", "checks/system.toml", "remediations/restart-service",
                 "etc/monitord/monitord.toml", "systemd/monitord.service", "debian/rules",
                 "tools/gendocs.py", "tests/test_wheel.py"):
        assert path in names, path
    assert not [n for n in names if "__pycache__" in n]


def test_wheel_installs_and_runs_in_a_fresh_virtualenv(dist: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path)
    # Outside the checkout, so that `monitord` can only come from the wheel.
    run([str(venv / "bin/pip"), "install", "--quiet", str(dist / WHEEL)], cwd=tmp_path)
    run([str(venv / "bin/pip"), "check"], cwd=tmp_path)
    monitord = str(venv / "bin/monitord")
    assert run([monitord, "--version"], cwd=tmp_path).strip() == f"monitord {__version__}"
    where = run([str(venv / "bin/python"), "-c", "import monitord; print(monitord.__file__)"],
                cwd=tmp_path)
    assert where.startswith(str(venv))

    config = tmp_path / "monitord.toml"
    config.write_text('[[check]]\nname = "load"\nprobe = "load"\n')
    assert run([monitord, "check-config", "-c", str(config)], cwd=tmp_path).strip() == (
        "OK: 1 check from 1 file")
    tested = subprocess.run([monitord, "test", "load", "-c", str(config)], capture_output=True,
                            text=True, timeout=60, cwd=tmp_path, check=False)
    assert tested.returncode in (0, 1, 2) and tested.stdout.startswith("load: "), tested.stderr

    central = tmp_path / "central.toml"
    central.write_text(f'[central]\nstore_url = "sqlite://{tmp_path}/central.db"\n')
    said = run([monitord, "central", "migrate", "-c", str(central)], cwd=tmp_path)
    assert "applied schema version 1" in said  # the schema files came with the wheel
