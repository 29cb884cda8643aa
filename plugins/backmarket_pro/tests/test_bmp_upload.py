"""Tracking upload against a live sandbox: one result per shipment, repeats are success."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import requests
from bmp_helpers import unfulfilled

from backmarket_pro import plugin
from backmarket_pro.sandbox import Sandbox
from backmarket_pro.settings import BackMarketProSettings
from plugin_spec import Shipment, ShipmentLine


def shipment_for(order: dict, shipment_id: int, tracking: str, *, with_lines: bool = True) -> Shipment:
    lines = [
        ShipmentLine(
            source_line_id=line["id"],
            sku=line["sku"],
            quantity=line["quantity"],
            serial_numbers=[f"35{shipment_id:05d}{i:08d}" for i in range(min(line["quantity"], 2))],
        )
        for line in order["line_items"]
    ]
    return Shipment(
        shipment_id=shipment_id,
        source_order_id=order["id"],
        carrier="DHL Express",
        tracking_number=tracking,
        tracking_url=f"https://www.dhl.com/track?id={tracking}",
        shipped_at=datetime(2024, 3, 6, 9, 0, tzinfo=UTC),
        lines=lines if with_lines else [],
    )


def open_orders(sandbox: Sandbox) -> list[dict]:
    return [o for o in unfulfilled(sandbox) if not o["cancelled"]]


def by_id(sandbox: Sandbox) -> dict[str, dict]:
    return {o["id"]: o for o in sandbox.orders()}


def upload(settings: BackMarketProSettings, shipments: list[Shipment]):
    return plugin.cartplugin_upload_tracking(settings=settings, shipments=shipments)


def test_tracking_is_posted_and_visible_in_the_sandbox(sandbox: Sandbox, settings: BackMarketProSettings) -> None:
    first, second = open_orders(sandbox)[:2]
    results = upload(
        settings, [shipment_for(first, 11, "JD0001"), shipment_for(second, 12, "1Z0002", with_lines=False)]
    )
    assert [(r.shipment_id, r.ok, r.already_recorded) for r in results] == [(11, True, False), (12, True, False)]

    seen = requests.get(f"{sandbox.control_url}/orders", timeout=5).json()["orders"]
    by_id = {o["id"]: o for o in seen}
    shipped = by_id[first["id"]]
    assert shipped["fulfillment_status"] == "fulfilled"
    assert [(s["tracking_number"], s["carrier"], s["tracking_url"]) for s in shipped["shipments"]] == [
        ("JD0001", "DHL Express", "https://www.dhl.com/track?id=JD0001")
    ]
    assert shipped["shipments"][0]["lines"][0]["serial_numbers"]
    assert by_id[second["id"]]["fulfillment_status"] == "fulfilled"


def test_repeated_post_is_already_recorded(sandbox: Sandbox, settings: BackMarketProSettings) -> None:
    order = open_orders(sandbox)[0]
    assert upload(settings, [shipment_for(order, 1, "JD0001")])[0].ok
    again = upload(settings, [shipment_for(order, 2, "JD 0001")])  # spacing differs, same tracking
    assert [(r.shipment_id, r.ok, r.already_recorded) for r in again] == [(2, True, True)]
    assert [e["status"] for e in sandbox.request_log()] == [201, 409]
    assert len(by_id(sandbox)[order["id"]]["shipments"]) == 1


def test_one_failure_never_stops_the_others(sandbox: Sandbox, settings: BackMarketProSettings) -> None:
    good, other = open_orders(sandbox)[:2]
    cancelled = next(o for o in sandbox.orders() if o["cancelled"] and not o["shipments"])
    shipments = [
        shipment_for(good, 1, "T-1"),
        shipment_for({**good, "id": "BMP-NOPE"}, 2, "T-2"),
        shipment_for(cancelled, 3, "T-3"),
        shipment_for(other, 4, "T-4"),
    ]
    results = upload(settings, shipments)
    assert [r.shipment_id for r in results] == [1, 2, 3, 4]
    assert [(r.ok, r.retryable) for r in results] == [(True, False), (False, False), (False, False), (True, False)]
    assert "HTTP 404" in results[1].message and "No order BMP-NOPE" in results[1].message
    assert "HTTP 422" in results[2].message and "cancelled" in results[2].message


def test_transient_failure_is_retryable(sandbox: Sandbox, settings: BackMarketProSettings) -> None:
    order = open_orders(sandbox)[0]
    sandbox.set_faults(fail_5xx=True)
    [result] = upload(settings, [shipment_for(order, 5, "T-5")])
    assert (result.ok, result.retryable) == (False, True)
    assert "503" in result.message


def test_burst_and_rate_limit_on_post_are_retried(sandbox: Sandbox, settings: BackMarketProSettings) -> None:
    first, second = open_orders(sandbox)[:2]
    sandbox.set_faults(fail_5xx=1, rate_limit=1, rate_window=1.0)
    results = upload(settings, [shipment_for(first, 1, "T-1"), shipment_for(second, 2, "T-2")])
    assert all(r.ok and not r.already_recorded for r in results)
    assert [e["status"] for e in sandbox.request_log()] == [503, 201, 429, 201]


def test_post_that_timed_out_is_not_recorded_twice(sandbox: Sandbox, settings: BackMarketProSettings) -> None:
    order = open_orders(sandbox)[0]
    # the first attempt is answered only after the client's read timeout; the client posts again
    sandbox.set_faults(slow=1, slow_seconds=0.9)
    [result] = upload(settings, [shipment_for(order, 7, "T-7")])
    assert result.ok
    time.sleep(0.6)  # let the slow first attempt finish on the server
    assert len(by_id(sandbox)[order["id"]]["shipments"]) == 1
    assert sorted(e["status"] for e in sandbox.request_log()) == [201, 409]


def test_wrong_key_fails_every_shipment_with_one_call(sandbox: Sandbox) -> None:
    wrong = BackMarketProSettings(website_url=sandbox.base_url, x_api_key="wrong-key-0000000")
    first, second = open_orders(sandbox)[:2]
    results = upload(wrong, [shipment_for(first, 1, "T-1"), shipment_for(second, 2, "T-2")])
    assert [(r.shipment_id, r.ok) for r in results] == [(1, False), (2, False)]
    assert all("x-api-key" in r.message and "wrong-key-0000000" not in r.message for r in results)
    assert len(sandbox.request_log()) == 1


def test_a_2xx_with_a_cut_off_body_still_counts_as_recorded(sandbox: Sandbox, settings: BackMarketProSettings) -> None:
    order = open_orders(sandbox)[0]
    sandbox.set_faults(malformed_body=1)  # the next answer, the 201 of the POST, is cut off
    (result,) = upload(settings, [shipment_for(order, 1, "CUT0001")])
    assert result.ok and not result.already_recorded, result.message
    assert [s["tracking_number"] for s in by_id(sandbox)[order["id"]]["shipments"]] == ["CUT0001"]
