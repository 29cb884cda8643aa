"""The host's schema on SQLite: the sqlite-utils migration set ``host``.

A new database is made from the schema's single source (``host.store.schema``): its baseline,
then every later step. A database made before the baseline first runs the old steps it lacks
(``host.store.schema.legacy_sqlite``, frozen) and is then recorded at the baseline, which it
already matches. Each step runs in one transaction with its record and sets ``PRAGMA
user_version`` to its number, so a run stopped between two steps says where it stopped; a
database with a step or a version unknown here was written by a newer cartplugin and is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlite_utils
from sqlite_utils import Migrations

from host.errors import HostError
from host.store.api import OperationalError
from host.store.schema import BASELINE, SQLITE, STEPS, Step, apply, legacy_sqlite

#: the old steps' names: the history of a database made before the baseline
LEGACY = frozenset(name for name, _, _ in legacy_sqlite.STEPS)


class _History(Migrations):
    """The whole history: the old steps, then the single source's. The old steps are never
    pending for a database made from the baseline (it records the baseline and no old step)."""

    def pending(self, db: sqlite_utils.Database) -> list[Migrations._Migration]:
        return self.pending_after([m.name for m in self.applied(db)])

    def pending_after(self, applied: list[str]) -> list[Migrations._Migration]:
        """The steps pending for a database that recorded ``applied`` (no query of its own)."""
        done = set(applied)
        from_baseline = bool(done) and not done & LEGACY
        return [m for m in self._migrations if m.name not in done and not (from_baseline and m.name in LEGACY)]


def _sqlite_step(step: Step) -> Callable[[sqlite_utils.Database], None]:
    def run(db: sqlite_utils.Database) -> None:
        if step is BASELINE and legacy_sqlite.STEPS[-1][0] in _applied(db):  # recorded at the baseline it matches
            for statement in legacy_sqlite.TO_BASELINE:
                db.execute(statement)
        else:
            apply(db, SQLITE, step)
        db.execute(f"PRAGMA user_version = {step.number:d}")

    return run


def _sets(steps: Sequence[Step]) -> tuple[_History, Migrations]:
    """The whole history (the old steps, then ``steps``) and the steps a new database is made by."""
    history, source = _History("host"), Migrations("host")
    for name, fn, transactional in legacy_sqlite.STEPS:
        history(name=name, transactional=transactional)(fn)
    for step in steps:
        history(name=step.name)(_sqlite_step(step))
        source(name=step.name)(_sqlite_step(step))
    return history, source


#: every step a database of this set may have (``migrations.apply`` on an empty database takes the
#: old steps: how the tests make the database an older version left), and those of a new database
migrations, from_source = _sets(STEPS)

#: PRAGMA user_version of a database this version wrote; a higher one is a newer version's
SCHEMA_VERSION = STEPS[-1].number


def _applied(db: Any) -> list[str]:
    try:
        return [row[0] for row in db.execute(
            f"SELECT name FROM {Migrations.migrations_table} WHERE migration_set = :set ORDER BY rowid",
            {"set": migrations.name},
        ).fetchall()]  # fmt: skip
    except OperationalError:  # no migrations table yet: a new database
        return []


def _refuse_newer(db: sqlite_utils.Database, path: object, applied: list[str]) -> None:
    known = {m.name for m in migrations._migrations}
    unknown = [name for name in applied if name not in known]
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if unknown or version > SCHEMA_VERSION:
        what = f"migration {unknown[0]!r}" if unknown else f"schema version {version}"
        raise HostError(
            f"database {str(path)!r} was written by a newer cartplugin ({what} is unknown here); "
            "upgrade cartplugin to use it (nothing was changed)"
        )


def up_to_date(db: sqlite_utils.Database, path: object = "") -> bool:
    """True when nothing is pending; raises for a database of a newer version."""
    applied = _applied(db)
    _refuse_newer(db, path, applied)
    return bool(applied) and not migrations.pending_after(applied)


def migrate(db: sqlite_utils.Database, path: object = "") -> None:
    """Apply every pending step (a no-op on an up-to-date database): a new database is made from
    the single source, an older one continues its own history.

    The caller holds the migration lock (``db.connect``), so no two processes run a step at
    once; a database of a newer version is refused before any step runs.
    """
    applied = _applied(db)
    _refuse_newer(db, path, applied)
    (migrations if applied else from_source).apply(db)
