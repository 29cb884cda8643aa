"""The web admin's pages over real HTTP against the sandbox: what each form does, and what it never shows."""

from __future__ import annotations

from support import API_KEY
from web_support import signed_in

from host.jobs import queue as jobs
from host.records import audit
from host.store.db import connect, write


def _cart_form(token: str, **values: str) -> dict[str, str]:
    return {"csrf_token": token, "website_url": "", "x_api_key": "", "commission_percent": "", **values}


def _cart_general(web, run):
    """Acme Refurb on Back Market Pro, sue signed in: her session, its token, Cart General's URL."""
    run("companies", "add", "Acme Refurb")
    run("website-settings", "Acme Refurb", "--store-plugin", "backmarket_pro")
    http, token = signed_in(web, "sue")
    return http, token, f"{web.url}/companies/1/cart-general"


def test_cart_general_keeps_an_empty_secret_replaces_a_typed_one_and_never_sends_it_back(web, run, sandbox, db_target):
    http, token, url = _cart_general(web, run)
    saved = http.post(
        url,
        data=_cart_form(token, website_url=sandbox.base_url, x_api_key=API_KEY, commission_percent="10"),
        timeout=10,
    )
    assert saved.status_code == 200 and "Cart General saved" in saved.text
    assert API_KEY not in saved.text and "****" + API_KEY[-4:] in saved.text
    # an empty key box keeps the stored key
    kept = http.post(url, data=_cart_form(token, website_url=sandbox.base_url, commission_percent="12.5"), timeout=10)
    assert "Cart General saved" in kept.text
    shown = {f["key"]: f["value"] for f in run.json("cart-settings", "Acme Refurb")["fields"]}
    assert shown["x_api_key"] == "****" + API_KEY[-4:] and shown["commission_percent"] == "12.5"
    # a typed key replaces it; the Change Log says so without the value
    http.post(
        url,
        data=_cart_form(token, website_url=sandbox.base_url, commission_percent="12.5", x_api_key="another-key-0042"),
        timeout=10,
    )
    shown = {f["key"]: f["value"] for f in run.json("cart-settings", "Acme Refurb")["fields"]}
    assert shown["x_api_key"] == "****0042"
    entries = audit.entries(connect(db_target), company_id=1)
    assert [e["details"].get("x_api_key") for e in entries if "x_api_key" in e["details"]] == ["replaced", "replaced"]
    assert not [e for e in entries if API_KEY in str(e) or "another-key-0042" in str(e)]


def test_a_refused_cart_general_names_the_field_and_saves_nothing(web, run, sandbox):
    run("companies", "add", "Acme Refurb")
    run("website-settings", "Acme Refurb", "--store-plugin", "backmarket_pro")
    http, token = signed_in(web, "sue")
    refused = http.post(f"{web.url}/companies/1/cart-general",
                        data=_cart_form(token, website_url="ftp://nowhere", x_api_key=API_KEY), timeout=10)  # fmt: skip
    assert refused.status_code == 422
    assert 'id="error-website_url"' in refused.text
    assert API_KEY not in refused.text
    assert {f["key"]: f["value"] for f in run.json("cart-settings", "Acme Refurb")["fields"]}["x_api_key"] is None


def test_a_commission_with_a_decimal_comma_is_saved_and_an_ambiguous_one_is_named(web, run, sandbox):
    http, token, url = _cart_general(web, run)
    saved = http.post(
        url,
        data=_cart_form(token, website_url=sandbox.base_url, x_api_key=API_KEY, commission_percent="12,5"),
        timeout=10,
    )
    assert saved.status_code == 200 and "Cart General saved" in saved.text
    assert {f["key"]: f["value"] for f in run.json("cart-settings", "Acme Refurb")["fields"]}["commission_percent"] == (
        "12.5"
    )
    refused = http.post(
        url, data=_cart_form(token, website_url=sandbox.base_url, commission_percent="1,2,3"), timeout=10
    )
    assert refused.status_code == 422
    assert '<p class="error field-error" id="error-commission_percent">must be a number with one decimal comma' in (
        refused.text
    )
    assert {f["key"]: f["value"] for f in run.json("cart-settings", "Acme Refurb")["fields"]}["commission_percent"] == (
        "12.5"
    )


def test_a_key_typed_with_another_field_refused_is_asked_for_again_and_never_echoed(web, run, sandbox):
    run("companies", "add", "Acme Refurb")
    run("website-settings", "Acme Refurb", "--store-plugin", "backmarket_pro")
    run(
        "cart-settings",
        "Acme Refurb",
        "--set",
        f"website_url={sandbox.base_url}",
        "--set",
        "x_api_key=old-key-00000001",
    )
    http, token = signed_in(web, "sue")
    refused = http.post(
        f"{web.url}/companies/1/cart-general",
        data=_cart_form(token, website_url=sandbox.base_url, x_api_key=API_KEY, commission_percent="250"),
        timeout=10,
    )
    assert refused.status_code == 422 and 'id="error-commission_percent"' in refused.text
    assert (
        '<p class="error field-error" id="error-x_api_key">The x-api-key you typed was not saved: type it again.</p>'
        in refused.text
    )
    assert API_KEY not in refused.text and "old-key-00000001" not in refused.text
    shown = {f["key"]: f["value"] for f in run.json("cart-settings", "Acme Refurb")["fields"]}
    assert shown["x_api_key"] == "****0001"


