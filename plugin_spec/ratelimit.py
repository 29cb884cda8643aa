"""Request limits shared by every process that uses one database.

The channel counts requests per API key (or per operation of one key), whichever worker
process sends them, so the count must be shared too: it lives in a small SQLite file named by
``CARTPLUGIN_RATE_LIMIT_DB`` (the host sets it next to its database), or in PostgreSQL when
that is a ``postgresql://`` URL (``ratelimit_pg``). When the variable is unset (a plugin's own
tests, a script) the limit is kept in this process only.

Two kinds of limit, as channels publish them:

* :class:`Window`: at most N requests in any T seconds (Back Market: 200 per 10 s);
* :class:`Rate`: a token bucket, ``burst`` requests at once and then ``per_second`` on
  average (Amazon's Selling Partner API, per operation: "rate 0.0056, burst 20").

Each backend only answers ``try_take`` (take a slot now, or say how long until one frees); the
waiting, the stop of a stopping job and the refusal of a wait past the job's budget are
``Limiter.acquire``'s, once for every kind and backend.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from . import pgurl, stopping
from .errors import RateLimitWait

#: the environment variable naming the shared limiter file
ENV_VAR = "CARTPLUGIN_RATE_LIMIT_DB"


def _span(window: float) -> float:
    # the channel counts arrivals, the client counts departures: a little extra span absorbs the
    # difference, so a burst at the window's edge is not counted into the previous window
    return window + min(0.25, window * 0.05)


#: the longest a waiting request sleeps before asking again whether its job is stopping
_NAP = 0.2


@dataclass(frozen=True)
class Rate:
    """A token bucket: ``burst`` requests may go at once, then one every ``1 / per_second`` s.

    Write the channel's published figures, e.g. ``Rate(Decimal("0.0056"), 20)`` for a call
    allowed 0.0056 times a second with a burst of 20. An unused bucket fills up again at
    ``per_second`` tokens a second, up to ``burst``.
    """

    per_second: Decimal | float
    burst: int = 1

    def __post_init__(self) -> None:
        if not self.per_second > 0:
            raise ValueError(f"a rate must be above 0 requests per second, not {self.per_second}")
        if not isinstance(self.burst, int) or self.burst < 1:
            raise ValueError(f"a burst must be a whole number of at least 1, not {self.burst!r}")

    @property
    def interval(self) -> float:
        """Seconds between two requests at the steady rate."""
        return float(1 / Decimal(str(self.per_second)))


@dataclass(frozen=True)
class Window:
    """A sliding window: at most ``limit`` requests in any ``seconds``."""

    limit: int
    seconds: float

    def __post_init__(self) -> None:
        if self.limit < 1 or not self.seconds > 0:
            raise ValueError(f"a window needs a limit of at least 1 and a positive span, not {self}")


class Limiter:
    """A limit on requests: ``try_take`` per backend, ``acquire`` (the waiting) for all.

    A backend implements only ``try_take`` (thread-safe: the threads of one upload share a
    limiter). ``acquire`` waits for a slot; a job that is stopping (``plugin_spec.stopping``)
    is answered with ``Stopped`` instead of a slot, so nothing more is sent, and a slot later
    than the scope's ``wait_until`` (the job's budget) is answered with ``RateLimitWait``.
    """

    #: how messages name this limit
    name: str = "the rate limit"

    def try_take(self) -> float | None:
        """Take a slot now and return None, or return the seconds until one frees (nothing taken)."""
        raise NotImplementedError

    def acquire(self) -> float:
        """Take a slot, waiting if needed; returns the seconds waited.

        Raises ``stopping.Stopped`` (before taking a slot) once the job in force is stopping,
        and ``RateLimitWait`` (taking nothing) when the next slot is later than the scope's
        ``stopping.wait_until()``: the caller may not wait that long, so it is told when to
        come back instead.
        """
        waited = 0.0
        while True:
            stopping.check()
            pause = self.try_take()
            if pause is None:
                return waited
            self._refuse_past_deadline(pause)
            pause = max(0.001, min(pause, _NAP))
            time.sleep(pause)
            waited += pause

    def _refuse_past_deadline(self, pause: float) -> None:
        deadline = stopping.wait_until()
        if deadline is None:
            return
        now = datetime.now(UTC)
        until = now + timedelta(seconds=pause)
        if until > deadline:
            at = wall_time(until, now)
            raise RateLimitWait(
                f"{self.name[0].upper()}{self.name[1:]} allows the next request at {at}, "
                "later than this job may wait; not sent.",
                until=until,
            )


def wall_time(value: datetime, now: datetime | None = None) -> str:
    """``14:05:31 UTC``, with the date when it is not today's: when a wait ends, for people."""
    value, now = value.astimezone(UTC), (now or datetime.now(UTC)).astimezone(UTC)
    return f"{value:%H:%M:%S} UTC" if value.date() == now.date() else f"{value:%Y-%m-%d %H:%M:%S} UTC"


