"""The schema is the named migration set "host"."""

from __future__ import annotations

import sqlite3

import pytest
import sqlite_utils

from host.store.api import IntegrityError
from host.store.db import connect
from host.store.migrations import LEGACY, SCHEMA_VERSION, migrate, migrations
from host.store.schema import STEPS
from host.store.schema.shape import shape

#: SQLite's legacy migration path (sqlite-utils Migrations, PRAGMA user_version); PostgreSQL's own
#: steps are tested in tests/store/test_pg_migrations.py
LEGACY_SQLITE = pytest.mark.sqlite_only("SQLite's legacy migration path")

EXPECTED_TABLES = {
    "companies", "website_settings", "cart_settings", "cursors", "orders", "order_lines", "shipments",
    "shipment_lines", "jobs", "job_logs",
}  # fmt: skip


@pytest.mark.sqlite_only(
    "a SQLite file's WAL mode and its sqlite-utils migration history; PostgreSQL: "
    "tests/store/test_pg_migrations.py::test_an_empty_database_gets_every_table_and_column_sqlite_has"
)
def test_an_empty_database_is_made_from_the_single_source_in_wal_mode(db_target):
    db = connect(db_target)
    assert EXPECTED_TABLES <= set(db.table_names())
    assert db.journal_mode == "wal"
    assert [m.name for m in migrations.applied(db)] == [step.name for step in STEPS]  # never the old steps
    assert migrations.pending(db) == []
    migrations.apply(db)  # the old steps stay out of its history
    assert [m.name for m in migrations.applied(db)] == [step.name for step in STEPS]


def test_each_older_version_is_brought_to_the_schema_a_new_database_is_made_with(tmp_path):
    fresh = shape(connect(tmp_path / "fresh.db"))
    old_steps = [m.name for m in migrations._migrations if m.name in LEGACY]
    for name in old_steps[1:]:
        path = tmp_path / f"before-{name}.db"
        old = sqlite_utils.Database(path)
        migrations.apply(old, stop_before=name)
        old.close()
        db = connect(path)
        assert shape(db) == fresh, name
        assert [m.name for m in migrations.applied(db)] == [*old_steps, *(step.name for step in STEPS)]
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        db.close()


@LEGACY_SQLITE
def test_migrating_again_changes_nothing(db_target):
    connect(db_target).close()
    schema = sqlite3.connect(db_target).execute("SELECT group_concat(sql) FROM sqlite_master").fetchone()
    db = connect(db_target)
    migrate(db)
    assert sqlite3.connect(db_target).execute("SELECT group_concat(sql) FROM sqlite_master").fetchone() == schema


def test_money_columns_are_text_not_real(db_target):
    db = connect(db_target)
    columns = db["orders"].columns_dict
    for name in ("subtotal", "tax", "grand_total", "commission", "total_cost"):
        assert columns[name] is str, name
    assert db["order_lines"].columns_dict["unit_price"] is str


def test_one_pending_job_per_company_and_kind_is_enforced_by_the_schema(db_target):
    db = connect(db_target)
    db.execute("INSERT INTO companies (name, created_at) VALUES ('A', 'now')")
    insert = "INSERT INTO jobs (company_id, kind, run_after, created_at) VALUES (1, 'download_orders', 'x', 'x')"
    db.execute(insert)
    with pytest.raises(IntegrityError):
        db.execute(insert)
    db.execute("UPDATE jobs SET status = 'Completed'")
    db.execute(insert)  # once the first is done, a new one may be queued


@LEGACY_SQLITE
def test_an_old_database_migrates_and_keeps_its_rows(db_target):
    old = sqlite_utils.Database(db_target)
    migrations.apply(old, stop_before="0002_shipment_retry_schedule")
    assert "next_upload_at" not in old["shipments"].columns_dict
    old.execute("INSERT INTO companies (name, created_at) VALUES ('Old Co', '2025-01-01T00:00:00.000000Z')")
    old.close()
    db = connect(db_target)
    assert "next_upload_at" in db["shipments"].columns_dict
    assert [r["name"] for r in db.query("SELECT name FROM companies")] == ["Old Co"]
    assert migrations.pending(db) == []


