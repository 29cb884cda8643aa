"""Step 0013_website_options: a database of the version before gains Website General's other
options (all off) and the index the removal of old jobs reads, and keeps its rows."""

from __future__ import annotations

import pytest
import sqlite_utils

from host.store.db import connect
from host.store.migrations import SCHEMA_VERSION, migrations


@pytest.mark.sqlite_only("SQLite's legacy migration path; PostgreSQL's: tests/store/test_pg_migrations.py")
def test_an_older_database_gains_the_options_off_and_the_jobs_finished_index(db_target):
    old = sqlite_utils.Database(db_target)
    migrations.apply(old, stop_before="0013_website_options")
    old.execute("INSERT INTO companies (name, created_at) VALUES ('Old Co', '2025-01-01T00:00:00.000000Z')")
    old.execute("INSERT INTO website_settings (company_id, store_plugin, allow_order_download, updated_at) "
                "VALUES (1, 'backmarket_pro', 1, 'd')")  # fmt: skip
    old.conn.commit()
    old.close()
    db = connect(db_target)
    row = next(db.query("SELECT * FROM website_settings"))
    assert (row["store_plugin"], row["allow_order_download"]) == ("backmarket_pro", 1)
    assert {k: row[k] for k in ("allow_download_shipped", "allow_unpaid_orders", "order_download_limit",
                                "order_download_limit_date", "delay_tracking", "delay_min_hours",
                                "delay_skip_saturday", "delay_skip_sunday")} == {
        "allow_download_shipped": 0, "allow_unpaid_orders": 0, "order_download_limit": 0,
        "order_download_limit_date": None, "delay_tracking": 0, "delay_min_hours": 0,
        "delay_skip_saturday": 0, "delay_skip_sunday": 0,
    }  # fmt: skip
    assert "jobs_finished" in {index.name for index in db["jobs"].indexes}
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert migrations.pending(db) == []
