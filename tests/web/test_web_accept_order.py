"""Accept Order on the order page: staff accept an order Awaiting acceptance in the browser, or
cancel on the channel a line they cannot serve (the regular Back Market plugin and its sandbox,
a company with "Accept new orders on download" off)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support import fetch_rows
from web_support import SHOTS, Walk, signed_in

from backmarket import plugin as bm_plugin
from backmarket.client import ClientOptions
from backmarket.sandbox import Sandbox as BackMarketSandbox
from host.channel import plugins

TOKEN = "Ym0td2ViOmFjY2VwdC10b2tlbi05OTE="
COMPANY = "Refurb Boutique SAS"
#: short timeouts and tiny backoff, so a channel that fails answers in milliseconds
FAST = ClientOptions(connect_timeout=0.5, read_timeout=1.0, retries=1, backoff_factor=0.01, backoff_max=0.05)


@pytest.fixture
def back_market(monkeypatch) -> Iterator[BackMarketSandbox]:
    """The Back Market plugin registered (unless entry points loaded it) and its sandbox."""
    plugins.load_plugins()
    already = plugins.pm.is_registered(bm_plugin)
    if not already:
        plugins.register(bm_plugin, name="backmarket")
    monkeypatch.setattr(bm_plugin, "client_options", FAST)
    try:
        with BackMarketSandbox(token=TOKEN, orders=18, seed=5) as sandbox:
            yield sandbox
    finally:
        if not already:
            plugins.unregister(bm_plugin)


@pytest.fixture
def waiting(run, web, back_market) -> list[dict]:
    """The company's orders Awaiting acceptance after Import Orders."""
    run("companies", "add", COMPANY)
    run(
        "website-settings", COMPANY, "--store-plugin", "backmarket", "--allow-order-download", "--allow-tracking-upload"
    )
    run("cart-settings", COMPANY, "--set", f"api_url={back_market.base_url}", "--set", f"token={TOKEN}",
        "--set", "country_code=fr-fr", "--set", "company_name=RefurbBoutique",
        "--set", "contact_email=ops@refurb.example", "--set", "accept_on_download=false")  # fmt: skip
    assert "Connection established" in run("test-settings", COMPANY).stdout
    run("import-orders", COMPANY)
    found = [o for o in run.json("orders", "list", "--company", COMPANY) if o["awaiting_acceptance"]]
    assert len(found) >= 3 and all(back_market.order(o["source_order_id"])["state"] == 1 for o in found)
    return found


def _line_states(sandbox: BackMarketSandbox, source_order_id: str) -> list[int]:
    return [line["state"] for line in sandbox.order(source_order_id)["orderlines"]]


def _audit(db_target: Path) -> list[tuple[str, str]]:
    return fetch_rows(
        db_target, "SELECT action, target FROM audit_log WHERE target LIKE 'order %' AND source = 'web' ORDER BY id"
    )


def _lines(run, order: dict) -> list[dict]:
    return run.json("orders", "show", str(order["id"]))["lines"]


