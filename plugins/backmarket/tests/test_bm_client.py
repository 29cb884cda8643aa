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
    assert {r["query"].get("date_modification") for r in bm_sandbox.request_log()} >= {
        pivot.strftime("%Y-%m-%dT%H:%M:%SZ")
    }


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
    # the channel's sentence sits inside ours, without its own full stop
    assert "(HTTP 401: Invalid token (request id " in message


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
    (accepted,) = plugin.cartplugin_accept_orders(
        settings=bm_settings, orders=[AcceptRequest(source_order_id=order_id)]
    )
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


def _shipment(serials: list[str], quantity: int = 1) -> Shipment:
    line = ShipmentLine(source_line_id="1", sku="IPH13", quantity=quantity, serial_numbers=serials)
    return Shipment(shipment_id=7, source_order_id="123456", carrier="UPS", tracking_number="1Z999",
                    tracking_url="https://ups.example/1Z999", shipped_at=datetime.now(UTC), lines=[line])  # fmt: skip


@pytest.mark.parametrize("serial,key", [("SN-ABC-0001", "serial_number"), ("356938035643809", "imei")])
def test_the_channel_gets_the_tracking_url_and_a_single_units_serial_under_its_own_name(serial, key) -> None:
    body = mapping.shipment_body("123456", _shipment([f" {serial} "]), single_unit=True)
    assert body == {"order_id": 123456, "new_state": mapping.NEW_STATE_SHIP, "tracking_number": "1Z999",
                    "shipper": "UPS", "tracking_url": "https://ups.example/1Z999", key: serial}  # fmt: skip


def test_an_order_of_several_units_is_shipped_without_a_serial_the_channel_would_refuse() -> None:
    body = mapping.shipment_body("123456", _shipment(["SN-1", "SN-2"], quantity=2), single_unit=False)
    assert "serial_number" not in body and "imei" not in body


def test_every_address_field_reaches_the_host_as_the_channel_sent_it_and_a_non_text_one_is_named() -> None:
    raw = {"first_name": "Ada", "last_name": "Kowalska", "company": "Kowalski Sp. z o.o.", "street": "ul. Długa 1",
           "street2": "lok. 4", "city": "Gdańsk", "postal_code": "80-001", "state_or_province": "Pomorskie",
           "country": "pl", "phone": "+48 58 000000", "email": "ap@kowalski.example"}  # fmt: skip
    assert mapping.address(raw, "billing_address").model_dump() == {
        "name": "Ada Kowalska", "company": "Kowalski Sp. z o.o.", "line1": "ul. Długa 1", "line2": "lok. 4",
        "city": "Gdańsk", "postal_code": "80-001", "region": "Pomorskie", "country": "PL",
        "phone": "+48 58 000000", "email": "ap@kowalski.example",
    }  # fmt: skip
    blank = mapping.address(
        {**raw, "first_name": "", "last_name": None, "street2": "", "phone": ""}, "shipping_address"
    )
    assert (blank.name, blank.line2, blank.phone) == (None, None, None)
    assert mapping.address(None, "billing_address") is None
    for key in raw:
        with pytest.raises(mapping.MappingError, match=f"shipping_address.{key} must be a string"):
            mapping.address({**raw, key: 12345}, "shipping_address")


def test_an_order_keeps_the_channels_amounts_statuses_lines_and_addresses() -> None:
    from decimal import Decimal

    from backmarket.sandbox_data import OrderFactory

    now = datetime.now(UTC)
    raw = OrderFactory(seed=11).order(now - timedelta(hours=2), now - timedelta(hours=1), state=1)
    raw["billing_address"] = {**raw["shipping_address"], "street": "Rechnungsweg 9", "email": "billing@example.de"}
    result = mapping.order(raw)
    # the order's price is without shipping: the grand total adds shipping_price to it
    shipping = Decimal(raw.get("shipping_price", "0"))
    assert (result.subtotal, result.shipping_total, result.tax_total, result.grand_total) == (
        Decimal(raw["price"]), shipping, Decimal(raw.get("sales_taxes", "0")), Decimal(raw["price"]) + shipping,
    )  # fmt: skip
    assert [(ln.source_line_id, ln.sku, ln.title, ln.quantity, ln.unit_price, ln.tax) for ln in result.lines] == [
        (str(ln["id"]), ln["listing"], ln.get("product") or "", ln["quantity"], Decimal(ln["price"]),
         Decimal(ln.get("sales_taxes", "0"))) for ln in raw["orderlines"]
    ]  # fmt: skip
    assert (result.channel_fulfillment_status, result.channel_financial_status) == (
        mapping.ORDER_STATE_NAMES[1],
        "paid",
    )
    assert result.channel_cancelled is False
    assert result.shipping_address == mapping.address(raw["shipping_address"], "shipping_address")
    assert result.billing_address is not None and result.billing_address.line1 == "Rechnungsweg 9"
    assert (result.buyer_company, result.buyer_email) == (
        result.shipping_address.company,
        result.shipping_address.email,
    )
    # a buyer cancellation shows as lines in a final state (5: cancelled by the buyer)
    cancelled = mapping.order({**raw, "orderlines": [{**line, "state": 5} for line in raw["orderlines"]]})
    assert cancelled.channel_cancelled is True and cancelled.channel_financial_status == "refunded"
