"""Opening the host database: SQLite through sqlite-utils, WAL mode, migrated on open.

The file is created readable by its owner only (SQLite gives its ``-wal`` and ``-shm`` files
the same mode). A new or outdated database is migrated under an exclusive lock file
(``<database>.lock``), so processes opening it at once never race each other's steps; a
database written by a newer cartplugin is refused before anything is changed.

A ``postgresql://`` URL instead of a path opens PostgreSQL (``host.store.pg``): the same functions
take either, migrated on open under an advisory lock (``host.store.pg_migrations``). Which one it
is is decided here, once, from the path or URL; the open database carries it (``backend``,
read through ``host.store.api.backend``), and the rest of the host asks the store, never the URL.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path

import sqlite_utils

from host.errors import HostError
from host.store import pg
from host.store.api import Store, in_list
from host.store.sqlite import SqliteStore
from host.store.sqlite import joined_write as joined_write
from host.store.sqlite import write as write

DEFAULT_DB = "cartplugin.db"

# money columns are TEXT on both backends: a Decimal parameter is stored as its exact text, as
# host.store.pg sends it to PostgreSQL
sqlite3.register_adapter(Decimal, lambda value: format(value, "f"))
BUSY_TIMEOUT_SECONDS = 30


def db_path(explicit: str | os.PathLike | None = None) -> Path | str:
    target = str(explicit or os.environ.get("CARTPLUGIN_DB") or DEFAULT_DB)
    return target if pg.is_url(target) else Path(target)


def as_target(target: str | os.PathLike) -> Path | str:
    """A database named by a path or URL, kept in that form (``Path`` would mangle a URL's ``//``)."""
    return str(target) if pg.is_url(str(target)) else Path(target)


def is_postgresql(target: object) -> bool:
    """True for a PostgreSQL URL or an open PostgreSQL database (the store's own question: the
    rest of the host reads ``host.store.api.backend(db)`` or :func:`backend_of`)."""
    return isinstance(target, pg.PgDatabase) or pg.is_url(target)


def backend_of(target: str | os.PathLike) -> str:
    """The backend a path or URL opens, without opening it: ``"postgresql"`` or ``"sqlite"``
    (for what is chosen before a connection exists, such as forking job processes)."""
    return "postgresql" if pg.is_url(str(target)) else "sqlite"


def is_database_url(value: str) -> bool:
    """True for a database URL (kept as text), False for a SQLite file's path (made absolute,
    relative to a config file, ``~`` expanded)."""
    return pg.is_url(value)


def target_of(db: Store) -> str:
    """What opens this database again: the SQLite file's path or the PostgreSQL URL."""
    pgdb = pg.as_pg(db)
    if pgdb is not None:
        return pgdb.url
    return db.execute("PRAGMA database_list").fetchone()[2]


def may_exist(target: str | os.PathLike) -> bool:
    """False when ``target`` surely names no database yet (a SQLite file that is not there), so a
    command can skip opening it; a URL's server answers that only when connected: True."""
    return pg.is_url(str(target)) or Path(target).exists()


def rate_limit_target(target: str | os.PathLike) -> str:
    """Where the channels' rate limits are kept for this database: on PostgreSQL the same
    database, shared by the workers of every machine; on SQLite a file beside it."""
    return str(target) if pg.is_url(str(target)) else os.path.abspath(f"{target}-ratelimit")


def prepare_rate_limits(target: str) -> None:
    """Make the rate-limit store of :func:`rate_limit_target` ready for processes that share it:
    a SQLite file in WAL mode before they start (two processes switching a new file to WAL at
    once make one fail with "database is locked"); a URL needs nothing."""
    if pg.is_url(target):
        return
    conn = sqlite3.connect(target, timeout=BUSY_TIMEOUT_SECONDS)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()


def display(target: str | os.PathLike) -> str:
    """A database path or URL as shown to a person (a URL's password masked)."""
    return pg.display(str(target)) if pg.is_url(str(target)) else str(target)


def connect(path: str | os.PathLike, *, migrate: bool = True, create: bool = True) -> Store:
    """A connection of its own (one per thread), in WAL mode, with the schema up to date.

    With ``create=False`` a missing file is an error instead of a new empty database: the
    worker and the commands that only use a database must not invent one where it vanished.
    A PostgreSQL URL gives a :class:`host.store.pg.PgDatabase` (the database itself must exist;
    an empty one gets the schema).
    """
    if pg.is_url(path):
        return connect_postgresql(str(path), migrate=migrate)
    path = Path(path)
    if path.is_dir():
        raise HostError(f"database path {str(path)!r} is a directory")
    if not path.parent.exists():
        raise HostError(f"database folder {str(path.parent)!r} does not exist")
    if not path.exists():
        if not create:
            raise HostError(
                f"no database at {str(path)!r}; add a company first (cartplugin companies add) or pass --db"
            )
        _create_private(path)
    try:
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_SECONDS, check_same_thread=False)
        db = SqliteStore(conn, execute_plugins=False)
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA synchronous = NORMAL")
        if migrate:
            _prepare(db, path)
    except sqlite3.DatabaseError as exc:
        raise HostError(f"cannot open database {str(path)!r}: {exc}") from None
    return db


