"""Searching text anywhere in a column, ignoring case: the one condition whose SQL differs by
backend, so that the SQL outside the store is written once.

Each backend serves such a search from an index of trigrams, and each spells it its own way:

- SQLite: an FTS5 table with the ``trigram`` tokenizer, matched with the text as one phrase
  (without such a table, ``LIKE``, which ignores ASCII case on SQLite);
- PostgreSQL: ``ILIKE`` (its ``LIKE`` minds case), which a ``gin_trgm_ops`` index serves.

On SQLite an FTS5 table with external content is filled by whoever inserts the rows
(:func:`index_rows`); on PostgreSQL the trigram index is the table's own.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from host.store import bulk
from host.store.api import Store, backend


class Fts(NamedTuple):
    """A SQLite FTS5 trigram table that indexes a column: its name, and the column of the
    searched table that its ``rowid`` is (``o.id``)."""

    table: str
    rowid: str


def like_pattern(text: str) -> str:
    """``%text%``, with LIKE's wildcards and the escape character in ``text`` taken as plain text."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def contains(
    store: Store | str, column: str, text: str, *, name: str, fts: Fts | None = None
) -> tuple[str, dict[str, Any]]:
    """A condition that ``column`` holds ``text`` anywhere, ignoring case, and its one named
    parameter ``name``. ``store``: the database, or the name ``host.store.api.backend`` gives
    for it; ``fts``: the SQLite FTS5 trigram table of ``column``, when there is one."""
    kind = store if isinstance(store, str) else backend(store)
    if kind == "postgresql":
        return f"{column} ILIKE :{name} ESCAPE '\\'", {name: like_pattern(text)}
    if fts is None:
        return f"{column} LIKE :{name} ESCAPE '\\'", {name: like_pattern(text)}
    # one FTS5 string: a phrase of trigrams, which matches the text anywhere (no search syntax)
    phrase = '"' + text.replace('"', '""') + '"'
    return f"{fts.rowid} IN (SELECT rowid FROM {fts.table} WHERE {fts.table} MATCH :{name})", {name: phrase}


def index_rows(store: Store, fts_table: str, column: str, rows: list[tuple[int, str]]) -> None:
    """Add just-inserted rows, as ``(rowid, text)``, to the SQLite FTS5 table ``fts_table``
    (external content: it is told of new rows), in the caller's transaction; nothing on
    PostgreSQL, whose trigram index is the table's own."""
    if rows and backend(store) == "sqlite":
        bulk.insert_rows(store, fts_table, ("rowid", column), rows)
