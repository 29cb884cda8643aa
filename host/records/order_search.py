"""Search orders on any part of the channel's order id, through an index on both stores.

A search of ``MIN_CHARS`` characters or more matches anywhere in ``orders.source_order_id``
("11761108" finds "BMP-11761108"), ignoring case:

- SQLite: the FTS5 table ``orders_id_search`` with the ``trigram`` tokenizer, external content
  on ``orders`` (it stores only the index; migration ``0014_order_id_search``). New orders are
  added by the host's one insert path (``orders.upsert_orders`` calls :func:`index_new` with
  each batch): an AFTER INSERT trigger did the same at five times the cost of a batch insert
  (docs/benchmarks.md). Triggers keep the index right when an order is deleted or its id or
  row id changed, which no import does; a script that inserts orders itself rebuilds the
  index (:data:`REBUILD`, docs/operations.md);
- PostgreSQL: a GIN ``gin_trgm_ops`` index of the ``pg_trgm`` extension on the same column
  (step ``0009_order_id_search``), which serves ``ILIKE '%...%'``. Where the database user may
  not create the extension the step leaves the index out and says so: the search still
  answers, by reading the whole table (docs/operations.md says what to run).

Which of the two a search goes through is the store's to say (``host.store.search.contains``):
this module writes no SQL that differs by backend.

A trigram index cannot look up fewer than three characters, so a shorter search matches the
whole id only, as before, and the grid asks for at least three characters.
"""

from __future__ import annotations

import logging
from typing import Any

from host.store import search
from host.store.api import Store

#: a trigram index looks up three characters or more
MIN_CHARS = 3
#: the longest search taken (an order id is far shorter)
MAX_CHARS = 100
FTS_TABLE = "orders_id_search"
_FTS = search.Fts(FTS_TABLE, "o.id")
PG_INDEX = "orders_source_trgm"
SHORT_HINT = (
    f"Type at least {MIN_CHARS} characters to search within Channel Order IDs; shorter text matches a whole ID only."
)

log = logging.getLogger(__name__)


def term(value: Any) -> str:
    """The search as typed, trimmed and bounded."""
    return str(value or "").strip()[:MAX_CHARS]


def is_partial(text: str) -> bool:
    """True when ``text`` is long enough to be looked up anywhere in an id."""
    return len(text) >= MIN_CHARS


def hint(value: Any) -> str | None:
    """What the grid says under a search too short to look within ids, else None."""
    text = term(value)
    return SHORT_HINT if text and not is_partial(text) else None


def condition(value: Any, backend: Store | str = "sqlite") -> tuple[str, dict[str, Any]]:
    """The WHERE fragment (on ``orders o``) and its named parameter ``q`` for a search of
    ``value``; ``backend``: the database, or the name ``host.store.api.backend`` gives for it."""
    text = term(value)
    if not is_partial(text):
        return "o.source_order_id = :q", {"q": text}
    return search.contains(backend, "o.source_order_id", text, name="q", fts=_FTS)


# -- schema (host.store.migrations 0014_order_id_search, host.store.pg_migrations 0009_order_id_search) --------

SQLITE_SCHEMA = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {FTS_TABLE} USING fts5("
    "source_order_id, content='orders', content_rowid='id', tokenize='trigram')",
    f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_delete AFTER DELETE ON orders BEGIN "
    f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rowid, source_order_id) VALUES ('delete', old.id, old.source_order_id); "
    "END",
    f"CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_update AFTER UPDATE OF id, source_order_id ON orders BEGIN "
    f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rowid, source_order_id) VALUES ('delete', old.id, old.source_order_id); "
    f"INSERT INTO {FTS_TABLE} (rowid, source_order_id) VALUES (new.id, new.source_order_id); END",
)
#: builds the whole index again from ``orders`` (the migration's backfill; after a bulk load by hand)
REBUILD = f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}) VALUES ('rebuild')"


def index_new(db: Store, rows: list[tuple[int, str]]) -> None:
    """Add just-inserted orders, as ``(orders.id, source_order_id)``, to the SQLite search index,
    in the caller's transaction; on PostgreSQL the trigram index is the table's own."""
    search.index_rows(db, FTS_TABLE, "source_order_id", rows)


#: tables the search adds on SQLite that PostgreSQL has no need of (FTS5 and its shadow tables)
SQLITE_ONLY_TABLES = frozenset(
    {FTS_TABLE} | {f"{FTS_TABLE}_{suffix}" for suffix in ("data", "idx", "content", "docsize", "config")}
)

#: the GIN index's pending list (new entries not yet merged into the index), in kB: every search
#: reads it whole, so while an import writes, a search by order id read up to 4 MB of it (the
#: server's default: 10 ms a search at 120,000 orders just after 20,000 were imported, against
#: 0.9 ms at 64 kB; the import paid 0.1-0.25 s more for its 20,000 rows, docs/benchmarks.md)
PG_PENDING_LIST_KB = 64
PG_INDEX_SQL = (
    f"CREATE INDEX IF NOT EXISTS {PG_INDEX} ON orders USING gin (source_order_id gin_trgm_ops) "
    f"WITH (gin_pending_list_limit = {PG_PENDING_LIST_KB})"
)
#: what an operator runs when the database user may not create the extension (docs/operations.md)
PG_OPERATOR_SQL = f"CREATE EXTENSION IF NOT EXISTS pg_trgm; {PG_INDEX_SQL};"


def create_pg_index(db: Any) -> bool:
    """Add ``pg_trgm`` and the trigram index, inside the migration's transaction; False (and a
    warning naming what to run) when the server refuses the extension to this user."""
    installed = db.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'").fetchone()
    if not installed:
        try:
            with db.atomic():  # a savepoint: a refusal leaves the rest of the step standing
                db.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        except Exception as exc:  # noqa: BLE001 - permission denied, or the extension is not installed
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning(
                "order id search: PostgreSQL refused CREATE EXTENSION pg_trgm (%s); searches within "
                "Channel Order IDs read the whole orders table until a database owner runs: %s",
                reason,
                PG_OPERATOR_SQL,
            )
            return False
    db.execute(PG_INDEX_SQL)
    return True
