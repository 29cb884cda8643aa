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
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    from .ratelimit_pg import PgRateLimiter

#: the environment variable naming the shared limiter file
ENV_VAR = "CARTPLUGIN_RATE_LIMIT_DB"


def _span(window: float) -> float:
    # the channel counts arrivals, the client counts departures: a little extra span absorbs the
    # difference, so a burst at the window's edge is not counted into the previous window
    return window + min(0.25, window * 0.05)


class RateLimiter:
    """A sliding window in this process: at most ``limit`` requests in any ``window`` seconds."""

    def __init__(self, limit: int, window: float):
        self.limit, self.window = limit, window
        self._span = _span(window)
        self._sent: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take a slot, waiting if needed; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = time.monotonic()
                while self._sent and self._sent[0] <= now - self._span:
                    self._sent.popleft()
                if len(self._sent) < self.limit:
                    self._sent.append(now)
                    return waited
                pause = self._sent[0] + self._span - now
            time.sleep(pause)
            waited += pause


class SharedRateLimiter:
    """The same sliding window, kept in a SQLite file so every process counts every request.

    Each ``acquire`` is one short ``BEGIN IMMEDIATE`` transaction: two processes never both
    take the last slot. Wall-clock time is used because monotonic clocks differ per process.
    """

    def __init__(self, path: str, key: str, limit: int, window: float):
        self.path, self.key, self.limit, self.window = path, key, limit, window
        self._span = _span(window)
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("CREATE TABLE IF NOT EXISTS rate_hits (key TEXT NOT NULL, at REAL NOT NULL)")
            conn.execute("CREATE INDEX IF NOT EXISTS rate_hits_key_at ON rate_hits (key, at)")
            self._local.conn = conn
        return conn

    def acquire(self) -> float:
        waited = 0.0
        db = self._db()
        while True:
            db.execute("BEGIN IMMEDIATE")
            try:
                now = time.time()
                db.execute("DELETE FROM rate_hits WHERE key = ? AND at <= ?", (self.key, now - self._span))
                count, oldest = db.execute(
                    "SELECT count(*), min(at) FROM rate_hits WHERE key = ?", (self.key,)
                ).fetchone()
                if count < self.limit:
                    db.execute("INSERT INTO rate_hits (key, at) VALUES (?, ?)", (self.key, now))
                    db.execute("COMMIT")
                    return waited
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            pause = max(0.001, oldest + self._span - now)
            time.sleep(pause)
            waited += pause


Limiter = Union[RateLimiter, SharedRateLimiter, "PgRateLimiter"]
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
            if shared and shared.startswith(("postgresql://", "postgres://")):  # workers on several machines
                from .ratelimit_pg import PgRateLimiter as _Pg

                limiter = _Pg(shared, ident, limit, window)
            else:
                limiter = SharedRateLimiter(shared, ident, limit, window) if shared else RateLimiter(limit, window)
            _limiters[cache_key] = limiter
        return limiter
