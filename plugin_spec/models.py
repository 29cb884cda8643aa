"""Pydantic models that cross the boundary between the host and a channel plugin.

Money is always :class:`decimal.Decimal` (never float); a plugin converts the channel's
strings with ``Decimal(str)``. Datetimes are timezone-aware (UTC is fine).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

#: Sellercloud's payment status for every imported order (the channel collects payment).
FULLY_CHARGED = "Fully Charged"


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    return value


def _no_float(value: object) -> object:
    # a float has already lost cents (0.1 + 0.2 != 0.3): money comes as str, int or Decimal
    if isinstance(value, float):
        raise ValueError("money must be a Decimal or a string, never a float")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
# the float check comes last on purpose: placed before the Field, it makes pydantic check the
# digits in Python instead of in its core (3x slower per order; see docs/benchmarks.md)
Money = Annotated[Decimal, Field(max_digits=18, decimal_places=4), BeforeValidator(_no_float)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CartSettings(BaseModel):
    """Base class of every plugin's Cart General settings model.

    Subclass it and add the channel's own fields; each field becomes a Cart General setting
    (``title`` is the label staff see, ``SecretStr`` marks a secret that is stored and shown
    masked). The host owns ``commission_percent``: it adds that percentage of the order's
    grand total to the order's Total Cost on import.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    commission_percent: Decimal | None = Field(
        default=None,
        ge=0,
        le=100,
        max_digits=7,
        decimal_places=4,
        title="Order Import: Commission (%)",
        description="Added to the Total Cost of every imported order, as a percentage of its grand total.",
    )


class ChannelInfo(BaseModel):
    """What a plugin tells the host about its channel."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{1,62}$", description="Stable key, e.g. backmarket_pro")
    display_name: str = Field(min_length=1)
    version: str = Field(min_length=1)
    settings_model: type[CartSettings]
    capabilities: frozenset[Literal["test_settings", "download_orders", "upload_tracking"]] = frozenset(
        {"test_settings", "download_orders", "upload_tracking"}
    )


class Address(_Model):
    name: str | None = None
    company: str | None = None
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    postal_code: str | None = None
    region: str | None = None
    country: str | None = Field(default=None, description="ISO 3166-1 alpha-2")
    phone: str | None = None
    email: str | None = None


class OrderLine(_Model):
    source_line_id: str = Field(min_length=1)
    sku: str = Field(min_length=1)
    title: str
    quantity: int = Field(gt=0)
    unit_price: Money
    tax: Money = Decimal("0")


class ChannelOrder(_Model):
    """One order as the channel has it, already mapped to the host's vocabulary.

    There is deliberately no payment-method field: the host does not import it.
    """

    source_order_id: str = Field(min_length=1)
    created_at: AwareDatetime
    updated_at: AwareDatetime
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    subtotal: Money
    shipping_total: Money = Decimal("0")
    tax_total: Money = Field(description="As the channel gives it; never computed by the host.")
    grand_total: Money
    payment_status: Literal["Fully Charged"] = FULLY_CHARGED
    channel_financial_status: str | None = None
    channel_fulfillment_status: str | None = None
    channel_cancelled: bool = False
    buyer_company: str | None = None
    buyer_vat_number: str | None = None
    buyer_email: str | None = None
    shipping_address: Address | None = None
    billing_address: Address | None = None
    lines: list[OrderLine] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_line_ids(self) -> ChannelOrder:
        if len({line.source_line_id for line in self.lines}) != len(self.lines):
            raise ValueError("two lines share one source_line_id")
        return self


class BadOrder(_Model):
    """Yielded by a download in place of an order the plugin could not map.

    The host logs it against the job and keeps importing the rest; the incremental cursor
    does not move past ``updated_at`` so the order is fetched again next time.
    """

    source_order_id: str | None = None
    updated_at: AwareDatetime | None = None
    message: str


class ShipmentLine(_Model):
    source_line_id: str
    sku: str
    quantity: int = Field(gt=0)
    serial_numbers: list[str] = Field(default_factory=list, description="Serial numbers or IMEIs")


class Shipment(_Model):
    """Tracking of one shipped package, to tell the channel about."""

    shipment_id: int = Field(description="The host's id; echo it back in the UploadResult")
    source_order_id: str
    carrier: str = Field(min_length=1)
    tracking_number: str = Field(min_length=1)
    tracking_url: str | None = None
    shipped_at: AwareDatetime
    lines: list[ShipmentLine] = Field(default_factory=list)


class UploadResult(_Model):
    """The channel's answer for one shipment."""

    shipment_id: int
    ok: bool
    already_recorded: bool = Field(default=False, description="The channel had this tracking already")
    retryable: bool = False
    message: str = ""


class TestResult(_Model):
    """The outcome of Test Settings: one cheap authenticated call."""

    __test__ = False  # not a pytest test class

    ok: bool
    message: str
    account_name: str | None = None
