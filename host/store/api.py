"""What the rest of the host uses of a database, whichever backend is behind it.

- :class:`Store`, the type every function that takes a database names: the surface both
  adapters offer (``host.store.db.SqliteStore``, sqlite-utils' ``Database`` with a ``backend``
  and a ``write()``; ``host.store.pg.PgDatabase`` on psycopg).
- :data:`IntegrityError`, :data:`OperationalError` and :data:`Error`, what to catch for a broken
  constraint, for a server or file that cannot answer, and for any refusal of the database.
- :func:`backend`, the backend's name, and :func:`in_list`, an ``IN (...)`` list of named parameters.

SQL is written once, with named parameters (``:name``) and a dict of values, in the SQL both
backends accept: SQLite runs it as it is, PostgreSQL through SQLAlchemy's ``text()`` compiled once
per statement (``host.store.pg.compile_named``). Null-safe equality is spelled
``(a = :x OR (a IS NULL AND :x IS NULL))``, the larger of two values ``CASE WHEN``, a prefix
check ``substr(value, 1, n) = :prefix`` (``LIKE`` ignores case on SQLite only).
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeAlias

from host.store import errors

#: the parameters of a statement: a dict for named ones (``:name``), the way SQL is written now
Params: TypeAlias = Sequence[Any] | dict[str, Any] | None

#: a broken constraint (unique, foreign key, check, not null), on either backend: use it in
#: ``except`` (a tuple of the two adapters' classes, so SQLite's statements pay nothing for it).
#: Each name is a tuple: combine them unpacked, ``except (*IntegrityError, *OperationalError)``,
#: or catch :data:`Error`; Python refuses a nested tuple when an exception arrives (mypy says so)
IntegrityError = (sqlite3.IntegrityError, errors.IntegrityError)
#: the database cannot answer (locked, gone, the server down), on either backend
OperationalError = (sqlite3.OperationalError, errors.OperationalError)
#: any refusal of the database, on either backend
Error = (sqlite3.Error, errors.StoreError)


def unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says the database could not answer for now (PostgreSQL gone or
    restarting, a lock not had in time; SQLite locked past its busy timeout), so nothing was
    written and the same work can be tried again: not a failure of the work itself."""
    if isinstance(exc, errors.Unavailable):
        return True
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


class Cursor(Protocol):
    """What ``execute`` returns: rows as tuples."""

    @property
    def rowcount(self) -> int: ...

    @property
    def description(self) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """``db.conn``: whether a transaction is open, and ``executemany`` for a batch of rows."""

    @property
    def in_transaction(self) -> bool: ...

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any], /) -> Any: ...


class Table(Protocol):
    """``db[name]``: whether the table exists and its columns."""

    def exists(self) -> bool: ...

    @property
    def columns_dict(self) -> dict[str, Any]: ...


class Store(Protocol):
    """A database of either backend, as the host uses it; open one with ``host.store.db.connect``."""

    #: ``"sqlite"`` or ``"postgresql"``, fixed when the database was opened
    backend: str

    @property
    def conn(self) -> Connection: ...

    def execute(self, sql: str, parameters: Params = None, /) -> Cursor: ...

    def query(self, sql: str, params: Params = None, /) -> Iterator[dict[str, Any]]: ...

    def __getitem__(self, table_name: str, /) -> Table: ...

    def table_names(self) -> list[str]: ...

    def write(self) -> AbstractContextManager[Any]:
        """A write transaction: writers take turns (SQLite's ``BEGIN IMMEDIATE``, PostgreSQL's
        advisory lock); inside another transaction, a savepoint."""
        ...

    def atomic(self) -> AbstractContextManager[Any]:
        """A savepoint inside a transaction, else a transaction of its own."""
        ...

    def row_write(self) -> AbstractContextManager[Any]:
        """For one statement that changes only rows no other writer reads before writing (a
        running job's heartbeat): on PostgreSQL it runs alone, never waiting for the shared write
        lock; on SQLite it is a write transaction (one writer at a time there whatever it is)."""
        ...

    def rollback(self) -> None: ...

    def close(self) -> None: ...


def backend(db: Store) -> str:
    """``"sqlite"`` or ``"postgresql"``: chosen once, when the database was opened (the rest of
    the host picks what differs, such as the job engine, by this name, never from a URL)."""
    return str(getattr(db, "backend", "sqlite"))


@functools.lru_cache(maxsize=512)
def _in_names(name: str, count: int) -> tuple[tuple[str, ...], str]:
    # an import asks for a batch's 200 ids several times a batch: names made once per size
    keys = tuple(f"{name}_{i}" for i in range(count))
    return keys, ", ".join(f":{key}" for key in keys) or "NULL"


def in_list(name: str, values: Iterable[Any]) -> tuple[str, dict[str, Any]]:
    """``(:name_0, :name_1, ...)`` and its parameters, for ``column IN`` a list of values
    (an empty list gives ``(NULL)``, which matches nothing)."""
    values = list(values)
    keys, marks = _in_names(name, len(values))
    params = dict(zip(keys, values, strict=True))
    return f"({marks})", params


def index_hint(db: Store, index: str) -> str:
    """``INDEXED BY index`` on SQLite, nothing on PostgreSQL (which takes no planner hints): for
    a query whose plan SQLite gets wrong by itself, put after the table's name in ``FROM``."""
    return f"INDEXED BY {index}" if backend(db) == "sqlite" else ""
