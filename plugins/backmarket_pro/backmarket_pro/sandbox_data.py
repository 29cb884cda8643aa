"""Deterministic, realistic Back Market Pro orders for the sandbox (refurbished B2B electronics).

Only the sandbox uses this module. Given the same seed and the same "now", the same orders come
out, in the wire shape described in ``docs/backmarket-pro-api.md``. Amounts are consistent:
``subtotal_price + shipping_price + total_tax == total_price``, each line's ``tax`` is its own
``price * quantity * rate`` rounded to cents, and ``total_tax`` is the lines' tax plus the tax on
shipping. Intra-EU B2B orders with a VAT number are sometimes reverse-charged (tax 0.00).
"""

from __future__ import annotations

import random
import unicodedata
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")

#: currency -> (units per EUR, buyer countries that pay in it)
CURRENCIES: dict[str, tuple[Decimal, tuple[str, ...]]] = {
    "EUR": (Decimal("1"), ("FR", "DE", "ES", "IT", "NL", "PT", "BE", "AT")),
    "GBP": (Decimal("0.86"), ("GB",)),
    "USD": (Decimal("1.09"), ("US", "BR")),
    "SEK": (Decimal("11.40"), ("SE",)),
    "PLN": (Decimal("4.31"), ("PL",)),
    "DKK": (Decimal("7.46"), ("DK",)),
}
CURRENCY_WEIGHTS = {"EUR": 55, "GBP": 12, "USD": 10, "SEK": 9, "PLN": 8, "DKK": 6}

VAT_RATE = {
    "FR": "0.20", "DE": "0.19", "ES": "0.21", "IT": "0.22", "NL": "0.21", "PT": "0.23",
    "BE": "0.21", "AT": "0.20", "GB": "0.20", "US": "0", "BR": "0", "SE": "0.25",
    "PL": "0.23", "DK": "0.25",
}  # fmt: skip
EU = {"FR", "DE", "ES", "IT", "NL", "PT", "BE", "AT", "SE", "PL", "DK"}

CITIES: dict[str, tuple[tuple[str, str, str | None], ...]] = {
    "FR": (("Paris", "75011", None), ("Besançon", "25000", None), ("Lyon", "69003", None)),
    "DE": (("München", "80331", "Bayern"), ("Köln", "50667", "Nordrhein-Westfalen"), ("Düsseldorf", "40213", None)),
    "ES": (("Málaga", "29001", "Andalucía"), ("A Coruña", "15001", "Galicia")),
    "IT": (("Milano", "20121", "MI"), ("Forlì", "47121", "FC")),
    "NL": (("Amsterdam", "1012 AB", None), ("Den Haag", "2511 BT", None)),
    "PT": (("Lisboa", "1100-148", None), ("Porto", "4000-322", None)),
    "BE": (("Liège", "4000", None), ("Gent", "9000", None)),
    "AT": (("Wien", "1010", None),),
    "GB": (("London", "EC1A 1BB", None), ("Manchester", "M1 1AE", None)),
    "US": (("New York", "10001", "NY"), ("Austin", "78701", "TX")),
    "BR": (("São Paulo", "01310-100", "SP"),),
    "SE": (("Göteborg", "411 04", None), ("Malmö", "211 20", None)),
    "PL": (("Łódź", "90-001", None), ("Kraków", "30-001", None)),
    "DK": (("København", "1050", None), ("Århus", "8000", None)),
}
STREETS = (
    "12 rue de la Réparation", "Hauptstraße 7", "Calle Mayor 23", "Via Roma 5", "Keizersgracht 101",
    "Rua Augusta 44", "Kungsgatan 9", "ul. Piotrkowska 88", "221B Baker Street", "500 Congress Ave",
    "Avenida Paulista 1578", "Strøget 3", "Mariahilfer Straße 45",
)  # fmt: skip
PEOPLE = (
    ("Zoë", "Müller"), ("José", "Álvarez"), ("Łukasz", "Wiśniewski"), ("Søren", "Kierkegård"),
    ("François", "Lefèvre"), ("Björn", "Åström"), ("Chloé", "Dubois"), ("Jürgen", "Groß"),
    ("Siobhán", "Ó Briain"), ("Núria", "Puig"), ("João", "Gonçalves"), ("Emma", "Clarke"),
    ("Oliver", "Smith"), ("Ana", "Ćosić"), ("Marta", "Nowak"), ("Lars", "Øvergård"),
)  # fmt: skip
COMPANY_FORMS = {
    "FR": "SAS", "DE": "GmbH", "ES": "S.L.", "IT": "S.r.l.", "NL": "B.V.", "PT": "Lda.", "BE": "SRL",
    "AT": "GmbH", "GB": "Ltd", "US": "Inc.", "BR": "Ltda.", "SE": "AB", "PL": "Sp. z o.o.", "DK": "ApS",
}  # fmt: skip
COMPANY_STEMS = (
    "Müller IT-Service", "Café Numérique", "Łódzkie Biuro Rachunkowe", "Nordic Refurb", "Brightside Schools",
    "Öko Büro", "Clínica Dental Peñalara", "Studio Architettura Forlì", "Green Fleet", "Håndværk Data",
    "Acme Logistics", "Escola São Jorge",
)  # fmt: skip

