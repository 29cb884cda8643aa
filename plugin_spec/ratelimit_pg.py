"""The request limits kept in PostgreSQL, for workers on several machines.

Selected by ``limiter_for`` and ``group_limiter`` when ``CARTPLUGIN_RATE_LIMIT_DB`` is a
``postgresql://`` URL (the host sets it to its own database URL). The same sliding window as
the SQLite one, in the table ``cartplugin_rate_hits``, and the same token bucket, in
``cartplugin_rate_buckets`` (one row per key): each take is one short transaction that first
takes a transaction advisory lock on the key, so two processes (on any machines) never both
take the last slot. Time is the database server's clock, so the machines' clocks need not agree. A lost
connection (database restart) is opened again; until it is back, ``acquire`` waits.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import psycopg

from . import pgurl
from .ratelimit import BucketLimiter, Rate, WindowLimiter

#: seconds between two tries to reach a database that went away
RECONNECT_PAUSE_SECONDS = 0.5
#: give up (raise) when the database stays unreachable this long
RECONNECT_GIVE_UP_SECONDS = 300.0

_SETUP = """
CREATE TABLE IF NOT EXISTS cartplugin_rate_hits (key TEXT NOT NULL, at DOUBLE PRECISION NOT NULL);
CREATE INDEX IF NOT EXISTS cartplugin_rate_hits_key_at ON cartplugin_rate_hits (key, at);
CREATE TABLE IF NOT EXISTS cartplugin_rate_buckets (key TEXT PRIMARY KEY, tat DOUBLE PRECISION NOT NULL);
"""
_SETUP_LOCK = 0x63617274_0003


#: one connection per process and database, shared by the limiters of every key and every thread
#: (each slot is one transaction of about a millisecond, taken under ``_lock``): a worker talks to
#: hundreds of keys from short-lived upload and prefetch threads, and a connection for each would
#: exhaust the server's max_connections
_conns: dict[tuple[int, str], psycopg.Connection] = {}
_lock = threading.Lock()


def _connection(url: str) -> psycopg.Connection:
    """The process's connection to ``url`` (call with ``_lock`` held); the table made once."""
    key = (os.getpid(), url)  # a forked child never uses its parent's connection
    conn = _conns.get(key)
    if conn is None or conn.closed or conn.broken:
        conn = pgurl.connect(url, autocommit=True, connect_timeout=5, **pgurl.session_kwargs(url))
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [_SETUP_LOCK])
            if conn.execute("SELECT to_regclass('cartplugin_rate_buckets')").fetchone() == (None,):
                conn.execute(_SETUP)
        _conns[key] = conn
    return conn


def _drop_connection(url: str) -> None:
    conn = _conns.pop((os.getpid(), url), None)
    if conn is not None:
        conn.close()


def _take(url: str, down: threading.local, attempt: Callable[[psycopg.Connection], float | None]) -> float | None:
    """``attempt`` on the process's connection; while the database is away, "ask again
    shortly" until ``RECONNECT_GIVE_UP_SECONDS`` have passed."""
    try:
        with _lock:
            pause = attempt(_connection(url))
    except psycopg.OperationalError:
        with _lock:
            _drop_connection(url)
        now = time.monotonic()
        since = getattr(down, "since", None) or now
        down.since = since
        if now - since > RECONNECT_GIVE_UP_SECONDS:
            raise
        return RECONNECT_PAUSE_SECONDS
    down.since = None
    return pause


class _PgBackend:
    """What both kinds of limit kept in PostgreSQL share: the database, the key, each thread's
    reconnect state, and taking a slot in one transaction (``_try_locked``)."""

    def _keep_in(self, url: str, key: str) -> None:
        self.url, self.key = url, key
        self._down = threading.local()

    def _try_locked(self, conn: psycopg.Connection) -> float | None:
        raise NotImplementedError

    def try_take(self) -> float | None:
        return _take(self.url, self._down, self._try_locked)


class PgRateLimiter(_PgBackend, WindowLimiter):
    """At most ``limit`` requests in any ``window`` seconds for ``key``, counted in PostgreSQL.

    Waiting (and answering a stopping job with ``Stopped``) is ``Limiter.acquire``'s; this
    backend only takes a slot or says how long until one frees, and while the database is away
    it answers "ask again shortly" until ``RECONNECT_GIVE_UP_SECONDS`` have passed.
    """

    def __init__(self, url: str, key: str, limit: int, window: float):
        WindowLimiter.__init__(self, limit, window)
        self._keep_in(url, key)

    def _try_locked(self, conn: psycopg.Connection) -> float | None:
        """One transaction: take a slot if there is one (None); else the seconds until one frees."""
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [self.key])
            row = conn.execute(
                "WITH now AS (SELECT extract(epoch FROM clock_timestamp())::float8 AS t), "
                "gone AS (DELETE FROM cartplugin_rate_hits WHERE key = %s AND at <= (SELECT t FROM now) - %s) "
                "SELECT (SELECT t FROM now), count(*), min(at) FROM cartplugin_rate_hits "
                "WHERE key = %s AND at > (SELECT t FROM now) - %s",
                [self.key, self._span, self.key, self._span],
            ).fetchone()
            assert row is not None
            now, count, oldest = row
            if count < self.limit:
                conn.execute("INSERT INTO cartplugin_rate_hits (key, at) VALUES (%s, %s)", [self.key, now])
                return None
        return max(0.001, oldest + self._span - now)


class PgTokenBucket(_PgBackend, BucketLimiter):
    """A token bucket (:class:`Rate`) for ``key``, kept in PostgreSQL on the server's clock."""

    def __init__(self, url: str, key: str, rate: Rate):
        BucketLimiter.__init__(self, rate)
        self._keep_in(url, key)

    def _try_locked(self, conn: psycopg.Connection) -> float | None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [self.key])
            row = conn.execute(
                "SELECT extract(epoch FROM clock_timestamp())::float8, "
                "(SELECT tat FROM cartplugin_rate_buckets WHERE key = %s)",
                [self.key],
            ).fetchone()
            assert row is not None
            pause, tat = self._decide(row[1], row[0])
            if pause is None:
                conn.execute(
                    "INSERT INTO cartplugin_rate_buckets (key, tat) VALUES (%s, %s) "
                    "ON CONFLICT (key) DO UPDATE SET tat = excluded.tat",
                    [self.key, tat],
                )
        return pause
