"""The host's data functions behave the same on SQLite and PostgreSQL (every test runs on both)."""

from __future__ import annotations

import json
import socket
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from host import clock
from host.channel import cursors
from host.errors import HostError
from host.jobs import queue as jobs
from host.records import audit, companies, orders, users
from host.records.companies import add_company, get_company
from host.store import db as db_module
from host.store.db import connect, write
from plugin_spec import ChannelOrder, OrderLine, UploadResult

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def order(n: int, *, updated: datetime = T0, cancelled: bool = False, price: str = "100.10") -> ChannelOrder:
    return ChannelOrder(
        source_order_id=f"SO-{n}", created_at=T0, updated_at=updated, currency="EUR",
        subtotal=Decimal(price), tax_total=Decimal("16.68"), grand_total=Decimal(price),
        channel_cancelled=cancelled, buyer_email=f"b{n}@example.com",
        lines=[OrderLine(source_line_id=f"L{n}", sku=f"SKU-{n}", title="Phone 50% off?", quantity=2,
                         unit_price=Decimal(price) / 2)],
    )  # fmt: skip


def import_orders(db, company_id: int, batch: list[ChannelOrder]) -> orders.ImportStats:
    stats = orders.ImportStats()
    with write(db):
        failed = orders.upsert_each(db, company_id, "backmarket_pro", batch, Decimal("10"), stats)
    assert failed == []
    return stats


@pytest.fixture
def acme(store):
    return add_company(store, "Acme Refurb")


# -- companies and settings ------------------------------------------------------------------


def test_companies_are_numbered_and_found_by_name_in_any_case(store):
    first = add_company(store, "Acme Refurb")
    second = add_company(store, "Zeta Ltd")
    assert second.id > first.id
    assert get_company(store, "ACME REFURB").id == first.id
    assert get_company(store, str(second.id)).name == "Zeta Ltd"
    with pytest.raises(HostError, match="already exists"):
        add_company(store, "acme refurb")
    assert [c["name"] for c in companies.list_companies(store)] == ["Acme Refurb", "Zeta Ltd"]


def test_settings_are_stored_with_the_secret_sealed(store, acme, bmp):
    companies.update_website_settings(store, acme, store_plugin="backmarket_pro", allow_order_download=True)
    shown = companies.update_cart_settings(
        store, acme, {"website_url": "https://pro.example.com", "x_api_key": "secret-key-123456"}
    )
    fields = {f["key"]: f["value"] for f in shown["fields"]}
    assert fields["x_api_key"] != "secret-key-123456" and fields["x_api_key"].endswith("3456")
    stored = dict(
        store.execute("SELECT key, value FROM cart_settings WHERE company_id = :id", {"id": acme.id}).fetchall()
    )
    assert stored["x_api_key"].startswith("fernet:") and "secret-key" not in stored["x_api_key"]
    assert companies.cart_settings_model(store, acme).x_api_key.get_secret_value() == "secret-key-123456"
    assert companies.website_settings(store, acme)["allow_order_download"] == 1
    assert companies.settings_version(store, acme) >= 1


def test_a_test_result_for_outdated_settings_is_not_recorded(store, acme, bmp):
    companies.update_website_settings(store, acme, store_plugin="backmarket_pro")
    version = companies.settings_version(store, acme)
    companies.update_cart_settings(store, acme, {"website_url": "https://pro.example.com", "x_api_key": "k" * 16})
    assert not companies.record_test_result(store, acme, version, True, "ok")
    assert companies.record_test_result(store, acme, companies.settings_version(store, acme), True, "ok")
    assert get_company(store, acme.id).connection_status == "established"


# -- orders and shipments --------------------------------------------------------------------


def test_an_import_is_idempotent_and_keeps_money_exact(store, acme):
    stats = import_orders(store, acme.id, [order(1), order(2, price="0.30")])
    assert (stats.inserted, stats.updated) == (2, 0)
    again = import_orders(store, acme.id, [order(1), order(2, price="0.30")])
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    rows = list(orders.list_orders(store, acme.id))
    assert [r["source_order_id"] for r in rows] == ["SO-1", "SO-2"]
    shown = orders.show_order(store, rows[1]["id"])
    assert shown["grand_total"] == "0.30" and shown["lines"][0]["title"] == "Phone 50% off?"
    assert shown["commission"] == "0.03"


