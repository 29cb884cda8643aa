"""A listing page read whole from its bytes (``mapping.read_page``, pydantic's core) against the
order-by-order mapping it stands in for: never laxer, and the same orders when both accept."""

from __future__ import annotations

import copy
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from backmarket_pro import mapping
from backmarket_pro.client import BackMarketProClient
from backmarket_pro.sandbox import Sandbox
from backmarket_pro.sandbox_data import OrderFactory
from backmarket_pro.settings import BackMarketProSettings
from plugin_spec import BadOrder, ChannelOrder

NOW = datetime.now(UTC)


def page_bytes(orders: list[Any], next_link: str | None = None) -> bytes:
    return json.dumps({"results": orders, "next": next_link, "count": len(orders)}).encode()


def read_whole(orders: list[Any]) -> list[ChannelOrder] | None:
    """The orders ``read_page`` makes of a page, or None when it refuses the page."""
    try:
        items, _ = mapping.read_page(page_bytes(orders))
    except ValueError:
        return None
    return items


def one_by_one(orders: list[Any]) -> list[ChannelOrder | BadOrder]:
    return [mapping.order_or_bad(raw) for raw in json.loads(page_bytes(orders))["results"]]


def same_order(fast: ChannelOrder, slow: ChannelOrder | BadOrder) -> bool:
    return (
        isinstance(slow, ChannelOrder)
        and fast.model_dump() == slow.model_dump()
        and fast.model_dump_json() == slow.model_dump_json()
        and [type(line.unit_price) for line in fast.lines] == [type(line.unit_price) for line in slow.lines]
    )


def test_a_valid_page_is_read_whole_into_the_same_orders_as_one_by_one() -> None:
    orders = OrderFactory(11).history(300, NOW)
    fast = read_whole(orders)
    assert fast is not None, "a page of valid orders is read whole"
    assert all(isinstance(order, ChannelOrder) for order in fast)
    slow = one_by_one(orders)
    assert all(same_order(a, b) for a, b in zip(fast, slow, strict=True))
    # what the host relies on: UTC instants, Decimal money kept exactly as sent (4-decimal tax too)
    assert all(order.updated_at.tzinfo is UTC for order in fast)
    four = dict(orders[0], total_tax="149.7125")
    (order,) = read_whole([four]) or []
    assert str(order.tax_total) == "149.7125"


#: values that break one field or another of the contract, and values that are fine somewhere
ODD_VALUES: list[Any] = [
    None, "", " ", "x", "..", ".", "...", ".a", "a/b", "a\\b", "a\x00b", "a\x85b", "é", "Ø" * 1001, "A" * 201,
    0, 1, -1, 2, 1.5, 2.0, True, False, [], {}, [1], {"a": 1},
    "12.30", "12.30\n", "1e3", "-4.00", "+4.00", " 4.00", "4.", ".5", "4.00001", "NaN", "١٢", "0012.3",
    "123456789012345.00", "12345678901234.0000",
    "2024-03-05T09:58:01Z", "2024-03-05T09:58:01", "2024-03-05T09:58:01+01:00", "1999-12-31T23:59:59Z",
    "2999-01-01T00:00:00Z", "1700000000", "2024-03-05", "EUR", "eur", "EURO", "EUR\n",
]  # fmt: skip
ORDER_KEYS = [
    "id", "created_at", "updated_at", "currency", "financial_status", "fulfillment_status", "cancelled",
    "subtotal_price", "shipping_price", "total_tax", "total_price", "buyer", "shipping_address",
    "billing_address", "line_items", "payment_status", "awaiting_acceptance", "lines", "source_order_id",
]  # fmt: skip
ADDRESS_KEYS = ["first_name", "last_name", "country_code", "company", "address1", "city", "email", "name"]
LINE_KEYS = ["id", "sku", "title", "quantity", "price", "tax", "source_line_id", "unit_price"]
BUYER_KEYS = ["company", "vat_number", "email"]


def mutations(base: dict[str, Any], rng: random.Random) -> list[dict[str, Any]]:
    """Copies of ``base`` with one or two fields (top level, buyer, address, line) changed or removed."""
    out = []

    def changed(path: list[Any], value: Any, remove: bool = False) -> dict[str, Any]:
        data = copy.deepcopy(base)
        target = data
        for step in path[:-1]:
            target = target[step]
        if remove:
            target.pop(path[-1], None)
        else:
            target[path[-1]] = value
        return data

    paths: list[list[Any]] = [[key] for key in ORDER_KEYS]
    paths += [["buyer", key] for key in BUYER_KEYS]
    paths += [["shipping_address", key] for key in ADDRESS_KEYS]
    paths += [["line_items", 0, key] for key in LINE_KEYS]
    for path in paths:
        if path[0] in ("buyer", "shipping_address") and not isinstance(base.get(path[0]), dict):
            continue
        out.append(changed(path, None, remove=True))
        for value in rng.sample(ODD_VALUES, 12):
            out.append(changed(path, value))
    # duplicate line ids, a line that is not an object, two changes at once
    twin = copy.deepcopy(base)
    twin["line_items"].append(dict(twin["line_items"][0]))
    out += [twin, changed(["line_items", 0], "not a line")]
    for _ in range(40):
        first, second = rng.sample(paths, 2)
        data = copy.deepcopy(base)
        for path in (first, second):
            target = data
            try:
                for step in path[:-1]:
                    target = target[step]
                target[path[-1]] = rng.choice(ODD_VALUES)
            except (KeyError, IndexError, TypeError):
                pass
        out.append(data)
    return out


