"""The stock service fixes, run as the healer runs them: through ``run_command``, without a
shell, with a clean environment plus ``MONITORD_*``.

restart-service and reload-service drive Debian's real /etc/init.d/nginx through
``service`` (systemd does not run on the test machines). Their systemd path drives a
stand-in systemctl that records its arguments, given through the scripts' test-only
MONITORD_SYSTEMCTL and MONITORD_SYSTEMD_DIR. repair-mysql-tables repairs a MyISAM table
corrupted on disk in the real MariaDB; flush-mail-queue flushes a real Postfix queue.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psutil
import pytest

from monitord.commands import SAFE_PATH, CommandResult, run_command
from tests.conftest import unavailable

FIXES = Path(__file__).resolve().parents[2] / "remediations"
SERVICE_FIXES = ("restart-service", "reload-service", "restart-php-fpm",
                 "repair-mysql-tables", "flush-mail-queue")
FIX_TIMEOUT_SECONDS = 30.0
WAIT_SECONDS = 15.0
SYSTEMD_RUNS = Path("/run/systemd/system").is_dir()
NGINX_PIDFILE = Path("/run/nginx.pid")
NGINX_URL = "http://127.0.0.1:80/"
FIXTEST_DB = "monitord_fixtest"
PAGES = f"{FIXTEST_DB}.pages"
PAGE_ROWS = 50
UNSAFE_UNITS = ["nginx;reboot", "../x", "..", "-x", "--force", "", "nginx reboot", "$(reboot)",
                "a/b", "nginx\nreboot"]


@dataclass
class Fixes:
    """Runs a stock fix with the environment the healer gives it."""

    state_dir: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    async def run(self, name: str, *args: str, dry_run: bool = False) -> CommandResult:
        env = {
            "MONITORD_CHECK": "test-check",
            "MONITORD_HOST": socket.gethostname(),
            "MONITORD_STATUS": "CRITICAL",
            "MONITORD_SUMMARY": "connection refused by 127.0.0.1:80",
            "MONITORD_STATE_DIR": str(self.state_dir),
            **self.extra_env,
        }
        if dry_run:
            env["MONITORD_DRY_RUN"] = "1"
        result = await run_command([str(FIXES / name), *args], timeout=FIX_TIMEOUT_SECONDS,
                                   env=env)
        assert result.exit_code is not None, f"{name}: {result.describe()}\n{result.output}"
        return result


@pytest.fixture
def fixes(tmp_path: Path) -> Fixes:
    # Like the daemon's state directory: it does not exist until a fix needs it.
    return Fixes(tmp_path / "var" / "fixes")


async def host(*argv: str, timeout: float = FIX_TIMEOUT_SECONDS) -> CommandResult:
    """Run a command on this machine for a test's setup or teardown."""
    return await run_command(argv, timeout=timeout)


async def wait_until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not await condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {WAIT_SECONDS:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)


def usage_line(result: CommandResult, name: str) -> str:
    lines = result.output.strip().splitlines()
    assert lines, f"{name} printed nothing"
    return lines[-1]


# --- contract ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", SERVICE_FIXES)
def test_fix_is_an_executable_shell_script_whose_header_states_its_contract(name: str) -> None:
    path = FIXES / name
    assert os.access(path, os.X_OK), f"{path} is not executable"
    text = path.read_text()
    assert text.startswith("#!/bin/sh\n")
    header = text.split("\n\n", 1)[0]
    for part in ("Arguments", "Environment", "MONITORD_DRY_RUN", "Exit codes", "Scope",
                 "Safe to repeat"):
        assert part in header, f"{name}: header does not mention {part!r}"
    assert "\nset -eu\n" in text
    assert "eval" not in text


# --- restart-service and reload-service: the real init.d path, with nginx ---------------


def nginx_installed() -> bool:
    return Path("/etc/init.d/nginx").is_file()


def nginx_master_pid() -> int | None:
    """The pid in nginx's pidfile, if that process is alive and is nginx."""
    try:
        pid = int(NGINX_PIDFILE.read_text().strip())
        return pid if psutil.Process(pid).name() == "nginx" else None
    except (OSError, ValueError, psutil.Error):
        return None