def test_rows_built_before_the_write_lock_follow_what_the_database_holds_when_written(store, acme):
    # prepare() guesses which orders are new outside the write transaction; the upsert asks
    # again inside it, so an order another job stored meanwhile is not inserted twice, and one
    # guessed known that is gone after all is still inserted
    batch = [order(5), order(6, updated=T0 + timedelta(hours=1))]
    stale = orders.prepare(store, acme.id, "backmarket_pro", batch, Decimal("10"))
    assert set(stale.rows) == {"SO-5", "SO-6"}
    import_orders(store, acme.id, [order(5)])  # another job, between prepare and the write
    stats = orders.ImportStats()
    with write(store):
        failed = orders.upsert_each(store, acme.id, "backmarket_pro", batch, Decimal("10"), stats, stale)
    assert failed == [] and (stats.inserted, stats.updated, stats.unchanged) == (1, 0, 1)
    assert store.execute("SELECT COUNT(*) FROM orders WHERE source_order_id = 'SO-5'").fetchone()[0] == 1

    guessed_known = orders.prepare(store, acme.id, "backmarket_pro", [order(6)], None)
    assert guessed_known.rows == {}
    with write(store):
        store.execute(
            "DELETE FROM order_lines WHERE order_id IN (SELECT id FROM orders WHERE source_order_id = 'SO-6')"
        )
        store.execute("DELETE FROM orders WHERE source_order_id = 'SO-6'")
    again = orders.ImportStats()
    with write(store):
        orders.upsert_each(store, acme.id, "backmarket_pro", [order(6)], Decimal("10"), again, guessed_known)
    assert again.inserted == 1
    shown = orders.show_order(store, list(orders.list_orders(store, acme.id))[-1]["id"])
    assert (shown["source_order_id"], shown["commission"], len(shown["lines"])) == ("SO-6", "10.01", 1)


@pytest.mark.parametrize("newer_first", [False, True])
def test_of_two_copies_of_one_order_in_a_batch_the_newer_is_stored_whichever_comes_first(store, acme, newer_first):
    older, newer = order(8, price="10.00"), order(8, updated=T0 + timedelta(minutes=5), price="20.00")
    batch = [newer, older] if newer_first else [older, newer]
    prepared = orders.prepare(store, acme.id, "backmarket_pro", batch, None)
    stats = orders.ImportStats()
    with write(store):
        assert orders.upsert_each(store, acme.id, "backmarket_pro", batch, None, stats, prepared) == []
    assert stats.inserted == 1
    assert store.execute("SELECT grand_total FROM orders WHERE source_order_id = 'SO-8'").fetchall() == [("20.00",)]


def test_the_order_date_is_its_own_instant_even_where_a_zone_repeats_an_hour(store, acme):
    from zoneinfo import ZoneInfo

    paris = ZoneInfo("Europe/Paris")  # 2024-10-27 02:30 happens twice: 00:30Z, then 01:30Z
    created = datetime(2024, 10, 27, 2, 30, tzinfo=paris)
    updated = created.replace(fold=1)
    assert created == updated  # Python compares them as wall times: the host must not
    import_orders(store, acme.id, [order(9).model_copy(update={"created_at": created, "updated_at": updated})])
    stored = store.execute("SELECT order_date, channel_updated_at FROM orders WHERE source_order_id = 'SO-9'")
    assert tuple(stored.fetchone()) == ("2024-10-27T00:30:00.000000Z", "2024-10-27T01:30:00.000000Z")


def test_money_a_plugin_gives_with_an_exponent_is_stored_as_plain_digits(store, acme):
    # str(Decimal("1E+2")) is "1E+2": the host stores money as plain text whatever form it has
    hundred = order(3).model_copy(
        update={
            "subtotal": Decimal("1E+2"),
            "grand_total": Decimal("1.2E+2"),
            "lines": [OrderLine(source_line_id="L3", sku="SKU-3", title="t", quantity=1, unit_price=Decimal("5E+1"))],
        }
    )
    import_orders(store, acme.id, [hundred, order(4, price="7")])
    stored = {
        row[0]: row[1:]
        for row in store.execute(
            "SELECT o.source_order_id, o.subtotal, o.grand_total, o.commission, o.total_cost, l.unit_price "
            "FROM orders o JOIN order_lines l ON l.order_id = o.id"
        ).fetchall()
    }
    assert stored == {"SO-3": ("100", "120", "12.00", "132.00", "50"), "SO-4": ("7", "7", "0.70", "7.70", "3.5")}


