"""Website General's other options, end to end: the CLI on a real SQLite file, the host's gate
and the Back Market Pro and Back Market sandboxes on 127.0.0.1."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from support import db_digest, registered

import backmarket.plugin
from backmarket.client import ClientOptions
from backmarket.sandbox import Sandbox as BmSandbox
from host import clock
from host.channel import cursors

BM_TOKEN = "Ym0td2Vic2l0ZS1vcHRpb25zLXRva2VuLTk5"


def _recent(sandbox, fulfillment: str) -> set[str]:
    since = datetime.now(UTC) - timedelta(days=cursors.recent_days())
    return {
        o["id"]
        for o in sandbox.orders()
        if o["fulfillment_status"] == fulfillment and datetime.fromisoformat(o["updated_at"]) >= since
    }


def _imported(run) -> dict[str, dict]:
    return {o["source_order_id"]: o for o in run.json("orders", "list")}


# -- the settings in the CLI -----------------------------------------------------------------------


def test_the_options_are_off_by_default_and_each_is_set_and_shown_by_the_cli(run, company):
    from host.records import website_options

    shown = run.json("website-settings", company)
    assert {key: shown[key] for key in website_options.FLAGS} == dict.fromkeys(website_options.FLAGS, False)
    assert shown["order_download_limit_date"] is None and shown["delay_min_hours"] == 0
    changed = run.json(
        "website-settings", company, "--allow-download-shipped", "--allow-unpaid-orders", "--order-download-limit",
        "--order-download-limit-date", "2026-01-15", "--delay-tracking", "--min-hours-to-wait", "24",
        "--skip-saturday", "--skip-sunday",
    )  # fmt: skip
    assert {key: changed[key] for key in website_options.FLAGS} == dict.fromkeys(website_options.FLAGS, True)
    assert changed["order_download_limit_date"] == "2026-01-15" and changed["delay_min_hours"] == 24
    text = run("website-settings", company).stdout
    assert "Allow Download Shipped Orders: on" in text and "Order Download Limit Date: 2026-01-15" in text
    assert "Min Hours to Wait: 24" in text and "Skip on Sunday: on" in text
    # the connection stays established: these options say nothing about the account
    assert run.json("website-settings", company)["connection_status"] == "established"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--order-download-limit-date", "15/01/2026"), "Order Download Limit Date must be a date written YYYY-MM-DD"),
        (("--min-hours-to-wait", "-3"), "Min Hours to Wait must be a whole number of hours from 0 to 720"),
        (("--min-hours-to-wait", "1e3"), "Min Hours to Wait must be a whole number"),
        (("--order-download-limit",), "Enable Order Download Limit needs an Order Download Limit Date"),
    ],
)
def test_a_bad_option_is_one_readable_line_and_changes_nothing(run, company, db_target, args, words):
    before = db_digest(db_target)
    result = run("website-settings", company, "--allow-unpaid-orders", *args, ok=False)
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and words in result.output and "Traceback" not in result.output
    assert db_digest(db_target) == before


# -- Allow Download Shipped Orders -----------------------------------------------------------------


def test_shipped_orders_are_imported_only_with_allow_download_shipped_then_marked_shipped(run, company, sandbox):
    shipped = _recent(sandbox, "fulfilled")
    assert shipped, "the sandbox should hold orders shipped on the channel"
    assert run.json("import-orders", company)["status"] == "Completed"
    assert not shipped & set(_imported(run))

    run("website-settings", company, "--allow-download-shipped")
    job = run.json("import-orders", company)  # the window is read again: those orders lie behind the cursor
    assert job["status"] == "Completed" and job["summary"]["inserted"] == len(shipped), job
    imported = _imported(run)
    assert shipped <= set(imported)
    for source_id in shipped:
        order = imported[source_id]
        assert (order["shipping_status"], order["source_updated_for_shipping"], order["status"]) == (
            "Fully Shipped", True, "Completed",
        )  # fmt: skip
    # the channel has their tracking already: nothing is sent
    sandbox.clear_request_log()
    run("worker", "--once")
    assert [r for r in sandbox.request_log() if r["method"] == "POST"] == []


# -- Allow Unpaid Orders (the Back Market channel says which orders are unpaid) --------------------


@pytest.fixture
def bm(run, monkeypatch):
    """A Back Market company on the Back Market sandbox, connection established."""
    monkeypatch.setattr(backmarket.plugin, "client_options", ClientOptions(retries=0, page_size=5))
    with registered(backmarket.plugin, "backmarket"), BmSandbox(token=BM_TOKEN, orders=8, seed=4) as server:
        run("companies", "add", "BM Co")
        run("website-settings", "BM Co", "--store-plugin", "backmarket", "--allow-order-download")
        run("cart-settings", "BM Co", "--set", f"api_url={server.base_url}", "--set", f"token={BM_TOKEN}",
            "--set", "country_code=fr-fr", "--set", "company_name=RefurbBoutique",
            "--set", "contact_email=ops@refurb.example")  # fmt: skip
        run("test-settings", "BM Co")
        yield server


def test_unpaid_orders_are_skipped_and_counted_then_imported_with_their_status_once_allowed(run, bm):
    unpaid = set(bm.add_orders(2, state=10))  # the buyer still has time to pay
    job = run.json("import-orders", "BM Co")
    assert job["status"] == "Completed" and job["summary"]["skipped_unpaid"] == 2, job
    assert not unpaid & set(_imported(run))
    shown = run.json("jobs", "show", str(job["id"]))
    assert any("2 order(s) not imported: unpaid on the channel" in line["message"] for line in shown["log"])

    # the automatic download goes on from the cursor, past them, and skips them again if it sees them
    run("worker", "--once", "--download-every", "0")
    assert not unpaid & set(_imported(run))

    run("website-settings", "BM Co", "--allow-unpaid-orders")
    job = run.json("import-orders", "BM Co")
    assert job["summary"]["inserted"] == 2 and not job["summary"].get("skipped_unpaid"), job
    imported = _imported(run)
    assert {imported[i]["payment_status"] for i in unpaid} == {"No Payment"}
    paid = [o for sid, o in imported.items() if sid not in unpaid]
    assert paid and {o["payment_status"] for o in paid} == {"Fully Charged"}


def test_an_order_imported_earlier_keeps_receiving_the_channel_s_changes_whatever_the_options(run, bm):
    job = run.json("import-orders", "BM Co")
    first = next(iter(_imported(run)))
    bm.cancel_order(first)
    run("website-settings", "BM Co", "--order-download-limit", "--order-download-limit-date", "2199-01-01")
    run("worker", "--once", "--download-every", "0")
    assert job["status"] == "Completed"
    assert [o["source_order_id"] for o in run.json("orders", "list", "--needs-attention")] == [first]


# -- Order Download Limit ----------------------------------------------------------------------------


def test_orders_created_before_the_limit_date_are_not_imported_until_the_limit_is_lifted(run, company, sandbox):
    recent = _recent(sandbox, "unfulfilled")
    created = {o["id"]: datetime.fromisoformat(o["created_at"]) for o in sandbox.orders() if o["id"] in recent}
    pivot = sorted(created.values())[len(created) // 2]
    limit = (pivot + timedelta(days=1)).date()
    after = {sid for sid, at in created.items() if at >= datetime(limit.year, limit.month, limit.day, tzinfo=UTC)}
    assert after and after != recent, "the pivot should split the orders"
    run("website-settings", company, "--order-download-limit", "--order-download-limit-date", limit.isoformat())
    job = run.json("import-orders", company)
    assert set(_imported(run)) == after
    assert job["summary"]["skipped_before_limit"] == len(recent - after), job

    run("website-settings", company, "--no-order-download-limit")
    run.json("import-orders", company)
    assert set(_imported(run)) == recent


# -- Delayed tracking upload -------------------------------------------------------------------------


def test_upload_due_counts_only_the_days_not_skipped():
    from host.records import website_options

    settings = {"delay_tracking": True, "delay_min_hours": 10, "delay_skip_saturday": True, "delay_skip_sunday": True}
    friday_evening = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)  # a Friday
    assert website_options.upload_due(friday_evening, settings) == datetime(2026, 12, 7, 6, 0, tzinfo=UTC)
    saturday = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
    assert website_options.upload_due(saturday, {**settings, "delay_min_hours": 0}) == datetime(
        2026, 12, 7, 0, 0, tzinfo=UTC
    )
    sunday_only = {**settings, "delay_skip_saturday": False}
    assert website_options.upload_due(saturday, sunday_only) == datetime(2026, 12, 5, 19, 0, tzinfo=UTC)
    assert website_options.upload_due(saturday, {**settings, "delay_tracking": False}) == saturday


def test_tracking_is_sent_only_after_the_delay_with_the_weekend_skipped_and_no_busy_retry(
    run, company, sandbox, db_target, monkeypatch
):
    run("website-settings", company, "--delay-tracking", "--min-hours-to-wait", "4", "--skip-saturday",
        "--skip-sunday")  # fmt: skip
    run.json("import-orders", company)
    order = next(iter(_imported(run).values()))
    # a past week: the host's clock is faked, PostgreSQL's is not, and the cluster engine
    # starts a task once the database's clock has reached its run_after
    friday = datetime(2025, 12, 5, 22, 0, tzinfo=UTC)  # 2 hours left on Friday, then the weekend
    monkeypatch.setattr(clock, "now", lambda: friday)
    run("orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", "1Z999AA10123456784")

    def posts() -> list:
        return [r for r in sandbox.request_log() if r["method"] == "POST"]

    def uploads() -> int:
        return sum(1 for j in run.json("jobs", "list") if j["kind"] == "upload_tracking")

    sandbox.clear_request_log()
    run("worker", "--once")
    assert posts() == []
    held = run.json("orders", "show", str(order["id"]))
    assert held["source_updated_for_shipping"] is False
    job = next(j for j in run.json("jobs", "list") if j["kind"] == "upload_tracking")
    assert job["summary"]["delayed"] == 1 and uploads() == 1, job

    # Saturday and Sunday: not due, so no upload job is even queued (no busy retry)
    for at in (datetime(2025, 12, 6, 12, 0, tzinfo=UTC), datetime(2025, 12, 7, 23, 0, tzinfo=UTC)):
        monkeypatch.setattr(clock, "now", lambda at=at: at)
        run("worker", "--once")
        assert uploads() == 1 and posts() == []
    # Monday 01:59: 2 of the 4 hours were Friday's, so it is due at 02:00
    monkeypatch.setattr(clock, "now", lambda: datetime(2025, 12, 8, 1, 59, tzinfo=UTC))
    run("worker", "--once")
    assert posts() == []
    monkeypatch.setattr(clock, "now", lambda: datetime(2025, 12, 8, 2, 0, 1, tzinfo=UTC))
    run("worker", "--once")
    assert len(posts()) == 1
    assert run.json("orders", "show", str(order["id"]))["source_updated_for_shipping"] is True