def port_80_open() -> bool:
    with socket.socket() as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", 80)) == 0


async def nginx_down() -> bool:
    return nginx_master_pid() is None and not port_80_open()


async def nginx_workers() -> set[int]:
    pid = nginx_master_pid()
    return {p.pid for p in psutil.Process(pid).children()} if pid else set()


async def http_status(url: str) -> int:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session, \
            session.get(url) as response:
        return response.status


@pytest.fixture
async def stopped_nginx() -> AsyncIterator[None]:
    """Debian's nginx, stopped; stopped again (port 80 freed) after the test."""
    if not nginx_installed():
        unavailable("Debian's nginx is not installed (/etc/init.d/nginx is missing)")
    if os.geteuid() != 0:
        unavailable("starting the system nginx needs root")
    if not await nginx_down():
        unavailable("nginx, or something else, already serves 127.0.0.1:80; not touching it")
    try:
        yield
    finally:
        stopped = await host("service", "nginx", "stop")
        await wait_until(nginx_down, f"nginx to stop and free port 80 ({stopped.output!r})")


async def test_restart_service_starts_a_stopped_nginx(
        fixes: Fixes, stopped_nginx: None) -> None:
    result = await fixes.run("restart-service", "nginx")
    assert result.exit_code == 0, result.output
    assert "nginx" in result.output
    await wait_until(lambda: asyncio.to_thread(port_80_open), "nginx to listen on port 80")
    assert await http_status(NGINX_URL) == 200
    assert nginx_master_pid() is not None


async def test_restart_service_shows_the_service_state_afterwards(
        fixes: Fixes, stopped_nginx: None) -> None:
    result = await fixes.run("restart-service", "nginx")
    assert result.exit_code == 0, result.output
    expected = "nginx is now: active" if SYSTEMD_RUNS else "nginx is running"
    assert expected in result.output


async def test_reload_service_reloads_a_running_nginx_in_place(
        fixes: Fixes, stopped_nginx: None) -> None:
    assert (await fixes.run("restart-service", "nginx")).exit_code == 0
    await wait_until(lambda: asyncio.to_thread(port_80_open), "nginx to listen on port 80")
    master = nginx_master_pid()
    old_workers = await nginx_workers()
    assert master is not None and old_workers

    result = await fixes.run("reload-service", "nginx")

    assert result.exit_code == 0, result.output

    async def workers_replaced() -> bool:
        workers = await nginx_workers()
        return bool(workers) and workers.isdisjoint(old_workers)

    await wait_until(workers_replaced, "nginx to replace its workers after the reload")
    assert nginx_master_pid() == master, "a reload must keep the master process"
    assert await http_status(NGINX_URL) == 200


async def test_reload_service_on_a_stopped_service_exits_1_and_leaves_it_stopped(
        fixes: Fixes, stopped_nginx: None) -> None:
    result = await fixes.run("reload-service", "nginx")
    assert result.exit_code == 1, result.output
    assert "nginx is not running" in result.output
    assert "a reload cannot start it" in result.output
    assert await nginx_down()


async def test_dry_run_restart_only_says_what_it_would_do(
        fixes: Fixes, stopped_nginx: None) -> None:
    result = await fixes.run("restart-service", "nginx", dry_run=True)
    assert result.exit_code == 0, result.output
    would = "systemctl restart nginx" if SYSTEMD_RUNS else "service nginx restart"
    assert f"dry run: would run: {would}" in result.output
    assert await nginx_down()
    assert not fixes.state_dir.exists()


@pytest.mark.parametrize("name", ["restart-service", "reload-service"])
async def test_unknown_unit_is_not_applicable(fixes: Fixes, name: str) -> None:
    result = await fixes.run(name, "monitord-no-such-unit")
    assert result.exit_code == 3, result.output
    expected = ("systemd knows no unit monitord-no-such-unit" if SYSTEMD_RUNS else
                "no service manager found: neither systemd nor "
                "/etc/init.d/monitord-no-such-unit")
    assert expected in result.output


