"""PostgreSQL behind the store interface (``host.store.api.Store``), so one query layer serves both.

The host's data functions are written once, against :class:`host.store.api.Store`: ``execute`` (a
cursor with ``fetchone``, ``fetchall``, ``rowcount``, ``description``), ``query`` (dicts),
``conn.executemany``, ``conn.in_transaction``, ``db[table].exists()`` / ``.columns_dict``,
``write()``, ``atomic()``, ``rollback()``, ``close()``. :class:`PgDatabase` offers it on a psycopg 3
connection. SQL is written once, with named parameters (``:name`` and a dict of values):
SQLAlchemy's ``text()`` compiles it to psycopg's ``%(name)s`` once per statement
(:func:`compile_named`). A statement without parameters is sent as written. Positional
parameters (a list or tuple for ``?``) are refused with a TypeError: nothing rewrites SQL here.

Values: ``bool`` parameters are sent as 0/1 (the schema's flags are INTEGER on both), Decimal as
its text (money columns are TEXT on both). Errors come out as the store's own classes
(``host.store.errors``: ``IntegrityError`` for a constraint, ``OperationalError`` for the server
or the connection, ``DataError`` for a value), with psycopg's error chained; the host catches
them through ``host.store.api``'s names, which cover SQLite's too.

The connection runs in autocommit mode: a statement outside :func:`host.store.db.write` is a
transaction of its own, as on SQLite. A write transaction starts with a transaction-level
advisory lock that all writers share (:data:`WRITE_LOCK`): writers take turns, exactly as
SQLite's ``BEGIN IMMEDIATE`` makes them, so every read-then-write the host does inside one
stays correct without per-query locking; readers never wait. A connection the server dropped
(a restart) is opened again by the next statement outside a transaction.

:class:`PgPool` keeps a bounded number of connections open for a server of many short requests
(the web admin): a :class:`PgDatabase` borrows one and gives it back on ``close()``. Every
connection, pooled or not, is opened by :func:`open_connection`.

Every connection the host opens (:func:`open_connection`, and the job engine's through
:func:`connect_kwargs`) sets
``lock_timeout`` (a write waits that long for the lock, then fails whole, having written nothing),
``idle_in_transaction_session_timeout`` (the server ends the session of a process frozen inside a
transaction, releasing the write lock it holds) and TCP keepalives with ``tcp_user_timeout`` (a
dead or cut-off machine's session is noticed and its locks released), from :class:`Session`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, cast

from host.errors import HostError
from host.store import errors
from plugin_spec import pgurl

#: psycopg and its dict row factory, imported on first use: a SQLite-only run never pays for them
psycopg: Any = None
dict_row: Any = None


def _load_psycopg() -> None:
    global psycopg, dict_row
    if psycopg is not None:
        return
    try:
        import psycopg as module
        from psycopg.rows import dict_row as factory
    except ImportError:  # the extra is not installed
        raise HostError("a postgresql:// database needs psycopg: pip install 'cartplugin[postgresql]'") from None
    psycopg, dict_row = module, factory


#: pg_advisory_xact_lock key every write transaction takes ("cartplug" in ASCII)
WRITE_LOCK = 0x63617274706C7567
_BEGIN_AND_LOCK = f"BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})"
CONNECT_TIMEOUT_SECONDS = 10


@dataclasses.dataclass(frozen=True)
class Session:
    """What the host sets on each of its PostgreSQL connections (``host.config`` gives the
    operator's values through :func:`use_session`; these are the defaults)."""

    #: seconds a statement waits for a lock (the shared write lock first) before it fails
    lock_timeout: float = 60.0
    #: seconds a session may sit inside a transaction without a statement before the server ends it
    idle_in_transaction: float = 30.0
    #: seconds of silence before TCP keepalives start; between two; how many unanswered end it
    keepalives_idle: int = 30
    keepalives_interval: int = 10
    keepalives_count: int = 3
    #: seconds sent data may stay unacknowledged before the connection is dropped
    tcp_user_timeout: float = 60.0


_session: Callable[[], Session] = Session


def use_session(provider: Callable[[], Session]) -> None:
    """Where the connection settings come from: ``host.config`` passes its own (read at each
    connection, so a changed config applies to the next one)."""
    global _session
    _session = provider


def connect_kwargs(url: str) -> dict[str, Any]:
    """psycopg's connection arguments for the host's settings (:class:`Session`), for any
    connection the host opens on ``url``; options the URL already has (``options=-c ...``) are kept."""
    return pgurl.session_kwargs(url, **dataclasses.asdict(_session()))


is_url = pgurl.is_url


def as_pg(db: object) -> PgDatabase | None:
    """``db`` itself when it is a PostgreSQL database, else None (the host types every database
    as ``host.store.api.Store``, which :class:`PgDatabase` offers)."""
    return db if isinstance(db, PgDatabase) else None


#: the URL with its password masked (user part or ``password=`` parameter), for messages
display = pgurl.display


# -- SQL ---------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def compile_named(sql: str) -> str:
    """SQL written once with named parameters (``:name``, as SQLite takes it) in psycopg's
    ``%(name)s`` form, compiled by SQLAlchemy's ``text()`` (which also doubles a literal ``%``
    and leaves ``::`` casts alone); once per statement."""
    import sqlalchemy
    from sqlalchemy.dialects.postgresql import psycopg as dialect

    return str(sqlalchemy.text(sql).compile(dialect=_DIALECT or _dialect(dialect)))


_DIALECT: Any = None


def _dialect(module: Any) -> Any:
    global _DIALECT
    _DIALECT = module.dialect()
    return _DIALECT


def _value(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    return value


def _statement(sql: str, params: Sequence[Any] | Mapping[str, Any] | None) -> tuple[str, Any]:
    """The statement and parameters as psycopg takes them: named parameters (a mapping) through
    :func:`compile_named`; no parameters, the SQL as written. A sequence (positional ``?``) is
    refused: SQL is written once, with named parameters, for both backends."""
    if isinstance(params, Mapping):
        return compile_named(sql), {name: _value(v) for name, v in params.items()}
    if params is None:
        return sql, None
    raise TypeError(f"PostgreSQL statements take named parameters (:name and a dict), not {type(params).__name__}")


def _store_error(exc: Exception) -> errors.StoreError:
    """psycopg's error as the store's class for the same kind of failure (its first line)."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, psycopg.IntegrityError):
        return errors.IntegrityError(message)
    if isinstance(exc, psycopg.DataError):
        return errors.DataError(message)
    # connection lost, server shutting down, lock_timeout; or this session ended by the server for
    # sitting idle inside its transaction (25P03, which psycopg files under InternalError)
    if isinstance(exc, psycopg.OperationalError) or getattr(exc, "sqlstate", None) == "25P03":
        return errors.Unavailable(message)
    return errors.OperationalError(message)


# -- connections -------------------------------------------------------------------------------


def open_connection(url: str) -> Any:
    """A new connection to ``url`` as the host opens every one (its own, or a pool's): autocommit,
    the connect timeout, the session settings (:func:`connect_kwargs`); an error is psycopg's,
    the password masked."""
    return pgurl.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS, **connect_kwargs(url))


class _PoolOpens:
    """What a :class:`PgPool` opens its connections with: :func:`open_connection`, so pooled
    connections are set up exactly as the host's others (the pool's own keyword arguments are
    not used)."""

    @staticmethod
    def connect(conninfo: str, **_: Any) -> Any:
        return open_connection(conninfo)


class PgPool:
    """At most ``max_size`` connections to one database, kept open for many short users (the web
    admin's requests), instead of a connection opened and closed by each.

    ``take`` waits up to ``timeout`` seconds for a free connection (then the store's
    ``Unavailable``: busy for now); a connection is checked before it is lent, so one the server dropped
    meanwhile (a restart, an idle timeout) is replaced, not lent; ``give_back`` discards a broken
    one and rolls back a transaction left open. :meth:`database` wraps one in the store
    interface; closing that gives it back.
    """

    def __init__(self, url: str, max_size: int, *, timeout: float = 10.0, name: str = "cartplugin"):
        _load_psycopg()
        from psycopg_pool import ConnectionPool

        self.url, self.max_size, self.timeout = url, max_size, timeout
        self._pool: Any = ConnectionPool(
            url,
            connection_class=cast(Any, _PoolOpens),
            min_size=1,
            max_size=max_size,
            open=False,
            check=ConnectionPool.check_connection,
            name=name,
            timeout=timeout,
            max_idle=300.0,
        )
        self._opened = False

    def take(self) -> Any:
        from psycopg_pool import PoolTimeout

        if not self._opened:  # on first use (opening again is harmless): no threads for a pool never used
            self._pool.open(wait=False)
            self._opened = True

        try:
            return self._pool.getconn(timeout=self.timeout)
        except PoolTimeout:
            # busy for now, not broken: the web admin answers 503, a job goes back to the queue
            raise errors.Unavailable(
                f"no database connection free within {self.timeout:g} s (all {self.max_size} of the pool in use)"
            ) from None

    def give_back(self, raw: Any) -> None:
        self._pool.putconn(raw)

    def database(self) -> PgDatabase:
        """A :class:`PgDatabase` on a connection of this pool; its ``close()`` gives it back."""
        return PgDatabase(self.url, pool=self)

    def close(self) -> None:
        self._pool.close()

    def __repr__(self) -> str:
        return f"<PgPool {display(self.url)} max {self.max_size}>"


# -- the Database look-alike -----------------------------------------------------------------


class PgCursor:
    """What ``execute`` returns: rows as tuples, like sqlite3's cursor."""

    def __init__(self, cursor: Any):
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def lastrowid(self) -> int:
        raise NotImplementedError("PostgreSQL has no lastrowid: use INSERT ... RETURNING id")

    def fetchone(self) -> Any:  # a tuple or None, typed as sqlite3's
        if self._cursor.description is None:
            return None
        return self._cursor.fetchone()

    def fetchall(self) -> list[tuple[Any, ...]]:
        if self._cursor.description is None:
            return []
        return self._cursor.fetchall()

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.fetchall())


class PgConnection:
    """``db.conn``: the raw statements the host issues on the connection itself."""

    def __init__(self, db: PgDatabase):
        self._db = db

    @property
    def in_transaction(self) -> bool:
        return self._db.in_transaction

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> PgCursor:
        return self._db.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any] | Mapping[str, Any]]) -> None:
        self._db.executemany(sql, rows)

    def close(self) -> None:
        self._db.close()


