"""A PostgreSQL server: login, SELECT 1 latency, connections in use, the oldest open
transaction, the database's size and, on a standby, how far replay is behind.

Authentication and unknown-database errors are the check's configuration, not the
server's health, so they are UNKNOWN with the setting to fix.
"""

from __future__ import annotations

import asyncio
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
    "connections": "client backends connected",
    "max_connections": "the server's max_connections",
    "connections_used_ratio": "connections / max_connections",
    "oldest_transaction_seconds": "age of the oldest open transaction of another session",
    "database_size_bytes": "size of the database connected to",
    "replica_lag_seconds": "on a standby: time since the last replayed transaction, 0 when "
                           "all WAL received is replayed",
}
MAX_TEXT = 160  # server-supplied text is cut to this many characters

# xact_start of other users' sessions is visible to superusers and pg_monitor members only.
STATE_SQL = """
SELECT
  (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS connections,
  current_setting('max_connections')::int AS max_connections,
  (SELECT extract(epoch FROM clock_timestamp() - min(xact_start))::float8
     FROM pg_stat_activity
     WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid()
       AND backend_type = 'client backend') AS oldest_transaction_seconds,
  pg_database_size(current_database()) AS database_size_bytes,
  pg_is_in_recovery() AS standby
"""
# An idle primary sends no transactions, so "time since the last replayed one" grows on a
# standby that is fully caught up: it counts as no lag while all WAL received is replayed.
LAG_SQL = """
SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0::float8
  ELSE extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp())::float8 END
"""


class Config(CheckBase):
    METRICS = METRICS
    probe: Literal["postgres"]
    host: str = "127.0.0.1"
    port: int = Field(default=5432, ge=1, le=65535)
    socket_dir: str = ""  # a unix socket directory, used instead of host
    user: str = "monitord"
    password_file: str = ""
    password: SecretStr = SecretStr("")
    database: str = "postgres"
    expect_role: Literal["", "primary", "standby"] = ""

    @field_validator("socket_dir", "password_file")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if value and not os.path.isabs(value):
            raise ValueError('expected an absolute path like "/var/run/postgresql"')
        return value

    @model_validator(mode="after")
    def _one_password(self) -> Config:
        if self.password_file and self.password.get_secret_value():
            raise ValueError("password: set password or password_file, not both")
        return self

    def expectations(self) -> list[Expectation]:
        if not self.expect_role:
            return []
        return [Expectation("role", frozenset([self.expect_role]),
                            f"expected a {self.expect_role}")]

    def default_thresholds(self) -> tuple[dict[str, Range], dict[str, Range]]:
        warn = {"connections_used_ratio": parse_range(0.8), "replica_lag_seconds": parse_range(60)}
        crit = {"connections_used_ratio": parse_range(0.95),
                "replica_lag_seconds": parse_range(300)}
        return warn, crit


async def probe(cfg: Config, ctx: ProbeContext) -> Observation:
    import asyncpg

    budget = ctx.budget()
    start = time.monotonic()
    try:
        async with asyncio.timeout(budget):
            conn = await asyncpg.connect(
                host=cfg.socket_dir or cfg.host, port=cfg.port, user=cfg.user,
                password=_password(cfg), database=cfg.database, timeout=budget,
                statement_cache_size=0)
            try:
                return await _observe(conn, time.monotonic() - start)
            finally:
                await conn.close()
    except TimeoutError:
        raise ProbeError(f"{_where(cfg)} did not answer within "
                         f"{format_duration(time.monotonic() - start)}") from None
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as e:
        raise _failure(cfg, e) from None


async def _observe(conn: Any, connected: float) -> Observation:
    start = time.monotonic()
    await conn.fetchval("SELECT 1")
    answered = time.monotonic() - start
    row = await conn.fetchrow(STATE_SQL)
    used, limit = int(row["connections"]), int(row["max_connections"])
    obs = Observation(f"SELECT 1 in {_ms(answered)}, {used} of {limit} connections in use")
    obs.add("connect_seconds", round(connected, 6))
    obs.add("response_seconds", round(answered, 6))
    obs.add("connections", used)
    obs.add("max_connections", limit)
    obs.add("connections_used_ratio", round(used / max(limit, 1), 4))
    oldest = row["oldest_transaction_seconds"]
    obs.add("oldest_transaction_seconds", round(max(float(oldest or 0.0), 0.0), 6))
    if oldest is not None and oldest >= 1:
        obs.summary += f", oldest transaction open {format_duration(round(oldest))}"
    obs.add("database_size_bytes", int(row["database_size_bytes"]))
    obs.add("role", "standby" if row["standby"] else "primary")
    if row["standby"]:
        lag = await conn.fetchval(LAG_SQL)
        if lag is None:
            obs.summary += ", standby that has replayed no transaction yet"
        else:
            obs.add("replica_lag_seconds", round(max(float(lag), 0.0), 3))
            obs.summary += f", standby {format_duration(max(float(lag), 0.0))} behind"
    return obs


def _failure(cfg: Config, e: Exception) -> ProbeError:
    import asyncpg

    where = _where(cfg)
    said = _text(str(e))
    if isinstance(e, asyncpg.InvalidPasswordError):
        return ProbeError(f"{where}: {said}; fix user or password_file", Status.UNKNOWN)
    if isinstance(e, asyncpg.InvalidAuthorizationSpecificationError):
        return ProbeError(f"{where}: {said}; fix user (or the server's pg_hba.conf)",
                          Status.UNKNOWN)
    if isinstance(e, asyncpg.InvalidCatalogNameError):
        return ProbeError(f"{where}: {said}; fix database", Status.UNKNOWN)
    if isinstance(e, ConnectionRefusedError):
        return ProbeError(f"cannot connect to {where}: connection refused")
    if isinstance(e, OSError):
        reason = e.strerror or str(e) or type(e).__name__
        return ProbeError(f"cannot connect to {where}: {_text(reason[0].lower() + reason[1:])}")
    if isinstance(e, asyncpg.InterfaceError):
        return ProbeError(f"{where} closed the connection: {said}")
    return ProbeError(f"{where}: {said}")  # too many connections, shutting down, ...


def _password(cfg: Config) -> str | None:
    """The password, or None to let the driver use ~/.pgpass as libpq does."""
    if not cfg.password_file:
        return cfg.password.get_secret_value() or None
    return read_secret_file(cfg.password_file)


def _where(cfg: Config) -> str:
    if cfg.socket_dir:
        return f"{cfg.socket_dir}/.s.PGSQL.{cfg.port}"
    return f"{cfg.host}:{cfg.port}"


def _text(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_TEXT else line[: MAX_TEXT - 3] + "..."


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"