@pytest.mark.parametrize("unit", UNSAFE_UNITS)
@pytest.mark.parametrize("name", ["restart-service", "reload-service"])
async def test_unsafe_unit_name_is_a_usage_error(fixes: Fixes, name: str, unit: str) -> None:
    result = await fixes.run(name, "nginx", unit)
    assert result.exit_code == 2, result.output
    assert usage_line(result, name).startswith(f"usage: {name} UNIT...")
    assert "running:" not in result.output, "nothing may run before every name is checked"


@pytest.mark.parametrize("name", ["restart-service", "reload-service"])
async def test_no_unit_is_a_usage_error(fixes: Fixes, name: str) -> None:
    result = await fixes.run(name)
    assert result.exit_code == 2
    assert usage_line(result, name).startswith(f"usage: {name} ")


async def test_glob_without_systemd_is_a_usage_error(fixes: Fixes, tmp_path: Path) -> None:
    fixes.extra_env["MONITORD_SYSTEMD_DIR"] = str(tmp_path / "no-systemd-here")
    result = await fixes.run("restart-service", "php*-fpm")
    assert result.exit_code == 2, result.output
    assert "a glob (php*-fpm) needs systemd" in result.output


# --- the systemd path, against a stand-in systemctl --------------------------------------

FAKE_SYSTEMCTL = """#!/bin/sh
# Stand-in for systemctl: records its arguments, answers from the files beside it.
dir='{dir}'
printf '%s\\n' "$*" >>"$dir/calls"
for last; do :; done
case "$1" in
    show)
        case "$3" in
            Result) cat "$dir/result" ;;
            LoadState) if grep -qxF "$last" "$dir/missing"; then echo not-found;
                       else echo loaded; fi ;;
        esac ;;
    restart)
        if [ "$(cat "$dir/result")" != success ]; then
            echo "Job for $last.service failed." >&2
            exit 1
        fi
        echo active >"$dir/active" ;;
    reset-failed) echo success >"$dir/result" ;;
    reload) ;;
    is-active)
        state=$(cat "$dir/active")
        [ "$2" = --quiet ] || echo "$state"
        [ "$state" = active ] ;;
    list-units) cat "$dir/units" ;;
    list-unit-files)
        while read -r name rest; do
            case $name in $last) echo "$name $rest" ;; esac
        done <"$dir/unit-files" ;;
esac
"""