@LEGACY_SQLITE
def test_an_older_database_gains_awaiting_acceptance_and_keeps_its_rows(db_target):
    old = sqlite_utils.Database(db_target)
    migrations.apply(old, stop_before="0005_order_acceptance")
    old.execute("INSERT INTO companies (name, created_at) VALUES ('Old Co', '2025-01-01T00:00:00.000000Z')")
    old.close()
    db = connect(db_target)
    assert "awaiting_acceptance" in {c.name for c in db["orders"].columns}
    assert db.execute("SELECT name FROM companies").fetchall() == [("Old Co",)]
    assert migrations.pending(db) == []


def test_an_empty_database_has_no_unused_table_or_column(db_target):
    db = connect(db_target)
    assert "order_properties" not in db.table_names()
    assert "status_set_by_staff" not in db["orders"].columns_dict


@pytest.mark.sqlite_only(
    "PRAGMA user_version of a SQLite file; PostgreSQL records its version in cartplugin_migrations"
)
def test_an_empty_sqlite_database_records_the_last_step_s_version(db_target):
    db = connect(db_target)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == int(migrations._migrations[-1].name[:4])


@LEGACY_SQLITE
def test_a_version_5_database_loses_the_unused_table_and_column_and_keeps_its_orders(db_target):
    old = sqlite_utils.Database(db_target)
    migrations.apply(old, stop_before="0006_drop_unused")
    old.execute("PRAGMA user_version = 5")  # what cartplugin with schema version 5 wrote
    old.execute("INSERT INTO companies (name, created_at) VALUES ('Old Co', '2025-01-01T00:00:00.000000Z')")
    old.execute(
        "INSERT INTO orders (company_id, channel, source_order_id, status, status_set_by_staff, payment_status,"
        " order_date, channel_updated_at, currency, subtotal, shipping_total, tax, grand_total, commission,"
        " total_cost, imported_at, updated_at, awaiting_acceptance) VALUES (1, 'bmp', 'A-1', 'Cancelled', 1, 'Paid',"
        " 'd', 'd', 'EUR', '10.50', '0', '0', '10.50', '0', '0', 'd', 'd', 1)"
    )
    old.execute("INSERT INTO order_properties (order_id, name, value) VALUES (1, 'gift', 'yes')")
    old.conn.commit()
    old.close()
    db = connect(db_target)
    assert "order_properties" not in db.table_names()
    assert "status_set_by_staff" not in db["orders"].columns_dict
    assert db.execute("SELECT source_order_id, status, grand_total, awaiting_acceptance FROM orders").fetchall() == [
        ("A-1", "Cancelled", "10.50", 1)
    ]
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert migrations.pending(db) == []


@LEGACY_SQLITE
def test_a_version_6_database_gains_the_channel_credentials_table_and_keeps_its_settings(db_target):
    old = sqlite_utils.Database(db_target)
    migrations.apply(old, stop_before="0007_channel_credentials")
    old.execute("INSERT INTO companies (name, created_at) VALUES ('Old Co', '2025-01-01T00:00:00.000000Z')")
    old.conn.commit()
    old.close()
    db = connect(db_target)
    assert {"company_id", "channel", "name", "origin", "value", "expires_at", "version", "lease_until"} <= set(
        db["channel_credentials"].columns_dict
    )
    assert db["channel_credentials"].pks == ["company_id", "channel", "name"]
    assert db.execute("SELECT name FROM companies").fetchall() == [("Old Co",)]
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


@LEGACY_SQLITE
def test_a_migration_run_stopped_after_a_step_records_that_step_s_version(db_target):
    """A database left between two steps must not claim the final version: the refusal of a
    newer database and `db status` read PRAGMA user_version."""
    names = [m.name for m in migrations._migrations]
    assert names == sorted(names)  # steps run in the file's order: the numbers must follow it
    db = sqlite_utils.Database(db_target)
    for before, name in zip(names, names[1:], strict=False):
        migrations.apply(db, stop_before=name)
        if int(before[:4]) >= 3:  # the steps before 0003 predate user_version
            assert db.execute("PRAGMA user_version").fetchone()[0] == int(before[:4]), before
    migrations.apply(db)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == int(names[-1][:4])


