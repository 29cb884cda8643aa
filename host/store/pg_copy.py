"""``cartplugin db copy --to postgresql://...``: move a SQLite database to PostgreSQL whole.

Every table the two schemas share is copied with its ids, in the order the PostgreSQL schema
created them (a row's parents before it), in ONE transaction on the target: a copy that fails
leaves the target as empty as it was. Identity sequences are then moved past the largest id
copied, so the next company, order or job gets a new number. Secrets are copied as they are
stored, sealed: the target must be used with the same key file (``secret_key_file``; the
command says which, ``host.records.secrets``).
A target that holds any row of the host's tables is refused: a copy never merges.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from host.errors import HostError
from host.store import pg
from host.store.api import Store
from host.store.pg import PgDatabase, display

#: rows sent to the server per COPY buffer flush
CHUNK = 5000


@dataclass
class CopyReport:
    rows: dict[str, int] = field(default_factory=dict)


def _tables(target: PgDatabase) -> list[str]:
    """The target's tables in creation order (parents first), migration records left out."""
    rows = target.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'r' AND n.nspname = current_schema() ORDER BY c.oid"
    ).fetchall()
    return [name for (name,) in rows if name != "cartplugin_migrations"]


def _columns(target: PgDatabase, table: str) -> list[str]:
    return list(target[table].columns_dict)


def shared_tables(source: Store, target: PgDatabase) -> list[str]:
    have = set(source.table_names())
    return [t for t in _tables(target) if t in have]


def refuse_non_empty(target: PgDatabase, tables: list[str]) -> None:
    full = [t for t in tables if target.execute(f'SELECT EXISTS (SELECT 1 FROM "{t}")').fetchone()[0]]
    if full:
        raise HostError(
            f"the target {display(target.url)} is not empty (rows in {', '.join(full[:5])}); "
            "db copy only fills a new, empty database (nothing was copied)"
        )


def check_targets(source: str, to: str) -> None:
    """Refuse (one line) a copy that is not from a SQLite file into a PostgreSQL URL."""
    if pg.is_url(source):
        raise HostError("db copy reads a SQLite database: pass --db PATH of the SQLite file to copy")
    if not pg.is_url(to):
        raise HostError(f"--to must be a postgresql:// URL, not {to[:60]!r}")


def copy(source: Store, target: PgDatabase) -> CopyReport:
    """Copy every shared table from ``source`` (SQLite) into the empty ``target``; see the module doc."""
    tables = shared_tables(source, target)
    refuse_non_empty(target, tables)
    report = CopyReport()
    _copy_tables(source, target, tables, report)
    return report


def _copy_tables(source: Store, target: PgDatabase, tables: list[str], report: CopyReport) -> None:
    # one read transaction on the source: every table from the same snapshot (WAL), even if a
    # worker the operator forgot to stop writes meanwhile
    source.conn.execute("BEGIN")
    try:
        _copy_in_one_write(source, target, tables, report)
    finally:
        source.conn.execute("ROLLBACK")


def _copy_in_one_write(source: Store, target: PgDatabase, tables: list[str], report: CopyReport) -> None:
    with target.write():
        for table in tables:
            try:
                _copy_table(source, target, table, report)
            except (pg.psycopg.Error, ValueError) as exc:
                message = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
                raise HostError(f"copy failed in table {table!r}, nothing was copied: {message}") from None


def _copy_table(source: Store, target: PgDatabase, table: str, report: CopyReport) -> None:
    wanted = _columns(target, table)
    have = set(source[table].columns_dict)
    columns = [c for c in wanted if c in have]
    names = ", ".join(f'"{c}"' for c in columns)
    count = 0
    rows = source.execute(f'SELECT {names} FROM "{table}" ORDER BY rowid')
    with target.raw.cursor() as cursor, cursor.copy(f'COPY "{table}" ({names}) FROM STDIN') as sink:
        for row in rows:
            sink.write_row(row)
            count += 1
    report.rows[table] = count
    if "id" in wanted:
        target.execute(
            f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), COALESCE(MAX(id), 1), "
            f'MAX(id) IS NOT NULL) FROM "{table}"'
        )