class WindowLimiter(Limiter):
    """A sliding window: at most ``limit`` requests in any ``window`` seconds."""

    def __init__(self, limit: int, window: float):
        self.limit, self.window = limit, window
        self._span = _span(window)


class BucketLimiter(Limiter):
    """A token bucket (:class:`Rate`), kept as one number per key: ``tat``, the instant at
    which the bucket is full again if nothing more is taken (GCRA's "theoretical arrival
    time"). A request may go while ``tat`` is at most ``burst - 1`` intervals ahead of now (at
    least one token left), and moves it one interval on: ``burst`` go at once, then one per
    interval. One number keeps each backend's take one read and one write, no refill sums.
    """

    def __init__(self, rate: Rate):
        self.rate = rate
        # the channel counts arrivals, the client departures: two requests sent one interval apart
        # may arrive closer when the first is delayed on the way, so each interval is a little
        # longer here (2 %, at most a quarter of a second) than the channel's
        self._interval = rate.interval + min(0.25, rate.interval * 0.02)
        self._tolerance = (rate.burst - 1) * self._interval

    def _decide(self, tat: float | None, now: float) -> tuple[float | None, float]:
        """``(None, new tat)`` when a slot is free now, else ``(seconds until one, tat)``."""
        tat = now if tat is None or tat < now else tat
        wait = tat - self._tolerance - now
        if wait <= 0:
            return None, tat + self._interval
        return wait, tat


class TokenBucket(BucketLimiter):
    """The bucket kept in this process."""

    def __init__(self, rate: Rate):
        super().__init__(rate)
        self._tat: float | None = None
        self._lock = threading.Lock()

    def try_take(self) -> float | None:
        with self._lock:
            pause, self._tat = self._decide(self._tat, time.monotonic())
            return pause


