"""The Debian package, on this machine: `make deb` builds it from the tree (twice: the
second build has a higher version), lintian has nothing left to say, and apt installs,
upgrades, removes and purges it, with the machine as it was at the end.

It needs root, the build dependencies (`apt-get build-dep ./`), lintian, and PyPI (the
build installs monitord's dependencies into the package's virtualenv). Where systemd does
not run, the services cannot be started by it: the installed daemon and central service
are started by hand, from the installed files, as their units would start them.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from monitord import __version__
from tests.conftest import IN_CI, unavailable

# Building both packages (a virtualenv each), lintian, and apt: minutes, not seconds.
pytestmark = pytest.mark.timeout(900)

ROOT = Path(__file__).resolve().parent.parent
UPGRADE_VERSION = f"{__version__}+upgrade1"
USER = "monitord-central"
PATHS = ["/etc/monitord", "/usr/share/monitord", "/var/lib/monitord", "/var/lib/monitord-central",
         "/opt/venvs/monitord", "/usr/bin/monitord", "/lib/systemd/system/monitord.service",
         "/usr/share/man/man8/monitord.8.gz"]
WANTS = Path("/etc/systemd/system/multi-user.target.wants")
AGENT_STATUS = ("127.0.0.1", 8461)  # as the stock configs say
CENTRAL_API = ("127.0.0.1", 8460)
POLL_SECONDS = 0.2
T = TypeVar("T")
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
           "LC_ALL": "C.UTF-8"}


@dataclass
class Packages:
    first: Path
    upgrade: Path


def run(argv: list[str], timeout: float = 120, **kwargs: object) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                          **kwargs)
    assert done.returncode == 0, f"{argv}: exit {done.returncode}\n{done.stdout}{done.stderr}"
    return str(done.stdout) + str(done.stderr)


def snapshot() -> dict[str, object]:
    """What the package may change on this machine, to compare before and after."""
    def entry(lookup: str) -> str:
        done = subprocess.run(["getent", lookup, USER], capture_output=True, text=True,
                              timeout=30, check=False)
        return done.stdout

    units = sorted(str(p) for base in (Path("/etc/systemd/system"),
                                       Path("/var/lib/systemd/deb-systemd-helper-enabled"))
                   if base.is_dir() for p in base.rglob("*monitord*"))
    installed = subprocess.run(["dpkg-query", "-W", "-f=${Status}", "monitord"],
                               capture_output=True, text=True, timeout=30, check=False)
    overrides = subprocess.run(["dpkg-statoverride", "--list"], capture_output=True, text=True,
                               timeout=30, check=False)
    return {"paths": {p: os.path.lexists(p) for p in [*PATHS, "/opt/venvs"]},
            "user": entry("passwd"), "group": entry("group"), "units": units,
            "package": installed.stdout, "overrides": sorted(overrides.stdout.splitlines())}


def leftovers() -> list[str]:
    """What of monitord's is on this machine: its package, its user, its files."""
    state = snapshot()
    found = [p for p in PATHS if os.path.lexists(p)]
    if state["package"]:
        found.insert(0, f"package: {state['package']}")
    if state["user"] or state["group"]:
        found.insert(0, f"user or group {USER}")
    return found


def remove_leftovers() -> None:
    if subprocess.run(["dpkg-query", "-W", "monitord"], capture_output=True, timeout=30,
                      check=False).returncode == 0:
        subprocess.run(["dpkg", "--purge", "monitord"], capture_output=True, timeout=300,
                       env=APT_ENV, check=False)
    subprocess.run(["dpkg-statoverride", "--remove", "/etc/monitord/central.toml"],
                   capture_output=True, timeout=30, check=False)
    subprocess.run(["deluser", "--system", "--quiet", USER], capture_output=True, timeout=60,
                   check=False)
    subprocess.run(["delgroup", "--system", "--quiet", USER], capture_output=True,
                   timeout=60, check=False)
    for path in map(Path, PATHS):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif os.path.lexists(path):
            path.unlink()


