"""Website General's other options, job priority and job retention behave the same on SQLite
and PostgreSQL (every test runs on both)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from host import clock
from host.channel import cursors
from host.errors import HostError
from host.jobs import queue as jobs
from host.records import companies, orders
from host.records.companies import add_company
from host.store.db import write
from plugin_spec import ChannelOrder, OrderLine

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)


def _order(n: int, **more) -> ChannelOrder:
    return ChannelOrder(
        source_order_id=f"SO-{n}", created_at=T0, updated_at=T0, currency="EUR", subtotal=Decimal("50.00"),
        tax_total=Decimal("8.33"), grand_total=Decimal("50.00"),
        lines=[OrderLine(source_line_id=f"L{n}", sku=f"SKU-{n}", title="Phone", quantity=2, unit_price=Decimal("25"))],
        **more,
    )  # fmt: skip


@pytest.fixture
def acme(store):
    return add_company(store, "Acme Refurb")


def test_the_options_are_stored_and_widening_them_forgets_what_import_orders_had_covered(store, acme):
    assert companies.website_settings(store, acme)["allow_unpaid_orders"] is False
    with write(store):
        store.execute(
            "INSERT INTO cursors (company_id, channel, name, value, updated_at)"
            " VALUES (:company, 'bmp', :name, :at, :at)",
            {"company": acme.id, "name": cursors.COVERED_FROM, "at": clock.iso(T0)},
        )
    shown = companies.update_website_settings(
        store, acme, options={"order_download_limit": True, "order_download_limit_date": "2026-10-01",
                              "delay_tracking": True, "delay_min_hours": "12"},
    )  # fmt: skip
    assert (shown["order_download_limit_date"], shown["delay_min_hours"], shown["delay_tracking"]) == (
        "2026-10-01", 12, True,
    )  # fmt: skip
    covered = "SELECT COUNT(*) FROM cursors WHERE name = :name"
    assert store.execute(covered, {"name": cursors.COVERED_FROM}).fetchone()[0] == 1  # a narrower filter skips no more
    with pytest.raises(HostError, match="Order Download Limit Date must be a date"):
        companies.update_website_settings(store, acme, options={"order_download_limit_date": "yesterday"})
    assert companies.website_settings(store, acme)["order_download_limit_date"] == "2026-10-01"
    companies.update_website_settings(store, acme, options={"allow_unpaid_orders": True})
    assert store.execute(covered, {"name": cursors.COVERED_FROM}).fetchone()[0] == 0


def test_an_unpaid_order_keeps_its_payment_status_and_a_shipped_one_is_fully_shipped_and_not_sent(store, acme):
    stats = orders.ImportStats()
    with write(store):
        batch = [_order(1, payment_status="No Payment"), _order(2, channel_shipped=True)]
        orders.upsert_each(store, acme.id, "backmarket_pro", batch, None, stats)
    shown = {o["source_order_id"]: o for o in orders.list_orders(store, acme.id)}
    assert shown["SO-1"]["payment_status"] == "No Payment" and shown["SO-1"]["shipping_status"] == "Unshipped"
    assert (shown["SO-2"]["shipping_status"], shown["SO-2"]["source_updated_for_shipping"]) == ("Fully Shipped", True)
    assert orders.show_order(store, shown["SO-2"]["id"])["lines"][0]["quantity_shipped"] == 2
    assert orders.shipments_to_upload(store, acme.id) == []


def test_a_raised_job_is_claimed_first_and_a_finished_one_keeps_its_priority(store, acme):
    test_job, _ = jobs.enqueue(store, acme.id, "test_settings")
    download, _ = jobs.enqueue(store, acme.id, "download_orders")
    changed, before = jobs.set_priority(store, download.id, "high")
    assert before == "Normal" and jobs.show_job(store, changed.id)["priority_name"] == "High"
    assert "priority changed from Normal to High by staff" in [
        r["message"] for r in jobs.show_job(store, download.id)["log"]
    ]
    claimed = jobs.claim(store, "w1")
    assert claimed is not None and claimed.id == download.id
    jobs.finish(store, claimed, jobs.COMPLETED)
    with pytest.raises(HostError, match="is Completed; only a Queued or Processing job's priority can change"):
        jobs.set_priority(store, download.id, "critical")
    with pytest.raises(HostError, match="unknown priority 'urgent'"):
        jobs.set_priority(store, test_job.id, "urgent")
    assert jobs.show_job(store, test_job.id)["priority_name"] == "Normal"


def test_finished_jobs_past_their_retention_go_with_their_logs_and_pending_ones_stay(store, acme, monkeypatch):
    old_finished, _ = jobs.enqueue(store, acme.id, "import_orders")
    claimed = jobs.claim(store, "w1", job_id=old_finished.id)
    assert claimed is not None
    jobs.finish(store, claimed, jobs.COMPLETED)
    old_running, _ = jobs.enqueue(store, acme.id, "download_orders")
    assert jobs.claim(store, "w1", job_id=old_running.id) is not None
    old_queued, _ = jobs.enqueue(store, acme.id, "test_settings")
    monkeypatch.setattr(clock, "now", lambda: datetime.now(UTC).replace(year=datetime.now(UTC).year + 1))
    recent, _ = jobs.enqueue(store, acme.id, "import_orders")
    recent_claim = jobs.claim(store, "w1", job_id=recent.id)
    assert recent_claim is not None
    jobs.finish(store, recent_claim, jobs.FAILED)

    assert jobs.purge_finished(store, 10) == 1
    left = {j["id"] for j in jobs.list_jobs(store)}
    assert left == {old_running.id, old_queued.id, recent.id}
    assert store.execute("SELECT COUNT(*) FROM job_logs WHERE job_id = :id", {"id": old_finished.id}).fetchone()[0] == 0
    assert jobs.purge_finished(store, 10) == 0
