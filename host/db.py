"""Opening the host database: SQLite through sqlite-utils, WAL mode, migrated on open."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import sqlite_utils

from .errors import HostError

DEFAULT_DB = "cartplugin.db"
BUSY_TIMEOUT_SECONDS = 30


def db_path(explicit: str | os.PathLike | None = None) -> Path:
    return Path(explicit or os.environ.get("CARTPLUGIN_DB") or DEFAULT_DB)


def connect(path: str | os.PathLike, *, migrate: bool = True) -> sqlite_utils.Database:
    """A connection of its own (one per thread), in WAL mode, with the schema up to date."""
    path = Path(path)
    if path.is_dir():
        raise HostError(f"database path {str(path)!r} is a directory")
    if not path.parent.exists():
        raise HostError(f"database folder {str(path.parent)!r} does not exist")
    try:
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_SECONDS, check_same_thread=False)
        db = sqlite_utils.Database(conn, execute_plugins=False)
        if db.journal_mode != "wal":
            db.enable_wal()
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.DatabaseError as exc:
        raise HostError(f"cannot open database {str(path)!r}: {exc}") from None
    if migrate:
        from .migrations import migrate as apply

        apply(db)
    return db


def open_existing(path: str | os.PathLike) -> sqlite_utils.Database:
    """Open a database that must exist already (commands that only read never create one)."""
    if not Path(path).exists():
        raise HostError(f"no database at {str(path)!r}; add a company first or pass --db")
    return connect(path)


@contextlib.contextmanager
def write(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """A short write transaction that takes the write lock up front (BEGIN IMMEDIATE).

    Taking the lock at BEGIN instead of at the first write avoids the deadlock two deferred
    transactions can fall into when both try to upgrade from reading to writing.
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.rollback()
        raise
    else:
        db.conn.execute("COMMIT")
