"""The help page walked end to end in Chromium: the web admin against the Back Market Pro sandbox.

Each step leaves a 1280x800 screenshot in build/screenshots/, or in the folder
``CARTPLUGIN_SCREENSHOTS`` names: ``make screenshots`` refreshes docs/screenshots/ (shown in
docs/support-guide.md) this way, so a test run leaves the repository as it found it.
"""

from __future__ import annotations

import logging
import threading
from decimal import Decimal

from web_support import WEB_KEY, Walk

from host.jobs import runner, worker
from host.records import orders as host_orders
from host.store.db import connect

COMPANY = "Refurb Traders GmbH"


def test_support_and_warehouse_walk_the_help_page_in_a_real_browser(browser, web, channel, db_target, caplog):
    caplog.set_level(logging.DEBUG)
    walk = Walk(browser, web)
    page = walk.page

    # Logged out: the login page, then in as support
    walk.go("/companies")
    assert "/login?next=" in page.url
    walk.shot("01-sign-in")
    walk.sign_in("sue")

    # Companies > Add Company
    page.fill("#name", COMPANY)
    page.click("button:has-text('+ Add')")
    page.wait_for_url("**/website-general-settings")

    # Website General Settings: Edit, Store Plugin, both toggles, Save
    page.click("a:has-text('Edit')")
    page.select_option("#store_plugin", label="BackMarketForBusiness WebsiteCartPlugin")
    page.check("#allow_order_download")
    page.check("#allow_tracking_upload")
    walk.shot("03-website-general-settings-edit")
    page.click("button:has-text('Save')")
    assert "Website General Settings saved" in walk.text(".flash")
    assert "BackMarketForBusiness WebsiteCartPlugin" in page.content()

    # Cart General: a bad commission is refused beside its field and nothing is saved
    page.click("nav.toolbox >> text=Cart General")
    page.click("a:has-text('Edit')")
    page.fill("#website_url", channel.base_url)
    page.fill("#x_api_key", WEB_KEY)
    page.fill("#commission_percent", "250")
    page.click("button:has-text('Save')")
    assert "less than or equal to 100" in walk.text("#error-commission_percent")
    assert page.input_value("#x_api_key") == ""  # a secret is never sent back, not even after an error
    walk.shot("05-cart-general-error")
    page.fill("#x_api_key", WEB_KEY)
    page.fill("#commission_percent", "12.5")
    walk.shot("04-cart-general-edit")
    page.click("button:has-text('Save')")
    assert "Cart General saved" in walk.text(".flash")
    assert "****" + WEB_KEY[-4:] in page.content()

    # Options menu > Test Settings
    page.click("summary[title='Options']")
    page.click("button:has-text('Test Settings')")
    assert "Test Settings started" in walk.text(".flash")  # a Queued Job: the page shows its answer when in
    page.wait_for_selector("#test-settings[data-pending='no']")
    assert "Connection established" in walk.text("#test-settings")
    assert "tested 20" in walk.text(".connection")
    walk.shot("06-cart-general-test-settings")

    # Actions > Import Orders: a Queued Job, linked
    page.click("nav.toolbox >> text=Website General Settings")
    page.click("summary:has-text('Actions')")
    walk.shot("07-website-general-settings-actions")
    page.click("button:has-text('Import Orders')")  # the dialog: its Start Date filled with the recent window
    page.click("#import-orders button:has-text('Import Orders')")
    assert "Queued Job" in walk.text(".flash")
    walk.shot("08-import-orders-queued")
    page.click(".flash a")
    assert walk.text("#job-status") == "Queued"

    # the job runs in the worker while the page watches its log
    ran = threading.Thread(target=runner.LocalPool(db_target, max_workers=1).drain)
    ran.start()
    page.locator("#job-status", has_text="Completed").wait_for(timeout=30000)  # the page polls; no reload
    ran.join(30)
    assert "Completed" in walk.text("table.log")
    walk.shot("09-queued-job-completed")
    page.click("header.top >> text=Queued Jobs")
    walk.shot("10-queued-jobs")

    # Orders: Fully Charged, no payment method, commission in Total Cost
    db = connect(db_target)
    imported = list(host_orders.list_orders(db))
    unfulfilled = {o["id"] for o in channel.orders() if o["fulfillment_status"] == "unfulfilled"}
    assert {o["source_order_id"] for o in imported} == unfulfilled
    page.click("header.top >> text=Manage Orders")
    grid = walk.text("table.grid")
    assert grid.count("Fully Charged") == len(imported)
    walk.shot("11-manage-orders")
    target = next(o for o in imported if not o["channel_cancelled"])
    page.click(f"a:text-is('{target['id']}')")
    assert walk.text("#payment-status") == "Fully Charged"
    assert walk.text("#payment-method") == "(not imported)"
    grand = Decimal(target["grand_total"])
    commission = Decimal(walk.text("#commission").split()[0])
    assert commission == (grand * Decimal("0.125")).quantize(Decimal("0.01"))
    assert Decimal(walk.text("#total-cost").split()[0]) == grand + commission
    walk.shot("12-order-details")
    walk.sign_out()

    # Warehouse ships the order
    walk.sign_in("walt")
    walk.go(f"/orders/{target['id']}")
    assert "Edit" not in walk.text("header.top")
    page.select_option("#carrier", "UPS")  # the channel's own list of carriers
    page.fill("#tracking_number", "1Z999AA10123456784")
    page.fill("#tracking_url", "https://www.ups.com/track?tracknum=1Z999AA10123456784")
    first_line = db.execute(
        "SELECT id FROM order_lines WHERE order_id = :id ORDER BY id", {"id": target["id"]}
    ).fetchone()[0]
    page.fill(f"#serial_{first_line}", "356938035643809")
    page.locator("form.ship").scroll_into_view_if_needed()
    walk.shot("13-ship-items")
    page.click("button:has-text('Ship')")
    assert walk.text("#shipping-status") == "Fully Shipped"
    assert walk.text("#source-updated") == "False"

    # a worker round uploads the tracking: Source Updated for Shipping turns True
    worker.run(db_target, once=True, max_workers=1)
    page.reload()
    assert walk.text("#source-updated") == "True"
    assert "accepted" in walk.text("#shipments")
    assert next(o for o in channel.orders() if o["id"] == target["source_order_id"])["shipments"]
    page.locator("#shipments").scroll_into_view_if_needed()
    walk.shot("14-order-shipped-source-updated")
    walk.go("/attention")
    walk.shot("15-attention")
    walk.go("/plugins")
    walk.shot("16-plugins")
    walk.sign_out()

    # Admin: the Change Log, everywhere and on the company's page
    walk.sign_in("ann")
    walk.shot("02-companies")
    walk.go("/audit")
    log = walk.text("table.grid")
    for action in ("company added", "Website General Settings saved", "Cart General saved", "Test Settings",
                   "Import Orders", "order shipped"):  # fmt: skip
        assert action in log
    assert "x-api-key: replaced" in log
    walk.shot("17-change-log")
    walk.go("/users")  # the Employees page has its own walk (test_web_employees_browser.py, shot 37)
    assert "Add Employee" in walk.text("main")
    company_id = db.execute("SELECT id FROM companies").fetchone()[0]
    walk.go(f"/companies/{company_id}/change-log")
    assert "sue" in walk.text("table.grid") and "walt" in walk.text("table.grid")
    walk.go("/no/such/page")
    assert "Traceback" not in page.content()
    walk.shot("19-not-found")
    walk.context.close()
    db.close()

    # the key never left the server: not in one page, fragment or URL it sent
    assert len(walk.bodies) > 30
    assert not [body for body in walk.bodies if WEB_KEY in body]
    assert not [url for url in walk.urls if WEB_KEY in url]
    assert caplog.records and WEB_KEY not in caplog.text  # nor in a log line of the server or the worker
