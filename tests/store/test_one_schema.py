"""One schema, written once (host.store.schema): a new database of either backend is made from it, an
old one is brought to exactly the same schema with its rows, and SQLite and PostgreSQL agree."""

from __future__ import annotations

import itertools

import pytest
import sqlite_utils

from host.store import migrations as sqlite_migrations
from host.store import pg_migrations
from host.store.db import connect, write
from host.store.pg import PgDatabase
from host.store.schema import STEPS, Step
from host.store.schema.shape import TYPES, portable, shape

EXPECTED_TABLES = {
    "companies", "website_settings", "cart_settings", "cursors", "channel_credentials", "orders", "order_lines",
    "shipments", "shipment_lines", "jobs", "job_logs", "users", "user_companies", "login_failures", "audit_log",
    "web_secrets",
}  # fmt: skip
_numbers = itertools.count(1)


@pytest.fixture
def another(db_target, tmp_path, request):
    """A second new database of the same backend as ``db_target``."""
    if not isinstance(db_target, str):
        yield tmp_path / "another.db"
        return
    postgres = request.getfixturevalue("postgres")
    name = f"another_{next(_numbers)}"
    yield postgres.create_database(name)
    postgres.drop_database(name)


#: what the oldest version stored (its first step's tables); each row must survive every upgrade
ROWS = {
    "companies": "INSERT INTO companies (id, name, created_at) VALUES (1, 'Old Co', '2025-01-01T00:00:00.000000Z')",
    "cart_settings": "INSERT INTO cart_settings (company_id, channel, key, value) VALUES (1, 'bmp', 'url', 'u')",
    "orders": (
        "INSERT INTO orders (id, company_id, channel, source_order_id, payment_status, order_date, channel_updated_at,"
        " currency, subtotal, shipping_total, tax, grand_total, commission, total_cost, imported_at, updated_at)"
        " VALUES (1, 1, 'bmp', 'A-1', 'Fully Charged', 'd', 'd', 'EUR', '20.00', '0', '0', '20.00', '2.00', '22.00',"
        " 'd', 'd')"
    ),
    "order_lines": (
        "INSERT INTO order_lines (id, order_id, source_line_id, sku, title, quantity, unit_price, tax)"
        " VALUES (1, 1, 'L1', 'SKU', 'Phone', 2, '10.00', '1.90')"
    ),
    "shipments": (
        "INSERT INTO shipments (id, order_id, carrier, tracking_number, shipped_at) VALUES (1, 1, 'UPS', '1Z9', 'd')"
    ),
    "shipment_lines": "INSERT INTO shipment_lines (shipment_id, order_line_id, quantity) VALUES (1, 1, 2)",
    "jobs": "INSERT INTO jobs (id, company_id, kind, run_after, created_at) VALUES (1, 1, 'import_orders', 'd', 'd')",
}
KEPT = {
    "companies": "SELECT id, name FROM companies",
    "cart_settings": "SELECT company_id, key, value FROM cart_settings",
    "orders": "SELECT id, source_order_id, grand_total, total_cost, status FROM orders",
    "order_lines": "SELECT id, order_id, sku, quantity, unit_price, tax FROM order_lines",
    "shipments": "SELECT id, order_id, tracking_number, upload_state FROM shipments",
    "shipment_lines": "SELECT shipment_id, order_line_id, quantity FROM shipment_lines",
    "jobs": "SELECT id, kind, status FROM jobs",
}


def _oldest_database_with_rows(target) -> None:
    """The database the first released version made (its first step only), with rows in it."""
    if isinstance(target, str):
        db = PgDatabase(target)
        pg_migrations.migrate(db, until="0001_initial")
    else:
        db = sqlite_utils.Database(target)
        sqlite_migrations.migrations.apply(db, stop_before="0002_shipment_retry_schedule")
    with write(db):
        for statement in ROWS.values():
            db.execute(statement, {})
    db.close()


def _applied(db) -> list[str]:
    if isinstance(db, PgDatabase):
        return pg_migrations.applied(db)
    return [m.name for m in sqlite_migrations.migrations.applied(db)]


def test_a_database_made_from_the_source_and_one_upgraded_from_the_oldest_version_have_one_schema(db_target, another):
    _oldest_database_with_rows(db_target)
    upgraded = connect(db_target)
    made = connect(another)
    try:
        assert EXPECTED_TABLES <= set(made.table_names())
        assert shape(upgraded) == shape(made)
        assert _applied(made) == [step.name for step in STEPS]  # made from the source: no old step ran
        assert _applied(upgraded)[-len(STEPS) :] == [step.name for step in STEPS]  # its old steps, then recorded
        assert len(_applied(upgraded)) > len(STEPS)
        kept = {table: upgraded.execute(sql, {}).fetchall() for table, sql in KEPT.items()}
        assert kept == {
            "companies": [(1, "Old Co")],
            "cart_settings": [(1, "url", "u")],
            "orders": [(1, "A-1", "20.00", "22.00", "In Process")],
            "order_lines": [(1, 1, "SKU", 2, "10.00", "1.90")],
            "shipments": [(1, 1, "1Z9", "pending")],
            "shipment_lines": [(1, 1, 2)],
            "jobs": [(1, "import_orders", "Queued")],
        }
    finally:
        upgraded.close()
        made.close()


def test_sqlite_and_postgresql_databases_made_from_the_source_have_the_same_tables_columns_and_indexes(
    pg_url, tmp_path
):
    sqlite, postgresql = connect(tmp_path / "cart.db"), connect(pg_url)
    try:
        on_sqlite, on_postgresql = portable(shape(sqlite)), portable(shape(postgresql))
    finally:
        sqlite.close()
        postgresql.close()
    assert set(on_sqlite["tables"]) == EXPECTED_TABLES
    assert len(on_sqlite["indexes"]) >= 30  # the comparison below compares something
    kinds = {kind for columns in on_sqlite["tables"].values() for _, kind, _, _ in columns}
    assert kinds <= set(TYPES.values())  # every type went through the mapping
    assert on_sqlite == on_postgresql


def _with_step(monkeypatch, target, step: Step) -> None:
    """Make ``step`` the latest of the single source for this test, as a change to the schema would."""
    if isinstance(target, str):
        monkeypatch.setattr(pg_migrations, "steps", pg_migrations._history([*STEPS, step]))
        monkeypatch.setattr(pg_migrations, "SCHEMA_VERSION", step.number)
    else:
        history, source = sqlite_migrations._sets([*STEPS, step])
        monkeypatch.setattr(sqlite_migrations, "migrations", history)
        monkeypatch.setattr(sqlite_migrations, "from_source", source)
        monkeypatch.setattr(sqlite_migrations, "SCHEMA_VERSION", step.number)


def test_a_new_step_of_the_single_source_reaches_an_existing_and_a_new_database_alike(db_target, another, monkeypatch):
    connect(db_target).close()  # a database of this version
    step = Step(
        f"{STEPS[-1].number + 1:04d}_order_notes",
        ddl="ALTER TABLE orders ADD COLUMN note {text};\n"
        "CREATE INDEX orders_note ON orders(note) WHERE note IS NOT NULL",
    )
    _with_step(monkeypatch, db_target, step)
    upgraded, made = connect(db_target), connect(another)
    try:
        assert "note" in upgraded["orders"].columns_dict
        assert shape(upgraded) == shape(made)
        assert _applied(upgraded) == _applied(made) == [*(s.name for s in STEPS), step.name]
        if not isinstance(db_target, str):
            assert upgraded.execute("PRAGMA user_version").fetchone()[0] == step.number
    finally:
        upgraded.close()
        made.close()