class FakeSystemd:
    """A systemd directory and a systemctl whose answers the test sets, one unit at a time."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "system").mkdir(parents=True)
        systemctl = root / "systemctl"
        systemctl.write_text(FAKE_SYSTEMCTL.format(dir=root))
        systemctl.chmod(0o755)
        for name, text in (("result", "success"), ("active", "inactive"), ("missing", ""),
                           ("units", ""), ("unit-files", ""), ("calls", "")):
            self.set(name, text)

    def set(self, name: str, text: str) -> None:
        (self.root / name).write_text(text + "\n" if text else "")

    def env(self) -> dict[str, str]:
        return {"MONITORD_SYSTEMCTL": str(self.root / "systemctl"),
                "MONITORD_SYSTEMD_DIR": str(self.root / "system")}

    def calls(self) -> list[str]:
        return (self.root / "calls").read_text().splitlines()

    def changes(self) -> list[str]:
        """The calls that change something: restart, reload, reset-failed."""
        return [c for c in self.calls() if c.split()[0] in ("restart", "reload", "reset-failed")]


@pytest.fixture
def systemd(tmp_path: Path, fixes: Fixes) -> FakeSystemd:
    fake = FakeSystemd(tmp_path / "systemd")
    fixes.extra_env.update(fake.env())
    return fake


async def test_systemd_restart_shows_the_state(fixes: Fixes, systemd: FakeSystemd) -> None:
    result = await fixes.run("restart-service", "nginx")
    assert result.exit_code == 0, result.output
    assert systemd.changes() == ["restart nginx"]
    assert "nginx is now: active" in result.output


async def test_start_limit_is_reset_once_and_refused_again_within_the_hour(
        fixes: Fixes, systemd: FakeSystemd) -> None:
    systemd.set("result", "start-limit-hit")
    first = await fixes.run("restart-service", "nginx")
    assert first.exit_code == 0, first.output
    assert systemd.changes() == ["restart nginx", "reset-failed nginx", "restart nginx"]
    assert "nginx is in its start limit" in first.output

    systemd.set("result", "start-limit-hit")  # it crashed its way into the limit again
    second = await fixes.run("restart-service", "nginx")

    assert second.exit_code == 1, second.output
    assert "a person must look" in second.output
    assert systemd.changes().count("reset-failed nginx") == 1


async def test_start_limit_memory_is_shared_by_unit_name_with_and_without_suffix(
        fixes: Fixes, systemd: FakeSystemd) -> None:
    systemd.set("result", "start-limit-hit")
    assert (await fixes.run("restart-service", "nginx.service")).exit_code == 0
    systemd.set("result", "start-limit-hit")
    again = await fixes.run("restart-service", "nginx")
    assert again.exit_code == 1, again.output
    assert [c for c in systemd.changes() if c.startswith("reset-failed")] == [
        "reset-failed nginx.service"]


async def test_start_limit_reset_over_an_hour_ago_allows_another(
        fixes: Fixes, systemd: FakeSystemd) -> None:
    stamp = fixes.state_dir / "restart-service" / "nginx.reset"
    stamp.parent.mkdir(parents=True)
    stamp.write_text(f"{int(time.time()) - 3601}\n")
    systemd.set("result", "start-limit-hit")
    before = int(time.time())

    result = await fixes.run("restart-service", "nginx")

    assert result.exit_code == 0, result.output
    assert systemd.changes() == ["restart nginx", "reset-failed nginx", "restart nginx"]
    assert int(stamp.read_text()) >= before


async def test_failed_restart_outside_the_start_limit_is_not_reset(
        fixes: Fixes, systemd: FakeSystemd) -> None:
    systemd.set("result", "exit-code")
    result = await fixes.run("restart-service", "nginx")
    assert result.exit_code == 1, result.output
    assert systemd.changes() == ["restart nginx"]
    assert "restarting nginx failed" in result.output


async def test_systemd_dry_run_changes_nothing(fixes: Fixes, systemd: FakeSystemd) -> None:
    systemd.set("active", "active")
    for name in ("restart-service", "reload-service"):
        result = await fixes.run(name, "nginx", dry_run=True)
        assert result.exit_code == 0, result.output
        assert f"dry run: would run: {systemd.root}/systemctl {name.split('-')[0]} nginx" \
            in result.output
    assert systemd.changes() == []
    assert not fixes.state_dir.exists()


async def test_unit_systemd_does_not_know_is_not_applicable(
        fixes: Fixes, systemd: FakeSystemd) -> None:
    systemd.set("missing", "monitord-no-such-unit")
    result = await fixes.run("restart-service", "nginx", "monitord-no-such-unit")
    assert result.exit_code == 3, result.output
    assert "systemd knows no unit monitord-no-such-unit" in result.output
    assert systemd.changes() == ["restart nginx"]


async def test_glob_restarts_every_loaded_unit_it_matches(
        fixes: Fixes, systemd: FakeSystemd) -> None:
    systemd.set("units", "php8.2-fpm.service loaded active running PHP 8.2 FPM\n"
                         "● php7.4-fpm.service loaded failed failed PHP 7.4 FPM")
    result = await fixes.run("restart-service", "php*-fpm")
    assert result.exit_code == 0, result.output
    assert "list-units --all --plain --no-legend --full php*-fpm.service" in systemd.calls()
    assert systemd.changes() == ["restart php8.2-fpm.service", "restart php7.4-fpm.service"]


async def test_systemd_reload_of_an_inactive_unit_exits_1(
        fixes: Fixes, systemd: FakeSystemd) -> None:
    result = await fixes.run("reload-service", "nginx")
    assert result.exit_code == 1, result.output
    assert "nginx is not running (inactive); a reload cannot start it" in result.output
    assert systemd.changes() == []


async def test_systemd_reload_of_an_active_unit(fixes: Fixes, systemd: FakeSystemd) -> None:
    systemd.set("active", "active")
    result = await fixes.run("reload-service", "nginx")
    assert result.exit_code == 0, result.output
    assert systemd.changes() == ["reload nginx"]


# --- restart-php-fpm ----------------------------------------------------------------------

PHP_UNIT_FILES = ("php8.2-fpm.service enabled enabled\n"
                  "php7.4-fpm.service disabled enabled\n"
                  "nginx.service enabled enabled")


async def test_php_fpm_restarts_the_enabled_versions(fixes: Fixes, systemd: FakeSystemd) -> None:
    systemd.set("unit-files", PHP_UNIT_FILES)
    result = await fixes.run("restart-php-fpm")
    assert result.exit_code == 0, result.output
    assert "PHP-FPM services: php8.2-fpm" in result.output
    assert systemd.changes() == ["restart php8.2-fpm"]


async def test_php_fpm_version_restarts_that_version(fixes: Fixes, systemd: FakeSystemd) -> None:
    systemd.set("unit-files", PHP_UNIT_FILES)
    result = await fixes.run("restart-php-fpm", "7.4")
    assert result.exit_code == 0, result.output
    assert systemd.changes() == ["restart php7.4-fpm"]


async def test_php_fpm_keeps_the_start_limit_rule(fixes: Fixes, systemd: FakeSystemd) -> None:
    systemd.set("unit-files", PHP_UNIT_FILES)
    systemd.set("result", "start-limit-hit")
    assert (await fixes.run("restart-php-fpm")).exit_code == 0
    systemd.set("result", "start-limit-hit")
    again = await fixes.run("restart-php-fpm")
    assert again.exit_code == 1, again.output
    assert systemd.changes().count("reset-failed php8.2-fpm") == 1


async def test_php_fpm_dry_run_changes_nothing(fixes: Fixes, systemd: FakeSystemd) -> None:
    systemd.set("unit-files", PHP_UNIT_FILES)
    result = await fixes.run("restart-php-fpm", dry_run=True)
    assert result.exit_code == 0, result.output
    assert "dry run: would run:" in result.output
    assert systemd.changes() == []


async def test_php_fpm_version_not_installed_is_not_applicable(
        fixes: Fixes, systemd: FakeSystemd) -> None:
    systemd.set("unit-files", PHP_UNIT_FILES)
    result = await fixes.run("restart-php-fpm", "8.1")
    assert result.exit_code == 3, result.output
    assert "PHP-FPM 8.1 is not installed here" in result.output
    assert systemd.changes() == []


def php_fpm_init_scripts() -> list[Path]:
    return list(Path("/etc/init.d").glob("php*-fpm"))


async def test_php_fpm_absent_from_this_machine_is_not_applicable(fixes: Fixes) -> None:
    if SYSTEMD_RUNS or php_fpm_init_scripts():
        pytest.skip("PHP-FPM or systemd is present here: this case needs a machine without")
    result = await fixes.run("restart-php-fpm")
    assert result.exit_code == 3, result.output
    assert "no PHP-FPM service found" in result.output


@pytest.mark.parametrize("args", [["8.2;reboot"], ["../8"], ["8..2"], ["-1"], ["8.2", "7.4"],
                                  ["8.2 x"], [""]])
async def test_php_fpm_bad_version_is_a_usage_error(fixes: Fixes, args: list[str]) -> None:
    result = await fixes.run("restart-php-fpm", *args)
    assert result.exit_code == 2, result.output
    assert usage_line(result, "restart-php-fpm").startswith("usage: restart-php-fpm")


# --- repair-mysql-tables, against the real MariaDB -----------------------------------------


@dataclass
class MariaDB:
    client: str
    datadir: Path

    async def sql(self, query: str) -> list[list[str]]:
        result = await host(self.client, "--batch", "--skip-column-names", "-e", query)
        assert result.ok, f"{query}: {result.output}"
        return [line.split("\t") for line in result.output.splitlines() if line]

    async def check_pages(self) -> list[list[str]]:
        return await self.sql(f"CHECK TABLE {PAGES}")

    async def create_pages(self) -> Path:
        """A MyISAM table with two indexes, closed by the server; its index file's path."""
        await self.sql(f"CREATE TABLE {PAGES} (id INT PRIMARY KEY, body VARCHAR(200), "
                       "KEY (body)) ENGINE=MyISAM")
        rows = ",".join(f"({i}, 'page {i}')" for i in range(1, PAGE_ROWS + 1))
        await self.sql(f"INSERT INTO {PAGES} VALUES {rows}")
        await self.sql(f"FLUSH TABLES {PAGES}")  # the server rereads the files next time
        index = self.datadir / FIXTEST_DB / "pages.MYI"
        if not os.access(index, os.W_OK):
            unavailable(f"cannot write {index}: corrupting a table needs root on the server")
        return index


