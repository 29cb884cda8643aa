"""Manage Orders in Chromium: staff type part of a Channel Order ID and find the order."""

from __future__ import annotations

from web_support import SHOTS, Walk


def test_search_on_part_of_a_channel_order_id_in_a_real_browser(browser, web, run, company):
    run("import-orders", company)
    listed = run.json("orders", "list")
    whole = listed[5]["source_order_id"]
    part = whole.split("-")[-1][-5:]
    expected = [o for o in listed if part in o["source_order_id"]]
    walk = Walk(browser, web)
    walk.sign_in("sue")
    walk.go("/orders")
    walk.page.fill("input[name=q]", part)
    walk.page.click("form.filters button:has-text('Search')")
    walk.page.wait_for_url(f"**/orders?*q={part}*")
    rows = walk.page.locator("table.orders tbody tr")
    assert rows.count() == len(expected) >= 1
    assert whole in walk.text("table.orders tbody")
    assert walk.page.input_value("input[name=q]") == part
    walk.shot("36-order-id-search")
    assert (SHOTS / "36-order-id-search.png").stat().st_size > 10_000
    # two characters: the grid says how to search within ids
    walk.page.fill("input[name=q]", part[-2:])
    walk.page.click("form.filters button:has-text('Search')")
    walk.page.wait_for_selector("#search-hint")
    assert "at least 3 characters" in walk.text("#search-hint")
    walk.context.close()
