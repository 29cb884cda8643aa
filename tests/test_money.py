"""Commission arithmetic, and money at the plugin boundary."""

from __future__ import annotations

from decimal import Decimal

import pytest

from host.records import money
from plugin_spec import OrderLine


@pytest.mark.parametrize(
    "total,percent,expected",
    [
        ("100.00", "12.5", "12.50"),
        ("0.10", "5", "0.01"),  # 0.005 rounds half-up
        ("0.30", "5", "0.02"),  # 0.015 rounds half-up, where banker's rounding would give 0.02 too
        ("0.50", "5", "0.03"),  # 0.025 -> 0.03 (half-even would give 0.02)
        ("1999.99", "0", "0.00"),
        ("1999.99", None, "0.00"),
        ("33.33", "33.3333", "11.11"),
    ],
)
def test_commission_is_decimal_rounded_half_up_to_cents(total, percent, expected):
    result = money.commission(Decimal(total), Decimal(percent) if percent else None)
    assert isinstance(result, Decimal) and str(result) == expected


@pytest.mark.parametrize("bad", [0.1, Decimal("1.23456"), Decimal("1234567890123456789")])
def test_money_at_the_boundary_is_never_float_and_at_most_4_decimals(bad):
    with pytest.raises(ValueError):
        OrderLine(source_line_id="1", sku="A", title="A", quantity=1, unit_price=bad)