def corrupt_index_blocks(index: Path) -> None:
    """Overwrite every index block, keeping the header: the data survives, the index not.

    A MyISAM index file starts with its state header, whose bytes 6-7 are the header
    length (big-endian; storage/myisam/mi_open.c, mi_state_info_read); key blocks follow.
    """
    with index.open("r+b") as f:
        header_length = int.from_bytes(f.read(8)[6:8], "big")
        size = f.seek(0, os.SEEK_END)
        f.seek(header_length)
        f.write(b"\xab" * (size - header_length))


def destroy_index_header(index: Path) -> None:
    """Overwrite the magic number: REPAIR TABLE cannot rebuild a file it cannot read."""
    with index.open("r+b") as f:
        f.write(b"\xab" * 16)


def has_errors(check_rows: list[list[str]]) -> bool:
    return any(row[2].lower() == "error" for row in check_rows)


@pytest.fixture
async def mariadb() -> AsyncIterator[MariaDB]:
    client = shutil.which("mariadb", path=SAFE_PATH) or shutil.which("mysql", path=SAFE_PATH)
    if client is None:
        unavailable("no mariadb or mysql client installed (apt-get install mariadb-client)")
    found = await host(client, "--batch", "--skip-column-names", "-e", "SELECT @@datadir")
    if not found.ok:
        unavailable(f"MariaDB is not reachable as root through its socket: {found.output.strip()}")
    db = MariaDB(client, Path(found.output.strip()))
    await db.sql(f"DROP DATABASE IF EXISTS {FIXTEST_DB}")
    await db.sql(f"CREATE DATABASE {FIXTEST_DB}")
    try:
        yield db
    finally:
        await db.sql(f"DROP DATABASE IF EXISTS {FIXTEST_DB}")