def test_import_orders_is_refused_with_the_reason_before_test_settings(web, run):
    run("companies", "add", "Acme Refurb")
    run("website-settings", "Acme Refurb", "--store-plugin", "backmarket_pro", "--allow-order-download")
    http, token = signed_in(web, "sue")
    answer = http.post(f"{web.url}/companies/1/import-orders", data={"csrf_token": token}, timeout=10)
    assert "Import Orders not started" in answer.text and "Test Settings" in answer.text
    assert run.json("jobs", "list") == []


def test_support_cancels_a_queued_job_and_warehouse_changes_an_order_status(web, run, company):
    http, token = signed_in(web, "sue")
    answer = http.post(f"{web.url}/companies/1/import-orders", data={"csrf_token": token}, timeout=10)
    job_id = run.json("jobs", "list")[0]["id"]
    assert f"/jobs/{job_id}" in answer.text
    cancelled = http.post(f"{web.url}/jobs/{job_id}/cancel", data={"csrf_token": token}, timeout=10)
    assert "cancelled" in cancelled.text and run.json("jobs", "show", str(job_id))["status"] == "Cancelled"
    run("import-orders", company)
    order = run.json("orders", "list")[0]
    http, token = signed_in(web, "walt")
    changed = http.post(
        f"{web.url}/orders/{order['id']}/status", data={"csrf_token": token, "status": "On Hold"}, timeout=10
    )
    assert "is now On Hold" in changed.text
    assert run.json("orders", "show", str(order["id"]))["status"] == "On Hold"


def test_a_grid_counts_up_to_its_cap_and_says_more_beyond_it(web, run, company, monkeypatch):
    """Counting every match reads every matching index entry (on PostgreSQL the larger part of a
    Manage Orders page at 100,000 orders): the grids count up to ``COUNT_CAP`` and say "N+"."""
    from host.records import queries

    run("import-orders", company)
    listed = run.json("orders", "list")
    assert len(listed) > 3
    http, _ = signed_in(web, "rita")
    monkeypatch.setattr(queries, "COUNT_CAP", 3)
    capped = http.get(f"{web.url}/orders", timeout=10).text
    assert "3+ found · page 1<" in capped and " of " not in capped.split("found")[1].split("</span>")[0]
    assert all(f">{order['source_order_id']}<" in capped for order in listed)  # the rows are all there
    assert "Next ›" not in capped  # a page that is not full is the last, capped or not
    jobs = http.get(f"{web.url}/jobs", timeout=10).text
    assert "found · page 1 of 1" in jobs  # fewer jobs than the cap: counted exactly
    monkeypatch.setattr(queries, "COUNT_CAP", len(listed))
    exact = http.get(f"{web.url}/orders", timeout=10).text
    assert f"{len(listed)} found · page 1 of 1" in exact  # as many as the cap: exact, not "+"
    full = queries.Page(rows=[{}] * 50, total=3, page=1, per_page=50, capped=True)
    assert full.has_next and not queries.Page(rows=[{}] * 49, total=3, page=1, per_page=50, capped=True).has_next
    assert queries.Page(rows=[{}] * 50, total=120, page=2, per_page=50).has_next
    assert not queries.Page(rows=[{}] * 20, total=120, page=3, per_page=50).has_next


def test_the_orders_grid_pages_filters_and_sorts_on_the_server(web, run, company):
    run("import-orders", company)
    listed = run.json("orders", "list")
    http, _ = signed_in(web, "rita")
    first = http.get(f"{web.url}/orders", timeout=10).text
    assert f"{len(listed)} found" in first
    one = listed[3]["source_order_id"]
    found = http.get(f"{web.url}/orders", params={"q": one}, timeout=10).text
    assert "1 found" in found and one in found
    flagged = http.get(f"{web.url}/orders", params={"cancelled": "yes"}, timeout=10).text
    assert f"{sum(o['channel_cancelled'] for o in listed)} found" in flagged
    ascending = http.get(f"{web.url}/orders", params={"sort": "id", "dir": "asc"}, timeout=10).text
    assert ascending.index(f">{listed[0]['source_order_id']}<") < ascending.index(f">{listed[-1]['source_order_id']}<")
    assert (
        http.get(f"{web.url}/orders", params={"sort": "x; DROP TABLE orders", "page": "-3"}, timeout=10).status_code
        == 200
    )


def test_the_companies_page_shows_plugin_missing_for_a_company_whose_plugin_is_gone(web, run, company, bmp):
    from host.channel import plugins

    http, _ = signed_in(web, "sue")
    plugins.unregister(bmp)
    try:
        page = http.get(f"{web.url}/companies", timeout=10).text
    finally:
        plugins.register(bmp, name="backmarket_pro")
    assert "Plugin missing" in page
    assert "Plugin missing" not in http.get(f"{web.url}/companies", timeout=10).text