def _version_7_database_with_a_shipped_order(db_target) -> None:
    old = sqlite_utils.Database(db_target)
    migrations.apply(old, stop_before="0008_channel_money")
    old.execute("PRAGMA user_version = 7")  # what cartplugin with schema version 7 wrote
    old.execute("INSERT INTO companies (name, created_at) VALUES ('Old Co', '2025-01-01T00:00:00.000000Z')")
    old.execute(
        "INSERT INTO orders (company_id, channel, source_order_id, payment_status, order_date, channel_updated_at,"
        " currency, subtotal, shipping_total, tax, grand_total, commission, total_cost, imported_at, updated_at)"
        " VALUES (1, 'bmp', 'A-1', 'Fully Charged', 'd', 'd', 'EUR', '20.00', '0', '0', '20.00', '2.00', '22.00',"
        " 'd', 'd')"
    )
    old.execute(
        "INSERT INTO order_lines (order_id, source_line_id, sku, title, quantity, unit_price, tax, quantity_shipped)"
        " VALUES (1, 'L1', 'SKU', 'Phone', 2, '10.00', '1.90', 2)"
    )
    old.execute("INSERT INTO shipments (order_id, carrier, tracking_number, shipped_at) VALUES (1, 'UPS', '1Z', 'd')")
    old.execute("INSERT INTO shipment_lines (shipment_id, order_line_id, quantity) VALUES (1, 1, 2)")
    old.conn.commit()
    old.close()


@LEGACY_SQLITE
def test_a_version_7_database_gains_discounts_and_line_totals_and_keeps_its_orders_lines_and_shipments(db_target):
    _version_7_database_with_a_shipped_order(db_target)
    db = connect(db_target)
    assert db.execute("SELECT discount_total, adjustment_total, grand_total FROM orders").fetchall() == [
        ("0", "0", "20.00")
    ]
    assert db.execute(
        "SELECT l.id, l.unit_price, l.line_total, l.discount, l.tax, l.quantity_shipped, sl.quantity "
        "FROM order_lines l JOIN shipment_lines sl ON sl.order_line_id = l.id"
    ).fetchall() == [(1, "10.00", None, "0", "1.90", 2, 2)]
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1  # switched off for the rebuild only
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == int(migrations._migrations[-1].name[:4])
    assert migrations.pending(db) == []
    # a line that has only its line total fits now; one with no price or pointing at no order does not
    insert = (
        "INSERT INTO order_lines (order_id, source_line_id, sku, title, quantity, tax, line_total) "
        "VALUES (:order, :line, 'S', 't', 3, '0', :total)"
    )
    db.execute(insert, {"order": 1, "line": "L2", "total": "33.33"})
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        db.execute(insert, {"order": 1, "line": "L3", "total": None})
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
        db.execute(insert, {"order": 9, "line": "L9", "total": "1.00"})


@LEGACY_SQLITE
def test_the_channel_money_step_run_again_changes_nothing(db_target):
    """A run stopped after the step's transaction but before its record repeats the step."""
    from host.store.schema.legacy_sqlite import m0008_channel_money

    _version_7_database_with_a_shipped_order(db_target)
    db = connect(db_target)
    schema = db.execute("SELECT group_concat(sql) FROM sqlite_master").fetchone()
    m0008_channel_money(db)
    assert db.execute("SELECT group_concat(sql) FROM sqlite_master").fetchone() == schema
    assert db.execute("SELECT COUNT(*) FROM order_lines").fetchone() == (1,)


def test_the_steps_of_both_stores_run_in_the_order_of_their_numbers():
    """Steps run in the order the files register them; merged branches each append theirs."""
    from host.store import pg_migrations

    for names in ([m.name for m in migrations._migrations], [name for name, _ in pg_migrations.steps]):
        assert names == sorted(names) and len({name[:4] for name in names}) == len(names)
