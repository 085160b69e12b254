"""The postgres probe against a private PostgreSQL started on high ports (password logins
over TCP, a role with a small connection limit, a streaming standby), run through the
runner. The packaged server here trusts every login, so it cannot show a wrong password."""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from monitord.agent.runner import run_check
from monitord.model import Result, Status
from monitord.probes.base import ProbeContext
from tests.conftest import make_check, unavailable
from tests.probes.readings import has_reading, number, reading, wait_for
from tests.probes.servers import closed_port, serve_tcp, silent

ROLE_CONNECTIONS = 2


@dataclass(frozen=True)
class Server:
    port: int
    folder: Path
    password: str
    password_file: Path

    async def connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(host="127.0.0.1", port=self.port, user="probe",
                                     password=self.password, database="shop")


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found or os.geteuid() != 0:
        unavailable(f"a private PostgreSQL needs {name} (package postgresql) and root")
    return found[-1]


def _as_postgres(*argv: str) -> subprocess.CompletedProcess[bytes]:
    # subprocess's own user= (not runuser, which does not pass signals on to the server).
    return subprocess.run(argv, user="postgres", group="postgres", check=True,
                          capture_output=True, timeout=120)


def _free_port() -> int:
    with closed_port() as port:
        return port


def _ready(folder: Path, port: int) -> bool:
    """Accepting connections (a standby listens a while before it does)."""
    ready = subprocess.run([_bin("pg_isready"), "-q", "-h", str(folder), "-p", str(port)],
                           check=False, timeout=10)
    return ready.returncode == 0


def _start(data: Path, folder: Path, port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [_bin("postgres"), "-D", str(data), "-p", str(port), "-k", str(folder),
         "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
        user="postgres", group="postgres",
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: _ready(folder, port) or server.poll() is not None, "PostgreSQL", 30)
    if server.poll() is not None:
        pytest.fail(f"postgres on port {port} exited with {server.returncode}")
    return server


def _stop(server: subprocess.Popen[bytes]) -> None:
    server.send_signal(signal.SIGINT)  # fast shutdown
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=10)


