"""A scheduler tick queues every due job of a kind in one write transaction, on both backends:
1,000 due downloads each queued once, a company's pending job never doubled, companies whose
plugin is not installed skipped, and the rows and log lines the same as ``jobs.enqueue`` writes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from support import ups_tracking

from host import clock
from host.jobs import queue as jobs
from host.jobs import scheduler
from host.store.db import write

DUE = 1000
MISSING = 3  # due, but their store plugin is not installed
UPLOADERS = 5  # due for an upload only


def _company(db, company_id: int, *, plugin: str, next_download_at: str, download: bool) -> None:
    now = clock.now_iso()
    db.execute(
        "INSERT INTO companies (id, name, created_at, connection_status, connection_message, connection_tested_at, "
        "next_download_at) VALUES (:id, :name, :now, 'established', 'ok', :now, :next)",
        {"id": company_id, "name": f"Company {company_id:05d}", "now": now, "next": next_download_at},
    )
    db.execute(
        "INSERT INTO website_settings (company_id, store_plugin, allow_order_download, allow_tracking_upload, "
        "updated_at) VALUES (:id, :plugin, :download, 1, :now)",
        {"id": company_id, "plugin": plugin, "download": int(download), "now": now},
    )


def _shipped_awaiting_upload(db, company_id: int) -> None:
    now = clock.now_iso()
    order_id = db.execute(
        "INSERT INTO orders (company_id, channel, source_order_id, payment_status, shipping_status, "
        "source_updated_for_shipping, order_date, channel_updated_at, currency, subtotal, shipping_total, tax, "
        "grand_total, commission, total_cost, imported_at, updated_at) VALUES (:company, 'backmarket_pro', :source, "
        "'Fully Charged', 'Fully Shipped', 0, :now, :now, 'EUR', '1.00', '0.00', '0.20', '1.20', '0.12', '1.32', "
        ":now, :now) RETURNING id",
        {"company": company_id, "source": f"U{company_id}", "now": now},
    ).fetchone()[0]
    db.execute(
        "INSERT INTO shipments (order_id, carrier, tracking_number, shipped_at) "
        "VALUES (:order, 'UPS', :tracking, :now)",
        {"order": order_id, "tracking": ups_tracking(company_id), "now": now},
    )


@pytest.fixture
def due_store(store, bmp, monkeypatch):
    """``DUE`` companies due for a download, ``MISSING`` due ones on a plugin that is not installed,
    ``UPLOADERS`` with a shipment awaiting upload; the hourly purge of old jobs not due."""
    monkeypatch.setattr(scheduler, "_next_purge_at", float("inf"))
    monkeypatch.setattr(scheduler, "_reported_missing", set())
    past = clock.now_iso(-60)
    with write(store):
        for company_id in range(1, DUE + 1):
            _company(store, company_id, plugin="backmarket_pro", next_download_at=past, download=True)
        for company_id in range(DUE + 1, DUE + MISSING + 1):
            _company(store, company_id, plugin="shop_not_installed", next_download_at=past, download=True)
        for company_id in range(DUE + MISSING + 1, DUE + MISSING + UPLOADERS + 1):
            _company(store, company_id, plugin="backmarket_pro", next_download_at=past, download=False)
            _shipped_awaiting_upload(store, company_id)
    return store


@contextmanager
def counted_writes(db) -> Iterator[list[int]]:
    """How many write transactions (outermost ``write(db)``) the block opens: ``[count]``."""
    count = [0]
    real = db.write

    def counting():
        if not db.conn.in_transaction:
            count[0] += 1
        return real()

    db.write = counting
    try:
        yield count
    finally:
        del db.write


def _pending(db, kind: str) -> dict[int, int]:
    rows = db.execute(
        "SELECT company_id, count(*) FROM jobs WHERE kind = :kind AND status IN ('Queued', 'Processing') "
        "GROUP BY company_id",
        {"kind": kind},
    ).fetchall()
    return dict(rows)


def test_one_tick_queues_a_thousand_due_downloads_in_one_write_transaction_each_company_once(due_store, caplog):
    db = due_store
    already, _ = jobs.enqueue(db, 7, "download_orders")  # a company with a pending download gets no second one
    before = db.execute("SELECT id, next_download_at FROM companies").fetchall()

    with caplog.at_level(logging.WARNING, "cartplugin.worker"), counted_writes(db) as writes:
        queued = scheduler.tick(db, download_every=900)

    assert queued == {"download_orders": DUE - 1, "upload_tracking": UPLOADERS}
    assert writes[0] == 1
    downloads = _pending(db, "download_orders")
    assert sorted(downloads) == list(range(1, DUE + 1)) and set(downloads.values()) == {1}
    assert db.execute("SELECT id FROM jobs WHERE company_id = 7").fetchall() == [(already.id,)]
    assert sorted(_pending(db, "upload_tracking")) == list(range(DUE + MISSING + 1, DUE + MISSING + UPLOADERS + 1))

    # each row as jobs.enqueue writes it: its kind's priority, no params, runnable now, one log line
    rows = list(db.query("SELECT * FROM jobs WHERE id <> :id", {"id": already.id}))
    assert {(r["kind"], r["priority"], r["params"], r["attempts"], r["max_attempts"]) for r in rows} == {
        ("download_orders", jobs.PRIORITY["download_orders"], "{}", 0, 5),
        ("upload_tracking", jobs.PRIORITY["upload_tracking"], "{}", 0, 5),
    }
    assert all(r["run_after"] == r["created_at"] for r in rows)
    logs = db.execute("SELECT job_id, level, message FROM job_logs ORDER BY job_id").fetchall()
    assert logs == sorted(
        [(r["id"], "info", f"queued {jobs.kind_name(r['kind'])}") for r in rows]
        + [(already.id, "info", "queued Download Orders")]
    )

    # the installed companies' next download moved on (company 7's too, as before); the skipped ones' did not
    after = dict(db.execute("SELECT id, next_download_at FROM companies").fetchall())
    moved = {company_id for company_id, at in before if after[company_id] != at}
    assert moved == set(range(1, DUE + 1))
    assert min(after[c] for c in moved) > clock.now_iso(800)
    missing = [r.getMessage() for r in caplog.records if "plugin missing" in r.getMessage()]
    assert len(missing) == MISSING, missing

    with caplog.at_level(logging.WARNING, "cartplugin.worker"), counted_writes(db) as writes:
        assert scheduler.tick(db, download_every=900) == {"download_orders": 0, "upload_tracking": 0}
    assert writes[0] <= 1  # the uploads are still due: their pending jobs are found in one transaction
    assert sum(_pending(db, "download_orders").values()) == DUE
    assert len([r for r in caplog.records if "plugin missing" in r.getMessage()]) == MISSING  # said once


def test_a_tick_with_nothing_due_opens_no_write_transaction(store, bmp, monkeypatch):
    monkeypatch.setattr(scheduler, "_next_purge_at", float("inf"))
    with write(store):
        _company(store, 1, plugin="backmarket_pro", next_download_at=clock.now_iso(3600), download=True)
    with counted_writes(store) as writes:
        assert scheduler.tick(store) == {"download_orders": 0, "upload_tracking": 0}
    assert writes[0] == 0