def test_line_totals_and_discounts_are_stored_exactly_and_commission_is_of_the_channel_s_grand_total(store, acme):
    discounted = order(10).model_copy(
        update={
            "subtotal": Decimal("33.33"), "discount_total": Decimal("3.50"), "adjustment_total": Decimal("-0.25"),
            "grand_total": Decimal("29.58"),
            "lines": [
                OrderLine(source_line_id="L1", sku="CASE", title="t", quantity=3, line_total=Decimal("33.33"),
                          discount=Decimal("1.50")),
                OrderLine(source_line_id="L2", sku="CABLE", title="t", quantity=2, unit_price=Decimal("0.10")),
            ],
        }
    )  # fmt: skip
    import_orders(store, acme.id, [discounted, order(11)])
    rows = store.execute(
        "SELECT o.source_order_id, o.discount_total, o.adjustment_total, o.grand_total, o.commission, "
        "l.unit_price, l.line_total, l.discount FROM orders o JOIN order_lines l ON l.order_id = o.id "
        "ORDER BY o.id, l.id"
    ).fetchall()
    assert [tuple(row) for row in rows] == [
        # three units for 33.33: no unit price is made up by dividing (it would round)
        ("SO-10", "3.50", "-0.25", "29.58", "2.96", None, "33.33", "1.50"),
        ("SO-10", "3.50", "-0.25", "29.58", "2.96", "0.10", None, "0"),
        ("SO-11", "0", "0", "100.10", "10.01", "50.05", None, "0"),
    ]
    lines = orders.show_order(store, "SO-10")["lines"]
    assert [orders.line_amount(line) for line in lines] == ["33.33", "0.20"]


def test_an_unvalidated_line_without_any_price_is_refused_by_the_schema_and_the_others_import(store, acme):
    # built without validation, as a careless plugin might: the model would refuse it
    priceless = OrderLine.model_construct(source_line_id="L1", sku="S", title="t", quantity=1, unit_price=None,
                                          line_total=None, discount=Decimal("0"), tax=Decimal("0"))  # fmt: skip
    bad = order(12).model_copy(update={"lines": [priceless]})
    stats = orders.ImportStats()
    with write(store):
        failed = orders.upsert_each(store, acme.id, "backmarket_pro", [bad, order(13)], None, stats)
    assert [o.source_order_id for o, _ in failed] == ["SO-12"] and stats.inserted == 1


def test_one_order_per_company_channel_and_source_id(store, acme):
    import_orders(store, acme.id, [order(1)])
    with pytest.raises(Exception, match="(?i)unique"):
        with write(store):
            store.execute(
                "INSERT INTO orders (company_id, channel, source_order_id, payment_status, order_date, "
                "channel_updated_at, currency, subtotal, shipping_total, tax, grand_total, commission, total_cost, "
                "imported_at, updated_at) SELECT company_id, channel, source_order_id, payment_status, order_date, "
                "channel_updated_at, currency, subtotal, shipping_total, tax, grand_total, commission, total_cost, "
                "imported_at, updated_at FROM orders WHERE source_order_id = :sid",
                {"sid": "SO-1"},
            )
    assert store.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 1


def test_a_newer_copy_updates_the_channel_fields_but_keeps_the_staff_status(store, acme):
    import_orders(store, acme.id, [order(1)])
    order_id = next(iter(orders.list_orders(store, acme.id)))["id"]
    orders.set_status(store, order_id, "on hold")
    stats = import_orders(store, acme.id, [order(1, updated=T0 + timedelta(hours=1), cancelled=True)])
    assert stats.updated == 1 and stats.flagged_cancelled == ["SO-1"]
    shown = orders.show_order(store, order_id)
    assert shown["status"] == "On Hold" and shown["channel_cancelled"]
    older = import_orders(store, acme.id, [order(1, updated=T0)])
    assert older.unchanged == 1


def test_a_bad_order_in_a_batch_does_not_sink_the_others(store, acme):
    good, bad = order(1), order(2)
    bad.lines.append(bad.lines[0].model_copy())  # two lines with one id: the UNIQUE index refuses it
    stats = orders.ImportStats()
    with write(store):
        failed = orders.upsert_each(store, acme.id, "backmarket_pro", [good, bad, order(3)], None, stats)
    assert [o.source_order_id for o, _ in failed] == ["SO-2"]
    assert stats.inserted == 2
    assert sorted(r["source_order_id"] for r in orders.list_orders(store, acme.id)) == ["SO-1", "SO-3"]


