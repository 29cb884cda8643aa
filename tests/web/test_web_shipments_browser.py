"""Shipments staff correct, walked in Chromium: Void Shipment before upload, the channel's portal
for a tracking Back Market Pro has recorded, and a refused upload in Attention sent again with
Retry (screenshots 25 to 28 of the support guide)."""

from __future__ import annotations

from web_support import SHOTS, Walk

from host.jobs import worker


def test_void_shipment_the_portal_and_retry_of_a_refused_upload_in_a_real_browser(
    browser, web, run, company, sandbox, db_target
):
    run("import-orders", company)
    first, second, third = [o for o in run.json("orders", "list") if not o["channel_cancelled"]][:3]
    walk = Walk(browser, web)
    page = walk.page
    walk.sign_in("walt")

    # a wrong shipment, not uploaded yet: Void Shipment puts the order back to Unshipped
    walk.go(f"/orders/{first['id']}")
    page.select_option("#carrier", "UPS")
    page.fill("#tracking_number", "1Z999AA10123456784")
    page.click("form.ship button:has-text('Ship')")
    assert walk.text("#shipping-status") == "Fully Shipped"
    page.locator("#shipments").scroll_into_view_if_needed()
    walk.shot("25-void-shipment")
    page.click("#shipments button:has-text('Void Shipment')")
    page.wait_for_url(f"**/orders/{first['id']}")
    assert "Shipment voided" in walk.text(".flash") and walk.text("#shipping-status") == "Unshipped"
    assert "Not shipped yet." in walk.text("#shipments") and page.locator("form.ship").count() == 1

    # uploaded to Back Market Pro, which takes no change of tracking: its portal does it
    run("orders", "ship", str(second["id"]), "--carrier", "DHL Express", "--tracking", "1234567890")
    # the channel cancels the third order while it ships: its tracking is refused (HTTP 422)
    sandbox.cancel_order(third["source_order_id"])
    run("orders", "ship", str(third["id"]), "--carrier", "Colissimo", "--tracking", "6A12345678901")
    worker.run(db_target, once=True, max_workers=1)
    walk.go(f"/orders/{second['id']}")
    assert walk.text("#source-updated") == "True"
    assert "change it in the channel's portal" in walk.text("#shipments")
    assert page.locator("#shipments button").count() == 0  # neither Void nor Update Tracking
    page.locator("#shipments").scroll_into_view_if_needed()
    walk.shot("26-update-tracking-portal")

    # Attention: the refusal waits for staff with the channel's words, Retry and Void Shipment
    walk.go("/attention")
    row = walk.text("#refused-uploads tbody tr")
    assert third["source_order_id"] in row and "HTTP 422" in row and "is cancelled; it cannot be shipped" in row
    page.locator("#refused-uploads").scroll_into_view_if_needed()
    walk.shot("27-attention-refused-upload")
    sandbox.edit_order(third["source_order_id"], cancelled=False)  # sorted out with the channel
    page.click("#refused-uploads button:has-text('Retry')")
    page.wait_for_url("**/attention")
    assert "is sent again with the next upload" in walk.text(".flash")
    assert walk.text("#refused-uploads tbody") == "None."
    walk.shot("28-upload-retried")
    worker.run(db_target, once=True, max_workers=1)
    walk.go(f"/orders/{third['id']}")
    assert walk.text("#source-updated") == "True"
    shots = ("25-void-shipment", "26-update-tracking-portal", "27-attention-refused-upload", "28-upload-retried")
    assert all((SHOTS / f"{name}.png").stat().st_size > 10_000 for name in shots)
    assert not any("cartplugin orders" in body for body in walk.bodies)  # no command in a page
    walk.context.close()
