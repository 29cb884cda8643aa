"""The PostgreSQL schema: SQLite's tables and columns, from empty or an older version, two processes at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from host.errors import HostError
from host.records.order_search import SQLITE_ONLY_TABLES
from host.store import pg_migrations
from host.store.api import IntegrityError
from host.store.db import connect
from host.store.pg import PgDatabase
from host.store.schema import STEPS
from host.store.schema.shape import shape

ROOT = Path(__file__).resolve().parents[2]
#: dropped from SQLite by its migration 0006 (never read); PostgreSQL never had them
DROPPED_ON_SQLITE = {"order_properties", "orders.status_set_by_staff"}


def _pg_schema(url: str) -> dict[str, set[str]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
        ).fetchall()
        indexes = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
    schema: dict[str, set[str]] = {}
    for table, column in rows:
        schema.setdefault(table, set()).add(column)
    schema["<indexes>"] = indexes
    return schema


def test_an_empty_database_gets_every_table_and_column_sqlite_has(pg_url, tmp_path):
    connect(pg_url).close()
    sqlite = connect(tmp_path / "same.db")
    expected: dict[str, set[str]] = {}
    for table in sqlite.table_names():
        if table.startswith(("_sqlite", "sqlite_")) or table in DROPPED_ON_SQLITE | SQLITE_ONLY_TABLES:
            continue
        expected[table] = {c for c in sqlite[table].columns_dict if f"{table}.{c}" not in DROPPED_ON_SQLITE}
    sqlite_indexes = {
        name
        for name, table in sqlite.execute("SELECT name, tbl_name FROM sqlite_master WHERE type = 'index'").fetchall()
        if not table.startswith("_sqlite") and not name.startswith("sqlite_autoindex")
    }
    sqlite.close()
    actual = _pg_schema(pg_url)
    assert actual.pop(pg_migrations.TABLE) == {"name", "applied_at"}
    assert sqlite_indexes <= actual.pop("<indexes>")
    assert actual == expected


def test_each_older_version_is_brought_to_the_schema_a_new_database_is_made_with(postgres, pg_url):
    db = connect(pg_url)
    fresh = shape(db)
    assert pg_migrations.applied(db) == [step.name for step in STEPS]  # never the old steps
    db.close()
    old_steps = [name for name, _ in pg_migrations.steps if name in pg_migrations.LEGACY]
    for done in range(1, len(old_steps) + 1):
        name = f"older_{done}"
        url = postgres.create_database(name)
        try:
            db = PgDatabase(url)
            pg_migrations.migrate(db, until=old_steps[done - 1])
            assert pg_migrations.applied(db) == old_steps[:done]
            db.close()
            db = connect(url)
            assert shape(db) == fresh, old_steps[done - 1]
            assert pg_migrations.applied(db) == [*old_steps, *(step.name for step in STEPS)]
            db.close()
        finally:
            postgres.drop_database(name)


def test_a_database_of_a_newer_version_is_refused_untouched(pg_url):
    connect(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"INSERT INTO {pg_migrations.TABLE} VALUES ('9999_from_the_future', 'x')")
    before = _pg_schema(pg_url)
    with pytest.raises(HostError, match="newer cartplugin"):
        connect(pg_url)
    assert _pg_schema(pg_url) == before


def test_two_processes_opening_a_new_database_at_once_migrate_it_once(pg_url):
    script = (
        "import sys, threading; from host.store.db import connect; from host.records import companies; "
        "db = connect(sys.argv[1]); companies.add_company(db, 'P' + sys.argv[2]); db.close()"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, pg_url, str(n)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
        for n in range(3)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    with psycopg.connect(pg_url) as conn:
        names = [r[0] for r in conn.execute(f"SELECT name FROM {pg_migrations.TABLE}")]
        assert sorted(names) == sorted(step.name for step in STEPS)
        assert conn.execute("SELECT COUNT(*) FROM companies").fetchone() == (3,)


def test_a_database_of_the_previous_version_gets_the_next_step_once(pg_url, monkeypatch):
    connect(pg_url).close()  # the current version
    ran: list[str] = []

    def next_step(db: PgDatabase) -> None:
        ran.append("next")
        db.execute("ALTER TABLE companies ADD COLUMN next_column TEXT")

    monkeypatch.setattr(pg_migrations, "steps", [*pg_migrations.steps, ("9000_next", next_step)])
    db = connect(pg_url)
    assert "next_column" in db["companies"].columns_dict
    assert pg_migrations.applied(db)[-1] == "9000_next"
    db.close()
    connect(pg_url).close()
    assert ran == ["next"]


def test_a_failing_step_leaves_no_trace_and_is_tried_again(pg_url, monkeypatch):
    connect(pg_url).close()

    def broken(db: PgDatabase) -> None:
        db.execute("ALTER TABLE companies ADD COLUMN half_done TEXT")
        db.execute("SELECT no_such_column FROM companies")

    monkeypatch.setattr(pg_migrations, "steps", [*pg_migrations.steps, ("9001_broken", broken)])
    with pytest.raises(Exception, match="no_such_column"):
        connect(pg_url)
    db = PgDatabase(pg_url)
    assert "half_done" not in db["companies"].columns_dict
    assert "9001_broken" not in pg_migrations.applied(db)
    db.close()


def test_a_version_1_database_gains_discounts_and_line_totals_and_keeps_its_lines(pg_url):
    db = PgDatabase(pg_url)
    pg_migrations.migrate(db, until="0001_initial")
    with db.write():
        db.execute("INSERT INTO companies (name, created_at) VALUES ('Old Co', 'd')")
        db.execute(
            "INSERT INTO orders (company_id, channel, source_order_id, payment_status, order_date, channel_updated_at,"
            " currency, subtotal, shipping_total, tax, grand_total, commission, total_cost, imported_at, updated_at)"
            " VALUES (1, 'bmp', 'A-1', 'Fully Charged', 'd', 'd', 'EUR', '20.00', '0', '0', '20.00', '0', '20.00',"
            " 'd', 'd')"
        )
        db.execute(
            "INSERT INTO order_lines (order_id, source_line_id, sku, title, quantity, unit_price, tax)"
            " VALUES (1, 'L1', 'SKU', 'Phone', 2, '10.00', '0')"
        )
    db.close()
    db = connect(pg_url)
    assert db.execute("SELECT discount_total, adjustment_total FROM orders").fetchall() == [("0", "0")]
    assert db.execute("SELECT unit_price, line_total, discount FROM order_lines").fetchall() == [("10.00", None, "0")]
    insert = (
        "INSERT INTO order_lines (order_id, source_line_id, sku, title, quantity, tax, line_total)"
        " VALUES (1, :line, 'SKU', 'Case', 3, '0', :total)"
    )
    with db.write():  # a line with only its line total fits now
        db.execute(insert, {"line": "L2", "total": "33.33"})
    with pytest.raises(IntegrityError, match="order_lines_price"), db.write():  # nor one with no price
        db.execute(insert, {"line": "L3", "total": None})
    db.close()


def _pending_list_limit(db) -> str | None:
    row = db.execute(
        "SELECT array_to_string(reloptions, ',') FROM pg_class WHERE relname = :name", {"name": "orders_source_trgm"}
    ).fetchone()
    return row[0] if row else None


def test_the_order_id_index_keeps_a_short_pending_list_on_a_new_database_and_after_the_step(postgres, pg_url):
    """Each search reads the trigram index's pending list whole: while an import writes, the
    server's default 4 MB made a search 10 ms instead of 0.9 (docs/benchmarks.md)."""
    db = connect(pg_url)
    assert _pending_list_limit(db) == "gin_pending_list_limit=64"
    db.close()
    url = postgres.create_database("before_0019")
    try:
        db = PgDatabase(url)
        pg_migrations.migrate(db, until="0018_baseline")
        db.execute("ALTER INDEX orders_source_trgm RESET (gin_pending_list_limit)")  # as 0018 made it
        assert _pending_list_limit(db) in (None, "")
        db.close()
        db = connect(url)
        assert _pending_list_limit(db) == "gin_pending_list_limit=64"
        assert pg_migrations.applied(db)[-1] == "0019_short_search_pending_list"
        db.close()
    finally:
        postgres.drop_database("before_0019")