async def test_repairs_a_corrupt_myisam_table_and_keeps_its_rows(
        fixes: Fixes, mariadb: MariaDB) -> None:
    corrupt_index_blocks(await mariadb.create_pages())
    assert has_errors(await mariadb.check_pages()), "the table should be corrupt by now"

    result = await fixes.run("repair-mysql-tables", FIXTEST_DB)

    assert result.exit_code == 0, result.output
    assert f"problem in {PAGES}: " in result.output
    assert f"repaired {PAGES}" in result.output
    assert "with problems: 1, repaired: 1, still corrupt: 0" in result.output
    assert await mariadb.check_pages() == [[PAGES, "check", "status", "OK"]]
    assert await mariadb.sql(f"SELECT COUNT(*) FROM {PAGES}") == [[str(PAGE_ROWS)]]


async def test_table_it_cannot_repair_exits_1(fixes: Fixes, mariadb: MariaDB) -> None:
    destroy_index_header(await mariadb.create_pages())

    result = await fixes.run("repair-mysql-tables", FIXTEST_DB)

    assert result.exit_code == 1, result.output
    assert f"still corrupt: {PAGES}" in result.output
    assert "a person must look" in result.output


async def test_sound_tables_are_only_checked(fixes: Fixes, mariadb: MariaDB) -> None:
    await mariadb.create_pages()
    result = await fixes.run("repair-mysql-tables", FIXTEST_DB)
    assert result.exit_code == 0, result.output
    assert "tables checked: 1, with problems: 0, repaired: 0, still corrupt: 0" in result.output


async def test_mysql_dry_run_changes_nothing(fixes: Fixes, mariadb: MariaDB) -> None:
    corrupt_index_blocks(await mariadb.create_pages())
    result = await fixes.run("repair-mysql-tables", dry_run=True)
    assert result.exit_code == 0, result.output
    assert "dry run: would run: " in result.output
    assert "--auto-repair --check --all-databases" in result.output
    assert has_errors(await mariadb.check_pages()), "a dry run must not repair anything"


