"""The file behind a database, for what is kept beside it (the secrets' key file).

Apart from ``host.store.db`` so that the records that need it (``host.records.secrets``) do not
import the module that opens and migrates databases, which imports them in turn.
"""

from __future__ import annotations

from pathlib import Path

from host.store import pg
from host.store.api import Store


def file_of(db: Store) -> Path | None:
    """The SQLite file behind ``db``; None for PostgreSQL or an in-memory database."""
    if pg.as_pg(db) is not None:
        return None
    file = db.execute("PRAGMA database_list").fetchone()[2]
    return Path(file) if file else None
