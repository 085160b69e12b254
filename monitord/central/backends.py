"""Which store ``store_url`` names, opened: ``await open_store(config)``; and ``migrate``.

SQLite (``sqlite:///PATH``) is the embedded default; PostgreSQL
(``postgresql://USER@HOST:PORT/DATABASE``) is the shared one, its password in the URL or
in ``store_password_file``. Each backend's module is imported only when it is used, so
a SQLite deployment never loads asyncpg. Opening a store brings its schema up to date.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

from monitord.central.config import CentralConfig
from monitord.central.store import Store
from monitord.errors import StateError


async def open_store(config: CentralConfig) -> Store:
    """The store ``[central] store_url`` names, migrated."""
    if config.store_backend == "sqlite":
        from monitord.central.sqlite_store import SQLiteStore

        return await SQLiteStore.open(config.sqlite_path, config.policy.to_policy())
    from monitord.central.postgres_store import PostgresStore

    return await PostgresStore.open(config.central.store_url, config.policy.to_policy(),
                                    password=_password(config))


async def migrate(config: CentralConfig) -> str:
    """Bring the store's schema up to date; says what it did, in one line."""
    if config.store_backend == "sqlite":
        return await _migrate_sqlite(config)
    from monitord.central.postgres_store import PostgresStore

    store = await PostgresStore.open(config.central.store_url, config.policy.to_policy(),
                                     password=_password(config))
    await store.close()
    return _said(config, list(store.migrated))


async def _migrate_sqlite(config: CentralConfig) -> str:
    path = config.sqlite_path
    before = await asyncio.to_thread(_sqlite_version, path)
    store = await open_store(config)      # SQLiteStore migrates the file when it opens it
    await store.close()
    after = await asyncio.to_thread(_sqlite_version, path)
    return _said(config, [f"schema version {n}" for n in range(before + 1, after + 1)])


def _said(config: CentralConfig, applied: list[str]) -> str:
    if not applied:
        return f"{config.store_name}: the schema is up to date; nothing to do"
    return f"{config.store_name}: applied {', '.join(applied)}"


def _sqlite_version(path: Path) -> int:
    """The file's PRAGMA user_version (0 for a file that does not exist yet)."""
    if not path.exists():
        return 0
    try:
        uri = f"file:{path}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5.0)) as db:
            (version,) = db.execute("PRAGMA user_version").fetchone()
    except sqlite3.Error as e:
        raise StateError(f"cannot read the incident store {path}: {e}") from None
    return int(version)


def _password(config: CentralConfig) -> str | None:
    """The password in ``store_password_file`` (first line), or None for none."""
    name = config.central.store_password_file
    if not name:
        return None
    try:
        text = Path(name).read_text(encoding="utf-8")
    except OSError as e:
        raise StateError(f"cannot read [central] store_password_file {name}: "
                         f"{e.strerror}") from None
    return text.splitlines()[0] if text.strip() else ""
