"""Pydantic models that cross the boundary between the host and a channel plugin.

Money is always :class:`decimal.Decimal` (never float); a plugin converts the channel's
strings with ``Decimal(str)``. Datetimes are timezone-aware (UTC is fine).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from . import validators

#: Sellercloud's payment status for every imported order (the channel collects payment).
FULLY_CHARGED: Final = "Fully Charged"
#: Sellercloud's payment status of an order the buyer has not paid yet (the channel says so);
#: imported only when the company's Allow Unpaid Orders is on
NO_PAYMENT: Final = "No Payment"


#: longest channel text the host stores (titles, names, address lines); more is not an order
MAX_TEXT = 1000
#: longest id (order, line, SKU) the host stores
MAX_ID = 200
#: no real order line has more units; also keeps every count far inside SQLite's INTEGER
MAX_QUANTITY = 1_000_000_000
#: instants outside this range are a channel's error, and some cannot even be stored or
#: converted between time zones (year 1 or 9999 with an offset)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    return value


def _plausible(value: datetime) -> datetime:
    # compared in the value's own zone first: converting year 1 or 9999 to UTC may overflow
    if not EARLIEST.year < value.year < LATEST.year - 1:
        try:
            inside = EARLIEST <= value < LATEST
        except OverflowError:
            inside = False
        if not inside:
            raise ValueError(f"datetime must be between {EARLIEST.year} and {LATEST.year}")
    return value


#: control characters, and the invisible ones that turn the direction of the text around them
#: (an id with U+202E shows reversed in every page and heading it appears in)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _ident(value: str) -> str:
    # an id becomes part of API paths and file-like keys: "." and ".." would name another path,
    # and control characters (NUL above all) cut or corrupt it in C strings and terminals
    if value in (".", "..") or _CONTROL.search(value):
        raise ValueError("must not be '.' or '..' nor contain control or text-direction characters")
    return value


def _no_float(value: object) -> object:
    # a float has already lost cents (0.1 + 0.2 != 0.3): money comes as str, int or Decimal
    if isinstance(value, float):
        raise ValueError("money must be a Decimal or a string, never a float")
    return value


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
#: an instant the host can store and compare: aware and in a plausible range
PlausibleDatetime = Annotated[datetime, AfterValidator(_aware), AfterValidator(_plausible)]
#: an order, line or SKU id; a length constraint also makes pydantic refuse lone surrogates
Ident = Annotated[str, Field(min_length=1, max_length=MAX_ID), AfterValidator(_ident)]
# the float check comes last on purpose: placed before the Field, it makes pydantic check the
# digits in Python instead of in its core (3x slower per order; see docs/benchmarks.md)
Money = Annotated[Decimal, Field(max_digits=18, decimal_places=4), BeforeValidator(_no_float)]
#: an amount taken off (a discount): zero or more, never negative, whatever sign the channel uses
Discount = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=4), BeforeValidator(_no_float)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _ChannelText(_Model):
    """A model of what a channel sends: every string is bounded, and (because pydantic checks
    constrained strings in its core) a lone surrogate, which no database can store, is refused."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_max_length=MAX_TEXT)


