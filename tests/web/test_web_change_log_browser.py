"""The Change Log in a real browser (Chromium, the real web server, the Back Market Pro sandbox):
a change made in the browser, one made on the command line and the worker's automatic ones, each
saying who in words, and the Who filter narrowing it to the command line's. Screenshot 40."""

from __future__ import annotations

import getpass

from web_support import WEB_KEY, Walk

COMPANY = "Acme Refurb"


def test_the_change_log_shows_web_cli_and_automatic_changes_in_a_real_browser(browser, web, run, channel):
    run("companies", "add", COMPANY)
    run("website-settings", COMPANY, "--store-plugin", "backmarket_pro", "--allow-order-download",
        "--allow-tracking-upload")  # fmt: skip
    run("cart-settings", COMPANY, "--set", f"website_url={channel.base_url}", "--set", f"x_api_key={WEB_KEY}")
    run("test-settings", COMPANY)
    run("import-orders", COMPANY)
    first, second, third = run.json("orders", "list")[:3]
    run("orders", "ship", str(first["id"]), "--carrier", "UPS", "--tracking", "1Z999AA10123456784")
    channel.cancel_order(second["source_order_id"], api_key=WEB_KEY)
    run("worker", "--once", "--download-every", "0", "--processes", "1")

    walk = Walk(browser, web)
    walk.sign_in("walt")  # warehouse: sets a status in the browser
    walk.go(f"/orders/{third['id']}")
    walk.page.select_option("select[name='status']", "On Hold")
    walk.page.click("form[action$='/status'] button:has-text('Go')")
    walk.page.wait_for_selector("text=is now On Hold")
    walk.sign_out()

    walk.sign_in("ann")
    walk.go("/audit")
    log = walk.text("table.grid")
    cli_words = f"Operator (cli:{getpass.getuser()})"
    assert "walt" in log and "order status changed" in log  # the browser
    assert cli_words in log and "order shipped" in log  # the command line
    assert "cartplugin (automatic)" in log and "order cancelled on the channel" in log  # the worker
    assert "Source Updated for Shipping set" in log
    assert WEB_KEY not in log and WEB_KEY[-6:] not in log
    walk.shot("40-change-log-every-source")

    walk.page.select_option("select[name='who']", "cli")
    walk.page.click("#change-log-filter button:has-text('Search')")
    walk.page.wait_for_url(lambda url: "/audit?" in url and "who=cli" in url)
    rows = walk.page.locator("table.grid tbody tr").all_inner_texts()
    assert rows and all(cli_words in row for row in rows)
    assert walk.page.locator("select[name='who']").input_value() == "cli"