@pytest.mark.parametrize("database", ["-uroot", "--all-databases", "a;b", "a b", "", "../x"])
async def test_unsafe_database_name_is_a_usage_error(fixes: Fixes, database: str) -> None:
    result = await fixes.run("repair-mysql-tables", database)
    assert result.exit_code == 2, result.output
    assert usage_line(result, "repair-mysql-tables").startswith("usage: repair-mysql-tables")


# --- flush-mail-queue ----------------------------------------------------------------------


def postfix_installed() -> bool:
    return all(shutil.which(tool, path=SAFE_PATH) for tool in ("postfix", "postqueue"))


async def postfix_running() -> bool:
    return (await host("postfix", "status")).ok


async def postfix_stopped() -> bool:
    return not await postfix_running()


@pytest.fixture
async def running_postfix() -> AsyncIterator[None]:
    """Postfix running; started for the test (and stopped after it) unless it already ran."""
    if not postfix_installed():
        unavailable("Postfix is not installed (apt-get install postfix, 'Local only')")
    if await postfix_running():
        yield  # the machine's own MTA: left as it was
        return
    started = await host("postfix", "start")
    assert started.ok, started.output
    try:
        await wait_until(postfix_running, "Postfix to start")
        yield
    finally:
        await host("postfix", "stop")
        await wait_until(postfix_stopped, "Postfix to stop")


@pytest.fixture
async def stopped_postfix() -> None:
    if not postfix_installed():
        unavailable("Postfix is not installed (apt-get install postfix, 'Local only')")
    if await postfix_running():
        pytest.skip("Postfix runs here; this test does not stop the machine's MTA")


async def test_flush_asks_a_running_postfix_to_retry_its_queue(
        fixes: Fixes, running_postfix: None) -> None:
    result = await fixes.run("flush-mail-queue")
    assert result.exit_code == 0, result.output
    assert "Postfix queue before: " in result.output
    assert "running: postqueue -f" in result.output
    assert "Postfix queue after: " in result.output


async def test_flush_with_postfix_ignores_the_exim_option_with_a_note(
        fixes: Fixes, running_postfix: None) -> None:
    result = await fixes.run("flush-mail-queue", "--drop-frozen-older-than", "7")
    assert result.exit_code == 0, result.output
    assert "Postfix has no frozen messages; --drop-frozen-older-than ignored" in result.output


async def test_flush_with_postfix_down_exits_1(fixes: Fixes, stopped_postfix: None) -> None:
    result = await fixes.run("flush-mail-queue")
    assert result.exit_code == 1, result.output
    assert "postqueue -f failed: is Postfix running?" in result.output


async def test_flush_dry_run_only_says_what_it_would_do(
        fixes: Fixes, stopped_postfix: None) -> None:
    result = await fixes.run("flush-mail-queue", dry_run=True)
    assert result.exit_code == 0, result.output
    assert "dry run: would run: postqueue -f" in result.output
    assert await postfix_stopped()


async def test_flush_without_an_mta_is_not_applicable(fixes: Fixes) -> None:
    if any(shutil.which(tool, path=SAFE_PATH) for tool in ("postqueue", "exim4", "exim")):
        pytest.skip("an MTA is installed here: this case needs a machine without one")
    result = await fixes.run("flush-mail-queue")
    assert result.exit_code == 3, result.output
    assert "no known MTA found: neither Postfix (postqueue) nor Exim" in result.output


@pytest.mark.parametrize("args", [["--drop-frozen-older-than"], ["--drop-frozen-older-than", "0"],
                                  ["--drop-frozen-older-than", "7d"],
                                  ["--drop-frozen-older-than", "-7"],
                                  ["--drop-frozen-older-than", "123456"], ["--now"], ["-qff"]])
async def test_flush_bad_arguments_are_a_usage_error(fixes: Fixes, args: list[str]) -> None:
    result = await fixes.run("flush-mail-queue", *args)
    assert result.exit_code == 2, result.output
    assert usage_line(result, "flush-mail-queue") == (
        "usage: flush-mail-queue [--drop-frozen-older-than DAYS]")
