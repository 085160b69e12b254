"""The mysql probe against the MariaDB server running here (a test database and a user with
a small connection limit, dropped afterwards) and a private one started on a high port for
what cannot be done to a shared server (crashed tables, a replica), run through the runner."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pymysql
import pytest

from monitord.agent.runner import run_check
from monitord.model import Result, Status
from monitord.probes.base import ProbeContext
from tests.conftest import make_check, unavailable
from tests.probes.readings import has_reading, number, reading, wait_for
from tests.probes.servers import closed_port, serve_tcp, silent

USER_CONNECTIONS = 3


@dataclass(frozen=True)
class Account:
    user: str
    password: str
    password_file: Path
    database: str
    port: int = 3306
    socket: str = ""

    def connect(self) -> pymysql.Connection[Any]:
        return pymysql.connect(host="127.0.0.1", port=self.port, user=self.user,
                               password=self.password, database=self.database)


def _root(port: int = 3306, unix: str = "") -> pymysql.Connection[Any]:
    if unix:
        return pymysql.connect(unix_socket=unix, user="root", autocommit=True)
    return pymysql.connect(host="127.0.0.1", port=port, user="root", autocommit=True)


@pytest.fixture(scope="module")
def account(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Account]:
    """A database and a user limited to USER_CONNECTIONS connections on the local server."""
    try:
        root = _root()
    except pymysql.err.OperationalError as e:
        unavailable(f"no MariaDB as root on 127.0.0.1:3306: {e}")
    name = f"monitord_probe_{os.getpid()}"
    password = secrets.token_urlsafe(16)
    password_file = tmp_path_factory.mktemp("mysql") / "password"
    password_file.write_text(password + "\n")
    try:
        with root.cursor() as cursor:
            cursor.execute("SELECT @@socket")
            ((unix,),) = cursor.fetchall()
            cursor.execute(f"CREATE DATABASE {name}")
            cursor.execute(f"CREATE USER {name}@'%%' IDENTIFIED BY %s "
                           f"WITH MAX_USER_CONNECTIONS {USER_CONNECTIONS}", (password,))
            cursor.execute(f"GRANT SELECT ON {name}.* TO {name}@'%'")
        yield Account(name, password, password_file, name, socket=unix)
    finally:
        with root.cursor() as cursor:
            cursor.execute(f"DROP USER IF EXISTS {name}@'%'")
            cursor.execute(f"DROP DATABASE IF EXISTS {name}")
        root.close()


async def run_mysql(ctx: ProbeContext, account: Account, **fields: Any) -> Result:
    settings: dict[str, Any] = {"port": account.port, "user": account.user,
                                "password_file": str(account.password_file),
                                "database": account.database, **fields}
    return await run_check(make_check("mysql", **settings), ctx)


async def test_healthy_server_is_ok_with_connections_counted(
    ctx: ProbeContext, account: Account
) -> None:
    result = await run_mysql(ctx, account)
    assert result.status is Status.OK, result.summary
    assert result.summary.startswith("SELECT 1 in ")
    used, limit = number(result, "connections"), number(result, "max_connections")
    assert f"{used:.0f} of {limit:.0f} connections in use" in result.summary
    assert 1 <= used <= limit
    assert number(result, "connections_used_ratio") == round(used / limit, 4)
    assert number(result, "response_seconds") >= 0
    assert not has_reading(result, "slow_queries"), "the first run has no earlier count"


async def test_unix_socket_login_is_ok(ctx: ProbeContext, account: Account) -> None:
    result = await run_mysql(ctx, account, socket=account.socket)
    assert result.status is Status.OK, result.summary


async def test_connections_over_warn_ratio_are_a_warning(
    ctx: ProbeContext, account: Account
) -> None:
    result = await run_mysql(ctx, account, warn={"connections_used_ratio": 0.0})
    assert result.status is Status.WARNING
    assert "connections in use: connections_used_ratio " in result.summary
    assert result.summary.endswith("> 0")


async def test_user_connection_limit_reached_is_critical(
    ctx: ProbeContext, account: Account
) -> None:
    held = [account.connect() for _ in range(USER_CONNECTIONS)]
    try:
        result = await run_mysql(ctx, account)
    finally:
        for conn in held:
            conn.close()
    assert result.status is Status.CRITICAL
    assert result.summary == (f"127.0.0.1:3306: User '{account.user}' has exceeded the "
                              "'max_user_connections' resource (current value: 3)")


async def test_wrong_password_is_unknown_naming_the_setting(
    ctx: ProbeContext, account: Account, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password\n")
    result = await run_mysql(ctx, account, password_file=str(wrong))
    assert result.status is Status.UNKNOWN
    assert f"Access denied for user '{account.user}'" in result.summary
    assert result.summary.endswith("; fix user or password_file")
    assert "not-the-password" not in result.summary


async def test_unknown_database_is_unknown_naming_the_setting(
    ctx: ProbeContext, account: Account
) -> None:
    result = await run_mysql(ctx, account, database="no_such_database_here")
    assert result.status is Status.UNKNOWN
    assert "no_such_database_here" in result.summary
    assert result.summary.endswith("; fix database")


async def test_unreadable_password_file_is_unknown(ctx: ProbeContext, account: Account) -> None:
    result = await run_mysql(ctx, account, password_file="/nonexistent/monitord/password")
    assert result.status is Status.UNKNOWN
    assert result.summary == ("cannot read password_file /nonexistent/monitord/password: "
                              "No such file or directory")


async def test_closed_port_is_critical_connection_refused(
    ctx: ProbeContext, account: Account
) -> None:
    with closed_port() as port:
        result = await run_mysql(ctx, account, port=port)
    assert result.status is Status.CRITICAL
    assert result.summary == f"cannot connect to 127.0.0.1:{port}: connection refused"


async def test_silent_server_is_critical_did_not_answer(
    ctx: ProbeContext, account: Account
) -> None:
    async with serve_tcp(silent) as port:
        result = await run_mysql(ctx, account, port=port, timeout="1s")
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(f"127.0.0.1:{port} did not answer within ")


async def test_slow_queries_are_counted_between_runs(
    ctx: ProbeContext, account: Account
) -> None:
    check = make_check("mysql", user=account.user, password_file=str(account.password_file),
                       database=account.database, warn={"slow_queries": 0})
    first = await run_check(check, ctx)
    assert first.status is Status.OK, first.summary
    conn = account.connect()
    try:
        with conn.cursor() as cursor:
            # Session-only: the server's own long_query_time is untouched.
            cursor.execute("SET SESSION long_query_time = 0.05")
            cursor.execute("SELECT SLEEP(0.2)")
    finally:
        conn.close()
    second = await run_check(check, ctx)
    assert number(second, "slow_queries") >= 1
    assert second.status is Status.WARNING
    assert " since the last run" in second.summary


async def test_replica_check_without_privilege_is_unknown(
    ctx: ProbeContext, account: Account
) -> None:
    result = await run_mysql(ctx, account, replica=True)
    assert result.status is Status.UNKNOWN
    assert result.summary.endswith(f"grant REPLICA MONITOR (MariaDB) or REPLICATION CLIENT "
                                   f"(MySQL) to {account.user}")


async def test_replica_check_on_a_primary_says_it_is_not_a_replica(ctx: ProbeContext) -> None:
    try:
        _root().close()
    except pymysql.err.OperationalError as e:
        unavailable(f"no MariaDB as root on 127.0.0.1:3306: {e}")
    result = await run_check(make_check("mysql", user="root", replica=True), ctx)
    assert result.status is Status.CRITICAL
    assert ", not a replica: replica = true but the server is not a replica" in result.summary


# --- a private server: crashed tables and a replica ----------------------------------


@dataclass(frozen=True)
class Private:
    port: int
    socket: str
    datadir: Path


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Private]:
    """A MariaDB of our own on a high port that does not repair crashed tables when it
    opens them (the packaged default would, hiding the crash)."""
    if shutil.which("mariadbd", path="/usr/sbin:/usr/bin") is None or os.geteuid() != 0:
        unavailable("a private MariaDB needs mariadbd (package mariadb-server) and root")
    folder = tmp_path_factory.mktemp("mariadb")
    datadir, unix = folder / "data", str(folder / "sock")
    subprocess.run(["mariadb-install-db", "--no-defaults", "--user=root", f"--datadir={datadir}",
                    "--auth-root-authentication-method=normal", "--skip-test-db"],
                   check=True, capture_output=True, timeout=60)
    with closed_port() as free:
        port = free
    server = subprocess.Popen(
        ["/usr/sbin/mariadbd", "--no-defaults", "--user=root", f"--datadir={datadir}",
         f"--port={port}", "--bind-address=127.0.0.1", f"--socket={unix}",
         f"--pid-file={folder / 'pid'}", "--myisam-recover-options=OFF",
         "--aria-recover-options=OFF", "--server-id=2", f"--log-error={folder / 'log'}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _listening(unix) or server.poll() is not None, "private MariaDB", 30)
        if server.poll() is not None:
            pytest.fail(f"mariadbd exited: {(folder / 'log').read_text()[-2000:]}")
        yield Private(port, unix, datadir)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


def _listening(path: str) -> bool:
    """Whether the server accepts on its socket (a failed pymysql connect leaks its socket)."""
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(path)
        except OSError:
            return False
    return True


def _mark_crashed(myi: Path) -> None:
    """Set STATE_CRASHED (2) in the MyISAM state's ``changed`` byte, at offset 26 of the
    index file (storage/myisam/mi_open.c: mi_state_info_read), as a crash would."""
    with myi.open("r+b") as f:
        f.seek(26)
        changed = f.read(1)[0]
        f.seek(26)
        f.write(bytes([changed | 2]))


async def test_crashed_myisam_table_is_critical_and_named(
    ctx: ProbeContext, private: Private
) -> None:
    root = _root(unix=private.socket)
    try:
        with root.cursor() as cursor:
            cursor.execute("CREATE DATABASE shop")
            cursor.execute("CREATE TABLE shop.orders (id INT PRIMARY KEY) ENGINE=MyISAM")
            cursor.execute("CREATE TABLE shop.items (id INT PRIMARY KEY) ENGINE=Aria")
            cursor.execute("INSERT INTO shop.orders VALUES (1), (2)")
            cursor.execute("FLUSH TABLES")
        check = make_check("mysql", port=private.port, user="root", check_crashed=True)
        healthy = await run_check(check, ctx)
        assert healthy.status is Status.OK, healthy.summary
        assert number(healthy, "crashed_tables") == 0
        with root.cursor() as cursor:
            cursor.execute("FLUSH TABLES")  # the server writes an open table's state back
        _mark_crashed(private.datadir / "shop" / "orders.MYI")
        crashed = await run_check(check, ctx)
    finally:
        with root.cursor() as cursor:
            cursor.execute("DROP DATABASE IF EXISTS shop")
        root.close()
    assert crashed.status is Status.CRITICAL
    assert number(crashed, "crashed_tables") == 1
    assert ", crashed: shop.orders: crashed_tables 1 > 0" in crashed.summary


async def test_replica_with_its_source_down_is_critical(
    ctx: ProbeContext, private: Private
) -> None:
    root = _root(unix=private.socket)
    try:
        with closed_port() as source, root.cursor() as cursor:
            cursor.execute("CHANGE MASTER 'shop' TO MASTER_HOST = '127.0.0.1', "
                           f"MASTER_PORT = {source}, MASTER_USER = 'repl', "
                           "MASTER_CONNECT_RETRY = 1")
            stopped = await run_check(make_check(
                "mysql", port=private.port, user="root", replica=True,
                replica_connection="shop"), ctx)
        with root.cursor() as cursor:
            cursor.execute("RESET SLAVE 'shop' ALL")
    finally:
        root.close()
    assert stopped.status is Status.CRITICAL
    assert reading(stopped, "is_replica") is True
    assert reading(stopped, "replica_io_running") is False
    assert reading(stopped, "replica_sql_running") is False
    assert ", replica I/O No, SQL No" in stopped.summary
    assert stopped.summary.endswith(
        ": replica I/O thread not running; replica SQL thread not running")
