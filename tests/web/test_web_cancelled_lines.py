"""The order page of an order the channel cancelled in part or in whole (the Back Market Pro
sandbox, the real web admin over HTTP): a cancelled line is struck through and not offered by
Ship Items; shipping a cancelled order needs the box ticked, and the Change Log says who did."""

from __future__ import annotations

import re

from support import db_digest
from web_support import signed_in

from host.records import audit
from host.records.orders import CONFIRMED_ACTION
from host.store.db import connect

UPS = "1Z999AA10123456784"  # a tracking number UPS would issue


def _order(run, sandbox, *, cancel: str) -> tuple[dict, dict]:
    """Import a two-line order after cancelling one of its lines (``cancel="line"``) or the
    whole order (``"order"``) on the channel: (the host's order, the channel's)."""
    target = next(
        o for o in sandbox.orders()
        if o["fulfillment_status"] == "unfulfilled" and not o["cancelled"] and len(o["line_items"]) == 2
    )  # fmt: skip
    if cancel == "line":
        sandbox.cancel_line(target["id"], target["line_items"][0]["id"])
    else:
        sandbox.cancel_order(target["id"])
    run("import-orders", "Acme Refurb")
    (row,) = [o for o in run.json("orders", "list") if o["source_order_id"] == target["id"]]
    return run.json("orders", "show", str(row["id"])), target


def _row(page: str, sku: str) -> str:
    rows = [row for row in re.findall(r"<tr[^>]*>.*?</tr>", page, re.S) if f"<td>{sku}</td>" in row]
    assert len(rows) == 1, rows
    return rows[0]


def test_a_cancelled_line_is_struck_through_and_ship_items_does_not_offer_it(web, run, company, sandbox):
    order, target = _order(run, sandbox, cancel="line")
    gone, kept = order["lines"]
    assert gone["channel_cancelled"] and not kept["channel_cancelled"]
    http, token = signed_in(web, "walt")
    page = http.get(f"{web.url}/orders/{order['id']}", timeout=10).text
    assert 'class="cancelled-line"' in _row(page, gone["sku"]) and "Cancelled on the channel" in _row(page, gone["sku"])
    assert "cancelled-line" not in _row(page, kept["sku"]) and "Cancelled on the channel" not in _row(page, kept["sku"])
    assert f'name="serial_{gone["id"]}"' not in page and f'name="serial_{kept["id"]}"' in page
    assert 'id="confirm-cancelled"' not in page  # the order itself stands: nothing to confirm
    shipped = http.post(
        f"{web.url}/orders/{order['id']}/ship",
        data={"csrf_token": token, "carrier": "UPS", "tracking_number": UPS, f"serial_{kept['id']}": "356789012345678",
              f"serial_{gone['id']}": "356789012345679"},  # a box the form never offered is ignored
        timeout=10,
    )  # fmt: skip
    assert "is Fully Shipped" in shipped.text
    after = run.json("orders", "show", str(order["id"]))
    assert after["shipping_status"] == "Fully Shipped"
    assert [(sl["order_line_id"], sl["serial_numbers"]) for sl in after["shipments"][0]["lines"]] == [
        (kept["id"], ["356789012345678"])
    ]
    assert [line["quantity_shipped"] for line in after["lines"]] == [0, kept["quantity"]]


def test_an_order_cancelled_on_the_channel_ships_only_with_the_box_ticked_and_the_change_log_says_who(
    web, run, company, sandbox, db_target
):
    order, _ = _order(run, sandbox, cancel="order")
    http, token = signed_in(web, "walt")
    page = http.get(f"{web.url}/orders/{order['id']}", timeout=10).text
    assert 'id="confirm-cancelled"' in page and "The channel cancelled this order" in page
    assert all(f'name="serial_{line["id"]}"' in page for line in order["lines"])  # it ships whole, once confirmed
    form = {"csrf_token": token, "carrier": "UPS", "tracking_number": UPS}
    before = db_digest(db_target)
    refused = http.post(f"{web.url}/orders/{order['id']}/ship", data=form, timeout=10)
    assert refused.status_code == 422
    (error,) = re.findall(r'<p class="error" role="alert">([^<]*)</p>', refused.text.split('class="ship"')[1])
    assert "was cancelled on the channel" in error and "tick Ship it anyway" in error
    assert "--confirm-cancelled" not in refused.text and "cartplugin" not in error  # staff words, not a command
    assert db_digest(db_target) == before
    shipped = http.post(f"{web.url}/orders/{order['id']}/ship", data={**form, "confirm_cancelled": "y"}, timeout=10)
    assert shipped.status_code == 200 and "is Fully Shipped" in shipped.text
    after = run.json("orders", "show", str(order["id"]))
    assert [s["tracking_number"] for s in after["shipments"]] == [UPS]
    (entry,) = [e for e in audit.entries(connect(db_target)) if e["action"] == CONFIRMED_ACTION]
    assert entry["actor"] == "walt" and entry["details"]["confirmed by"] == "walt"
    assert entry["target"] == f"order {order['source_order_id']}"
    ann, _ = signed_in(web, "ann")  # an admin reads it in the Change Log, in words
    log = ann.get(f"{web.url}/audit", timeout=10).text
    assert CONFIRMED_ACTION in log and "Cancelled on the channel: the order" in log and "Confirmed by: walt" in log
    assert f"Tracking Number: {UPS}" in log and "True" not in log.split(CONFIRMED_ACTION)[1].split("</tr>")[0]


def test_an_order_whose_unshipped_lines_were_all_cancelled_says_so_instead_of_offering_ship_items(
    web, run, company, db_target
):
    # a plugin that flags every line but not the order (the contract asks for both; the page
    # still says what is going on)
    from datetime import UTC, datetime
    from decimal import Decimal

    from host.records import orders
    from host.records.companies import get_company
    from host.store.db import write
    from plugin_spec import ChannelOrder, OrderLine

    now = datetime.now(UTC)
    lines = [OrderLine(source_line_id=f"L{i}", sku=f"SKU-{i}", title="Phone", quantity=1, unit_price=Decimal("9.00"),
                       channel_cancelled=True) for i in (1, 2)]  # fmt: skip
    db = connect(db_target)
    with write(db):
        orders.upsert_each(
            db, get_company(db, "Acme Refurb").id, "backmarket_pro",
            [ChannelOrder(source_order_id="SO-GONE", created_at=now, updated_at=now, currency="EUR",
                          subtotal=Decimal("18.00"), tax_total=Decimal("0"), grand_total=Decimal("18.00"),
                          lines=lines)],
            None, orders.ImportStats(),
        )  # fmt: skip
    order_id = db.execute("SELECT id FROM orders WHERE source_order_id = 'SO-GONE'").fetchone()[0]
    http, _ = signed_in(web, "walt")
    page = http.get(f"{web.url}/orders/{order_id}", timeout=10).text
    assert 'id="nothing-to-ship"' in page and 'class="ship"' not in page
    assert page.count('class="cancelled-line"') == 2