def _psql(folder: Path, port: int, sql: str) -> None:
    subprocess.run(["psql", "-h", str(folder), "-p", str(port), "-U", "postgres", "-X", "-q",
                    "-v", "ON_ERROR_STOP=1", "-c", sql], check=True, capture_output=True,
                   timeout=30)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """Local (socket) logins trusted, TCP logins by password; role "probe" owns "shop".

    Its folder is not under pytest's tmp_path, which the postgres user cannot enter."""
    folder = Path(tempfile.mkdtemp(prefix="monitord-test-pg-"))
    try:
        yield from _primary(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _primary(folder: Path) -> Iterator[Server]:
    folder.chmod(0o755)
    shutil.chown(folder, "postgres", "postgres")
    data = folder / "data"
    _as_postgres(_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust",
                 "--auth-host=scram-sha-256", "--no-sync")
    port = _free_port()
    primary = _start(data, folder, port)
    password = secrets.token_urlsafe(16)
    password_file = folder / "password"
    password_file.write_text(password + "\n")
    try:
        _psql(folder, port, f"CREATE ROLE probe LOGIN PASSWORD '{password}' "
                            f"CONNECTION LIMIT {ROLE_CONNECTIONS}")
        _psql(folder, port, "CREATE DATABASE shop OWNER probe")
        yield Server(port, folder, password, password_file)
    finally:
        _stop(primary)


async def run_postgres(ctx: ProbeContext, server: Server, **fields: Any) -> Result:
    settings: dict[str, Any] = {"port": server.port, "user": "probe", "database": "shop",
                                "password_file": str(server.password_file), **fields}
    return await run_check(make_check("postgres", **settings), ctx)


async def test_healthy_primary_is_ok_with_connections_and_size(
    ctx: ProbeContext, server: Server
) -> None:
    result = await run_postgres(ctx, server)
    assert result.status is Status.OK, result.summary
    used, limit = number(result, "connections"), number(result, "max_connections")
    assert result.summary == f"SELECT 1 in {result.summary.split()[3]} ms, " \
        f"{used:.0f} of {limit:.0f} connections in use"
    assert 1 <= used <= limit
    assert number(result, "database_size_bytes") > 0
    assert reading(result, "role") == "primary"
    assert number(result, "oldest_transaction_seconds") == 0
    assert not has_reading(result, "replica_lag_seconds")


async def test_socket_dir_login_is_ok(ctx: ProbeContext, server: Server) -> None:
    result = await run_postgres(ctx, server, socket_dir=str(server.folder))
    assert result.status is Status.OK, result.summary


async def test_connections_over_warn_ratio_are_a_warning(
    ctx: ProbeContext, server: Server
) -> None:
    result = await run_postgres(ctx, server, warn={"connections_used_ratio": 0.0})
    assert result.status is Status.WARNING
    assert result.summary.endswith("connections in use: connections_used_ratio "
                                   f"{number(result, 'connections_used_ratio'):.4g} > 0")


async def test_role_connection_limit_reached_is_critical(
    ctx: ProbeContext, server: Server
) -> None:
    held = [await server.connect() for _ in range(ROLE_CONNECTIONS)]
    try:
        result = await run_postgres(ctx, server)
    finally:
        for conn in held:
            await conn.close()
    assert result.status is Status.CRITICAL
    assert result.summary == f'127.0.0.1:{server.port}: too many connections for role "probe"'


async def test_open_transaction_age_is_reported(ctx: ProbeContext, server: Server) -> None:
    conn = await server.connect()
    try:
        transaction = conn.transaction()
        await transaction.start()
        await conn.execute("SELECT 1")
        result = await run_postgres(ctx, server, warn={"oldest_transaction_seconds": 0})
        await transaction.rollback()
    finally:
        await conn.close()
    assert number(result, "oldest_transaction_seconds") > 0
    assert result.status is Status.WARNING
    assert ": oldest_transaction_seconds " in result.summary


async def test_wrong_password_is_unknown_naming_the_setting(
    ctx: ProbeContext, server: Server, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password\n")
    result = await run_postgres(ctx, server, password_file=str(wrong))
    assert result.status is Status.UNKNOWN
    assert result.summary == (f'127.0.0.1:{server.port}: password authentication failed for '
                              'user "probe"; fix user or password_file')


async def test_unknown_database_is_unknown_naming_the_setting(
    ctx: ProbeContext, server: Server
) -> None:
    result = await run_postgres(ctx, server, database="nope")
    assert result.status is Status.UNKNOWN
    assert result.summary == f'127.0.0.1:{server.port}: database "nope" does not exist; ' \
        "fix database"


async def test_closed_port_is_critical_connection_refused(
    ctx: ProbeContext, server: Server
) -> None:
    with closed_port() as port:
        result = await run_postgres(ctx, server, port=port)
    assert result.status is Status.CRITICAL
    assert result.summary == f"cannot connect to 127.0.0.1:{port}: connection refused"


async def test_silent_server_is_critical_did_not_answer(
    ctx: ProbeContext, server: Server
) -> None:
    async with serve_tcp(silent) as port:
        result = await run_postgres(ctx, server, port=port, timeout="1s")
    assert result.status is Status.CRITICAL
    assert result.summary.startswith(f"127.0.0.1:{port} did not answer within ")


async def test_expecting_a_standby_on_a_primary_is_critical(
    ctx: ProbeContext, server: Server
) -> None:
    result = await run_postgres(ctx, server, expect_role="standby")
    assert result.status is Status.CRITICAL
    assert result.summary.endswith(": expected a standby")


@pytest.fixture(scope="module")
def standby(server: Server) -> Iterator[int]:
    """A streaming standby of ``server`` (pg_basebackup -R), on its own port."""
    data = server.folder / "standby"
    _as_postgres(_bin("pg_basebackup"), "-h", str(server.folder), "-p", str(server.port),
                 "-U", "postgres", "-D", str(data), "-R", "--checkpoint=fast", "--no-sync")
    port = _free_port()
    replica = _start(data, server.folder, port)
    try:
        yield port
    finally:
        _stop(replica)


async def test_standby_reports_replay_lag(
    ctx: ProbeContext, server: Server, standby: int
) -> None:
    result = await run_postgres(ctx, server, port=standby, database="postgres",
                                expect_role="standby")
    assert reading(result, "role") == "standby"
    if has_reading(result, "replica_lag_seconds"):
        assert number(result, "replica_lag_seconds") >= 0
        assert ", standby " in result.summary and result.summary.endswith(" behind")
    else:
        assert result.summary.endswith(", standby that has replayed no transaction yet")
    assert result.status is Status.OK, result.summary