#: (sku stem, title, price in EUR for grade Excellent)
PRODUCTS = (
    ("IPH13-128-MID", "iPhone 13 128GB Midnight", "389.00"),
    ("IPH14P-256-DPU", "iPhone 14 Pro 256GB Deep Purple", "729.00"),
    ("IPH12-64-BLK", "iPhone 12 64GB Black", "259.00"),
    ("IPHSE3-64-RED", "iPhone SE (2022) 64GB (PRODUCT)RED", "189.00"),
    ("MBA13-M1-8-256-SG", 'MacBook Air 13" M1 8GB 256GB Space Gray', "629.00"),
    ("MBP14-M1P-16-512", 'MacBook Pro 14" M1 Pro 16GB 512GB Silver', "1299.00"),
    ("GS22-128-PGR", "Galaxy S22 128GB Phantom Gray", "329.00"),
    ("GS21U-256-BLK", "Galaxy S21 Ultra 256GB Phantom Black", "449.00"),
    ("GTS7-11-128-WIFI", 'Galaxy Tab S7 11" 128GB Wi-Fi', "299.00"),
    ("TP-T14G2-I5-16-512", "ThinkPad T14 Gen 2 i5-1145G7 16GB 512GB", "479.00"),
    ("TP-X1CG9-I7-16-1T", "ThinkPad X1 Carbon Gen 9 i7-1185G7 16GB 1TB", "899.00"),
    ("IPADA5-64-SG", "iPad Air (5th gen) 64GB Space Gray", "449.00"),
    ("DL-LAT5420-I5-16", "Dell Latitude 5420 i5 16GB 256GB", "399.00"),
    ("PIX7-128-OBS", "Pixel 7 128GB Obsidian", "279.00"),
)
GRADES = (("EXC", "Excellent", "1.00"), ("VG", "Very Good", "0.93"), ("GD", "Good", "0.86"), ("FR", "Fair", "0.78"))
QUANTITIES = (1, 1, 1, 2, 2, 3, 5, 5, 10, 20)
SHIPPING_EUR = ("0.00", "9.90", "14.90", "24.90")
CARRIERS = (
    ("DHL Express", "https://www.dhl.com/track?id={}"),
    ("UPS", "https://www.ups.com/track?tracknum={}"),
    ("Colissimo", "https://www.laposte.fr/outils/suivre-vos-envois?code={}"),
    ("DPD", "https://tracking.dpd.de/status/{}"),
    ("PostNord", "https://tracking.postnord.com/?id={}"),
)
PAID_METHODS = ("card", "bank_transfer", "sepa_direct_debit")

