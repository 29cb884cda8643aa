"""The scheduler's two queries search their partial indexes on SQLite, with many companies and
nothing due: companies_download_due and orders_awaiting_upload (the planner alone would take
orders_updated_grid for the second, and read every company's shipped orders on each tick)."""

from __future__ import annotations

from pathlib import Path

from host import clock
from host.jobs import scheduler
from host.store.db import connect, write

COMPANIES = 2000


def _fill(db) -> None:
    """Established companies, nothing due, each with shipped orders already uploaded and unshipped ones."""
    now, later = clock.now_iso(), clock.now_iso(3600)
    with write(db):
        db.conn.executemany(
            "INSERT INTO companies (id, name, created_at, connection_status, connection_message, "
            "connection_tested_at, next_download_at) VALUES (?, ?, ?, 'established', 'ok', ?, ?)",
            [(i, f"Company {i:05d}", now, now, later) for i in range(1, COMPANIES + 1)],
        )
        db.conn.executemany(
            "INSERT INTO website_settings (company_id, store_plugin, allow_order_download, allow_tracking_upload, "
            "updated_at) VALUES (?, 'backmarket_pro', 1, 1, ?)",
            [(i, now) for i in range(1, COMPANIES + 1)],
        )
        db.conn.executemany(
            "INSERT INTO orders (company_id, channel, source_order_id, payment_status, shipping_status, "
            "source_updated_for_shipping, order_date, channel_updated_at, currency, subtotal, shipping_total, tax, "
            "grand_total, commission, total_cost, imported_at, updated_at) "
            "VALUES (?, 'backmarket_pro', ?, 'Fully Charged', ?, ?, ?, ?, 'EUR', '1.00', '0.00', '0.20', '1.20', "
            "'0.12', '1.32', ?, ?)",
            [(c, f"T{c}-{k}", "Fully Shipped" if k % 2 == 0 else "Unshipped", int(k % 2 == 0), now, now, now, now)
             for c in range(1, COMPANIES + 1) for k in range(6)],
        )  # fmt: skip


def test_a_tick_searches_the_partial_indexes_of_due_downloads_and_due_uploads(tmp_path: Path) -> None:
    db = connect(tmp_path / "tick.db")
    _fill(db)
    seen: list[str] = []
    db.conn.set_trace_callback(seen.append)
    try:
        assert scheduler.tick(db) == {"download_orders": 0, "upload_tracking": 0}
    finally:
        db.conn.set_trace_callback(None)

    def plan_of(marker: str) -> str:
        (sql,) = [sql for sql in seen if marker in sql]
        return " | ".join(row[3] for row in db.conn.execute("EXPLAIN QUERY PLAN " + sql))

    downloads, uploads = plan_of("next_download_at <="), plan_of("source_updated_for_shipping = 0")
    db.close()
    assert "USING INDEX companies_download_due" in downloads, downloads
    assert "USING INDEX orders_awaiting_upload" in uploads, uploads
