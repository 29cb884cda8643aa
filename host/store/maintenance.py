"""What an operator does to the database as a whole, per backend: back it up, read its status.

``cartplugin db backup`` and ``db status`` call these; which backend a path or URL opens is
decided here (``host.store.db.backend_of``), so the CLI never asks.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from host.errors import HostError
from host.store import pg
from host.store.api import Store
from host.store.db import backend_of, connect, connect_postgresql, display

#: the tables whose rows ``status`` counts
COUNTED = ("companies", "orders", "jobs")


def check_backup(target: str | os.PathLike, dest: str) -> None:
    """Refuse (one line, before anything is opened) a backup this command does not make: a
    PostgreSQL database is backed up with PostgreSQL's own tools."""
    if backend_of(target) == "postgresql":
        raise HostError(
            "a PostgreSQL database is backed up with PostgreSQL's own tools, e.g. "
            f"pg_dump --format=custom --file={dest} '{display(target)}' (restore with pg_restore); "
            "keep the key file (secret_key_file) apart from the dump"
        )


def backup_into(db: Store, partial: Path) -> None:
    """Copy the SQLite database ``db`` into the new file ``partial`` while it is in use (SQLite's
    online backup API: one consistent moment), as one self-contained file (no ``-wal``)."""
    source = getattr(db, "conn", None)
    if not isinstance(source, sqlite3.Connection):
        raise HostError("only a SQLite database is backed up by cartplugin")
    copy = sqlite3.connect(partial)
    try:
        source.backup(copy, pages=1024)
        copy.execute("PRAGMA journal_mode=DELETE")
    finally:
        copy.close()


def status(target: str | os.PathLike) -> dict[str, Any]:
    """The database's path (a URL's password masked), size, schema version, migrations and
    integrity, with the rows of :data:`COUNTED`; ``backend`` and ``server_version`` for
    PostgreSQL. Opens without migrating: an old database stays as it is."""
    return _STATUS[backend_of(target)](target)


def integrity_failed(status: dict[str, Any]) -> bool:
    """True when :func:`status` found the database damaged (SQLite's integrity check; PostgreSQL
    checks its own pages, so its status never says so)."""
    return isinstance(status["integrity"], list)


def _sqlite_status(target: str | os.PathLike) -> dict[str, Any]:
    from host.store import migrations

    path = Path(target)
    db = connect(path, create=False, migrate=False)
    try:
        applied = migrations._applied(db)
        version = db.execute("PRAGMA user_version").fetchone()[0]
        integrity = [row[0] for row in db.execute("PRAGMA integrity_check").fetchall()]
        counts = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in COUNTED}
    finally:
        db.close()
    size = sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())
    return {
        "path": str(path),
        "size_bytes": size,
        "schema_version": version,
        "schema_expected": migrations.SCHEMA_VERSION,
        "migrations": applied,
        "integrity": "ok" if integrity == ["ok"] else integrity[:20],
        **counts,
    }


def _pg_status(target: str | os.PathLike) -> dict[str, Any]:
    from host.store import pg_migrations

    url = str(target)
    db = connect_postgresql(url, migrate=False)
    try:
        applied = pg_migrations.applied(db)
        server = db.execute("SHOW server_version").fetchone()[0]
        size = db.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        counts = (
            {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in COUNTED}
            if db["companies"].exists()
            else dict.fromkeys(COUNTED, 0)
        )
    finally:
        db.close()
    return {
        "path": pg.display(url),
        "backend": "postgresql",
        "server_version": server,
        "size_bytes": size,
        "schema_version": pg_migrations.version(applied),
        "schema_expected": pg_migrations.SCHEMA_VERSION,
        "migrations": applied,
        "integrity": "not checked (PostgreSQL checks its own pages; pg_amcheck for more)",
        **counts,
    }


_STATUS: dict[str, Callable[[str | os.PathLike], dict[str, Any]]] = {
    "sqlite": _sqlite_status,
    "postgresql": _pg_status,
}
