"""The mapping is pure: API dicts in, plugin_spec models out (no sandbox needed)."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from backmarket_pro import mapping
from plugin_spec import BadOrder, ChannelOrder, Shipment, ShipmentLine

ORDER = {
    "id": "BMP-10000042",
    "created_at": "2024-03-05T09:58:01.000000Z",
    "updated_at": "2024-03-05T11:11:12.123456+01:00",
    "currency": "EUR",
    "financial_status": "pending",
    "fulfillment_status": "unfulfilled",
    "cancelled": False,
    "cancelled_at": None,
    "payment_method": "invoice_net_30",
    "subtotal_price": "778.00",
    "shipping_price": "9.90",
    "total_tax": "149.71",  # deliberately not what a host would compute: tax is taken as given
    "total_price": "937.61",
    "buyer": {"company": "Müller IT-Service GmbH", "vat_number": "DE123456789", "email": "zoe@example.de"},
    "shipping_address": {
        "first_name": "Zoë",
        "last_name": "Müller",
        "company": "Müller IT-Service GmbH",
        "address1": "Hauptstraße 7",
        "address2": None,
        "city": "Łódź",
        "postal_code": "90-001",
        "province": None,
        "country_code": "pl",
        "phone": "+48 42 123456",
    },
    "billing_address": None,
    "line_items": [
        {
            "id": "L1",
            "sku": "IPH13-128-MID-EXC",
            "title": "iPhone 13 - Excellent",
            "quantity": 2,
            "price": "389.00",
            "tax": "147.82",
        },
    ],
    "shipments": [],
}


def order(**changes: object) -> dict:
    data = copy.deepcopy(ORDER)
    data.update(changes)
    return data


def test_order_maps_every_field() -> None:
    result = mapping.order_or_bad(order())
    assert isinstance(result, ChannelOrder)
    assert result.source_order_id == "BMP-10000042"
    assert result.updated_at == datetime(2024, 3, 5, 10, 11, 12, 123456, tzinfo=UTC)
    assert (result.subtotal, result.shipping_total, result.tax_total, result.grand_total) == (
        Decimal("778.00"), Decimal("9.90"), Decimal("149.71"), Decimal("937.61"),
    )  # fmt: skip
    assert all(isinstance(v, Decimal) for v in (result.subtotal, result.lines[0].unit_price, result.lines[0].tax))
    line = result.lines[0]
    assert (line.source_line_id, line.sku, line.title, line.quantity) == (
        "L1",
        "IPH13-128-MID-EXC",
        "iPhone 13 - Excellent",
        2,
    )
    assert (line.unit_price, line.tax) == (Decimal("389.00"), Decimal("147.82"))
    assert (result.buyer_company, result.buyer_vat_number) == ("Müller IT-Service GmbH", "DE123456789")
    assert result.shipping_address is not None
    assert (result.shipping_address.name, result.shipping_address.city) == ("Zoë Müller", "Łódź")
    assert result.shipping_address.country == "PL"
    assert result.billing_address is None


def test_unpaid_order_is_fully_charged_and_payment_method_is_not_imported() -> None:
    result = mapping.order_or_bad(order(financial_status="pending", payment_method="invoice_net_30"))
    assert isinstance(result, ChannelOrder)
    assert result.payment_status == "Fully Charged"
    assert result.channel_financial_status == "pending"
    dumped = result.model_dump_json()
    assert "invoice_net_30" not in dumped and "payment_method" not in dumped


def test_cancelled_flag_is_carried() -> None:
    result = mapping.order_or_bad(order(cancelled=True, financial_status="refunded"))
    assert isinstance(result, ChannelOrder) and result.channel_cancelled is True


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"total_price": 937.61}, "total_price must be a decimal string"),
        ({"total_price": "1.299,00 €"}, "total_price is not a decimal amount"),
        ({"subtotal_price": None}, "subtotal_price"),
        ({"total_tax": "NaN"}, "total_tax"),
        ({"line_items": []}, "line_items"),
        ({"currency": "euro"}, "currency"),
        ({"created_at": "yesterday"}, "created_at"),
        ({"created_at": "2024-03-05T09:58:01"}, "time zone"),
        ({"cancelled": "no"}, "cancelled"),
    ],
)
def test_malformed_order_becomes_bad_order(changes: dict, fragment: str) -> None:
    result = mapping.order_or_bad(order(**changes))
    assert isinstance(result, BadOrder)
    assert result.source_order_id == "BMP-10000042"
    assert result.updated_at == datetime(2024, 3, 5, 10, 11, 12, 123456, tzinfo=UTC)
    assert fragment in result.message


def test_malformed_line_becomes_bad_order() -> None:
    lines = [dict(ORDER["line_items"][0], price=389.0)]
    result = mapping.order_or_bad(order(line_items=lines))
    assert isinstance(result, BadOrder) and "line_items[0].price" in result.message
    result = mapping.order_or_bad(order(line_items=[dict(ORDER["line_items"][0], quantity=0)]))
    assert isinstance(result, BadOrder) and "quantity" in result.message


def test_bad_order_without_readable_id_or_date() -> None:
    result = mapping.order_or_bad(order(id=None, updated_at="soon", total_price=1))
    assert isinstance(result, BadOrder)
    assert result.source_order_id is None and result.updated_at is None
    assert isinstance(mapping.order_or_bad(["not", "an", "order"]), BadOrder)


@pytest.mark.parametrize("value", [1.5, 2, True, "1e3", "-4.00", " 4.00", "4.00.1", ""])
def test_money_refuses_anything_but_decimal_strings(value: object) -> None:
    with pytest.raises(mapping.MappingError):
        mapping.money(value, "amount")


def test_money_keeps_exact_decimal() -> None:
    assert mapping.money("0.10", "x") + mapping.money("0.20", "x") == Decimal("0.30")


def test_shipment_body() -> None:
    shipment = Shipment(
        shipment_id=9,
        source_order_id="BMP-1",
        carrier="DHL Express",
        tracking_number="JD0001",
        tracking_url="https://dhl.example/JD0001",
        shipped_at=datetime(2024, 3, 6, 9, 0, tzinfo=UTC),
        lines=[ShipmentLine(source_line_id="L1", sku="SKU", quantity=2, serial_numbers=["356789104512345"])],
    )
    body = mapping.shipment_body(shipment)
    assert body == {
        "tracking_number": "JD0001",
        "carrier": "DHL Express",
        "shipped_at": "2024-03-06T09:00:00.000000Z",
        "tracking_url": "https://dhl.example/JD0001",
        "lines": [{"line_id": "L1", "sku": "SKU", "quantity": 2, "serial_numbers": ["356789104512345"]}],
    }
    bare = mapping.shipment_body(shipment.model_copy(update={"lines": [], "tracking_url": None}))
    assert "lines" not in bare and "tracking_url" not in bare


def test_error_body() -> None:
    body = {"error": {"code": "tracking_already_recorded", "message": "Tracking\nX is   already recorded."}}
    assert mapping.error_code(body) == "tracking_already_recorded"
    assert mapping.error_message(body, "fallback") == "Tracking X is already recorded."
    assert mapping.error_message("<html>", "fallback") == "fallback"
    assert mapping.error_code({"error": "flat"}) is None


def test_account_name() -> None:
    assert mapping.account_name({"id": "s", "name": "Atelier Réemploi SAS"}) == "Atelier Réemploi SAS"
    with pytest.raises(mapping.MappingError):
        mapping.account_name({"id": "s"})


def test_every_field_of_the_shipping_and_billing_address_reaches_the_host_as_the_channel_sent_it() -> None:
    billing = {
        "first_name": "Ada",
        "last_name": "Kowalska",
        "company": "Kowalski Sp. z o.o.",
        "address1": "ul. Długa 1",
        "address2": "lok. 4",
        "city": "Gdańsk",
        "postal_code": "80-001",
        "province": "Pomorskie",
        "country_code": "pl",
        "phone": "+48 58 000000",
        "email": "ap@kowalski.example",
    }
    shipping = {**billing, "first_name": "", "last_name": "", "company": "", "address2": "", "province": "",
                "phone": "", "email": ""}  # fmt: skip
    result = mapping.order_or_bad(order(billing_address=billing, shipping_address=shipping))
    assert isinstance(result, ChannelOrder)
    assert result.billing_address is not None and result.billing_address.model_dump() == {
        "name": "Ada Kowalska", "company": "Kowalski Sp. z o.o.", "line1": "ul. Długa 1", "line2": "lok. 4",
        "city": "Gdańsk", "postal_code": "80-001", "region": "Pomorskie", "country": "PL",
        "phone": "+48 58 000000", "email": "ap@kowalski.example",
    }  # fmt: skip
    # empty strings are absent values, not blanks shown to staff
    assert result.shipping_address is not None and result.shipping_address.model_dump() == {
        "name": None, "company": None, "line1": "ul. Długa 1", "line2": None, "city": "Gdańsk",
        "postal_code": "80-001", "region": None, "country": "PL", "phone": None, "email": None,
    }  # fmt: skip


@pytest.mark.parametrize("key", ["address1", "postal_code", "phone"])
def test_an_address_field_that_is_not_text_sets_the_order_aside_naming_the_field(key: str) -> None:
    result = mapping.order_or_bad(order(shipping_address={**ORDER["shipping_address"], key: 12345}))
    assert isinstance(result, BadOrder) and f"shipping_address.{key}" in result.message