def test_signing_out_says_so_on_the_sign_in_page(web):
    http, token = signed_in(web, "sue")
    page = http.post(f"{web.url}/logout", data={"csrf_token": token}, timeout=10)
    assert page.status_code == 200 and page.url.endswith("/login")
    assert '<div class="flash " role="status">Signed out.</div>' in page.text


def test_the_order_page_shows_the_channel_s_discount_adjustment_and_line_totals(web, db_target):
    from datetime import UTC, datetime
    from decimal import Decimal as D

    from host.records import orders
    from host.records.companies import add_company
    from host.store.db import write
    from plugin_spec import ChannelOrder, OrderLine

    db = connect(db_target)
    company = add_company(db, "Bay Co")
    now = datetime(2026, 11, 1, tzinfo=UTC)
    lines = [
        OrderLine(source_line_id="1", sku="CASE", title="Case", quantity=3, line_total=D("33.33"), discount=D("1.25")),
        OrderLine(source_line_id="2", sku="CABLE", title="Cable", quantity=2, unit_price=D("4.10")),
    ]
    plain = ChannelOrder(source_order_id="EB-2", created_at=now, updated_at=now, currency="EUR",
                         subtotal=D("8.20"), tax_total=D("0"), grand_total=D("8.20"), lines=lines[1:])  # fmt: skip
    discounted = plain.model_copy(
        update={"source_order_id": "EB-1", "subtotal": D("41.53"), "discount_total": D("3.00"),
                "adjustment_total": D("-0.23"), "grand_total": D("38.30"), "lines": lines}
    )  # fmt: skip
    with write(db):
        orders.upsert_each(db, company.id, "ebay_like", [discounted, plain], D("10"), orders.ImportStats())
    db.close()
    http, _ = signed_in(web, "rita")
    page = http.get(f"{web.url}/orders/1", timeout=10).text
    assert '<dt>Discount</dt><dd id="discount">-3.00 EUR</dd>' in page
    assert '<dd id="adjustment">-0.23 EUR</dd>' in page
    assert '<dd id="grand-total">38.30 EUR</dd>' in page and '<dd id="commission">3.83 EUR</dd>' in page
    assert '<td class="num">-</td><td class="num line-total">33.33</td><td class="num line-discount">-1.25</td>' in page
    assert '<td class="num">4.10</td><td class="num line-total">8.20</td><td class="num line-discount"></td>' in page
    without = http.get(f"{web.url}/orders/2", timeout=10).text
    assert 'id="discount"' not in without and 'id="adjustment"' not in without


def test_queued_jobs_says_until_when_a_job_waits_for_the_channel_s_rate_limit(web, run, db_target):
    run("companies", "add", "Acme Refurb")
    db = connect(db_target)
    job, _ = jobs.enqueue(db, 1, "download_orders", {})
    with write(db):  # what the runner records for a download ended by the channel's rate limit
        db.execute(
            "UPDATE jobs SET status = 'Completed', summary = :summary WHERE id = :id",
            {
                "summary": '{"inserted": 500, "more": true, "waiting_until": "2026-12-06T14:05:31.000000Z"}',
                "id": job.id,
            },
        )
    http, _ = signed_in(web, "rita")
    page = http.get(f"{web.url}/jobs", timeout=10).text
    assert (
        "500 new, 0 updated, 0 unchanged, waiting for the channel&#39;s rate limit until 2026-12-06 14:05:31 UTC"
        in page
    )
    assert "more True" not in page


def test_a_long_company_name_wraps_and_the_website_url_box_shows_the_default_url_whole(web, run):
    import re

    from backmarket_pro.client import DEFAULT_WEBSITE_URL

    long_name = "Refurbished-Electronics-Trading-Company-of-Northern-Europe-and-the-Baltic-States-GmbH-und-Co-KG-2026"
    assert len(long_name) == 100
    run("companies", "add", long_name)
    run("website-settings", long_name, "--store-plugin", "backmarket_pro")
    http, _ = signed_in(web, "sue")
    assert long_name in http.get(f"{web.url}/companies", timeout=10).text
    css = re.sub(r"/\*.*?\*/", "", http.get(f"{web.url}/static/style.css", timeout=10).text, flags=re.S)
    wrapping = [rule for rule in re.findall(r"([^{}]+)\{([^}]*)\}", css) if "overflow-wrap: anywhere" in rule[1]]
    selectors = {s.strip() for rule in wrapping for s in rule[0].split(",")}
    assert {"h1", ".grid td", ".crumbs"} <= selectors  # the grid cell, the company page's heading and path
    editing = http.get(f"{web.url}/companies/1/cart-general", params={"edit": "1"}, timeout=10).text
    box = re.search(r'<input[^>]*id="website_url"[^>]*>', editing)
    assert box is not None
    size = re.search(r'size="(\d+)"', box.group(0))
    assert size is not None and int(size.group(1)) > len(DEFAULT_WEBSITE_URL)
