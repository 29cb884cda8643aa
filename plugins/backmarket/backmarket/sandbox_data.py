"""Seeded, plausible Back Market orders for the sandbox (stdlib only)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

PRODUCTS = [
    ("IPH12-64-BLK", "iPhone 12 64 GB - Black - Unlocked", "329.00"),
    ("IPH13-128-BLU", "iPhone 13 128 GB - Blue - Unlocked", "459.00"),
    ("GS21-128-GRY", "Galaxy S21 5G 128 GB - Phantom Grey", "279.00"),
    ("MBA-M1-256", 'MacBook Air 13" M1 (2020) 256 GB SSD - Space Grey', "689.00"),
    ("IPAD9-64-SLV", 'iPad 10.2" (2021) 64 GB - Silver - Wi-Fi', "249.00"),
    ("AIRPODS-PRO", "AirPods Pro (1st gen) with MagSafe case", "129.00"),
]
GRADES = [("Excellent", "1.00"), ("Very good", "0.92"), ("Good", "0.85")]
PEOPLE = [("Camille", "Durand"), ("Lukas", "Schmidt"), ("Giulia", "Rossi"), ("Noah", "Martin"), ("Emma", "García")]
CITIES = [("Lyon", "69002", "FR"), ("Berlin", "10115", "DE"), ("Milano", "20121", "IT"), ("Madrid", "28013", "ES")]
VAT = {"FR": "0.20", "DE": "0.19", "IT": "0.22", "ES": "0.21"}
#: order states a fresh account holds, with weights: mostly to accept or ship, some shipped, and
#: some the listing never shows (0: payment being verified, 8: not paid)
STATE_WEIGHTS = {1: 50, 3: 25, 9: 15, 0: 5, 8: 5}
#: the orderline state that goes with each order state
LINE_STATE = {0: 0, 1: 1, 3: 2, 8: 7, 9: 3, 10: 8}


def wire_time(value: datetime) -> str:
    """The API's timestamps: whole seconds with an offset."""
    return value.astimezone(UTC).replace(microsecond=0).isoformat()


def money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


class OrderFactory:
    def __init__(self, seed: int, first_id: int = 40_000_001):
        self.rng = random.Random(seed)
        self.next_id = first_id
        self.next_line = first_id * 10

    def history(self, n: int, now: datetime) -> list[dict[str, Any]]:
        """``n`` orders modified over the last ten days, at distinct whole seconds."""
        orders = []
        rng = self.rng
        stamps = sorted(rng.sample(range(60, 10 * 86400), n)) if n else []
        for offset in reversed(stamps):
            updated = (now - timedelta(seconds=offset)).replace(microsecond=0)
            created = updated - timedelta(minutes=rng.randrange(1, 600))
            state = rng.choices(list(STATE_WEIGHTS), weights=list(STATE_WEIGHTS.values()))[0]
            orders.append(self.order(created, updated, state))
        return orders

    def order(self, created: datetime, updated: datetime, state: int = 1) -> dict[str, Any]:
        rng = self.rng
        order_id = self.next_id
        self.next_id += 1
        city, postal, country = rng.choice(CITIES)
        rate = Decimal(VAT[country])
        lines: list[dict[str, Any]] = []
        for _ in range(rng.choice((1, 1, 1, 2))):
            sku, title, base = rng.choice(PRODUCTS)
            grade, factor = rng.choice(GRADES)
            price = Decimal(base) * Decimal(factor)
            quantity = 1 if len(lines) == 0 and rng.random() < 0.7 else rng.choice((1, 2))
            line_total = Decimal(money(price)) * quantity
            lines.append(
                {
                    "id": self.next_line,
                    "listing": sku,
                    "product": f"{title} - {grade}",
                    "quantity": quantity,
                    "price": money(price),  # unit price, VAT included
                    "shipping_price": "0.00",
                    # the VAT contained in the line's tax-inclusive price
                    "sales_taxes": money(line_total - line_total / (1 + rate)),
                    "currency": "EUR",
                    "state": LINE_STATE[state],
                    "imei": None,
                    "serial_number": None,
                }
            )
            self.next_line += 1
        shipping = Decimal(rng.choice(("0.00", "0.00", "9.90")))
        if lines[0]["quantity"] == 1:
            lines[0]["shipping_price"] = money(shipping)  # per unit: the first line carries it
        items = sum((Decimal(line["price"]) * line["quantity"] for line in lines), Decimal("0"))
        taxes = sum((Decimal(line["sales_taxes"]) for line in lines), Decimal("0"))
        first, last = rng.choice(PEOPLE)
        address = {
            "first_name": first,
            "last_name": last,
            "company": None if rng.random() < 0.7 else "Atelier Numérique SARL",
            "street": f"{rng.randrange(1, 200)} rue de la République",
            "street2": None,
            "postal_code": postal,
            "city": city,
            "state_or_province": None,
            "country": country,
            "phone": f"+33 6 {rng.randrange(10000000, 99999999)}",
            "email": f"{first.lower()}.{last.lower()}@example.com".replace("í", "i"),
        }
        order: dict[str, Any] = {
            "order_id": order_id,
            "state": state,
            "date_creation": wire_time(created),
            "date_modification": wire_time(updated),
            "date_payment": wire_time(created),
            "date_shipping": None,
            "currency": "EUR",
            "price": money(items),  # the items, VAT included, without shipping
            "shipping_price": money(shipping),
            "sales_taxes": money(taxes),
            "country_code": country.lower() + "-" + country.lower(),
            "payment_method": rng.choice(("CARD", "PAYPAL", "KLARNA")),
            "shipping_address": address,
            "billing_address": dict(address),
            "orderlines": lines,
            "tracking_number": None,
            "tracking_url": None,
            "shipper": None,
        }
        if state == 9:
            order["tracking_number"] = f"1Z{rng.randrange(10**13, 10**14)}"
            order["shipper"] = "UPS"
            order["date_shipping"] = order["date_modification"]
        return order