def test_shipping_twice_ships_once_and_the_upload_result_is_recorded(store, acme):
    import_orders(store, acme.id, [order(1)])
    order_id = next(iter(orders.list_orders(store, acme.id)))["id"]
    shipped = orders.ship_order(store, order_id, carrier="UPS", tracking_number="1Z999AA10000000079", serials=["IMEI1"])
    assert shipped["shipping_status"] == "Fully Shipped" and shipped["status"] == "Completed"
    with pytest.raises(HostError, match="already Fully Shipped"):
        orders.ship_order(store, order_id, carrier="UPS", tracking_number="1Z999AA10000000088")
    due = orders.shipments_to_upload(store, acme.id)
    assert [s.tracking_number for s in due] == ["1Z999AA10000000079"]
    counts = orders.record_upload_results(store, [UploadResult(shipment_id=due[0].shipment_id, ok=True)])
    assert counts["accepted"] == 1
    assert orders.show_order(store, order_id)["source_updated_for_shipping"]
    assert orders.shipments_to_upload(store, acme.id) == []


# -- jobs --------------------------------------------------------------------------------------


def test_one_pending_job_per_company_and_kind(store, acme):
    first, created = jobs.enqueue(store, acme.id, "download_orders")
    again, created_again = jobs.enqueue(store, acme.id, "download_orders")
    assert created and not created_again and again.id == first.id
    other, created_other = jobs.enqueue(store, acme.id, "upload_tracking")
    assert created_other and other.id != first.id
    with pytest.raises(Exception, match="(?i)unique"):
        with write(store):
            store.execute(
                "INSERT INTO jobs (company_id, kind, run_after, created_at)"
                " VALUES (:company, 'download_orders', :now, :now)",
                {"company": acme.id, "now": clock.now_iso()},
            )


def test_claim_finish_cancel(store, acme):
    download, _ = jobs.enqueue(store, acme.id, "download_orders")
    test, _ = jobs.enqueue(store, acme.id, "test_settings")
    claimed = jobs.claim(store, "w1")
    assert claimed.id == test.id and claimed.status == "Processing" and claimed.attempts == 1
    jobs.finish(store, claimed, jobs.COMPLETED, {"ok": True})
    assert jobs.get_job(store, test.id).status == "Completed"
    assert jobs.cancel(store, download.id).status == "Cancelled"
    with pytest.raises(HostError, match="only a Queued job"):
        jobs.cancel(store, download.id)
    assert jobs.claim(store, "w1") is None
    shown = jobs.show_job(store, test.id)
    assert [line["message"] for line in shown["log"]][-1].startswith("Completed")


def test_a_replaced_worker_cannot_finish_the_job_of_its_replacement(store, acme):
    job, _ = jobs.enqueue(store, acme.id, "download_orders")
    mine = jobs.claim(store, "old")
    store.execute("UPDATE jobs SET heartbeat_at = :at WHERE id = :id", {"at": clock.now_iso(-1000), "id": job.id})
    theirs = jobs.claim(store, "new")
    assert theirs.id == job.id and theirs.attempts == 2
    jobs.finish(store, mine, jobs.FAILED, {"error": "late"})
    assert jobs.get_job(store, job.id).status == "Processing"
    assert jobs.retry_later(store, theirs, "busy", retry_after=0)
    assert jobs.get_job(store, job.id).status == "Queued"


def test_a_dead_local_worker_is_recovered(store, acme):
    job, _ = jobs.enqueue(store, acme.id, "download_orders")

    jobs.claim(store, f"{jobs.machine_id()}:999999999:1")
    assert jobs.recover_orphans(store) == [job.id]
    assert jobs.get_job(store, job.id).status == "Queued"


def test_a_worker_sharing_only_the_hostname_is_never_judged_by_pid(store, acme):
    """Containers with host networking, or cloned machines, share a hostname but not their pids:
    a pid that does not exist here may be a live worker there."""
    from pathlib import Path

    from host.jobs import runner

    # a worker names its machine by hostname, boot and pid namespace, and recovery judges by that
    assert runner.worker_id().startswith(jobs.machine_id() + ":")
    if Path("/proc/self/ns/pid").exists():
        assert jobs.machine_id().startswith(socket.gethostname() + "/")
    job, _ = jobs.enqueue(store, acme.id, "download_orders")
    jobs.claim(store, f"{socket.gethostname()}/0ther000:999999999:1")
    assert jobs.recover_orphans(store) == []
    assert jobs.get_job(store, job.id).status == "Processing"


