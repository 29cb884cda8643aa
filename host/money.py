"""Money arithmetic: Decimal only, rounded half-up to cents."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def commission(grand_total: Decimal, percent: Decimal | None) -> Decimal:
    """Cart General's Commission (%) of the order's grand total (items + shipping + tax)."""
    if not percent:
        return Decimal("0.00")
    return cents(grand_total * percent / Decimal(100))