#: a line item's ``state`` (Back Market's orderline states): accepted and to ship, shipped,
#: cancelled (the channel refunds the buyer)
LINE_TO_SHIP, LINE_SHIPPED, LINE_CANCELLED = 2, 3, 4


def money(value: Decimal) -> str:
    """Cents, half-up, as the API's string form."""
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


def wire_time(value: datetime) -> str:
    """UTC with microseconds and ``Z``: fixed width, so text order equals time order."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class OrderFactory:
    """Makes one seller account's orders from its own random generator (deterministic)."""

    def __init__(self, seed: int, id_prefix: str = "BMP"):
        self.rng = random.Random(seed)
        self.id_prefix = id_prefix
        self.next_number = 10_000_000 + self.rng.randrange(0, 80_000) * 100

    def history(self, count: int, now: datetime) -> list[dict[str, Any]]:
        """``count`` orders created during the 30 days before ``now``, some shipped, cancelled."""
        orders = []
        previous_updated: datetime | None = None
        for _ in range(count):
            created = now - timedelta(seconds=self.rng.uniform(60, 30 * 86400))
            updated = min(created + timedelta(seconds=self.rng.uniform(0, 2 * 86400)), now - timedelta(seconds=1))
            if previous_updated is not None and self.rng.random() < 0.1:
                # bulk updates give equal updated_at values: the listing's (updated_at, id)
                # keyset must cope with ties
                updated = previous_updated
                created = min(created, updated)
            previous_updated = updated
            roll = self.rng.random()
            state = "cancelled" if roll < 0.08 else "fulfilled" if roll < 0.33 else "unfulfilled"
            orders.append(self.order(created, updated, state))
        return orders

    def order(self, created: datetime, updated: datetime, state: str = "unfulfilled") -> dict[str, Any]:
        """One order in wire shape; ``state`` is unfulfilled, fulfilled or cancelled."""
        rng = self.rng
        number = self.next_number
        self.next_number += 1
        order_id = f"{self.id_prefix}-{number}"
        currency = rng.choices(list(CURRENCY_WEIGHTS), weights=list(CURRENCY_WEIGHTS.values()))[0]
        per_eur, countries = CURRENCIES[currency]
        country = rng.choice(countries)
        has_vat_number = country != "US" or rng.random() < 0.2
        reverse_charge = country in EU and country != "FR" and has_vat_number and rng.random() < 0.4
        rate = Decimal("0") if reverse_charge else Decimal(VAT_RATE[country])

        lines: list[dict[str, Any]] = []
        for position in range(1, rng.choice((1, 1, 2, 2, 3, 4)) + 1):
            sku, title, eur = rng.choice(PRODUCTS)
            grade_code, grade, factor = rng.choice(GRADES)
            price = Decimal(eur) * Decimal(factor) * per_eur
            quantity = rng.choice(QUANTITIES)
            price_str = money(price)
            lines.append(
                {
                    "id": f"{order_id}-{position}",
                    "sku": f"{sku}-{grade_code}",
                    "title": f"{title} - {grade}",
                    "grade": grade,
                    "quantity": quantity,
                    "price": price_str,
                    "tax": money(Decimal(price_str) * quantity * rate),
                    "tax_rate": str(rate),
                    "state": LINE_TO_SHIP,
                }
            )
        subtotal = sum((Decimal(line["price"]) * line["quantity"] for line in lines), Decimal("0"))
        shipping = Decimal(money(Decimal(rng.choice(SHIPPING_EUR)) * per_eur))
        total_tax = sum((Decimal(line["tax"]) for line in lines), Decimal("0")) + Decimal(money(shipping * rate))
        total = subtotal + shipping + total_tax

        first, last = rng.choice(PEOPLE)
        company = f"{rng.choice(COMPANY_STEMS)} {COMPANY_FORMS[country]}"
        email = f"{_ascii(first)}.{_ascii(last)}@example.{country.lower()}".lower()
        city, postal, region = rng.choice(CITIES[country])
        address = {
            "first_name": first,
            "last_name": last,
            "company": company,
            "address1": rng.choice(STREETS),
            "address2": rng.choice((None, None, "Bâtiment B", "3rd floor", "c/o Réception")),
            "city": city,
            "postal_code": postal,
            "province": region,
            "country_code": country,
            "phone": f"+{rng.randrange(30, 49)} {rng.randrange(100, 999)} {rng.randrange(100000, 999999)}",
        }
        billing = dict(address, address1=rng.choice(STREETS), address2=None, first_name="Accounts", last_name="Payable")

        unpaid = rng.random() < 0.25
        financial = "pending" if unpaid else "paid"
        order: dict[str, Any] = {
            "id": order_id,
            "created_at": wire_time(created),
            "updated_at": wire_time(updated),
            "currency": currency,
            "financial_status": financial,
            "fulfillment_status": "unfulfilled",
            "cancelled": False,
            "cancelled_at": None,
            "payment_method": "invoice_net_30" if unpaid else rng.choice(PAID_METHODS),
            "subtotal_price": money(subtotal),
            "shipping_price": money(shipping),
            "total_tax": money(total_tax),
            "total_price": money(total),
            "tax_exempt": reverse_charge,
            "buyer": {
                "company": company,
                "vat_number": vat_number(rng, country) if has_vat_number else None,
                "email": email,
                "first_name": first,
                "last_name": last,
            },
            "shipping_address": address,
            "billing_address": billing,
            "line_items": lines,
            "shipments": [],
        }
        if state == "cancelled":
            order["cancelled"] = True
            order["cancelled_at"] = wire_time(updated)
            order["financial_status"] = "voided" if unpaid else "refunded"
            for line in lines:
                line["state"] = LINE_CANCELLED
        elif state == "fulfilled":
            order["shipments"].append(self.shipment(order, updated))
            order["fulfillment_status"] = "fulfilled"
            for line in lines:
                line["state"] = LINE_SHIPPED
        return order

    def shipment(self, order: dict[str, Any], when: datetime) -> dict[str, Any]:
        """A shipment of every line of ``order``, with IMEIs/serials, as the seller sent it."""
        rng = self.rng
        carrier, url = rng.choice(CARRIERS)
        tracking = f"{rng.choice(('JD', '1Z', 'CB', '00'))}{rng.randrange(10**11, 10**12)}"
        return {
            "id": f"SHP-{order['id']}-1",
            "tracking_number": tracking,
            "carrier": carrier,
            "tracking_url": url.format(tracking),
            "shipped_at": wire_time(when),
            "created_at": wire_time(when),
            "lines": [
                {
                    "line_id": line["id"],
                    "sku": line["sku"],
                    "quantity": line["quantity"],
                    "serial_numbers": [str(rng.randrange(10**14, 10**15)) for _ in range(min(line["quantity"], 3))],
                }
                for line in order["line_items"]
            ],
        }


def vat_number(rng: random.Random, country: str) -> str:
    """A plausible (not checksum-valid) VAT or tax number for ``country``."""
    if country == "US":
        return f"{rng.randrange(10, 99)}-{rng.randrange(1000000, 9999999)}"  # an EIN
    if country == "BR":
        return (
            f"{rng.randrange(10, 99)}.{rng.randrange(100, 999)}.{rng.randrange(100, 999)}/0001-{rng.randrange(10, 99)}"
        )
    prefix = "EL" if country == "GR" else country
    digits = {"FR": 11, "NL": 9, "SE": 12, "IT": 11, "PL": 10, "DK": 8, "AT": 8, "BE": 10}.get(country, 9)
    body = "".join(str(rng.randrange(10)) for _ in range(digits))
    if country == "NL":
        body += "B01"
    if country == "AT":
        body = "U" + body
    return prefix + body


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded if ch.isalnum()) or "buyer"