def test_the_page_reader_is_never_laxer_than_the_mapping_and_agrees_where_both_accept() -> None:
    rng = random.Random(20261127)
    bases = OrderFactory(3).history(12, NOW)
    accepted = refused = 0
    for base in bases:
        for mutated in mutations(base, rng):
            fast = read_whole([mutated])
            (slow,) = one_by_one([mutated])
            if fast is None:
                refused += 1
                continue
            accepted += 1
            assert same_order(fast[0], slow), (mutated, slow)
    # both kinds occur, so the comparison is not vacuous
    assert accepted > 500 and refused > 1000, (accepted, refused)


@pytest.mark.parametrize(
    "change",
    [
        {"awaiting_acceptance": True},  # not the channel's to set: the mapping never reads it
        {"payment_status": "Unpaid"},
        {"lines": []},
        {"source_order_id": "OTHER"},
    ],
)
def test_keys_the_mapping_never_reads_change_nothing(change: dict[str, Any]) -> None:
    base = OrderFactory(5).history(1, NOW)[0]
    fast = read_whole([dict(base, **change)])
    assert fast is not None and same_order(fast[0], one_by_one([base])[0])


#: changes at the edges of what the page model does outside the core's types: an address's name
#: (first + last) and upper-cased country still within the length limit, the buyer's shape
#: (its fields are read by path), "" as no value, keys the mapping never reads
EDGE_CHANGES: list[tuple[list[Any], Any]] = [
    (["shipping_address"], {"first_name": "F" * 500, "last_name": "L" * 500, "country_code": "fr"}),
    (["shipping_address"], {"first_name": "F" * 499, "last_name": "L" * 500}),
    (["shipping_address"], {"first_name": None, "last_name": "L" * 1000}),
    (["shipping_address", "first_name"], ""),
    (["shipping_address", "last_name"], ""),
    (["shipping_address", "country_code"], "ß" * 500),
    (["shipping_address", "country_code"], "ß" * 501),
    (["shipping_address", "country_code"], "ﬀ"),
    (["shipping_address", "country_code"], "de"),
    (["shipping_address", "country_code"], ""),
    (["shipping_address", "province"], ""),
    (["shipping_address", "phone"], 5),
    (["billing_address"], []),
    (["billing_address"], "x"),
    (["billing_address"], {}),
    (["buyer"], []),
    (["buyer"], [{"company": "x"}]),
    (["buyer"], "company"),
    (["buyer"], {}),
    (["buyer"], None),
    (["buyer", "company"], ""),
    (["buyer", "company"], "C" * 1001),
    (["buyer", "email"], ["a@b"]),
    (["financial_status"], ""),
    (["fulfillment_status"], False),
    (["cancelled"], None),
    (["cancelled"], 0),
    (["awaiting_acceptance"], "yes"),
    (["payment_status"], None),
]


@pytest.mark.parametrize(("path", "value"), EDGE_CHANGES)
def test_the_page_reader_is_never_laxer_at_the_edges_of_its_python(path: list[Any], value: Any) -> None:
    base = OrderFactory(17).history(1, NOW)[0]
    base["shipping_address"]["first_name"], base["shipping_address"]["last_name"] = "Ada", "Lovelace"
    target = base
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    fast = read_whole([base])
    (slow,) = one_by_one([base])
    assert fast is None or same_order(fast[0], slow), slow


def test_a_page_with_one_bad_order_is_read_order_by_order_and_only_that_order_is_bad() -> None:
    orders = OrderFactory(13).history(30, NOW)
    orders[7] = dict(orders[7], total_price=937.61)
    assert read_whole(orders) is None
    slow = one_by_one(orders)
    bad = [o for o in slow if isinstance(o, BadOrder)]
    assert len(bad) == 1 and bad[0].source_order_id == orders[7]["id"]
    assert "total_price must be a decimal string" in bad[0].message


def test_the_client_reads_good_pages_whole_and_the_page_with_a_bad_order_one_by_one(
    sandbox: Sandbox, settings: BackMarketProSettings
) -> None:
    spoiled = sandbox.set_faults(malformed_order=True)["malformed_order"]
    with BackMarketProClient(settings, page_size=10) as client:
        items = list(client.iter_orders())
    pages = [items[i : i + 10] for i in range(0, len(items), 10)]
    assert len(pages) > 2
    for page in pages:
        if any(isinstance(item, dict) and item["id"] == spoiled for item in page):
            assert all(isinstance(item, dict) for item in page)  # read the plain way
        else:
            assert all(isinstance(item, ChannelOrder) for item in page)  # read whole, from bytes
    assert sum(any(isinstance(item, dict) for item in page) for page in pages) == 1


def test_the_plugin_yields_the_bad_order_of_a_page_read_whole_as_a_bad_order_and_imports_the_rest(
    sandbox: Sandbox, settings: BackMarketProSettings
) -> None:
    from backmarket_pro import plugin

    spoiled = sandbox.set_faults(malformed_order=True)["malformed_order"]
    orders = list(plugin.cartplugin_download_orders(settings=settings, since=None, unfulfilled_only=True))
    bad = [o for o in orders if isinstance(o, BadOrder)]
    assert [b.source_order_id for b in bad] == [spoiled] and "total_price" in bad[0].message
    good = [o for o in orders if isinstance(o, ChannelOrder)]
    assert len(good) == len(orders) - 1 and all(o.updated_at <= NOW + timedelta(days=1) for o in good)
