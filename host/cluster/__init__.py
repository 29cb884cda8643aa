"""Scale-out: Queued Jobs run by procrastinate on the host's own PostgreSQL database.

Used only when the host database is a ``postgresql://`` URL; on SQLite the worker runs its
``LocalPool`` as before. See ``docs/scale-out.md``.

* :mod:`.schema` installs procrastinate's tables and the trigger that turns every Queued row
  of ``jobs`` into a procrastinate job in the same transaction.
* :mod:`.engine` is the procrastinate app and its one task, ``cartplugin.run_job``.
* :mod:`.leader` runs the scheduler once per cluster (a PostgreSQL advisory lock).
* :mod:`.worker` is ``cartplugin worker`` on PostgreSQL.
"""

from __future__ import annotations

import os


def is_postgres(db: str | os.PathLike | None) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) URL, False for a SQLite path."""
    return str(db or "").startswith(("postgresql://", "postgres://"))
