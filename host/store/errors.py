"""The store's own errors, raised by the PostgreSQL adapter (``host.store.pg``).

SQLite's adapter raises ``sqlite3``'s classes as they come: wrapping every statement to map
them would cost a Python frame per statement on the hot path, while an ``except`` given a
tuple costs nothing. So ``host.store.api.IntegrityError`` is the pair (sqlite3's, this one),
and the host catches only ``host.store.api``'s names, never ``sqlite3`` or psycopg directly.
"""

from __future__ import annotations


class StoreError(Exception):
    """The database refused a statement or could not answer (PostgreSQL)."""


class IntegrityError(StoreError):
    """A broken constraint: unique, foreign key, check, not null."""


class OperationalError(StoreError):
    """The server or the connection cannot answer (down, restarting, lost mid-transaction)."""


class Unavailable(OperationalError):
    """The database could not be reached, dropped the connection (a restart, a failover, a
    transaction idle past the server's limit) or a lock was not had within ``lock_timeout``: the
    statement, and its transaction, did nothing; the same work can be done again later."""


class DataError(StoreError):
    """A value the column cannot hold (out of range, malformed)."""
