"""Many rows of one table written at once, the cheapest way each backend binds them: the caller
gives dicts and the table's column names, and writes no SQL.

SQLite binds a named parameter by making a new string of its name for every value of every row
(``:name`` costs twice what ``?`` does), which a bulk import of orders and their lines feels
(docs/benchmarks.md): here SQLite gets the values by position, taken from each dict in C
(``operator.itemgetter``), and PostgreSQL gets the dicts by name.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterable, Mapping
from typing import Any

from host.store.api import Store, backend


@functools.lru_cache(maxsize=64)
def _insert(table: str, columns: tuple[str, ...], by_position: bool) -> str:
    marks = ", ".join("?" if by_position else f":{column}" for column in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"


def insert_rows(db: Store, table: str, columns: tuple[str, ...], rows: Iterable[Mapping[str, Any]]) -> None:
    """INSERT into ``table`` (a fixed name, never text from a request) each row, a mapping that
    holds at least ``columns``, in the caller's transaction."""
    if backend(db) == "sqlite":
        values = operator.itemgetter(*columns) if len(columns) > 1 else (lambda row: (row[columns[0]],))
        db.conn.executemany(_insert(table, columns, True), map(values, rows))
    else:
        db.conn.executemany(_insert(table, columns, False), rows)