class PgTable:
    def __init__(self, db: PgDatabase, name: str):
        self.db, self.name = db, name

    def exists(self) -> bool:
        row = self.db.execute("SELECT to_regclass(:name) IS NOT NULL", {"name": self.name}).fetchone()
        return bool(row and row[0])

    @property
    def columns_dict(self) -> dict[str, type]:
        kinds = {"integer": int, "bigint": int, "smallint": int, "numeric": Decimal, "double precision": float}
        rows = self.db.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = :name ORDER BY ordinal_position",
            {"name": self.name},
        ).fetchall()
        return {name: kinds.get(kind, str) for name, kind in rows}


class PgDatabase:
    """One PostgreSQL connection offering the store interface (``host.store.api.Store``)."""

    backend = "postgresql"

    def __init__(self, url: str, *, pool: PgPool | None = None):
        _load_psycopg()
        self.url = url
        self.conn = PgConnection(self)
        self._raw: Any = None
        self._pool = pool
        self._connect()

    def _connect(self) -> None:
        try:
            self._raw = self._pool.take() if self._pool is not None else open_connection(self.url)
        except psycopg.Error as exc:
            raise HostError(f"cannot open database {display(self.url)!r}: {_store_error(exc)}") from None

    def _ready(self) -> Any:
        """The connection, opened again if the server dropped it while no transaction was open
        (a pool's: given back, the pool discards it, and another taken).

        Lost inside a write transaction, it is not replaced until that transaction has ended:
        the rest of the transaction must fail, not run on a new connection one statement at a time.
        """
        raw = self._raw
        if raw is None:  # a pool's connection, given back
            raise errors.OperationalError("this database connection was closed")
        if (raw.closed or raw.broken) and not self._closed:
            if self._writing:
                raise errors.Unavailable("the connection to PostgreSQL was lost during a transaction")
            try:
                if self._pool is not None:
                    self._raw = None
                    self._pool.give_back(raw)
                    self._raw = self._pool.take()
                else:
                    self._raw = open_connection(self.url)
            except psycopg.Error as exc:
                raise _store_error(exc) from exc
        return self._raw

    _closed = False
    _writing = 0

    @property
    def raw(self) -> Any:
        """The psycopg connection (for code that needs PostgreSQL itself, e.g. a job engine)."""
        return self._ready()

    @property
    def in_transaction(self) -> bool:
        raw = self._raw
        if raw is None or raw.closed or raw.broken:
            return self._writing > 0
        return raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> PgCursor:
        raw = self._ready()
        try:
            return PgCursor(raw.execute(*_statement(sql, params)))
        except psycopg.Error as exc:
            raise _store_error(exc) from exc

    def executemany(self, sql: str, rows: Iterable[Sequence[Any] | Mapping[str, Any]]) -> None:
        raw = self._ready()
        try:
            with raw.cursor() as cursor:
                prepared = [_statement(sql, row) for row in rows]
                if prepared:
                    cursor.executemany(prepared[0][0], [values for _, values in prepared])
        except psycopg.Error as exc:
            raise _store_error(exc) from exc

    def query(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        raw = self._ready()
        try:
            with raw.cursor(row_factory=dict_row) as cursor:
                cursor.execute(*_statement(sql, params))
                rows = cursor.fetchall() if cursor.description is not None else []
        except psycopg.Error as exc:
            raise _store_error(exc) from exc
        yield from rows

    def __getitem__(self, name: str) -> PgTable:
        return PgTable(self, name)

    def table_names(self) -> list[str]:
        return [row[0] for row in self.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename"
        ).fetchall()]  # fmt: skip

    @contextlib.contextmanager
    def write(self) -> Iterator[PgDatabase]:
        """A write transaction: writers take turns (see the module doc); nested, a savepoint."""
        if self.in_transaction:
            with self.atomic():
                yield self
            return
        self._writing += 1
        try:
            try:
                # one round trip: a statement without parameters goes as a simple query, which
                # may hold two (every write transaction pays this, a job's five times or more)
                self.execute(_BEGIN_AND_LOCK)
            except errors.Unavailable as exc:
                if "lock timeout" not in str(exc):
                    raise
                raise errors.Unavailable(
                    f"another writer held the database's write lock for longer than lock_timeout "
                    f"({_session().lock_timeout:g} s); nothing was written"
                ) from exc
            yield self
        except BaseException:
            self.rollback()
            raise
        else:
            self.execute("COMMIT")
        finally:
            self._writing -= 1

    @contextlib.contextmanager
    def row_write(self) -> Iterator[PgDatabase]:
        """One statement on rows of its own (a heartbeat), without the shared write lock: in
        autocommit it is its own transaction; inside a write transaction it is part of that one."""
        yield self

    @contextlib.contextmanager
    def atomic(self) -> Iterator[PgDatabase]:
        if not self.in_transaction:
            with self.write():
                yield self
            return
        savepoint = f"sp_{secrets.token_hex(8)}"
        self.execute(f"SAVEPOINT {savepoint}")
        try:
            yield self
        except BaseException:
            if self.in_transaction:
                self.execute(f"ROLLBACK TO SAVEPOINT {savepoint}")
                self.execute(f"RELEASE SAVEPOINT {savepoint}")
            raise
        else:
            self.execute(f"RELEASE SAVEPOINT {savepoint}")

    def rollback(self) -> None:
        raw = self._raw
        if raw is not None and not raw.closed and not raw.broken and self.in_transaction:
            try:
                raw.execute("ROLLBACK")
            except psycopg.Error:
                pass

    def close(self) -> None:
        self._closed = True
        if self._pool is not None:  # back to the pool, which rolls back a transaction left open
            raw, self._raw = self._raw, None
            if raw is not None:
                self._pool.give_back(raw)
        elif self._raw is not None and not self._raw.closed:
            self.rollback()
            self._raw.close()

    def __repr__(self) -> str:
        return f"<PgDatabase {display(self.url)}>"
