"""The schema's steps, in order, each written once for both backends.

Each backend's runner applies them with its own bookkeeping (``host.store.migrations`` for
SQLite, ``host.store.pg_migrations`` for PostgreSQL). To change the schema, append a step:

    Step("0019_what_it_does", ddl="ALTER TABLE orders ADD COLUMN note {text}")

- its name is the next number and a few words, never renamed or reused once released; the number
  is the SQLite database's ``PRAGMA user_version`` after the step;
- ``ddl`` is portable SQL with the dialect's words (``dialects.py``), statements separated by
  ``;`` at a line's end; ``python(db, dialect)`` runs after it for what DDL cannot say (data to
  fill in, an index one backend builds differently), with SQL in named parameters (``:name``);
- the step runs in one transaction with its record, on a new database after the steps before
  it and on every existing one at its next open; it must leave each backend with the same
  tables, columns and indexes (``tests/store/test_one_schema.py`` compares them);
- SQLite cannot drop a column's NOT NULL or a CHECK in place: such a change rebuilds the table
  (legacy step ``0008_channel_money`` shows how), and needs a runner change to run outside a
  transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from host.store.schema import baseline
from host.store.schema.dialects import Dialect


@dataclass(frozen=True)
class Step:
    """One change of the schema, for every backend."""

    #: ``NNNN_what``: the number orders the steps
    name: str
    #: portable DDL with the dialect's ``{words}``
    ddl: str = ""
    #: runs after the DDL, given the database and the dialect
    python: Callable[[Any, Dialect], None] | None = None

    @property
    def number(self) -> int:
        return int(self.name[:4])


def apply(db: Any, dialect: Dialect, step: Step) -> None:
    """Run ``step`` on ``db`` in ``dialect``, inside the caller's transaction (no record kept)."""
    for statement in dialect.setup:
        db.execute(statement, {})
    for statement in dialect.statements(step.ddl):
        db.execute(statement, {})
    if step.python is not None:
        step.python(db, dialect)


def _order_id_search(db: Any, dialect: Dialect) -> None:
    dialect.order_id_search(db)


#: the schema as it was when the two backends' steps were merged into this one list
BASELINE = Step("0018_baseline", ddl=baseline.DDL, python=_order_id_search)


def _short_search_pending_list(db: Any, dialect: Dialect) -> None:
    # PostgreSQL's trigram index as ``order_search.PG_INDEX_SQL`` now makes it (SQLite's search
    # has no such list); absent when the server refused pg_trgm: the operator's SQL makes it so
    if dialect.name == "postgresql":
        from host.records.order_search import PG_INDEX, PG_PENDING_LIST_KB

        db.execute(f"ALTER INDEX IF EXISTS {PG_INDEX} SET (gin_pending_list_limit = {PG_PENDING_LIST_KB})", {})


#: every step, in order; append new ones at the end
STEPS: tuple[Step, ...] = (
    BASELINE,
    Step("0019_short_search_pending_list", python=_short_search_pending_list),
)
