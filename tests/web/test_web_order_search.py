"""Manage Orders over real HTTP: a search on part of a Channel Order ID, and the hint for a short one."""

from __future__ import annotations

from web_support import signed_in


def test_manage_orders_finds_an_order_on_part_of_its_channel_order_id(web, run, company):
    run("import-orders", company)
    listed = run.json("orders", "list")
    whole = listed[3]["source_order_id"]
    part = whole.split("-")[-1][-6:]  # "11761108" of "BMP-11761108": digits only, no prefix
    assert part != whole and len(part) >= 3
    expected = [o["source_order_id"] for o in listed if part.lower() in o["source_order_id"].lower()]
    http, _ = signed_in(web, "rita")
    page = http.get(f"{web.url}/orders", params={"q": part}, timeout=10).text
    assert f"{len(expected)} found" in page and f">{whole}<" in page
    assert all(f">{o['source_order_id']}<" not in page for o in listed if o["source_order_id"] not in expected)
    assert 'id="search-hint"' not in page
    lower = http.get(f"{web.url}/orders", params={"q": whole.lower()}, timeout=10).text
    assert "1 found" in lower and f">{whole}<" in lower
    # shorter than a trigram: the whole id only, and the page says why nothing within ids was found
    short = http.get(f"{web.url}/orders", params={"q": part[-2:]}, timeout=10).text
    assert "0 found" in short and 'id="search-hint"' in short
    assert "Type at least 3 characters to search within Channel Order IDs" in short
