"""A per-key request limit shared by every process that uses one database.

The channel counts requests per API key, whichever worker process sends them, so the count
must be shared too: it lives in a small SQLite file named by ``CARTPLUGIN_RATE_LIMIT_DB``
(the host sets it next to its database). When the variable is unset (a plugin's own tests,
a script) the limit is kept in this process only.
"""

from __future__ import annotations

import collections
import hashlib
import os
import sqlite3
import threading
import time

from . import pgurl, stopping

#: the environment variable naming the shared limiter file
ENV_VAR = "CARTPLUGIN_RATE_LIMIT_DB"


def _span(window: float) -> float:
    # the channel counts arrivals, the client counts departures: a little extra span absorbs the
    # difference, so a burst at the window's edge is not counted into the previous window
    return window + min(0.25, window * 0.05)


#: the longest a waiting request sleeps before asking again whether its job is stopping
_NAP = 0.2


class Limiter:
    """A sliding window: at most ``limit`` requests in any ``window`` seconds.

    A backend implements only ``try_take`` (thread-safe: the threads of one upload share a
    limiter); the waiting is done here once, for every backend, and a job that is stopping
    (``plugin_spec.stopping``) is answered with ``Stopped`` instead of a slot, so nothing more
    is sent.
    """

    def __init__(self, limit: int, window: float):
        self.limit, self.window = limit, window
        self._span = _span(window)

    def try_take(self) -> float | None:
        """Take a slot now and return None, or return the seconds until one frees (nothing taken)."""
        raise NotImplementedError

    def acquire(self) -> float:
        """Take a slot, waiting if needed; returns the seconds waited.

        Raises ``stopping.Stopped`` (before taking a slot) once the job in force is stopping.
        """
        waited = 0.0
        while True:
            stopping.check()
            pause = self.try_take()
            if pause is None:
                return waited
            pause = max(0.001, min(pause, _NAP))
            time.sleep(pause)
            waited += pause


class RateLimiter(Limiter):
    """The window kept in this process."""

    def __init__(self, limit: int, window: float):
        super().__init__(limit, window)
        self._sent: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def try_take(self) -> float | None:
        with self._lock:
            now = time.monotonic()
            while self._sent and self._sent[0] <= now - self._span:
                self._sent.popleft()
            if len(self._sent) < self.limit:
                self._sent.append(now)
                return None
            return self._sent[0] + self._span - now


def _set_up(conn: sqlite3.Connection, patience: float = 30.0) -> None:
    """WAL mode and the table. Switching a new file to WAL is not covered by the busy timeout:
    several processes (or threads) opening a new file at once get "database is locked" for
    a moment, so each step is tried again until ``patience`` runs out."""
    deadline = time.monotonic() + patience
    pause = 0.01
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE IF NOT EXISTS rate_hits (key TEXT NOT NULL, at REAL NOT NULL)")
            conn.execute("CREATE INDEX IF NOT EXISTS rate_hits_key_at ON rate_hits (key, at)")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.5)


class SharedRateLimiter(Limiter):
    """The same window, kept in a SQLite file so every process counts every request.

    Each slot is one short ``BEGIN IMMEDIATE`` transaction: two processes, or two threads of
    one process (each has its own connection), never both take the last slot. Wall-clock time
    is used because monotonic clocks differ per process.
    """

    def __init__(self, path: str, key: str, limit: int, window: float):
        super().__init__(limit, window)
        self.path, self.key = path, key
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            _set_up(conn)
            self._local.conn = conn
        return conn

    def try_take(self) -> float | None:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            now = time.time()
            db.execute("DELETE FROM rate_hits WHERE key = ? AND at <= ?", (self.key, now - self._span))
            count, oldest = db.execute("SELECT count(*), min(at) FROM rate_hits WHERE key = ?", (self.key,)).fetchone()
            if count < self.limit:
                db.execute("INSERT INTO rate_hits (key, at) VALUES (?, ?)", (self.key, now))
                db.execute("COMMIT")
                return None
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return float(oldest) + self._span - now


_limiters: dict[tuple[str, str, int, float], Limiter] = {}
_limiters_lock = threading.Lock()


def limiter_for(api: str, secret: str, limit: int, window: float) -> Limiter:
    """The limiter of one (API, key); keyed by a digest, so the key itself is never stored."""
    ident = hashlib.sha256(f"{api}\0{secret}".encode()).hexdigest()
    shared = os.environ.get(ENV_VAR)
    cache_key = (shared or "", ident, limit, window)
    with _limiters_lock:
        limiter = _limiters.get(cache_key)
        if limiter is None:
            if pgurl.is_url(shared):  # workers on several machines
                from .ratelimit_pg import PgRateLimiter as _Pg

                limiter = _Pg(shared, ident, limit, window)
            else:
                limiter = SharedRateLimiter(shared, ident, limit, window) if shared else RateLimiter(limit, window)
            _limiters[cache_key] = limiter
        return limiter