def test_warehouse_accepts_orders_and_cancels_the_lines_it_cannot_serve(web, run, waiting, back_market, db_target):
    multi = next(o for o in waiting if len(_lines(run, o)) >= 2)
    single, untouched, failing, cancelled_here = [o for o in waiting if len(_lines(run, o)) == 1][:4]
    http, token = signed_in(web, "sue")  # support sets channels up; it does not process orders
    refused = http.post(f"{web.url}/orders/{single['id']}/accept", data={"csrf_token": token}, timeout=10)
    assert refused.status_code == 403 and set(_line_states(back_market, single["source_order_id"])) == {1}

    http, token = signed_in(web, "walt")
    page = http.get(f"{web.url}/orders/{single['id']}", timeout=10).text
    assert 'id="accept-order"' in page and "Accept Order, below the items" in page
    accepted = http.post(f"{web.url}/orders/{single['id']}/accept", data={"csrf_token": token}, timeout=10)
    (sku,) = [line["sku"] for line in _lines(run, single)]
    assert f"Back Market order {single['source_order_id']}: accepted {sku}." in accepted.text
    assert _line_states(back_market, single["source_order_id"]) == [2]
    assert run.json("orders", "show", str(single["id"]))["awaiting_acceptance"] is False
    assert 'id="accept-order"' not in accepted.text and 'id="awaiting-acceptance"' not in accepted.text

    # one line of two cannot be served: it is cancelled on the channel, the other accepted
    line, other = _lines(run, multi)[:2]
    partly = http.post(
        f"{web.url}/orders/{multi['id']}/accept", data={"csrf_token": token, f"cancel_{line['id']}": "y"}, timeout=10
    )
    assert f"cancelled {line['sku']}, accepted {other['sku']}" in partly.text
    states = {x["listing"]: x["state"] for x in back_market.order(multi["source_order_id"])["orderlines"]}
    assert states[line["sku"]] == 4 and states[other["sku"]] == 2

    # the only line cancelled: nothing is accepted, and the page says what is left to do
    (only,) = _lines(run, untouched)
    nothing = http.post(
        f"{web.url}/orders/{untouched['id']}/accept",
        data={"csrf_token": token, f"cancel_{only['id']}": "y"},
        timeout=10,
    )
    assert f"cancelled {only['sku']}. Nothing of the order is left to ship" in nothing.text
    assert _line_states(back_market, untouched["source_order_id"]) == [4]

    again = http.post(f"{web.url}/orders/{single['id']}/accept", data={"csrf_token": token}, timeout=10)
    assert "is not awaiting acceptance" in again.text

    # Cancelled here: never accepted on the channel, whatever is posted
    run("orders", "set-status", str(cancelled_here["id"]), "Cancelled")
    page = http.get(f"{web.url}/orders/{cancelled_here['id']}", timeout=10).text
    assert 'id="accept-order"' not in page and "never accepted: cancel it in the channel" in page
    kept = http.post(f"{web.url}/orders/{cancelled_here['id']}/accept", data={"csrf_token": token}, timeout=10)
    assert "is Cancelled here: it is not accepted" in kept.text
    assert _line_states(back_market, cancelled_here["source_order_id"]) == [1]

    # the channel fails: nothing changes and the page says why
    back_market.set_faults(fail_5xx=100)
    failed = http.post(f"{web.url}/orders/{failing['id']}/accept", data={"csrf_token": token}, timeout=10)
    back_market.clear_faults()
    assert f"Order {failing['source_order_id']} not accepted:" in failed.text and 'id="accept-order"' in failed.text
    assert run.json("orders", "show", str(failing["id"]))["awaiting_acceptance"] is True
    assert _line_states(back_market, failing["source_order_id"]) == [1]
    assert TOKEN not in failed.text and TOKEN[-4:] not in failed.text

    # Allow Order Download off: the page says why Accept Order is not there
    run("website-settings", COMPANY, "--no-allow-order-download")
    page = http.get(f"{web.url}/orders/{failing['id']}", timeout=10).text
    assert (
        "Accept Order is not available now: Allow Order Download is off" in page
        and "<button" not in page.split('id="accept-order"')[1].split("</section>")[0]
    )
    # the next download sees the lines cancelled on the channel: an order with every line
    # cancelled is flagged for staff; of the order with one line left, only that line is
    run("website-settings", COMPANY, "--allow-order-download")
    run("worker", "--once", "--download-every", "0")
    flagged = {o["id"] for o in run.json("orders", "list", "--needs-attention")}
    assert untouched["id"] in flagged and multi["id"] not in flagged and single["id"] not in flagged
    assert {x["sku"]: x["channel_cancelled"] for x in _lines(run, multi)}[line["sku"]] is True
    assert {x["sku"]: x["channel_cancelled"] for x in _lines(run, multi)}[other["sku"]] is False
    assert [action for action, _ in _audit(db_target)] == [
        "order accepted", "order accepted", "order accepted", "order not accepted"
    ]  # fmt: skip


def test_accept_order_in_a_real_browser(browser, web, run, waiting, back_market):
    order = next(o for o in waiting if len(_lines(run, o)) >= 2)
    line, other = _lines(run, order)[:2]
    walk = Walk(browser, web)
    walk.sign_in("walt")
    walk.go(f"/orders/{order['id']}")
    assert "Awaiting acceptance" in walk.text("#awaiting-acceptance")
    walk.page.check(f"#cancel_{line['id']}")
    walk.page.locator("#accept-order").scroll_into_view_if_needed()
    walk.shot("20-accept-order")
    walk.page.click("#accept-order button:has-text('Accept Order')")
    walk.page.wait_for_url(f"**/orders/{order['id']}")
    assert f"cancelled {line['sku']}, accepted {other['sku']}." in walk.text(".flash")
    walk.shot("21-order-accepted")
    assert walk.page.locator("#accept-order").count() == 0
    assert (SHOTS / "20-accept-order.png").stat().st_size > 10_000
    states = {x["listing"]: x["state"] for x in back_market.order(order["source_order_id"])["orderlines"]}
    assert states[line["sku"]] == 4 and states[other["sku"]] == 2
    walk.context.close()
