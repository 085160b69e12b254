"""A MySQL/MariaDB server: login, SELECT 1 latency, connections in use, slow queries since
the last run, and optionally crashed MyISAM/Aria tables and the replica threads and lag.

Authentication and unknown-database errors are the check's configuration, not the
server's health, so they are UNKNOWN with the setting to fix; "too many connections" is
the server refusing work and is CRITICAL with the server's own words.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from monitord.durations import format_duration
from monitord.errors import ProbeError
from monitord.model import Observation, Status
from monitord.probes.base import (
    CheckBase,
    Expectation,
    ProbeContext,
    Range,
    parse_range,
    read_secret_file,
)

METRICS = {
    "connect_seconds": "time to connect and log in",
    "response_seconds": "time to run SELECT 1",
    "connections": "client connections open (Threads_connected)",
    "max_connections": "the server's @@max_connections",
    "connections_used_ratio": "connections / max_connections",
    "slow_queries": "queries slower than long_query_time since the last run",
    "crashed_tables": "MyISAM/Aria tables the server cannot open as crashed (check_crashed)",
    "replica_lag_seconds": "Seconds_Behind_Master of the replica (replica = true)",
}
# The probe's own wait for the server, as a share of the check's timeout, so a silent
# server is reported as such instead of a bare "timed out".
MAX_TEXT = 160  # server-supplied text (errors, table names) is cut to this many characters
MAX_TABLES_SHOWN = 5

# pymysql error codes (mysqld_error.h, errmsg.h)
ACCESS_DENIED, DB_ACCESS_DENIED, BAD_DB = 1045, 1044, 1049
TOO_MANY = (1040, 1203, 1226)  # server-wide, per-user and per-hour connection limits
SPECIFIC_ACCESS_DENIED, PARSE_ERROR = 1227, 1064
CANNOT_CONNECT, SERVER_LOST = 2003, 2013

# A table the server fails to open shows ENGINE NULL and the error as TABLE_COMMENT, but only
# when a column that needs the open is read: TABLE_ROWS is here to force the open.
# With myisam_recover_options/aria_recover_options set (MariaDB's default), opening a
# crashed table repairs it first; what is left here is what that repair could not fix.
CRASHED_SQL = """
SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_ROWS FROM information_schema.TABLES
WHERE TABLE_TYPE = 'BASE TABLE' AND ENGINE IS NULL
  AND (TABLE_COMMENT LIKE '%crashed%' OR TABLE_COMMENT LIKE '%repair%')
ORDER BY TABLE_SCHEMA, TABLE_NAME
"""


class Config(CheckBase):
    METRICS = METRICS
    probe: Literal["mysql"]
    host: str = "127.0.0.1"
    port: int = Field(default=3306, ge=1, le=65535)
    socket: str = ""  # a unix socket path, used instead of host and port
    user: str = "monitord"
    password_file: str = ""
    password: SecretStr = SecretStr("")
    database: str = ""
    check_crashed: bool = False
    replica: bool = False
    replica_connection: str = Field(default="", max_length=64)  # MariaDB multi-source name

    @field_validator("socket", "password_file")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if value and not os.path.isabs(value):
            raise ValueError('expected an absolute path like "/run/mysqld/mysqld.sock"')
        return value

    @model_validator(mode="after")
    def _one_password(self) -> Config:
        if self.password_file and self.password.get_secret_value():
            raise ValueError("password: set password or password_file, not both")
        if self.replica_connection and not self.replica:
            raise ValueError("replica_connection: needs replica = true")
        return self

    def expectations(self) -> list[Expectation]:
        if not self.replica:
            return []
        return [
            Expectation("is_replica", frozenset([True]),
                        "replica = true but the server is not a replica"),
            Expectation("replica_io_running", frozenset([True]), "replica I/O thread not running"),
            Expectation("replica_sql_running", frozenset([True]),
                        "replica SQL thread not running"),
        ]

    def default_thresholds(self) -> tuple[dict[str, Range], dict[str, Range]]:
        warn = {"connections_used_ratio": parse_range(0.8), "replica_lag_seconds": parse_range(60)}
        crit = {"connections_used_ratio": parse_range(0.95), "crashed_tables": parse_range(0),
                "replica_lag_seconds": parse_range(300)}
        return warn, crit


async def probe(cfg: Config, ctx: ProbeContext) -> Observation:
    import aiomysql
    import pymysql

    budget = ctx.budget()
    start = time.monotonic()
    try:
        async with asyncio.timeout(budget):
            conn = await aiomysql.connect(
                host=cfg.host, port=cfg.port, unix_socket=cfg.socket or None, user=cfg.user,
                password=_password(cfg), db=cfg.database or None, autocommit=True,
                cursorclass=_quiet(aiomysql.Cursor))
            try:
                obs = await _observe(cfg, ctx, conn, time.monotonic() - start)
                await conn.ensure_closed()  # says QUIT, so the server counts no aborted client
                return obs
            finally:
                conn.close()
    except TimeoutError:
        raise ProbeError(f"{_where(cfg)} did not answer within "
                         f"{format_duration(time.monotonic() - start)}") from None
    except pymysql.err.MySQLError as e:
        raise _failure(cfg, e) from None


async def _observe(cfg: Config, ctx: ProbeContext, conn: Any, connected: float) -> Observation:
    start = time.monotonic()
    await _rows(conn, "SELECT 1")
    answered = time.monotonic() - start
    status = dict(await _rows(conn, "SHOW GLOBAL STATUS WHERE Variable_name IN "
                                    "('Threads_connected', 'Slow_queries')"))
    ((max_connections,),) = await _rows(conn, "SELECT @@max_connections")
    used = int(status["Threads_connected"])
    obs = Observation(f"SELECT 1 in {_ms(answered)}, {used} of {max_connections} "
                      "connections in use")
    obs.add("connect_seconds", round(connected, 6))
    obs.add("response_seconds", round(answered, 6))
    obs.add("connections", used)
    obs.add("max_connections", int(max_connections))
    obs.add("connections_used_ratio", round(used / max(int(max_connections), 1), 4))
    _slow_queries(obs, ctx, int(status["Slow_queries"]))
    if cfg.check_crashed:
        _crashed(obs, await _rows(conn, CRASHED_SQL))
    if cfg.replica:
        _replica(obs, await _replica_status(conn, cfg.replica_connection))
    return obs


async def _rows(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    async with conn.cursor() as cursor:
        await cursor.execute(sql)
        return list(await cursor.fetchall())


def _slow_queries(obs: Observation, ctx: ProbeContext, total: int) -> None:
    """The Slow_queries counter's growth since the last run; nothing on the first run."""
    previous = ctx.memory.get("slow_queries")
    ctx.memory["slow_queries"] = total
    if previous is None:
        return
    since = total - previous if total >= previous else total  # a restart reset the counter
    obs.add("slow_queries", since)
    if since:
        obs.summary += f", {since} slow {'query' if since == 1 else 'queries'} since the last run"