class RateLimiter(WindowLimiter):
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
    """WAL mode and the tables. Switching a new file to WAL is not covered by the busy timeout:
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
            conn.execute("CREATE TABLE IF NOT EXISTS rate_buckets (key TEXT PRIMARY KEY, tat REAL NOT NULL)")
            conn.execute("CREATE TABLE IF NOT EXISTS rate_salt (id INTEGER PRIMARY KEY CHECK (id = 1), salt BLOB)")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.5)


class _SqliteFile:
    """One connection per thread to the limiter file (a connection is not shared by threads)."""

    def __init__(self, path: str, key: str):
        self.path, self.key = path, key
        self._local = threading.local()

    def _db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            _private_file(self.path)
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            _set_up(conn)
            self._local.conn = conn
        return conn


class SharedRateLimiter(_SqliteFile, WindowLimiter):
    """The same window, kept in a SQLite file so every process counts every request.

    Each slot is one short ``BEGIN IMMEDIATE`` transaction: two processes, or two threads of
    one process (each has its own connection), never both take the last slot. Wall-clock time
    is used because monotonic clocks differ per process.
    """

    def __init__(self, path: str, key: str, limit: int, window: float):
        _SqliteFile.__init__(self, path, key)
        WindowLimiter.__init__(self, limit, window)

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


class SharedTokenBucket(_SqliteFile, BucketLimiter):
    """The token bucket, kept in the SQLite file (table ``rate_buckets``, one row per key).

    As the window: one ``BEGIN IMMEDIATE`` per take, so processes and threads never both take
    the last token; wall-clock time.
    """

    def __init__(self, path: str, key: str, rate: Rate):
        _SqliteFile.__init__(self, path, key)
        BucketLimiter.__init__(self, rate)

    def try_take(self) -> float | None:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT tat FROM rate_buckets WHERE key = ?", (self.key,)).fetchone()
            pause, tat = self._decide(row[0] if row else None, time.time())
            if pause is None:
                db.execute(
                    "INSERT INTO rate_buckets (key, tat) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET tat = excluded.tat",
                    (self.key, tat),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return pause


_limiters: dict[tuple[str, str, Rate | Window], Limiter] = {}
_limiters_lock = threading.Lock()


def limiter_for(api: str, limit_key: str, limit: int, window: float) -> Limiter:
    """The window of one (API, key); keyed by a digest, so the key itself is never stored."""
    return _shared(f"{api}\0{limit_key}", Window(limit, window), None)


def group_limiter(api: str, limit_key: str, group: str, limit: Rate | Window) -> Limiter:
    """The limiter of one operation group (e.g. ``"orders"``) of one (API, key), independent of
    the key's other groups and of its default window; shared as ``limiter_for``'s is."""
    return _shared(f"{api}\0{limit_key}\0{group}", limit, f"the rate limit of {group!r}")


_private_paths: set[str] = set()
_private_lock = threading.Lock()


def _private_file(path: str) -> None:
    """The limiter file, readable by its owner only (made so if an older version left it open).

    Once per process and file, before any connection of this process opens it: closing another
    descriptor of a SQLite file drops every POSIX lock the process holds on it ("disk I/O error")."""
    with _private_lock:
        if path in _private_paths:
            return
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            if os.fstat(fd).st_mode & 0o077:
                os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
        _private_paths.add(path)


_salts: dict[str, bytes] = {}


def _file_salt(path: str) -> bytes:
    """The limiter file's own random salt (made by the first process to open it)."""
    salt = _salts.get(path)
    if salt is None:
        _private_file(path)
        conn = sqlite3.connect(path, timeout=30, isolation_level=None)
        try:
            _set_up(conn)
            conn.execute("INSERT OR IGNORE INTO rate_salt (id, salt) VALUES (1, ?)", (os.urandom(32),))
            salt = bytes(conn.execute("SELECT salt FROM rate_salt WHERE id = 1").fetchone()[0])
        finally:
            conn.close()
        _salts[path] = salt
    return salt


def _ident(shared: str | None, material: str) -> str:
    """What a limiter is keyed by: never the API key itself. In the SQLite file, a keyed digest
    with the file's random salt, so the file cannot be matched against guessed keys elsewhere;
    in PostgreSQL (inside the host's own database) and in memory, a plain digest."""
    if shared and not pgurl.is_url(shared):
        return hmac.new(_file_salt(shared), material.encode(), hashlib.sha256).hexdigest()
    return hashlib.sha256(material.encode()).hexdigest()


def _shared(material: str, limit: Rate | Window, name: str | None) -> Limiter:
    shared = os.environ.get(ENV_VAR)
    cache_key = (shared or "", material, limit)
    with _limiters_lock:
        limiter = _limiters.get(cache_key)
        if limiter is None:
            limiter = _make(shared, _ident(shared, material), limit)
            if name is not None:
                limiter.name = name
            _limiters[cache_key] = limiter
        return limiter


def _make(shared: str | None, ident: str, limit: Rate | Window) -> Limiter:
    if pgurl.is_url(shared):  # workers on several machines
        from . import ratelimit_pg as pg

        if isinstance(limit, Rate):
            return pg.PgTokenBucket(shared, ident, limit)
        return pg.PgRateLimiter(shared, ident, limit.limit, limit.seconds)
    if isinstance(limit, Rate):
        return SharedTokenBucket(shared, ident, limit) if shared else TokenBucket(limit)
    if shared:
        return SharedRateLimiter(shared, ident, limit.limit, limit.seconds)
    return RateLimiter(limit.limit, limit.seconds)
