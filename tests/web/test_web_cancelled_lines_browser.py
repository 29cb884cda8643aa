"""In Chromium: a line cancelled on the channel is struck through on the order page and Ship Items
leaves it out; an order the channel cancelled is refused until "Ship it anyway" is ticked
(screenshots 23 and 24 of the support guide)."""

from __future__ import annotations

from web_support import SHOTS, Walk

from host.records import audit
from host.records.orders import CONFIRMED_ACTION
from host.store.db import connect

UPS_1, UPS_2 = "1Z999AA10123456784", "1Z12345E6605272234"  # tracking numbers UPS would issue


def _two_line_orders(sandbox) -> list[dict]:
    return [
        o for o in sandbox.orders()
        if o["fulfillment_status"] == "unfulfilled" and not o["cancelled"] and len(o["line_items"]) == 2
    ]  # fmt: skip


def test_a_cancelled_line_and_a_cancelled_order_in_a_real_browser(browser, web, run, company, sandbox, db_target):
    part, whole = _two_line_orders(sandbox)[:2]
    gone = part["line_items"][0]
    sandbox.cancel_line(part["id"], gone["id"])
    sandbox.cancel_order(whole["id"])
    run("import-orders", company)
    ids = {o["source_order_id"]: o["id"] for o in run.json("orders", "list")}

    walk = Walk(browser, web)
    walk.sign_in("walt")
    walk.go(f"/orders/{ids[part['id']]}")
    row = walk.page.locator("tr.cancelled-line")
    assert row.count() == 1 and gone["sku"] in row.inner_text() and "Cancelled on the channel" in row.inner_text()
    style = row.locator("td").first.evaluate("cell => getComputedStyle(cell).textDecorationLine")
    assert style == "line-through"
    kept = walk.page.locator("tr:not(.cancelled-line)", has_text=part["line_items"][1]["sku"])
    assert kept.locator("td").first.evaluate("cell => getComputedStyle(cell).textDecorationLine") == "none"
    assert walk.page.locator("form.ship label", has_text=gone["sku"]).count() == 0  # no serial box for it
    walk.page.select_option("#carrier", "UPS")
    walk.page.fill("#tracking_number", UPS_1)
    walk.page.locator("h2:has-text('Items')").scroll_into_view_if_needed()
    walk.shot("23-cancelled-line")
    walk.page.click("form.ship button[type=submit]")
    walk.page.wait_for_url(f"**/orders/{ids[part['id']]}")
    assert "is Fully Shipped" in walk.text(".flash")
    assert walk.text("#shipping-status") == "Fully Shipped"

    walk.go(f"/orders/{ids[whole['id']]}")
    walk.page.select_option("#carrier", "UPS")
    walk.page.fill("#tracking_number", UPS_2)
    walk.page.click("form.ship button[type=submit]")
    alert = walk.page.locator("form.ship p.error[role=alert]")
    assert "was cancelled on the channel" in alert.inner_text() and "tick Ship it anyway" in alert.inner_text()
    assert walk.text("#shipping-status") == "Unshipped"
    walk.page.check("#confirm-cancelled input[name=confirm_cancelled]")
    walk.page.locator("#confirm-cancelled").scroll_into_view_if_needed()
    walk.shot("24-ship-cancelled-order-confirm")
    walk.page.click("form.ship button[type=submit]")
    walk.page.wait_for_url(f"**/orders/{ids[whole['id']]}")
    assert "is Fully Shipped" in walk.text(".flash")
    (entry,) = [e for e in audit.entries(connect(db_target)) if e["action"] == CONFIRMED_ACTION]
    assert entry["actor"] == "walt" and entry["target"] == f"order {whole['id']}"
    assert (SHOTS / "23-cancelled-line.png").stat().st_size > 10_000
    assert (SHOTS / "24-ship-cancelled-order-confirm.png").stat().st_size > 10_000
    walk.context.close()