def test_concurrent_claims_never_take_the_same_job(store, store_target):
    ids = [add_company(store, f"C{n}").id for n in range(20)]
    for company_id in ids:
        jobs.enqueue(store, company_id, "download_orders")
    claimed: list[int] = []
    lock = threading.Lock()

    def grab(n: int) -> None:
        own = connect(store_target, migrate=False)
        try:
            while (job := jobs.claim(own, f"w{n}")) is not None:
                with lock:
                    claimed.append(job.id)
        finally:
            own.close()

    threads = [threading.Thread(target=grab, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == 20


# -- cursors, audit log, users -------------------------------------------------------------------


def test_the_cursor_never_moves_back(store, acme):
    cursors.save_cursor(store, acme.id, "backmarket_pro", T0)
    cursors.save_cursor(store, acme.id, "backmarket_pro", T0 - timedelta(days=1))
    assert cursors.get_cursor(store, acme.id, "backmarket_pro") == T0
    cursors.save_cursor(store, acme.id, "backmarket_pro", T0 + timedelta(seconds=1))
    assert cursors.get_cursor(store, acme.id, "backmarket_pro") == T0 + timedelta(seconds=1)
    cursors.extend_coverage(store, acme.id, "backmarket_pro", T0)
    cursors.extend_coverage(store, acme.id, "backmarket_pro", T0 + timedelta(days=1))
    assert cursors.get_cursor(store, acme.id, "backmarket_pro", cursors.COVERED_FROM) == T0


def test_the_audit_log_lists_the_newest_first(store, acme):
    audit.record(store, "alice", "company added", company_id=acme.id, target="Acme", details={"50%": "?"})
    audit.record(store, "bob", "user added")
    entries = audit.entries(store)
    assert [e["actor"] for e in entries] == ["bob", "alice"]
    assert entries[1]["details"] == {"50%": "?"} and entries[1]["company"] == "Acme Refurb"
    assert [e["actor"] for e in audit.entries(store, company_id=acme.id)] == ["alice"]


def test_users_sign_in_by_name_in_any_case_and_are_throttled(store):
    added = users.add_user(store, "Alice", "admin", "correct horse battery")
    assert users.authenticate(store, "ALICE", "correct horse battery").id == added.id
    with pytest.raises(HostError):
        users.add_user(store, "alice", "support", "another password 1")
    for _ in range(users.MAX_FAILURES):
        assert users.authenticate(store, "alice", "wrong password!!") is None
    with pytest.raises(users.LoginThrottled):
        users.authenticate(store, "alice", "correct horse battery")
    assert [u["name"] for u in users.list_users(store)] == ["Alice"]


def test_job_params_and_summaries_round_trip_as_json(store, acme):
    job, _ = jobs.enqueue(store, acme.id, "import_orders", {"since": "2026-11-01T00:00:00Z"})
    assert jobs.get_job(store, job.id).params == {"since": "2026-11-01T00:00:00Z"}
    claimed = jobs.claim(store, "w")
    jobs.finish(store, claimed, jobs.PARTIAL, {"inserted": 3})
    row = store.execute("SELECT summary FROM jobs WHERE id = :id", {"id": job.id}).fetchone()
    assert json.loads(row[0]) == {"inserted": 3}


def test_concurrent_enqueues_of_one_kind_all_get_the_one_pending_job(store, store_target, acme):
    results: list[tuple[int, bool]] = []
    errors: list[Exception] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def ask() -> None:
        own = connect(store_target, migrate=False)
        try:
            start.wait()
            for _ in range(10):
                job, created = jobs.enqueue(own, acme.id, "download_orders")
                with lock:
                    results.append((job.id, created))
        except Exception as exc:  # collected: an error in a thread must fail the test
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len({job_id for job_id, _ in results}) == 1 and sum(created for _, created in results) == 1


def test_a_job_run_at_once_is_queued_and_claimed_in_one_transaction(store, acme):
    """Test Settings and import-orders --wait: no other worker can take the row in between, so
    the caller never reports its own new job as "already running"."""
    seen_queued: list[str] = []
    other = connect(db_module.target_of(store), migrate=False)
    try:
        job, created, claimed = jobs.enqueue_and_claim(store, acme.id, "test_settings", "caller:1:1")
        seen_queued = [r[0] for r in other.execute("SELECT status FROM jobs WHERE id = :id", {"id": job.id}).fetchall()]
        again, created_again, claimed_again = jobs.enqueue_and_claim(store, acme.id, "test_settings", "late:2:2")
    finally:
        other.close()
    assert created and claimed is not None and claimed.id == job.id and claimed.claimed_by == "caller:1:1"
    assert seen_queued == ["Processing"]  # committed already claimed: never visible as Queued
    assert again.id == job.id and not created_again and claimed_again is None