class Connections:
    """Where a server of many short requests takes a connection for each (``open``) and what it
    closes when it stops (``close``): on PostgreSQL a pool (:class:`host.store.pg.PgPool`) of at
    most ``pool_size`` connections kept open, since a new one costs the server a process and the
    request a round of authentication; on SQLite a connection of its own each time, which costs
    an ``open()`` of the file and holds nothing, so there is nothing to bound."""

    def __init__(
        self,
        target: str | os.PathLike,
        pool_size: int,
        *,
        name: str = "cartplugin-web",
        timeout: float = 10.0,
        create: bool = True,
    ):
        self.target = as_target(target)
        self.create = create  # SQLite: whether ``open`` may make a file that is not there
        self.pool = (
            pg.PgPool(str(self.target), pool_size, name=name, timeout=timeout) if pg.is_url(self.target) else None
        )

    def open(self) -> Store:
        """A connection for one request (its ``close()`` gives a pooled one back); the schema is
        not checked again (the server checked it when it started)."""
        if self.pool is not None:
            return self.pool.database()
        return connect(self.target, migrate=False, create=self.create)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()


#: connections a worker process keeps for its running jobs' heartbeats, per database
SHORT_WRITES_POOL_SIZE = 4
_short_writes: dict[str, Connections] = {}
_short_writes_lock = threading.Lock()


def short_write(target: str | os.PathLike) -> Store:
    """A connection for one short write of a worker's own (a running job's heartbeat); its
    ``close()`` gives it back.

    On PostgreSQL it is lent by a pool this process keeps (``SHORT_WRITES_POOL_SIZE``), so the
    heartbeats of job after job do not each cost the server a new process and a round of
    authentication; on SQLite it is the file opened for the write (nothing to keep), never
    created where it vanished.
    """
    key = str(as_target(target))
    with _short_writes_lock:
        connections = _short_writes.get(key)
        if connections is None:
            connections = _short_writes[key] = Connections(
                key, SHORT_WRITES_POOL_SIZE, name="cartplugin-beats", timeout=5.0, create=False
            )
    return connections.open()


def _forget_short_writes() -> None:
    """In a forked child: the parent's pools and their threads are not the child's, and neither
    is the lock, which a parent thread may have held at the fork."""
    global _short_writes_lock
    _short_writes.clear()
    _short_writes_lock = threading.Lock()


if hasattr(os, "register_at_fork"):  # no fork on Windows
    os.register_at_fork(after_in_child=_forget_short_writes)


@atexit.register
def _close_short_writes() -> None:
    with _short_writes_lock:
        kept = list(_short_writes.values())
        _short_writes.clear()
    for connections in kept:
        with contextlib.suppress(Exception):
            connections.close()


def connect_postgresql(url: str, *, migrate: bool = True) -> pg.PgDatabase:
    """A PostgreSQL database by its URL, with the schema up to date unless ``migrate=False``."""
    from host.store import pg_migrations

    db = pg.PgDatabase(url)
    try:
        if migrate:
            pg_migrations.prepare(db)
    except BaseException:
        db.close()
        raise
    return db


def _create_private(path: Path) -> None:
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:  # another process made it first
        pass


def _prepare(db: sqlite_utils.Database, path: Path) -> None:
    """WAL mode and the schema up to date; the common case (nothing to do) takes no lock."""
    from host.store import migrations

    if db.journal_mode == "wal" and migrations.up_to_date(db, path):
        return
    with _exclusive(path):
        if db.journal_mode != "wal":
            db.enable_wal()
        migrations.migrate(db, path)


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    lock = path.with_name(path.name + ".lock")
    fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def open_existing(path: str | os.PathLike) -> Store:
    """Open a database that must exist already (commands that only read never create one)."""
    return connect(path, create=False)


def file_identity(path: str | os.PathLike) -> tuple[int, int] | None:
    """(device, inode) of the database file, None when it is gone: tells a file replaced or
    deleted under a running process from the one it opened. None for a PostgreSQL URL."""
    if pg.is_url(str(path)):
        return None
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def delete_in_batches(
    db: Store,
    pick: str,
    params: Mapping[str, object],
    tables: Sequence[tuple[str, str]],
    batch: int,
) -> int:
    """Delete the rows ``pick`` selects (an id a row, ``LIMIT :batch`` last, its other named
    ``params`` given), ``batch`` at a time, each batch its own short transaction so the write
    lock is never held for long; from each of ``tables`` (table, id column) in turn, dependent
    rows first. How many ids were deleted."""
    removed = 0
    while True:
        with write(db):
            ids = [row[0] for row in db.execute(pick, {**params, "batch": batch}).fetchall()]
            if not ids:
                return removed
            marks, id_params = in_list("id", ids)
            for table, column in tables:
                db.execute(f"DELETE FROM {table} WHERE {column} IN {marks}", id_params)
        removed += len(ids)
