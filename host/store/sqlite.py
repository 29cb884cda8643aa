"""The SQLite adapter: sqlite-utils' ``Database`` as the host's store, and write transactions.

Apart from ``host.store.db`` (which opens databases and migrates them) so that the migrations
can take a write transaction without importing the module that runs them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import sqlite_utils

from host.store.api import Store


@contextlib.contextmanager
def _sqlite_write(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """BEGIN IMMEDIATE, or a savepoint inside a transaction already open (see :func:`write`)."""
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


class SqliteStore(sqlite_utils.Database):
    """sqlite-utils' ``Database`` as the host's store: its ``backend`` and :meth:`write`.

    Nothing else is overridden, so every statement runs through sqlite-utils and sqlite3 as
    before, at no extra cost; sqlite3's errors reach the host unchanged and are caught through
    ``host.store.api``'s names.
    """

    backend = "sqlite"
    #: a short write transaction that takes the write lock up front (BEGIN IMMEDIATE); inside
    #: another transaction, a savepoint (the function itself: no extra frame per transaction)
    write = _sqlite_write
    #: SQLite has one write lock for everything: a single-row write takes it like any other
    row_write = _sqlite_write


def joined_write(db: Store | sqlite_utils.Database) -> contextlib.AbstractContextManager[Any]:
    """The caller's write transaction when one is open, else a write transaction of its own.

    For a write that needs no rollback of its own (one statement, or a few whose failure the
    caller's transaction rolls back with everything else): inside a transaction it adds no
    savepoint, which is two more statements each time (on PostgreSQL, two round trips), for a
    job's progress, its log lines, its end and its Change Log entry.
    """
    if db.conn.in_transaction:
        return contextlib.nullcontext(db)
    return write(db)


def write(db: Store | sqlite_utils.Database) -> contextlib.AbstractContextManager[Any]:
    """A short write transaction that takes the write lock up front (``db.write()``).

    Taking the lock at BEGIN instead of at the first write avoids the deadlock two deferred
    transactions can fall into when both try to upgrade from reading to writing. On
    PostgreSQL writers take turns the same way (``host.store.pg.PgDatabase.write``).
    """
    if isinstance(db, SqliteStore) or not isinstance(db, sqlite_utils.Database):
        return db.write()
    return _sqlite_write(db)  # a plain sqlite-utils Database (an old file opened by hand, migrated)
