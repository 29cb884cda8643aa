"""Seeded, plausible Amazon orders for the sandbox, shaped as the Orders API 2026-01-01 ``Order``
(stdlib only).

Each order is kept whole, every section of every ``includedData`` filled in; the sandbox shows
only the sections a request asks for. Amounts follow the model's own example: an item's ``ITEM``
proceeds are its unit price times the quantity, tax is a separate ``TAX`` breakdown, a promotion
a ``DISCOUNT`` breakdown (negative: it lowers the proceeds) and ``proceedsTotal`` the sum of the
breakdowns; the order's ``proceeds`` add the items' up by type.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any


@dataclass(frozen=True)
class Marketplace:
    id: str
    name: str
    currency: str
    country: str
    vat: str
    order_prefix: str


MARKETPLACES = {
    m.id: m
    for m in (
        Marketplace("A1PA6795UKMFR9", "Amazon.de", "EUR", "DE", "0.19", "302"),
        Marketplace("A13V1IB3VIYZZH", "Amazon.fr", "EUR", "FR", "0.20", "405"),
        Marketplace("A1F83G8C2ARO7P", "Amazon.co.uk", "GBP", "GB", "0.20", "203"),
    )
}
DEFAULT_MARKETPLACE = "A1PA6795UKMFR9"
PRODUCTS = [
    ("B08N5WRWNW", "IPH12-64-BLK", "Apple iPhone 12, 64 GB, Black (Refurbished)", "289.00"),
    ("B09G9FPHY6", "IPH13-128-BLU", "Apple iPhone 13, 128 GB, Blue (Refurbished)", "419.00"),
    ("B08VJ6N1KJ", "GS21-128-GRY", "Samsung Galaxy S21 5G, 128 GB, Phantom Grey (Refurbished)", "239.00"),
    ("B08N5M7S6K", "MBA-M1-256", "Apple MacBook Air 13-inch M1, 256 GB SSD (Refurbished)", "629.00"),
    ("B07XJ8C8F5", "USB-C-CABLE-2M", "USB-C to USB-C cable, 2 m, braided", "9.99"),
]
PEOPLE = ["Camille Durand", "Lukas Schmidt", "Emma Wilson", "Noah Martin", "Lena Fischer", "Oliver Brown"]
STREETS = {
    "DE": [("Berlin", "10115", "Invalidenstraße 12"), ("München", "80331", "Sendlinger Straße 7")],
    "FR": [("Lyon", "69002", "12 rue de la République"), ("Paris", "75011", "48 boulevard Voltaire")],
    "GB": [("London", "SW1A 1AA", "45 Oak Avenue"), ("Leeds", "LS1 4AP", "3 Park Row")],
}
#: (status, fulfilled by, weight) of a fresh account's orders: most to ship, some shipped,
#: some waiting for payment, some cancelled, and orders Amazon fulfils itself mixed in
MIX = [
    ("UNSHIPPED", "MERCHANT", 40), ("PARTIALLY_SHIPPED", "MERCHANT", 8), ("SHIPPED", "MERCHANT", 16),
    ("PENDING", "MERCHANT", 10), ("CANCELLED", "MERCHANT", 6),
    ("SHIPPED", "AMAZON", 12), ("UNSHIPPED", "AMAZON", 5), ("PENDING", "AMAZON", 3),
]  # fmt: skip
#: who collects VAT on the sandbox's marketplaces (ItemTaxCollection.responsibleParty)
FACILITATOR = "Amazon Services Europe S.a r.l."
CARRIERS = [("DHL", "DHL Paket"), ("UPS", "UPS Standard"), ("Royal Mail", "Tracked 48")]


def wire_time(value: datetime) -> str:
    """The API's timestamps: whole seconds, UTC, ``Z``."""
    return value.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def cents(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def money(value: Decimal, currency: str) -> dict[str, str]:
    """The model's ``Money``: the amount as a decimal string and an ISO 4217 code."""
    return {"amount": str(cents(value)), "currencyCode": currency}


class OrderFactory:
    def __init__(self, seed: int, marketplaces: tuple[str, ...] = (DEFAULT_MARKETPLACE,)):
        self.rng = random.Random(seed)
        self.marketplaces = marketplaces

    def history(self, n: int, now: datetime) -> list[dict[str, Any]]:
        """``n`` orders updated over the last ten days, at distinct whole seconds."""
        rng = self.rng
        stamps = sorted(rng.sample(range(300, 10 * 86400), n)) if n else []
        orders = []
        for offset in reversed(stamps):
            updated = (now - timedelta(seconds=offset)).replace(microsecond=0)
            created = updated - timedelta(minutes=rng.randrange(1, 900))
            status, by, _ = rng.choices(MIX, weights=[w for *_, w in MIX])[0]
            orders.append(self.order(created, updated, status, by, rng.choice(self.marketplaces)))
        return orders

    def order_id(self, marketplace: Marketplace) -> str:
        """Amazon's 3-7-7 order id."""
        return f"{marketplace.order_prefix}-{self.rng.randrange(10**6, 10**7):07d}-{self.rng.randrange(10**7):07d}"

    def order(
        self, created: datetime, updated: datetime, status: str = "UNSHIPPED", fulfilled_by: str = "MERCHANT",
        marketplace_id: str = DEFAULT_MARKETPLACE,
    ) -> dict[str, Any]:  # fmt: skip
        rng = self.rng
        market = MARKETPLACES[marketplace_id]
        cur, rate = market.currency, Decimal(market.vat)
        n_items = 2 if status == "PARTIALLY_SHIPPED" else rng.choice((1, 1, 1, 2))
        items = []
        for index, (asin, sku, title, base) in enumerate(rng.sample(PRODUCTS, n_items)):
            quantity = rng.choice((1, 1, 2))
            unit = cents(Decimal(base))
            item_total = unit * quantity
            shipping = Decimal("4.99") if index == 0 and rng.random() < 0.4 else Decimal("0")
            discount = cents(item_total * Decimal("0.05")) if rng.random() < 0.2 else Decimal("0")
            item_tax = cents((item_total - discount) * rate)
            ship_tax = cents(shipping * rate)
            breakdowns: list[dict[str, Any]] = [{"type": "ITEM", "subtotal": money(item_total, cur)}]
            if shipping:
                breakdowns.append({"type": "SHIPPING", "subtotal": money(shipping, cur)})
            tax_parts = [{"subtype": "ITEM", "value": money(item_tax, cur)}]
            if shipping:
                tax_parts.append({"subtype": "SHIPPING", "value": money(ship_tax, cur)})
            breakdowns.append(
                {"type": "TAX", "subtotal": money(item_tax + ship_tax, cur), "detailedBreakdowns": tax_parts}
            )
            item: dict[str, Any] = {
                "orderItemId": f"{rng.randrange(10**13, 10**14)}",
                "quantityOrdered": quantity,
                "product": {
                    "asin": asin,
                    "title": title,
                    "sellerSku": sku,
                    "condition": {"conditionType": "USED", "conditionSubtype": "VERY_GOOD"},
                    "price": {"unitPrice": money(unit, cur)},
                },
                "proceeds": {},
                "fulfillment": {"quantityFulfilled": 0, "quantityUnfulfilled": quantity},
                "tax": {"taxCollections": [{"model": "MARKETPLACE_FACILITATOR", "responsibleParty": FACILITATOR}]},
            }  # fmt: skip
            if discount:
                breakdowns.append({
                    "type": "DISCOUNT", "subtotal": money(-discount, cur),
                    "detailedBreakdowns": [{"subtype": "ITEM", "value": money(-discount, cur)}],
                })  # fmt: skip
                item["promotion"] = {"breakdowns": [{"promotionId": f"PROMO-{rng.randrange(1000, 9999)}"}]}
            total = sum((Decimal(b["subtotal"]["amount"]) for b in breakdowns), Decimal("0"))
            item["proceeds"] = {"proceedsTotal": money(total, cur), "breakdowns": breakdowns}
            items.append(item)
        city, postal, street = rng.choice(STREETS[market.country])
        name = rng.choice(PEOPLE)
        merchant = fulfilled_by == "MERCHANT"
        address: dict[str, Any] = {
            "name": name, "addressLine1": street, "city": city, "postalCode": postal,
            "countryCode": market.country, "addressType": "RESIDENTIAL",
        }  # fmt: skip
        if merchant:
            address["phone"] = f"+49 30 {rng.randrange(1000000, 9999999)}"  # suppressed for FBA orders
        buyer: dict[str, Any] = {"buyerName": name}
        if merchant:
            buyer["buyerEmail"] = f"{rng.randrange(10**9):x}@marketplace.{market.name.lower()}"
        order: dict[str, Any] = {
            "orderId": self.order_id(market),
            "createdTime": wire_time(created),
            "lastUpdatedTime": wire_time(updated),
            "programs": [],
            "salesChannel": {"channelName": "AMAZON", "marketplaceId": market.id, "marketplaceName": market.name},
            "buyer": buyer,
            "recipient": {"deliveryAddress": address},
            "fulfillment": {
                "fulfillmentStatus": "PENDING",
                "fulfilledBy": fulfilled_by,
                "fulfillmentServiceLevel": "STANDARD",
                "shipByWindow": {
                    "earliestDateTime": wire_time(created),
                    "latestDateTime": wire_time(created + timedelta(days=2)),
                },
                "deliverByWindow": {
                    "earliestDateTime": wire_time(created + timedelta(days=3)),
                    "latestDateTime": wire_time(created + timedelta(days=5)),
                },
            },  # fmt: skip
            "orderItems": items,
        }
        if merchant:
            order["packages"] = []
        sum_proceeds(order)
        if status == "CANCELLED":
            cancel(order, "BUYER")
        elif status in ("UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED"):
            order["fulfillment"]["fulfillmentStatus"] = "UNSHIPPED"
            to_ship = items[:1] if status == "PARTIALLY_SHIPPED" else items
            if merchant and status != "UNSHIPPED":
                carrier, service = rng.choice(CARRIERS)
                ship(order, "1", carrier, service, f"00340434{rng.randrange(10**10, 10**11)}", updated,
                     [(i["orderItemId"], i["quantityOrdered"]) for i in to_ship])  # fmt: skip
            elif not merchant and status == "SHIPPED":
                for item in items:  # Amazon ships its own; no package is shown for FBA orders
                    item["fulfillment"] = {"quantityFulfilled": item["quantityOrdered"], "quantityUnfulfilled": 0}
                order["fulfillment"]["fulfillmentStatus"] = "SHIPPED"
        return order


def sum_proceeds(order: dict[str, Any]) -> None:
    """The order's ``proceeds``: its items' breakdowns added up by type, and the grand total."""
    totals: dict[str, Decimal] = {}
    currency = order["orderItems"][0]["product"]["price"]["unitPrice"]["currencyCode"]
    for item in order["orderItems"]:
        for part in item["proceeds"]["breakdowns"]:
            totals[part["type"]] = totals.get(part["type"], Decimal("0")) + Decimal(part["subtotal"]["amount"])
    order["proceeds"] = {
        "grandTotal": money(sum(totals.values(), Decimal("0")), currency),
        "breakdowns": [{"type": kind, "subtotal": money(value, currency)} for kind, value in totals.items()],
    }


def cancel(order: dict[str, Any], requester: str) -> None:
    order["fulfillment"]["fulfillmentStatus"] = "CANCELLED"
    for item in order["orderItems"]:
        cancel_item(item, requester)


def cancel_item(item: dict[str, Any], requester: str) -> None:
    """One item cancelled: nothing of it is left to ship."""
    item["fulfillment"] = {"quantityFulfilled": 0, "quantityUnfulfilled": 0}
    item["cancellation"] = {
        "cancellationRequest": {"requester": "BUYER", "cancelReason": "Changed mind about purchase"},
        "cancellationExecution": {"cancelledBy": requester, "cancelReason": "Buyer requested cancellation"},
    }


def ship(
    order: dict[str, Any], reference: str, carrier: str, service: str | None, tracking: str, when: datetime,
    lines: list[tuple[str, int]],
) -> None:  # fmt: skip
    """Record one package of a merchant-fulfilled order and move its fulfillment status on."""
    package: dict[str, Any] = {
        "packageReferenceId": reference,
        "createdTime": wire_time(when),
        "packageStatus": {"status": "SHIPPED"},
        "carrier": carrier,
        "shipTime": wire_time(when),
        "trackingNumber": tracking,
        "packageItems": [{"orderItemId": item_id, "quantity": quantity} for item_id, quantity in lines],
    }
    if service:
        package["shippingService"] = service
    order["packages"].append(package)
    items = {i["orderItemId"]: i for i in order["orderItems"]}
    for item_id, quantity in lines:
        done = items[item_id]["fulfillment"]
        done["quantityFulfilled"] += quantity
        done["quantityUnfulfilled"] -= quantity
    left = sum(i["fulfillment"]["quantityUnfulfilled"] for i in order["orderItems"])
    order["fulfillment"]["fulfillmentStatus"] = "SHIPPED" if left == 0 else "PARTIALLY_SHIPPED"
