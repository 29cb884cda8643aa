"""What the rest of the host uses of a database, whichever backend is behind it.

- :data:`Store`, the type every function that takes a database names.
- :data:`IntegrityError` and :data:`OperationalError`, the errors it raises for a broken
  constraint and for a server or file that cannot answer.
- :func:`backend`, the backend's name, and :func:`in_list`, an ``IN (...)`` list of named parameters.

SQL is written once, with named parameters (``:name``) and a mapping of values, in the SQL both
backends accept: SQLite runs it as it is, PostgreSQL through SQLAlchemy's ``text()`` compiled once
per statement (``host.store.pg.compile_named``). Null-safe equality is spelled
``(a = :x OR (a IS NULL AND :x IS NULL))``, the larger of two values ``CASE WHEN``, a prefix
check ``substr(value, 1, n) = :prefix`` (``LIKE`` ignores case on SQLite only).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any, TypeAlias

import sqlite_utils

#: a database of either backend (``host.store.pg.PgDatabase`` offers the same surface)
Store: TypeAlias = sqlite_utils.Database

#: a broken constraint (unique, foreign key, check), on either backend
IntegrityError = sqlite3.IntegrityError
#: the database cannot answer (locked, gone, the server down), on either backend
OperationalError = sqlite3.OperationalError


def backend(db: Store) -> str:
    """``"sqlite"`` or ``"postgresql"``: chosen once, when the database was opened (the rest of
    the host picks what differs, such as the job engine, by this name, never from a URL)."""
    return str(getattr(db, "backend", "sqlite"))


def in_list(name: str, values: Iterable[Any]) -> tuple[str, dict[str, Any]]:
    """``(:name_0, :name_1, ...)`` and its parameters, for ``column IN`` a list of values
    (an empty list gives ``(NULL)``, which matches nothing)."""
    params = {f"{name}_{i}": value for i, value in enumerate(values)}
    marks = ", ".join(f":{key}" for key in params) or "NULL"
    return f"({marks})", params


def index_hint(db: Store, index: str) -> str:
    """``INDEXED BY index`` on SQLite, nothing on PostgreSQL (which takes no planner hints): for
    a query whose plan SQLite gets wrong by itself, put after the table's name in ``FROM``."""
    return f"INDEXED BY {index}" if backend(db) == "sqlite" else ""