def require_a_clean_machine() -> None:
    if os.geteuid() != 0:
        unavailable("installing a package needs root")
    for tool in ("dpkg-buildpackage", "dh_virtualenv", "lintian", "apt-get",
                 "systemd-analyze", "man"):
        if shutil.which(tool) is None:
            unavailable(f"{tool} is not installed (apt-get build-dep ./; lintian, systemd, "
                        "man-db)")
    found = leftovers()
    if found and IN_CI:
        # A CI machine is the project's own: what an earlier, interrupted run of this test
        # left (the package, its user, its files) is removed, and the test goes on.
        remove_leftovers()
        found = leftovers()
    if found:
        unavailable(f"monitord is already on this machine ({', '.join(found)}); the "
                    "package test would change it")
    for host, port in (AGENT_STATUS, CENTRAL_API):
        with socket.socket() as sock:
            if sock.connect_ex((host, port)) == 0:
                unavailable(f"something listens on {host}:{port}, where the installed "
                            "services would")


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> Packages:
    require_a_clean_machine()
    base = tmp_path_factory.mktemp("deb")
    # lintian runs once, in its own test, not in each make deb.
    builds = [["make", "deb", f"DEB_OUT={base}/first", f"DEB_BUILD={base}/build1", "LINTIAN=:"],
              ["make", "deb", f"DEB_OUT={base}/upgrade", f"DEB_BUILD={base}/build2",
               f"DEB_VERSION={UPGRADE_VERSION}", "LINTIAN=:"]]
    with ThreadPoolExecutor(2) as pool:
        outputs = list(pool.map(lambda argv: run(argv, timeout=600, cwd=ROOT), builds))
    first = base / "first" / f"monitord_{__version__}_amd64.deb"
    upgrade = base / "upgrade" / f"monitord_{UPGRADE_VERSION}_amd64.deb"
    assert first.is_file() and upgrade.is_file(), outputs
    return Packages(first, upgrade)


@pytest.fixture
def machine_as_it_was() -> Iterator[None]:
    before = snapshot()
    try:
        yield
    finally:
        if subprocess.run(["dpkg-query", "-W", "monitord"], capture_output=True,
                          timeout=30, check=False).returncode == 0:
            subprocess.run(["dpkg", "--purge", "monitord"], capture_output=True, timeout=300,
                           env=APT_ENV, check=False)
        if not before["user"]:
            # Debian's packages keep their system users on purge (postrm says why).
            subprocess.run(["deluser", "--system", "--quiet", USER], capture_output=True,
                           timeout=60, check=False)
        if not before["group"]:
            subprocess.run(["delgroup", "--system", "--quiet", USER], capture_output=True,
                           timeout=60, check=False)
    assert snapshot() == before


def test_lintian_has_nothing_left_to_say(packages: Packages) -> None:
    # Every tag, down to --info and --pedantic, is fixed or explained in the overrides.
    said = run(["lintian", "--info", "--pedantic", "--fail-on", "error,warning,info,pedantic",
                str(packages.first)], timeout=300)
    assert [line for line in said.splitlines() if line[1:3] == ": "] == [], said


def test_package_holds_the_agent_the_central_service_and_their_documents(
    packages: Packages
) -> None:
    listing = run(["dpkg-deb", "--contents", str(packages.first)])
    for mode, path in [("-rw-r--r--", "./etc/monitord/monitord.toml"),
                       ("drwx------", "./etc/monitord/remediations.d/"),
                       ("-rw-r--r--", "./usr/share/monitord/checks/system.toml"),
                       ("-rwxr-xr-x", "./usr/share/monitord/remediations/restart-service"),
                       ("-rw-r--r--", "./lib/systemd/system/monitord-central@.service"),
                       ("-rw-r--r--", "./usr/share/man/man5/monitord.toml.5.gz"),
                       ("-rw-r--r--", "./usr/share/bash-completion/completions/monitord"),
                       ("-rw-r--r--", "./usr/share/zsh/vendor-completions/_monitord"),
                       ("-rwxr-xr-x", "./opt/venvs/monitord/bin/monitord")]:
        assert any(line.startswith(mode) and line.endswith(" " + path)
                   for line in listing.splitlines()), path
    assert "./usr/bin/monitord -> /opt/venvs/monitord/bin/monitord" in listing
    assert "__pycache__" not in listing and "/site-packages/pip/" not in listing
    conffiles = run(["dpkg-deb", "--info", str(packages.first), "conffiles"]).split()
    assert conffiles == ["/etc/monitord/central.toml", "/etc/monitord/monitord.toml"]


def test_install_upgrade_remove_purge(packages: Packages, machine_as_it_was: None) -> None:
    said = apt("install", packages.first)
    assert "monitord.service is enabled but not started" in said
    assert "OK: 6 checks from 2 files" in said  # postinst checked the config it installed
    installed_as_debian_lays_it_out()
    the_installed_agent_runs_and_answers()
    the_installed_central_service_runs_as_its_user()

    config = Path("/etc/monitord/monitord.toml")
    with config.open("a") as f:
        f.write("# the admin's own line\n")
    apt("install", packages.upgrade)
    assert version() == UPGRADE_VERSION
    assert config.read_text().endswith("# the admin's own line\n")  # a conffile: kept
    assert not list(Path("/etc/monitord").glob("*.dpkg-*"))
    assert Path("/var/lib/monitord/state.db").is_file()  # the agent's state survives
    the_installed_agent_runs_and_answers()

    apt("remove", "monitord")
    for gone in ("/opt/venvs/monitord", "/usr/bin/monitord", "/usr/share/monitord"):
        assert not os.path.lexists(gone), gone  # no byte-code or other leftovers
    assert config.read_text().endswith("# the admin's own line\n")
    assert Path("/var/lib/monitord/state.db").is_file()

    apt("purge", "monitord")
    for gone in ("/etc/monitord", "/var/lib/monitord", "/var/lib/monitord-central",
                 str(WANTS / "monitord.service")):
        assert not os.path.lexists(gone), gone
    assert "/etc/monitord/central.toml" not in run(["dpkg-statoverride", "--list"])
    assert pwd.getpwnam(USER)  # kept, as Debian does; the fixture removes it


