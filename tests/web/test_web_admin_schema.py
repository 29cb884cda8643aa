"""Migration 0004_web_admin: users, sign-in failures, the audit log and the grids' indexes."""

from __future__ import annotations

import pytest
import sqlite_utils

from host.store.db import connect
from host.store.migrations import migrations


# a SQLite database of before 0004; PostgreSQL's legacy steps: tests/store/test_pg_migrations.py
@pytest.mark.sqlite_only
def test_an_older_database_gains_the_web_admin_tables_and_keeps_its_rows(db_target):
    old = sqlite_utils.Database(db_target)
    migrations.apply(old, stop_before="0004_web_admin")
    assert "users" not in old.table_names()
    old.execute("INSERT INTO companies (name, created_at) VALUES ('Old Co', '2025-01-01T00:00:00.000000Z')")
    old.close()
    db = connect(db_target)
    assert {"users", "login_failures", "audit_log", "web_secrets"} <= set(db.table_names())
    indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {
        "orders_company_grid",
        "orders_status_grid",
        "orders_cancelled_grid",
        "jobs_status_grid",
        "jobs_kind_grid",
    } <= indexes
    assert db.execute("SELECT name FROM companies").fetchall() == [("Old Co",)]
    assert migrations.pending(db) == []


def test_web_admin_comes_right_after_the_hardening_step():
    names = [m.name for m in migrations._migrations]
    assert names.index("0004_web_admin") == names.index("0003_hardening") + 1
