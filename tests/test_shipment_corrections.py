"""Shipments staff correct (Void Shipment, Update Tracking, Retry) and refusals that wait for staff,
through the real CLI, a real SQLite file and the Back Market Pro sandbox over HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from support import API_KEY, db_digest, ups_tracking

from host import clock
from host.store.db import connect


@pytest.fixture
def imported(run, company):
    job = run.json("import-orders", company)
    assert job["status"] == "Completed", job
    return run.json("orders", "list")


def _posts(sandbox):
    return [r for r in sandbox.request_log() if r["method"] == "POST" and "/shipments" in r["path"]]


def _change_log(db_target, action):
    return list(
        connect(db_target).query("SELECT * FROM audit_log WHERE action = :action ORDER BY id", {"action": action})
    )


def test_a_refused_upload_waits_for_staff_and_queues_no_job_over_ten_worker_rounds(
    run, imported, sandbox, db_target, monkeypatch
):
    order = imported[0]
    sandbox.cancel_order(order["source_order_id"])  # the channel will refuse its tracking (422)
    run("orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", ups_tracking(1))
    run("worker", "--once", "--processes", "1")
    shown = run.json("orders", "show", str(order["id"]))
    assert shown["shipments"][0]["upload_state"] == "failed" and "422" in shown["shipments"][0]["upload_message"]
    sandbox.clear_request_log()
    real_now, days = clock.now, [0]
    monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(days=days[0]))
    for _ in range(10):  # a day apart: any pause a retry schedule could take is over each time
        days[0] += 1
        run("worker", "--once", "--processes", "1")
    uploads = [j for j in run.json("jobs", "list") if j["kind"] == "upload_tracking"]
    assert len(uploads) == 1  # the first one only: none created while the refusal waits for staff
    assert _posts(sandbox) == []
    assert run.json("orders", "show", str(order["id"]))["shipments"][0]["upload_state"] == "failed"


def test_retry_sends_a_refused_upload_on_the_next_round_and_is_in_the_change_log(run, imported, sandbox, db_target):
    order = imported[0]
    sandbox.cancel_order(order["source_order_id"])
    run("orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", ups_tracking(2))
    run("worker", "--once", "--processes", "1")
    sandbox.edit_order(order["source_order_id"], cancelled=False)  # sorted out with the channel
    result = run("orders", "retry-upload", str(order["id"]))
    assert "uploaded on the next round" in result.output
    run("worker", "--once", "--processes", "1")
    shown = run.json("orders", "show", str(order["id"]))
    assert shown["shipments"][0]["upload_state"] == "accepted" and shown["source_updated_for_shipping"] is True
    assert len(_posts(sandbox)) == 2
    (entry,) = _change_log(db_target, "tracking upload retried")
    assert "422" in entry["details"] and entry["target"] == f"order {order['source_order_id']}"


def test_retry_of_an_upload_that_was_not_refused_is_one_line_and_changes_nothing(run, imported, db_target):
    order = imported[0]
    run("orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", ups_tracking(3))
    before = db_digest(db_target)
    result = run("orders", "retry-upload", str(order["id"]), ok=False)
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "no shipment to retry" in result.output
    assert db_digest(db_target) == before


def test_void_before_upload_unships_the_order_and_writes_the_change_log(run, imported, sandbox, db_target):
    order = imported[0]
    run("orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", ups_tracking(4))
    shipped = run.json("orders", "show", str(order["id"]))
    assert shipped["shipping_status"] == "Fully Shipped" and shipped["status"] == "Completed"
    result = run("orders", "void-shipment", str(order["id"]))
    assert "Unshipped" in result.output
    shown = run.json("orders", "show", str(order["id"]))
    assert shown["shipments"] == [] and shown["shipping_status"] == "Unshipped" and shown["status"] == "In Process"
    assert all(line["quantity_shipped"] == 0 for line in shown["lines"])
    (entry,) = _change_log(db_target, "shipment voided")
    assert ups_tracking(4) in entry["details"] and "Fully Shipped -> Unshipped" in entry["details"]
    sandbox.clear_request_log()
    run("worker", "--once", "--processes", "1")
    assert _posts(sandbox) == []  # nothing left to upload
    run("orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", ups_tracking(5))  # shipped again
    assert run.json("orders", "show", str(order["id"]))["shipping_status"] == "Fully Shipped"


def test_void_after_upload_is_refused_with_the_portal_and_changes_nothing(run, imported, db_target):
    order = imported[0]
    run("orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", ups_tracking(6))
    run("worker", "--once", "--processes", "1")
    before = db_digest(db_target)
    result = run("orders", "void-shipment", str(order["id"]), ok=False)
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert "no shipment to void" in result.output
    shipment_id = run.json("orders", "show", str(order["id"]))["shipments"][0]["id"]
    result = run("orders", "void-shipment", str(order["id"]), "--shipment", str(shipment_id), ok=False)
    assert "cannot be voided" in result.output and "channel's portal" in result.output
    assert db_digest(db_target) == before


def test_update_tracking_on_back_market_pro_points_to_the_portal_and_changes_nothing(run, imported, db_target):
    # Back Market's seller API: a shipped orderline (state 3) may only become refunded (6);
    # tracking, IMEI and serial "cannot be corrected" once registered
    order = imported[0]
    run("orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", ups_tracking(7))
    run("worker", "--once", "--processes", "1")
    before = db_digest(db_target)
    result = run("orders", "update-tracking", str(order["id"]), "--tracking", ups_tracking(8), ok=False)
    assert result.exit_code == 1 and "change it in the channel's portal" in result.output
    assert API_KEY not in result.output
    assert db_digest(db_target) == before


@pytest.mark.parametrize(
    "carrier,number,why",
    [
        ("UPS", "1Z999AA10123456785", "not a UPS tracking number"),  # check digit off by one
        ("UPS", "<b>x</b>", "without < > &"),
        ("Other", "<b>x</b>", "without < > &"),
        ("Colissimo", "1Z999AA10123456784", "not a Colissimo tracking number"),
        ("DHL Express", "12345", "not a DHL tracking number"),
        ("Other", "X" * 41, "longer than 40"),
    ],
)
def test_a_tracking_number_a_carrier_would_not_issue_is_refused_and_nothing_is_shipped(
    run, imported, db_target, carrier, number, why
):
    order = imported[0]
    before = db_digest(db_target)
    result = run("orders", "ship", str(order["id"]), "--carrier", carrier, "--tracking", number, ok=False)
    assert result.exit_code == 1 and result.output.count("\n") == 1 and why in result.output, result.output
    assert db_digest(db_target) == before


@pytest.mark.parametrize(
    "carrier,number",
    [
        ("UPS", "1Z999AA10123456784"),
        ("UPS", "1z 999 aa1 0123 4567 84"),  # as printed on a label
        ("USPS", "9400111899223197428490"),
        ("USPS", "EC123456785US"),
        ("FedEx", "123456789012"),
        ("DHL Express", "1234567890"),
        ("DHL", "JJD0001234567890"),
        ("Colissimo", "6A12345678901"),
        ("Colissimo", "CB123456785FR"),
        ("Other", "ANY-clean text 42"),
        ("Cubyn", "whatever-they-issue"),  # a carrier with no known format: clean text
    ],
)
def test_tracking_numbers_carriers_issue_are_accepted(carrier, number):
    from plugin_spec.tracking import tracking_problem

    assert tracking_problem(carrier, number) is None