def apt(action: str, what: Path | str) -> str:
    return run(["apt-get", action, "--yes", "--quiet", "--no-install-recommends",
                "-o", "Dpkg::Options::=--force-confold", str(what)], timeout=300, env=APT_ENV)


def version() -> str:
    return run(["dpkg-query", "-W", "-f=${Version}", "monitord"]).strip()


def installed_as_debian_lays_it_out() -> None:
    assert version() == __version__
    assert run(["/usr/bin/monitord", "--version"]).strip() == f"monitord {__version__}"
    # Enabled (a link in multi-user.target.wants, made even without systemd), not started;
    # the central service is not enabled.
    assert os.readlink(WANTS / "monitord.service") == "/lib/systemd/system/monitord.service"
    assert not os.path.lexists(WANTS / "monitord-central.service")
    for unit in ("monitord.service", "monitord-central.service", "monitord-central@.service"):
        said = run(["systemd-analyze", "verify", f"/lib/systemd/system/{unit}"])
        assert said == "", said  # ExecStart and the man pages of Documentation= exist
    for page in ("monitord", "monitord.toml", "monitord-central.toml"):
        assert run(["man", "-w", page]).startswith("/usr/share/man/")
    central = os.stat("/etc/monitord/central.toml")
    assert (central.st_uid, grp.getgrgid(central.st_gid).gr_name) == (0, USER)
    assert central.st_mode & 0o777 == 0o640
    assert pwd.getpwuid(os.stat("/var/lib/monitord-central").st_uid).pw_name == USER
    assert pwd.getpwnam(USER).pw_shell == "/usr/sbin/nologin"
    assert run(["/usr/bin/monitord", "check-config"]).strip() == "OK: 6 checks from 2 files"


def the_installed_agent_runs_and_answers() -> None:
    """What monitord.service runs, started by hand: its status shows the stock checks."""
    agent = subprocess.Popen(["/usr/bin/monitord", "run", "-c", "/etc/monitord/monitord.toml"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        status = wait_for(lambda: subprocess.run(
            ["/usr/bin/monitord", "status"], capture_output=True, text=True, timeout=30,
            check=False), lambda done: done.returncode != 3)
        # 0: all OK; 2: a check fails (a loaded test machine's load check may warn)
        assert status.returncode in (0, 2), status.stdout + status.stderr
        assert ": 6 checks, " in status.stdout.splitlines()[0]
        assert "disk-space " in status.stdout and "reboot-required " in status.stdout
    finally:
        agent.terminate()
        _, errors = agent.communicate(timeout=60)
    assert agent.returncode == 0, errors
    assert "monitord: watching 6 checks from 2 files" in errors


def the_installed_central_service_runs_as_its_user() -> None:
    """What monitord-central.service runs, as its user: it reads its config, makes its
    store in its state directory and answers /healthz."""
    as_user = {"user": USER, "group": USER, "extra_groups": [], "cwd": "/"}
    said = run(["/usr/bin/monitord", "central", "migrate"], **as_user)
    assert "applied schema version" in said
    central = subprocess.Popen(["/usr/bin/monitord", "central", "-c",
                                "/etc/monitord/central.toml"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True, **as_user)
    try:
        url = "http://{}:{}/healthz".format(*CENTRAL_API)
        answer = wait_for(lambda: _get(url), lambda body: body is not None)
        assert answer == '{"status": "ok"}'
    finally:
        central.terminate()
        _, errors = central.communicate(timeout=60)
    assert central.returncode == 0, errors
    store = Path("/var/lib/monitord-central/central.db")
    assert pwd.getpwuid(store.stat().st_uid).pw_name == USER


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return str(resp.read().decode())
    except OSError:
        return None


def wait_for(probe: Callable[[], T], ready: Callable[[T], bool],
             within_seconds: float = 30) -> T:
    """Poll ``probe`` until ``ready`` says yes (or the time is up: the last answer)."""
    deadline = time.monotonic() + within_seconds
    while True:
        answer = probe()
        if ready(answer) or time.monotonic() > deadline:
            return answer
        time.sleep(POLL_SECONDS)
