"""Import Orders in a real browser: Actions > Import Orders opens the dialog with its Start Date,
the Queued Job page shows the pages and orders read while the job runs (it refreshes by
itself), then "0 new, 0 updated, N unchanged" when the whole window was read again after the
automatic download (screenshots 29 and 30)."""

from __future__ import annotations

import threading
from datetime import timedelta

from support import Held
from web_support import SHOTS, Walk

import backmarket_pro.plugin
from backmarket_pro.client import ClientOptions
from host import clock
from host.channel import cursors, download
from host.jobs import runner


def test_import_orders_with_a_start_date_in_a_real_browser(browser, web, run, company, sandbox, db_target, monkeypatch):
    monkeypatch.setattr(backmarket_pro.plugin, "client_options", ClientOptions(page_size=3))
    monkeypatch.setattr(download, "PROGRESS_EVERY_SECONDS", 0.0)
    sandbox.add_orders(10)
    run("worker", "--once", "--processes", "1")  # the automatic download has every order already
    unfulfilled = sum(1 for order in sandbox.orders() if order["fulfillment_status"] == "unfulfilled")

    walk = Walk(browser, web)
    page = walk.page
    walk.sign_in("sue")
    walk.go("/companies/1/website-general-settings")
    page.click("summary:has-text('Actions')")
    page.click("button:has-text('Import Orders')")
    page.wait_for_url("**/companies/1/import-orders*")
    default = (clock.now() - timedelta(days=cursors.recent_days())).date().isoformat()
    assert page.input_value("#start_date") == default
    assert "read up to" in walk.text("#import-orders")  # the automatic download's place, unchanged by this
    walk.shot("29-import-orders-start-date")

    held = Held(sandbox, passes=2)  # two pages answer, the third waits while the page is watched
    page.click("#import-orders button:has-text('Import Orders')")
    assert f"reads the orders updated since {default}" in walk.text(".flash")
    page.click(".flash a")
    assert walk.text("#job-status") == "Queued"
    worker = threading.Thread(target=runner.LocalPool(db_target, max_workers=1).drain)
    worker.start()
    try:
        assert held.arrived.wait(30)
        page.locator("#job-progress", has_text="2 pages, 3 orders read so far").wait_for(timeout=15000)
        assert walk.text("#job-status") == "Processing"
    finally:
        held.remove()
        worker.join(60)
    assert not held.timed_out
    page.locator("#job-status", has_text="Completed").wait_for(timeout=30000)  # no reload: the page polls
    assert walk.text("#job-counts").startswith(f"0 new, 0 updated, {unfulfilled} unchanged, read from {default}")
    assert f"{unfulfilled} orders read" in walk.text("#job-progress")
    walk.shot("30-import-orders-job-progress")
    assert (SHOTS / "30-import-orders-job-progress.png").stat().st_size > 10_000
    body = "\n".join(walk.bodies)
    assert "--since" not in body and "cartplugin import-orders" not in body
    walk.context.close()
