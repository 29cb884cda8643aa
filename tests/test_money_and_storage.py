"""Small pure pieces of the host: commission arithmetic and how addresses are stored."""

from __future__ import annotations

from decimal import Decimal

import pytest

from host import money
from host.orders import _address
from plugin_spec import Address


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


@pytest.mark.parametrize(
    "address",
    [
        Address(name="Zoë Müller", city="Łódź", country="PL"),
        Address(company='Say "Hi" \\ Co', line1="Strøget 3", postal_code="1000"),
        Address(),
    ],
)
def test_addresses_are_stored_as_pydantic_would_write_them(address):
    assert _address(address) == address.model_dump_json(exclude_none=True)
