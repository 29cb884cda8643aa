"""The schema is the named migration set "host"."""

from __future__ import annotations

import sqlite3

import pytest
import sqlite_utils

from host.db import connect
from host.migrations import migrate, migrations

EXPECTED_TABLES = {
    "companies", "website_settings", "cart_settings", "cursors", "orders", "order_lines", "order_properties",
    "shipments", "shipment_lines", "jobs", "job_logs",
}  # fmt: skip


def test_an_empty_database_migrates_to_the_full_schema_in_wal_mode(db_path):
    db = connect(db_path)
    assert EXPECTED_TABLES <= set(db.table_names())
    assert db.journal_mode == "wal"
    assert [m.name for m in migrations.applied(db)] == [m.name for m in migrations._migrations]
    assert migrations.pending(db) == []


def test_migrating_again_changes_nothing(db_path):
    connect(db_path).close()
    schema = sqlite3.connect(db_path).execute("SELECT group_concat(sql) FROM sqlite_master").fetchone()
    db = connect(db_path)
    migrate(db)
    assert sqlite3.connect(db_path).execute("SELECT group_concat(sql) FROM sqlite_master").fetchone() == schema


def test_money_columns_are_text_not_real(db_path):
    db = connect(db_path)
    columns = {c.name: c.type for c in db["orders"].columns}
    for name in ("subtotal", "tax", "grand_total", "commission", "total_cost"):
        assert columns[name] == "TEXT", name
    assert {c.name: c.type for c in db["order_lines"].columns}["unit_price"] == "TEXT"


def test_one_pending_job_per_company_and_kind_is_enforced_by_the_schema(db_path):
    db = connect(db_path)
    db.execute("INSERT INTO companies (name, created_at) VALUES ('A', 'now')")
    insert = "INSERT INTO jobs (company_id, kind, run_after, created_at) VALUES (1, 'download_orders', 'x', 'x')"
    db.execute(insert)
    with pytest.raises(sqlite3.IntegrityError):
        db.execute(insert)
    db.execute("UPDATE jobs SET status = 'Completed'")
    db.execute(insert)  # once the first is done, a new one may be queued


def test_an_old_database_migrates_and_keeps_its_rows(db_path):
    old = sqlite_utils.Database(db_path)
    migrations.apply(old, stop_before="0002_shipment_retry_schedule")
    assert "next_upload_at" not in old["shipments"].columns_dict
    old.execute("INSERT INTO companies (name, created_at) VALUES ('Old Co', '2025-01-01T00:00:00.000000Z')")
    old.close()
    db = connect(db_path)
    assert "next_upload_at" in db["shipments"].columns_dict
    assert [r["name"] for r in db.query("SELECT name FROM companies")] == ["Old Co"]
    assert migrations.pending(db) == []


def test_an_older_database_gains_awaiting_acceptance_and_keeps_its_rows(db_path):
    old = sqlite_utils.Database(db_path)
    migrations.apply(old, stop_before="0005_order_acceptance")
    old.execute("INSERT INTO companies (name, created_at) VALUES ('Old Co', '2025-01-01T00:00:00.000000Z')")
    old.close()
    db = connect(db_path)
    assert "awaiting_acceptance" in {c.name for c in db["orders"].columns}
    assert db.execute("SELECT name FROM companies").fetchall() == [("Old Co",)]
    assert migrations.pending(db) == []
