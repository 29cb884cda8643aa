"""Money as channels send it: signed and currency-coded amounts, one currency per order, line
totals and discounts, from the readers of ``plugin_spec.wire`` through a real import."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError
from spy_plugin import SpyChannel

from host.channel import plugins
from plugin_spec import ChannelOrder, OrderLine, hookimpl, wire
from plugin_spec.wire import Amount, Currencies, MappingError, SignedMoneyText, amount, money

# -- money(signed=...) ---------------------------------------------------------------------------


def test_a_negative_amount_is_read_only_when_the_field_is_signed():
    assert money("-2.00", "discount", signed=True) == Decimal("-2.00")
    assert money("2.00", "discount", signed=True) == Decimal("2.00")
    with pytest.raises(MappingError, match="discount must not be negative"):
        money("-2.00", "discount")
    with pytest.raises(MappingError, match="discount is not a decimal amount"):
        money("-two", "discount")


@pytest.mark.parametrize("junk", ["--2", "-", "-.50", "- 2", "+2.00", "-1e3", "-2,00", "", "-12345678901234567"])
def test_a_signed_amount_refuses_what_is_not_one_decimal_number(junk):
    with pytest.raises(MappingError, match="discount is not a decimal amount"):
        money(junk, "discount", signed=True)


@pytest.mark.parametrize("number", [-2.0, 2.5, -2, True, None, Decimal("-2.00")])
def test_a_signed_amount_is_still_a_string_never_a_number(number):
    with pytest.raises(MappingError, match="discount must be a decimal string"):
        money(number, "discount", signed=True)


def test_signed_money_text_reads_a_leading_minus_in_the_core_and_refuses_numbers():
    adapter = TypeAdapter(SignedMoneyText)
    assert adapter.validate_json('"-2.00"') == Decimal("-2.00")
    assert adapter.validate_json('"12.3456"') == Decimal("12.3456")
    for junk in ("-2.00", '"+2"', '"-1e3"', '"--2"', '"-2.12345"', '"-\u0662"'):
        with pytest.raises(ValidationError):
            adapter.validate_json(junk)


# -- amount() ----------------------------------------------------------------------------------


def test_a_currency_coded_amount_is_read_with_either_channel_s_keys():
    assert amount({"value": "12.30", "currency": "EUR"}, "total") == Amount(Decimal("12.30"), "EUR")
    value, currency = amount(
        {"amount": "-2.00", "currencyCode": "GBP"}, "promotion", value_key="amount", currency_key="currencyCode",
        signed=True,
    )  # fmt: skip
    assert (value, currency) == (Decimal("-2.00"), "GBP")


@pytest.mark.parametrize(
    "raw,named",
    [
        (None, "total is missing"),
        ("12.30", "total is not an object but str"),
        ({"value": 12.3, "currency": "EUR"}, "total.value must be a decimal string, got float"),
        ({"value": "12.30"}, "total.currency is not an ISO 4217 currency code"),
        ({"value": "12.30", "currency": "eur"}, "total.currency is not an ISO 4217 currency code"),
        ({"value": "12.30", "currency": 978}, "total.currency is not an ISO 4217 currency code"),
        ({"value": "-12.30", "currency": "EUR"}, "total.value must not be negative"),
        ({"value": "12.3.0", "currency": "EUR"}, "total.value is not a decimal amount"),
    ],
)
def test_a_malformed_amount_is_refused_naming_the_field_and_key(raw, named):
    with pytest.raises(MappingError, match=named.replace(".", r"\.")):
        amount(raw, "total")


# -- Currencies ----------------------------------------------------------------------------------


def test_amounts_of_one_order_in_one_currency_give_that_currency():
    currencies = Currencies()
    assert currencies.amount({"value": "10.00", "currency": "EUR"}, "subtotal") == Decimal("10.00")
    assert currencies.amount({"value": "-1.00", "currency": "EUR"}, "discount", signed=True) == Decimal("-1.00")
    assert currencies.code == "EUR"


def test_an_amount_in_a_second_currency_is_refused_naming_both_currencies_and_fields():
    currencies = Currencies()
    currencies.amount({"value": "10.00", "currency": "EUR"}, "subtotal")
    with pytest.raises(MappingError) as refused:
        currencies.amount({"value": "2.00", "currency": "USD"}, "lineItems[1].total")
    assert str(refused.value) == "lineItems[1].total is in USD but subtotal is in EUR: an order must have one currency"


def test_an_order_that_names_its_currency_refuses_amounts_in_another():
    currencies = Currencies("GBP", "currency")
    with pytest.raises(MappingError, match="total is in EUR but currency is in GBP"):
        currencies.amount({"value": "1.00", "currency": "EUR"}, "total")
    with pytest.raises(MappingError, match="currency is not an ISO 4217 currency code"):
        Currencies("pounds")


def test_an_order_without_any_currency_coded_amount_has_no_currency():
    with pytest.raises(MappingError, match="no amount with a currency"):
        _ = Currencies().code


# -- the models ----------------------------------------------------------------------------------

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def channel_order(*lines: OrderLine, **fields: Any) -> ChannelOrder:
    values: dict[str, Any] = {
        "source_order_id": "O-1", "created_at": T0, "updated_at": T0, "currency": "EUR",
        "subtotal": Decimal("10.00"), "tax_total": Decimal("0"), "grand_total": Decimal("10.00"), **fields,
    }  # fmt: skip
    return ChannelOrder(**values, lines=list(lines))


def line(**fields: Any) -> OrderLine:
    return OrderLine(**{"source_line_id": "1", "sku": "A", "title": "A", "quantity": 3, **fields})


def test_a_line_may_give_its_total_without_a_unit_price_and_keeps_it_exactly():
    order = channel_order(line(line_total=Decimal("10.00")))
    assert order.lines[0].line_total == Decimal("10.00") and order.lines[0].unit_price is None


def test_a_line_with_neither_unit_price_nor_line_total_is_refused():
    with pytest.raises(ValidationError, match="line 1 has neither unit_price nor line_total"):
        channel_order(line())


@pytest.mark.parametrize("unit", ["3.33", "3.34", "3.3333", "3.3334", "3"])
def test_a_unit_price_rounded_from_the_line_total_is_accepted_beside_it(unit):
    channel_order(line(unit_price=Decimal(unit), line_total=Decimal("10.00")))


@pytest.mark.parametrize("unit", ["3.32", "3.35", "3.3330", "3.3337", "2.50"])
def test_a_unit_price_further_from_the_line_total_than_its_rounding_is_refused(unit):
    with pytest.raises(ValidationError, match="does not match line_total 10.00"):
        channel_order(line(unit_price=Decimal(unit), line_total=Decimal("10.00")))


def test_a_line_with_only_a_unit_price_is_valid_as_before():
    assert channel_order(line(unit_price=Decimal("3.33"))).lines[0].line_total is None


@pytest.mark.parametrize("where", ["line", "order"])
def test_a_discount_is_the_amount_taken_off_and_never_negative(where):
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        if where == "line":
            line(unit_price=Decimal("1.00"), discount=Decimal("-1.00"))
        else:
            channel_order(line(unit_price=Decimal("1.00")), discount_total=Decimal("-1.00"))
    with pytest.raises(ValidationError, match="never a float"):
        channel_order(line(unit_price=Decimal("1.00")), discount_total=1.0)


def test_an_adjustment_may_be_negative():
    order = channel_order(line(unit_price=Decimal("1.00")), adjustment_total=Decimal("-0.50"))
    assert order.adjustment_total == Decimal("-0.50")


# -- through a real import -------------------------------------------------------------------


def ebay_like(order_id: str, *, line_currency: str = "EUR") -> dict[str, Any]:
    """An order shaped as eBay sends one: currency-coded amounts, discounts negative, line totals."""
    when = (datetime.now(UTC) - timedelta(hours=1)).isoformat()

    def eur(value: str, currency: str = "EUR") -> dict[str, str]:
        return {"value": value, "currency": currency}

    return {
        "orderId": order_id, "creationDate": when, "lastModifiedDate": when,
        "pricingSummary": {
            "priceSubtotal": eur("33.33"), "priceDiscount": eur("-3.00"), "deliveryCost": eur("4.90"),
            "tax": eur("0.00"), "adjustment": eur("-0.23"), "total": eur("35.00"),
        },
        "lineItems": [
            {"lineItemId": "1", "sku": "CASE", "title": "Phone case", "quantity": 3,
             "lineItemCost": eur("33.33", line_currency), "discount": eur("-1.00", line_currency)},
        ],
    }  # fmt: skip


def ebay_order(raw: dict[str, Any]) -> ChannelOrder:
    """A mapping as a plugin writes one with the readers: one Currencies for the whole order."""
    money_of = Currencies()
    summary = raw["pricingSummary"]
    lines = [
        OrderLine(
            source_line_id=item["lineItemId"],
            sku=item["sku"],
            title=item["title"],
            quantity=item["quantity"],
            line_total=money_of.amount(item["lineItemCost"], f"lineItems[{i}].lineItemCost"),
            discount=-money_of.amount(item["discount"], f"lineItems[{i}].discount", signed=True),
        )
        for i, item in enumerate(raw["lineItems"])
    ]
    return ChannelOrder(
        source_order_id=wire.plain_id(raw["orderId"], "orderId"),
        created_at=wire.timestamp(raw["creationDate"], "creationDate"),
        updated_at=wire.timestamp(raw["lastModifiedDate"], "lastModifiedDate"),
        subtotal=money_of.amount(summary["priceSubtotal"], "pricingSummary.priceSubtotal"),
        discount_total=-money_of.amount(summary["priceDiscount"], "pricingSummary.priceDiscount", signed=True),
        shipping_total=money_of.amount(summary["deliveryCost"], "pricingSummary.deliveryCost"),
        tax_total=money_of.amount(summary["tax"], "pricingSummary.tax"),
        adjustment_total=money_of.amount(summary["adjustment"], "pricingSummary.adjustment", signed=True),
        grand_total=money_of.amount(summary["total"], "pricingSummary.total"),
        currency=money_of.code,
        lines=lines,
    )


class EbayLike(SpyChannel):
    def __init__(self, raw_orders: list[dict[str, Any]]):
        super().__init__(name="ebay_like")
        self.raw_orders = raw_orders

    @hookimpl
    def cartplugin_download_orders(self, settings, since, unfulfilled_only):
        for raw in self.raw_orders:
            yield wire.order_or_bad(
                raw, ebay_order, id_field="orderId", updated_field="lastModifiedDate", channel="eBay-like"
            )


@pytest.fixture
def ebay_company(run):
    channel = EbayLike([ebay_like("EB-1"), ebay_like("EB-MIXED", line_currency="USD"), ebay_like("EB-3")])
    plugins.register(channel, name="ebay_like")
    try:
        run("companies", "add", "Bay Co")
        run("website-settings", "Bay Co", "--store-plugin", "ebay_like", "--allow-order-download")
        run("cart-settings", "Bay Co", "--set", "token=abcd1234", "--set", "commission_percent=10")
        run("test-settings", "Bay Co")
        yield "Bay Co"
    finally:
        plugins.unregister(channel)


def test_an_order_mixing_currencies_is_set_aside_naming_them_and_the_rest_import(run, ebay_company):
    job = run.json("import-orders", ebay_company)
    assert job["status"] == "Partial Success" and job["summary"]["bad_orders"] == 1
    reasons = [entry["message"] for entry in job["log"] if "EB-MIXED" in entry["message"]]
    # the mapping reads the lines first: the order-level amount is the one named in a second currency
    assert reasons and "pricingSummary.priceSubtotal is in EUR but lineItems[0].lineItemCost is in USD" in reasons[0]
    assert [o["source_order_id"] for o in run.json("orders", "list")] == ["EB-1", "EB-3"]


def test_line_totals_discounts_and_the_adjustment_are_stored_as_the_channel_sent_them(run, ebay_company):
    run("import-orders", ebay_company)
    shown = run.json("orders", "show", "EB-1")
    assert (shown["subtotal"], shown["discount_total"], shown["adjustment_total"], shown["grand_total"]) == (
        "33.33", "3.00", "-0.23", "35.00",
    )  # fmt: skip
    # the line total of three units stays 33.33: no unit price is made up by dividing it
    assert [(ln["line_total"], ln["unit_price"], ln["discount"]) for ln in shown["lines"]] == [("33.33", None, "1.00")]
    # commission is a percentage of the channel's grand total, the discount already taken off
    assert (shown["commission"], shown["total_cost"]) == ("3.50", "38.50")


def test_orders_show_prints_the_discount_and_the_line_total(run, ebay_company):
    run("import-orders", ebay_company)
    text = run("orders", "show", "EB-1").output
    assert "subtotal 33.33, discount -3.00, shipping 4.90, tax 0.00, adjustment -0.23, grand total 35.00 EUR" in text
    assert "line CASE x3 = 33.33 - discount 1.00 (tax 0)" in text