class CartSettings(BaseModel):
    """Base class of every plugin's Cart General settings model.

    Subclass it and add the channel's own fields; each field becomes a Cart General setting
    (``title`` is the label staff see, ``SecretStr`` marks a secret that is stored and shown
    masked). The host owns ``commission_percent``: it adds that percentage of the order's
    grand total to the order's Total Cost on import.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # typed by a person: a decimal comma (12,5) is taken as well as a point
    commission_percent: Annotated[Decimal | None, BeforeValidator(validators.typed_decimal)] = Field(
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
    #: ``accept_orders``: the channel wants each new order accepted (or its lines cancelled)
    #: before it may be shipped; the plugin then implements ``cartplugin_accept_orders`` and its
    #: settings model has a bool ``accept_on_download``; ``update_tracking``: the channel takes a
    #: corrected tracking number for a shipment it has already recorded (the upload hook then gets
    #: shipments whose ``replaces_tracking_number`` is set: replace that tracking, do not add one)
    capabilities: frozenset[
        Literal["test_settings", "download_orders", "upload_tracking", "accept_orders", "update_tracking"]
    ] = frozenset({"test_settings", "download_orders", "upload_tracking"})
    #: the carriers the channel knows, as it spells them (Ship Items offers them in a select, with
    #: ``plugin_spec.tracking.OTHER`` beside them); empty: staff type the carrier's name
    carriers: tuple[str, ...] = ()
    #: how long after its modification stamp an order may first appear in the channel's listing
    #: (a search index that lags): each automatic download asks again from this many seconds
    #: before the saved cursor, so such an order is not passed (a repeat is upserted, unchanged)
    cursor_lag_seconds: int = Field(default=0, ge=0, le=86_400)


class Address(_ChannelText):
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


class OrderLine(_ChannelText):
    """One line of an order. Give ``unit_price``, ``line_total`` or both, as the channel does.

    ``line_total`` is the price of all the line's units, exactly as the channel states it
    (eBay's ``lineItemCost``, Amazon's ``ItemPrice``), before the line's ``discount``. When it is
    given it is authoritative: the host stores and shows it, and never divides it into a unit
    price. A plugin may still give the channel's unit price beside it; it must then agree with
    the line total to within the unit price's own rounding, whichever way it was rounded (one
    step of its last decimal place per unit). Without ``line_total`` the line is worth
    ``unit_price`` x ``quantity``.
    """

    source_line_id: Ident
    sku: Ident
    title: str
    quantity: int = Field(gt=0, le=MAX_QUANTITY)
    unit_price: Money | None = None
    line_total: Money | None = None
    #: the amount taken off this line (zero or more; a channel's "-2.00" is given as 2.00)
    discount: Discount = Decimal("0")
    tax: Money = Decimal("0")
    #: the channel cancelled (or refunded) this line while the rest of the order stands: the host
    #: shows it struck through, does not ship it, and counts the order Fully Shipped once every
    #: other line is; map the channel's own line state (Back Market's orderline states 4 to 7,
    #: Amazon's executed item cancellation). A whole order cancelled is ``ChannelOrder.channel_cancelled``.
    channel_cancelled: bool = False


class ChannelOrder(_ChannelText):
    """One order as the channel has it, already mapped to the host's vocabulary.

    There is deliberately no payment-method field: the host does not import it.
    """

    source_order_id: Ident
    created_at: PlausibleDatetime
    updated_at: PlausibleDatetime
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    subtotal: Money
    shipping_total: Money = Decimal("0")
    tax_total: Money = Field(description="As the channel gives it; never computed by the host.")
    #: everything the channel took off the order (line and order discounts, a shipping discount),
    #: zero or more; the grand total already has it taken off
    discount_total: Discount = Decimal("0")
    #: the channel's own correction of the total (eBay's ``adjustment``): either sign
    adjustment_total: Money = Decimal("0")
    grand_total: Money = Field(
        description="What the buyer pays, as the channel gives it (discounts taken off); never computed by the host."
    )
    #: ``Fully Charged`` unless the channel says the buyer has not paid yet (``No Payment``): the
    #: host then imports the order only when the company's Allow Unpaid Orders is on
    payment_status: Literal["Fully Charged", "No Payment"] = FULLY_CHARGED
    channel_financial_status: str | None = None
    channel_fulfillment_status: str | None = None
    channel_cancelled: bool = False
    #: the seller has shipped the whole order on the channel already (from the channel's portal
    #: or another system): the host imports it only when Allow Download Shipped Orders is on,
    #: as Fully Shipped with Source Updated for Shipping, so its tracking is never sent
    channel_shipped: bool = False
    #: the channel waits for the seller to accept the order (or cancel lines) before shipping
    awaiting_acceptance: bool = False
    buyer_company: str | None = None
    buyer_vat_number: str | None = None
    buyer_email: str | None = None
    shipping_address: Address | None = None
    billing_address: Address | None = None
    lines: list[OrderLine] = Field(min_length=1, max_length=10_000)

    @model_validator(mode="after")
    def _check_lines(self) -> ChannelOrder:
        # the lines are checked here, once per order, rather than by a validator of OrderLine,
        # which would cost a Python call per line on every import
        lines = self.lines
        if len({line.source_line_id for line in lines}) != len(lines):
            raise ValueError("two lines share one source_line_id")
        for line in lines:
            if line.line_total is not None or line.unit_price is None:
                _check_line_price(line)
        return self


def _check_line_price(line: OrderLine) -> None:
    """A line has a price, and a unit price given beside the line total agrees with it."""
    unit, total = line.unit_price, line.line_total
    if total is None:
        raise ValueError(f"line {line.source_line_id} has neither unit_price nor line_total")
    if unit is None:
        return
    # a unit price rounded from the line total to n decimals (half-up, down or up) is off by
    # less than 10^-n per unit; anything further is another amount (a taxed one, another line's)
    exponent = unit.as_tuple().exponent
    step = Decimal(1).scaleb(exponent if isinstance(exponent, int) else 0)
    if abs(unit * line.quantity - total) > step * line.quantity:
        raise ValueError(
            f"line {line.source_line_id}: unit_price {unit} x {line.quantity} does not match line_total {total}"
        )


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
    quantity: int = Field(gt=0, le=MAX_QUANTITY)
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
    #: set when staff corrected the tracking of a shipment the channel has recorded already (only
    #: for a plugin with the ``update_tracking`` capability): the number to replace with this one
    replaces_tracking_number: str | None = None


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


class AcceptRequest(_Model):
    """Accept one order on the channel; lines the seller cannot serve are cancelled instead."""

    source_order_id: str
    #: ``source_line_id`` of each line to cancel rather than accept
    cancel_line_ids: list[str] = Field(default_factory=list)


class AcceptResult(_Model):
    """The channel's answer for one AcceptRequest."""

    source_order_id: str
    ok: bool
    retryable: bool = False
    message: str = ""
