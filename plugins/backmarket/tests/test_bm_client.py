"""The Back Market client and hooks against the sandbox: headers, paging, since, 429, shipping."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from bm_helpers import CONTACT_EMAIL, FAST, TOKEN, settings_for, to_ship, unfulfilled

from backmarket import mapping, plugin
from backmarket.settings import BackMarketSettings
from plugin_spec import AcceptRequest, AuthError, RateLimited, Shipment, ShipmentLine


def download(settings, since=None, unfulfilled_only=True):
    return list(plugin.cartplugin_download_orders(settings=settings, since=since, unfulfilled_only=unfulfilled_only))


def test_every_request_carries_token_language_and_the_user_agent_back_market_asks_for(bm_sandbox, bm_settings):
    download(bm_settings)
    log = bm_sandbox.request_log()
    assert log and all(r["auth_ok"] and r["status"] == 200 for r in log)
    assert {r["accept_language"] for r in log} == {"fr-fr"}
    assert {r["user_agent"] for r in log} == {f"BM-RefurbBoutique-cartplugin;{CONTACT_EMAIL}"}
    # one listing whatever the state: a state filter would hide cancellations
    assert all("state" not in r["query"] for r in log)
    assert all(int(r["query"]["page-size"]) <= 50 for r in log)


def test_pages_follow_next_links_and_orders_come_oldest_first(bm_sandbox, bm_settings):
    orders = download(bm_settings)
    wanted = {str(o["order_id"]) for o in unfulfilled(bm_sandbox)}
    assert {o.source_order_id for o in orders} == wanted and len(orders) == len(wanted)
    assert [o.updated_at for o in orders] == sorted(o.updated_at for o in orders)
    assert max(int(r["query"]["page"]) for r in bm_sandbox.request_log()) >= 2  # page size 4 in tests
    assert all(o.payment_status == "Fully Charged" for o in orders)
    hidden = {str(o["order_id"]) for o in bm_sandbox.orders() if o["state"] in (0, 8)}
    assert hidden and not hidden & {o.source_order_id for o in download(bm_settings, unfulfilled_only=False)}


def test_since_is_exact_although_the_api_filters_by_whole_seconds(bm_sandbox, bm_settings):
    orders = download(bm_settings)
    pivot = orders[len(orders) // 2].updated_at
    later = download(bm_settings, since=pivot + timedelta(microseconds=1))
    assert later and all(o.updated_at > pivot for o in later)
    assert {r["query"].get("date_modification") for r in bm_sandbox.request_log()} >= {pivot.strftime("%Y-%m-%dT%H:%M:%SZ")}


def test_a_missing_language_reads_as_a_settings_problem(bm_sandbox, bm_settings):
    result = plugin.cartplugin_test_settings(settings=bm_settings)
    assert result.ok and "fr-fr" in result.message
    bm_sandbox.set_faults(rate_limit=None)
    bad = bm_settings.model_copy(update={"country_code": "x"})  # bypasses validation, as a stale row could
    result = plugin.cartplugin_test_settings(settings=bad)
    assert not result.ok and "Accept-Language" in result.message and TOKEN not in result.message


def test_wrong_token_is_an_auth_error_with_the_channel_message_and_request_id_but_no_token(bm_sandbox):
    settings = settings_for(bm_sandbox, token="bm-wrong-token-1234")
    with pytest.raises(AuthError) as info:
        download(settings)
    message = str(info.value)
    assert "refused the API token" in message and "bm-wrong-token-1234" not in message
    assert "Invalid token." in message and "(request id " in message


def test_429_is_retried_after_retry_after_then_reported(bm_sandbox, bm_settings, monkeypatch):
    bm_sandbox.set_faults(rate_limit=3, rate_window=1.0)
    orders = download(bm_settings)  # more than 3 requests: one waits out the window, then all succeed
    assert orders and any(r["status"] == 429 for r in bm_sandbox.request_log())
    monkeypatch.setattr(plugin, "client_options", replace(FAST, retries=1, retry_after_max=1))
    bm_sandbox.set_faults(rate_limit=1, rate_window=30.0)
    with pytest.raises(RateLimited) as info:
        download(bm_settings)
    assert info.value.retry_after is not None and "200 requests per 10 s" in str(info.value)
    assert "(request id " in str(info.value)  # Cloudflare's HTML 429 is traced by its cf-ray


def test_a_single_unit_order_ships_with_its_imei_once_accepted(bm_sandbox, bm_settings):
    (order_id,) = bm_sandbox.add_orders(1)
    (accepted,) = plugin.cartplugin_accept_orders(settings=bm_settings, orders=[AcceptRequest(source_order_id=order_id)])
    assert accepted.ok and bm_sandbox.order(order_id)["state"] == 3
    bm_sandbox.clear_request_log()
    raw = bm_sandbox.order(order_id)
    raw_line = raw["orderlines"][0]
    single = len(raw["orderlines"]) == 1 and raw_line["quantity"] == 1
    shipment = Shipment(
        shipment_id=7, source_order_id=order_id, carrier="Colissimo", tracking_number="6A12345678901",
        tracking_url="https://www.laposte.fr/outils/suivre-vos-envois?code=6A12345678901",
        shipped_at=datetime.now(UTC),
        lines=[ShipmentLine(source_line_id=str(raw_line["id"]), sku=raw_line["listing"], quantity=raw_line["quantity"],
                            serial_numbers=["356938035643809"] if single else [])],
    )  # fmt: skip
    (result,) = plugin.cartplugin_upload_tracking(settings=bm_settings, shipments=[shipment])
    assert result.ok and not result.already_recorded
    shipped = bm_sandbox.order(order_id)
    assert shipped["state"] == 9 and shipped["tracking_number"] == "6A12345678901" and shipped["shipper"] == "Colissimo"
    if single:
        assert shipped["orderlines"][0]["imei"] == "356938035643809"
    post = [r for r in bm_sandbox.request_log() if r["method"] == "POST"]
    assert len(post) == 1 and post[0]["path"] == f"/ws/orders/{order_id}"


def test_another_tracking_on_a_shipped_order_is_refused_with_a_reason(bm_sandbox, bm_settings):
    shipped = next(o for o in bm_sandbox.orders() if o["state"] == 9)
    shipment = Shipment(shipment_id=8, source_order_id=str(shipped["order_id"]), carrier="DHL",
                        tracking_number="JJD0001", shipped_at=datetime.now(UTC))  # fmt: skip
    (result,) = plugin.cartplugin_upload_tracking(settings=bm_settings, shipments=[shipment])
    assert not result.ok and shipped["tracking_number"] in result.message and "seller portal" in result.message


def test_settings_pick_the_platform_host_preprod_on_request_and_refuse_plain_http_elsewhere():
    def make(**more):
        values = {"token": "abcdefgh12", "company_name": "Refurb Boutique", "contact_email": "a@b.example", **more}
        return BackMarketSettings(**values)

    assert make().base_url == "https://www.backmarket.fr" and make().company_name == "RefurbBoutique"
    assert make(region="uk", country_code="en-gb").base_url == "https://www.backmarket.fr"  # en-gb is served by EU
    assert make(region="na").base_url == make(region="us").base_url == "https://www.backmarket.com"
    assert make(region="ap").base_url == "https://www.backmarket.co.jp"
    assert make(region="ap", preprod=True).base_url == "https://preprod.backmarket.co.jp"
    assert make(country_code="DE_de").country_code == "de-de"
    with pytest.raises(ValueError, match="https"):
        make(api_url="http://example.com")
    with pytest.raises(ValueError):
        make(contact_email="not an email")
    with pytest.raises(ValueError):
        BackMarketSettings(token="abc def gh", company_name="X", contact_email="a@b.example")


def test_price_is_without_shipping_so_the_grand_total_adds_it_and_tax_is_the_channels(bm_sandbox):
    raw = next(o for o in to_ship(bm_sandbox) if o["shipping_price"] != "0.00")
    order = mapping.order(raw)
    assert str(order.subtotal) == raw["price"] and str(order.shipping_total) == raw["shipping_price"]
    assert order.grand_total == order.subtotal + order.shipping_total
    assert str(order.tax_total) == raw["sales_taxes"]
    assert not hasattr(order, "payment_method")
    raw["price"] = 12.5
    bad = mapping.order_or_bad(raw)
    assert bad.source_order_id == str(raw["order_id"]) and "price must be a decimal string" in bad.message
