"""Which store a URL names, opened: ``await open_store(url, policy)``; and ``migrate``.

SQLite (``sqlite:///PATH``) is the embedded default; PostgreSQL
(``postgresql://USER@HOST:PORT/DATABASE``) is the shared one, its password in the URL or
in a password file. Each backend's module is imported only when it is used, so a SQLite
deployment never loads asyncpg. Opening a store brings its schema up to date.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from pathlib import Path

from monitord.errors import SecretError, StoreError
from monitord.net import redact_url
from monitord.schema import read_secret_file
from monitord.store.migrations import schema_files
from monitord.store.policy import Policy
from monitord.store.protocol import Store

SQLITE_PREFIX = "sqlite://"


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URL (or ``sqlite:////PATH``, the form some tools
    write for an absolute path); None for any other URL."""
    if not url.startswith(SQLITE_PREFIX):
        return None
    return Path("/" + url[len(SQLITE_PREFIX) :].lstrip("/"))


async def open_store(url: str, policy: Policy, password_file: str = "") -> Store:
    """The store ``url`` names, migrated."""
    path = sqlite_path(url)
    if path is not None:
        from monitord.store.sqlite import SQLiteStore

        return await SQLiteStore.open(path, policy)
    from monitord.store.postgres import PostgresStore

    return await PostgresStore.open(url, policy, password=_password(password_file))


async def migrate(url: str, policy: Policy, password_file: str = "") -> str:
    """Bring the store's schema up to date; says what it did, in one line."""
    path = sqlite_path(url)
    if path is not None:
        return await _migrate_sqlite(url, path, policy)
    from monitord.store.postgres import PostgresStore

    store = await PostgresStore.open(url, policy, password=_password(password_file))
    await store.close()
    return _said(url, list(store.migrated))


async def _migrate_sqlite(url: str, path: Path, policy: Policy) -> str:
    before = await asyncio.to_thread(_sqlite_version, path)
    store = await open_store(url, policy)      # SQLiteStore migrates the file as it opens it
    await store.close()
    after = await asyncio.to_thread(_sqlite_version, path)
    # The numbers of the files applied: they need not follow one another.
    applied = [n for n, _, _ in schema_files("sqlite") if before < n <= after]
    return _said(url, [f"schema version {n}" for n in applied])


def _said(url: str, applied: list[str]) -> str:
    name = redact_url(url)
    if not applied:
        return f"{name}: the schema is up to date; nothing to do"
    return f"{name}: applied {', '.join(applied)}"


def _sqlite_version(path: Path) -> int:
    """The file's PRAGMA user_version (0 for a file that does not exist yet)."""
    if not path.exists():
        return 0
    try:
        uri = f"{path.resolve().as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5.0)) as db:
            (version,) = db.execute("PRAGMA user_version").fetchone()
    except sqlite3.Error as e:
        raise StoreError(f"cannot read the incident store {path}: {e}") from None
    return int(version)


def _password(password_file: str) -> str | None:
    """The password in ``password_file`` (first line), or None for none."""
    if not password_file:
        return None
    try:
        return read_secret_file(password_file, "store_password_file")
    except SecretError as e:
        raise StoreError(f"[central] {e}") from None