def _crashed(obs: Observation, rows: list[tuple[Any, ...]]) -> None:
    obs.add("crashed_tables", len(rows))
    if rows:
        names = ", ".join(_text(f"{schema}.{table}") for schema, table, _ in
                          rows[:MAX_TABLES_SHOWN])
        more = f" and {len(rows) - MAX_TABLES_SHOWN} more" if len(rows) > MAX_TABLES_SHOWN else ""
        obs.summary += f", crashed: {names}{more}"


async def _replica_status(conn: Any, name: str) -> dict[str, Any] | None:
    """The replica's row of SHOW REPLICA STATUS (SHOW SLAVE STATUS before MariaDB 10.5 and
    MySQL 8.0.22), or None on a server that replicates from nobody."""
    import aiomysql
    import pymysql

    named = f" {conn.escape(name)}" if name else ""
    async with conn.cursor(_quiet(aiomysql.DictCursor)) as cursor:
        try:
            await cursor.execute(f"SHOW REPLICA{named} STATUS")
        except pymysql.err.ProgrammingError as e:
            if e.args[0] != PARSE_ERROR:
                raise
            await cursor.execute(f"SHOW SLAVE{named} STATUS")
        row = await cursor.fetchone()
    return dict(row) if row else None


def _replica(obs: Observation, row: dict[str, Any] | None) -> None:
    obs.add("is_replica", row is not None)
    if row is None:
        obs.summary += ", not a replica"
        return
    io, sql = _field(row, "IO_Running"), _field(row, "SQL_Running")
    obs.add("replica_io_running", io == "Yes")
    obs.add("replica_sql_running", sql == "Yes")
    obs.summary += f", replica I/O {_text(str(io))}, SQL {_text(str(sql))}"
    lag = _field(row, "Seconds_Behind_Master", "Seconds_Behind_Source")
    if lag is not None:
        obs.add("replica_lag_seconds", int(lag))
        obs.summary += f", {lag} s behind"
    for which in ("IO", "SQL"):
        error = _field(row, f"Last_{which}_Error")
        if error:
            obs.summary += f", last {which} error: {_text(str(error))}"


@functools.cache
def _quiet(cursor: type[Any]) -> type[Any]:
    """``cursor`` without aiomysql's SHOW WARNINGS after each statement that has warnings,
    which it turns into Python warnings: one more round trip, and noise on stderr."""

    class Quiet(cursor):
        async def _show_warnings(self, conn: Any) -> None:
            return None

    return Quiet


def _field(row: dict[str, Any], *names: str) -> Any:
    """A SHOW REPLICA STATUS column under its Slave_/Replica_ or plain name."""
    for name in names:
        for key in (name, f"Slave_{name}", f"Replica_{name}"):
            if key in row:
                return row[key]
    return None


def _failure(cfg: Config, e: Exception) -> ProbeError:
    code = e.args[0] if e.args and isinstance(e.args[0], int) else 0
    said = _text(str(e.args[1]) if len(e.args) > 1 else str(e))
    where = _where(cfg)
    if code == ACCESS_DENIED:
        return ProbeError(f"{where}: {said}; fix user or password_file", Status.UNKNOWN)
    if code in (BAD_DB, DB_ACCESS_DENIED):
        return ProbeError(f"{where}: {said}; fix database", Status.UNKNOWN)
    if code == SPECIFIC_ACCESS_DENIED:
        return ProbeError(f"{where}: {said}; grant REPLICA MONITOR (MariaDB) or REPLICATION "
                          f"CLIENT (MySQL) to {cfg.user}", Status.UNKNOWN)
    if code in TOO_MANY:
        return ProbeError(f"{where}: {said}")
    if code == CANNOT_CONNECT:
        return ProbeError(f"cannot connect to {where}: {_cause(e)}")
    if code == SERVER_LOST:
        return ProbeError(f"{where} closed the connection: {said}")
    return ProbeError(f"{where}: error {code}: {said}")


def _password(cfg: Config) -> str:
    if not cfg.password_file:
        return cfg.password.get_secret_value()
    return read_secret_file(cfg.password_file)


def _cause(e: Exception) -> str:
    cause = e.__cause__
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror[0].lower() + cause.strerror[1:]
    return _text(str(cause or e))


def _where(cfg: Config) -> str:
    return cfg.socket or f"{cfg.host}:{cfg.port}"


def _text(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_TEXT else line[: MAX_TEXT - 3] + "..."


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"
