"""The one way monitord opens an SQLite file: WAL, a busy timeout, errors that name it.

The agent's state file and outbox and the embedded incident store all open their file
here, and write through ``immediate``: ``BEGIN IMMEDIATE`` takes the write lock at once
(a second process waits for it at the start, never half-way through), and any error
rolls the whole transaction back.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from monitord.errors import StateError


def connect(path: Path, what: str, *, error: type[StateError] = StateError,
            synchronous: str = "NORMAL", busy_seconds: float = 5.0) -> sqlite3.Connection:
    """Open (creating its directory) the SQLite file ``path``, in WAL mode.

    ``what`` names the file in errors ("the state file"); ``synchronous`` is FULL where a
    committed row must survive a power cut (outbox, store), NORMAL where the last
    second may be lost.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None,
                             timeout=busy_seconds)
    except OSError as e:
        raise error(f"cannot open {what} {path}: {e.strerror}") from None
    except sqlite3.Error as e:
        raise error(f"cannot open {what} {path}: {e}") from None
    try:
        db.execute("PRAGMA journal_mode=WAL")
        # The value comes from the callers above, never from input: PRAGMA takes no
        # parameters.
        db.execute(f"PRAGMA synchronous={_SYNCHRONOUS[synchronous]}")
    except sqlite3.Error as e:
        db.close()
        raise error(f"cannot open {what} {path}: {e}") from None
    return db


_SYNCHRONOUS = {"NORMAL": "NORMAL", "FULL": "FULL"}


@contextlib.contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken at once: all of it is committed, or none."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    finally:
        if db.in_transaction:
            db.execute("ROLLBACK")
