"""Many rows of one table written at once, the cheapest way each backend binds them: the caller
gives the table's column names and each row's values in that order, and writes no SQL.

Named parameters and a dict per row made writing a bulk import of orders and their lines a
fifth slower on SQLite: its module binds a named parameter by making a new string of its name
for every value of every row, and a dict costs more to build than a tuple (docs/benchmarks.md).
So SQLite gets the values by position (``?``); PostgreSQL, whose time goes to the network, gets
them by name.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

from host.store.api import Store, backend


@functools.lru_cache(maxsize=64)
def _insert(table: str, columns: tuple[str, ...], by_position: bool) -> str:
    marks = ", ".join("?" if by_position else f":{column}" for column in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"


def insert_rows(db: Store, table: str, columns: tuple[str, ...], rows: Iterable[Sequence[Any]]) -> None:
    """INSERT into ``table`` (a fixed name, never text from a request) each row, its values in
    the order of ``columns``, in the caller's transaction."""
    if backend(db) == "sqlite":
        db.conn.executemany(_insert(table, columns, True), rows)
    else:
        db.conn.executemany(_insert(table, columns, False), (dict(zip(columns, row, strict=True)) for row in rows))
