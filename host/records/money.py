"""Money arithmetic: Decimal only, rounded half-up to cents.

Commission is a percentage of the channel's grand total: what the buyer pays, discounts
already taken off, as the channel states it. The host never recomputes that total.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def commission(grand_total: Decimal, percent: Decimal | None) -> Decimal:
    """Cart General's Commission (%) of the order's grand total (items + shipping + tax,
    less discounts, as the channel gives it)."""
    if not percent:
        return Decimal("0.00")
    return cents(grand_total * percent / Decimal(100))


def is_zero(stored: str | None) -> bool:
    """True for a stored amount of nothing (``"0"``, ``"0.00"``) or none at all."""
    return stored is None or not Decimal(stored)
