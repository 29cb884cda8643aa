"""Pure translation between Back Market Pro API JSON and the plugin_spec models (no I/O).

Every field name of the API's order, shipment and error bodies lives here (and the paths and
query parameters in ``client.py``), so a correction of the assumed contract touches one place.
See ``docs/backmarket-pro-api.md`` for the contract itself.

Rules from the seed that are enforced here:

* every order is imported **Fully Charged** whatever its ``financial_status`` (``pending`` is
  a business buyer's invoice, which the channel collects: never ``No Payment``; the channel's
  status is kept only as information);
* an order whose ``fulfillment_status`` is ``fulfilled`` is ``channel_shipped`` (the host
  imports it only with Allow Download Shipped Orders on);
* the channel's ``payment_method`` is **not imported** (read nowhere below, on purpose);
* tax is taken exactly as the channel gives it, never computed;
* money arrives as JSON strings and becomes :class:`~decimal.Decimal`; a float or any other
  shape is refused, because a float has already lost cents by the time we see it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AliasPath, BeforeValidator, ConfigDict, Field, Strict, model_validator

from plugin_spec import Address, BadOrder, ChannelOrder, OrderLine, Shipment, wire
from plugin_spec.models import FULLY_CHARGED, MAX_QUANTITY, MAX_TEXT
from plugin_spec.wire import (
    MONEY_RE,
    IdentText,
    Ignored,
    MappingError,
    MoneyText,
    ObjectShape,
    OptionalText,
    SegmentId,
    money,
    plain_id,
    timestamp,
)

__all__ = ["MappingError", "money", "timestamp", "order_or_bad", "channel_order"]

_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
#: a line item's ``state`` (the orderline states of Back Market's orders API): 4 cancelled, 5
#: refunded before shipping, 6 refunded after shipping, 7 not paid; the buyer does not get (or
#: pays back) such a line, so it is not shipped. Absent or any other state: the line stands.
LINE_STATES_CANCELLED = frozenset({4, 5, 6, 7})
#: an API message is shown to people; keep it one short printable line
_MESSAGE_MAX = 300


# ---------------------------------------------------------------------------------------------
# field readers: each names the field in its error so a BadOrder message is actionable


def format_timestamp(value: datetime) -> str:
    """The wire form of an instant: UTC, microseconds, ``Z`` (sorts as text = sorts in time)."""
    if value.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_text = wire.text


def _ident(value: Any, field: str) -> str:
    # ids are strings in the contract; an integer id is accepted because it is unambiguous, and
    # an id that cannot be one URL path segment ("..", "a/b") is refused: it is used in paths
    return plain_id(value, field)


def _quantity(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise MappingError(f"{field} must be a positive integer, got {value!r:.40}")
    return value


def _object(value: Any, field: str, *, required: bool = False) -> dict[str, Any] | None:
    if value is None:
        if required:
            raise MappingError(f"{field} is missing")
        return None
    if not isinstance(value, dict):
        raise MappingError(f"{field} must be an object, got {type(value).__name__}")
    return value


# ---------------------------------------------------------------------------------------------
# API order -> ChannelOrder


#: the API's address keys, in the order their errors are reported
_ADDRESS_KEYS = (
    "first_name", "last_name", "country_code", "company", "address1", "address2", "city", "postal_code",
    "province", "phone", "email",
)  # fmt: skip


#: what an address field may be (anything else is named by _check_address)
_TEXT_TYPES = frozenset({str, type(None)})


def address(raw: Any, field: str) -> Address | None:
    """An API address object (``first_name``, ``address1``, ``country_code``...) as Address."""
    fields = _address_fields(raw, field)
    return None if fields is None else Address(**fields)


def _address_fields(raw: Any, field: str) -> dict[str, str | None] | None:
    """The Address fields of an API address object (None for a missing one)."""
    data = _object(raw, field)
    if data is None:
        return None
    # Fast path (an import maps two addresses per order): read every key once, and only when
    # one is not a string build the per-field error the checked path names it with.
    values = tuple(map(data.get, _ADDRESS_KEYS))
    if not _TEXT_TYPES.issuperset(map(type, values)):
        _check_address(data, field)  # raises the MappingError naming the first bad field
    first, last, country, company, line1, line2, city, postal_code, region, phone, email = values
    return {
        "name": f"{first} {last}" if first and last else first or last or None,
        "company": company or None,
        "line1": line1 or None,
        "line2": line2 or None,
        "city": city or None,
        "postal_code": postal_code or None,
        "region": region or None,
        "country": country.upper() if country else None,
        "phone": phone or None,
        "email": email or None,
    }


def _check_address(data: dict[str, Any], field: str) -> None:
    for key in _ADDRESS_KEYS:
        _text(data.get(key), f"{field}.{key}")


def line_cancelled(value: Any, field: str = "state") -> bool:
    """A line item's ``state`` (an integer, or absent) says the channel cancelled the line."""
    if value is None:
        return False
    if value.__class__ is not int:
        raise MappingError(f"{field} must be an integer, got {value!r:.20}")
    return value in LINE_STATES_CANCELLED


def _page_line_cancelled(value: Any) -> bool:
    try:
        return line_cancelled(value)
    except MappingError as exc:
        raise ValueError(str(exc)) from None


def order_line(raw: Any, index: int) -> OrderLine:
    """One entry of ``line_items``: id, sku, title, quantity, unit price, the line's tax and
    whether the channel cancelled it (``state``)."""
    if isinstance(raw, dict):
        # fast path: every field has the contract's shape, so no field name needs formatting
        get = raw.get
        ident, sku, title, quantity, price, tax, state = (
            get("id"), get("sku"), get("title"), get("quantity"), get("price"), get("tax"), get("state")
        )  # fmt: skip
        if (
            ident.__class__ is str and ident
            and sku.__class__ is str and sku
            and (title is None or title.__class__ is str)
            and quantity.__class__ is int and quantity > 0
            and price.__class__ is str and MONEY_RE.match(price)
            and tax.__class__ is str and MONEY_RE.match(tax)
            and (state is None or state.__class__ is int)
        ):  # fmt: skip
            return OrderLine(
                source_line_id=ident,
                sku=sku,
                title=title or "",
                quantity=quantity,
                unit_price=Decimal(price),
                tax=Decimal(tax),
                channel_cancelled=state in LINE_STATES_CANCELLED,
            )
    return _checked_order_line(raw, index)


def _checked_order_line(raw: Any, index: int) -> OrderLine:
    """The field-by-field path: names the first field that breaks the contract."""
    field = f"line_items[{index}]"
    data = _object(raw, field, required=True)
    assert data is not None
    return OrderLine(
        source_line_id=_ident(data.get("id"), f"{field}.id"),
        sku=_text(data.get("sku"), f"{field}.sku", required=True) or "",
        title=_text(data.get("title"), f"{field}.title") or "",
        quantity=_quantity(data.get("quantity"), f"{field}.quantity"),
        unit_price=money(data.get("price"), f"{field}.price"),
        tax=money(data.get("tax"), f"{field}.tax"),
        channel_cancelled=line_cancelled(data.get("state"), f"{field}.state"),
    )


def channel_order(raw: dict[str, Any]) -> ChannelOrder:
    """Map one API order; raises MappingError or pydantic's ValidationError when malformed."""
    lines_raw = raw.get("line_items")
    if not isinstance(lines_raw, list) or not lines_raw:
        raise MappingError("line_items must be a non-empty list")
    currency = _text(raw.get("currency"), "currency", required=True) or ""
    if not _CURRENCY_RE.match(currency):
        raise MappingError(f"currency is not an ISO 4217 code: {currency!r:.20}")
    cancelled = raw.get("cancelled", False)
    if not isinstance(cancelled, bool):
        raise MappingError("cancelled must be true or false")
    buyer = _object(raw.get("buyer"), "buyer") or {}
    # raw["payment_method"] is deliberately never read: the seed says it is not imported, and
    # payment_status is fixed to Fully Charged by the model whatever financial_status says.
    return ChannelOrder(
        source_order_id=_ident(raw.get("id"), "id"),
        created_at=timestamp(raw.get("created_at"), "created_at"),
        updated_at=timestamp(raw.get("updated_at"), "updated_at"),
        currency=currency,
        subtotal=money(raw.get("subtotal_price"), "subtotal_price"),
        shipping_total=money(raw.get("shipping_price"), "shipping_price"),
        tax_total=money(raw.get("total_tax"), "total_tax"),
        grand_total=money(raw.get("total_price"), "total_price"),
        channel_financial_status=_text(raw.get("financial_status"), "financial_status"),
        channel_fulfillment_status=_text(raw.get("fulfillment_status"), "fulfillment_status"),
        channel_cancelled=cancelled,
        channel_shipped=_shipped(raw.get("fulfillment_status")),
        buyer_company=_text(buyer.get("company"), "buyer.company"),
        buyer_vat_number=_text(buyer.get("vat_number"), "buyer.vat_number"),
        buyer_email=_text(buyer.get("email"), "buyer.email"),
        shipping_address=address(raw.get("shipping_address"), "shipping_address"),
        billing_address=address(raw.get("billing_address"), "billing_address"),
        lines=[order_line(line, i) for i, line in enumerate(lines_raw)],
    )


def order_or_bad(raw: Any) -> ChannelOrder | BadOrder:
    """Map one listed order, or describe why it cannot be mapped so the rest still import."""
    return wire.order_or_bad(raw, channel_order, id_field="id", updated_field="updated_at", channel="Back Market Pro")


# ---------------------------------------------------------------------------------------------
# a whole listing page from its bytes, validated in pydantic's core
#
# The models below read the API's JSON of one order as it is on the wire, straight into a
# ChannelOrder (a subclass of it), so a page is parsed and validated once, in the core: each
# field names its wire key (``validation_alias``), keys the mapping never reads are ignored,
# and Python runs only where the core cannot: an address's name (first + last) and upper-case
# country, the timestamps (``timestamp``, the mapping's own reader) and ChannelOrder's
# line-id check. They are at least as strict as ``channel_order`` and give the same order
# whenever both accept it (tests/test_bmp_page.py compares them on thousands of mutated
# orders); any order they refuse sends its whole page through ``channel_order``, order by
# order, which reports exactly what is wrong with the bad ones.


class _PageLine(OrderLine):
    """One entry of ``line_items`` as on the wire (``id``, ``price``)."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_max_length=MAX_TEXT)

    source_line_id: IdentText = Field(validation_alias="id")
    sku: IdentText
    title: Annotated[str, Strict()]
    quantity: Annotated[int, Strict(), Field(gt=0, le=MAX_QUANTITY)]
    unit_price: MoneyText = Field(validation_alias="price")
    tax: MoneyText
    channel_cancelled: Annotated[bool, BeforeValidator(_page_line_cancelled)] = Field(
        default=False, validation_alias="state"
    )


class _PageAddress(Address):
    """An API address object as on the wire; ``last_name`` is read only to make ``name``."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_max_length=MAX_TEXT)

    name: OptionalText = Field(default=None, validation_alias="first_name")
    last_name: OptionalText = Field(default=None, exclude=True, repr=False)
    company: OptionalText = None
    line1: OptionalText = Field(default=None, validation_alias="address1")
    line2: OptionalText = Field(default=None, validation_alias="address2")
    city: OptionalText = None
    postal_code: OptionalText = None
    region: OptionalText = Field(default=None, validation_alias="province")
    country: OptionalText = Field(default=None, validation_alias="country_code")
    phone: OptionalText = None
    email: OptionalText = None

    @model_validator(mode="after")
    def _derived(self) -> _PageAddress:
        # as _address_fields: "first last" (or the one given), the country upper-cased; both
        # still within the model's length limit, as Address(**fields) checks them there
        values = self.__dict__
        last = values["last_name"]
        if last is not None:
            first = values["name"]
            values["name"] = name = f"{first} {last}" if first else last
            if len(name) > MAX_TEXT:
                raise ValueError(f"name is longer than {MAX_TEXT} characters")
        country = values["country"]
        if country is not None:
            values["country"] = upper = country.upper()
            if len(upper) > MAX_TEXT:
                raise ValueError(f"country_code is longer than {MAX_TEXT} characters")
        return self


def _shipped(value: Any) -> bool:
    """``fulfillment_status`` ``fulfilled``: every line shipped already (from the portal, or
    another system); ``partial`` is not, the seller still has lines to ship."""
    return value == "fulfilled"


def _created(value: Any) -> datetime:
    return timestamp(value, "created_at")


def _updated(value: Any) -> datetime:
    return timestamp(value, "updated_at")


class PageOrder(ChannelOrder):
    """One API order of a listing page, read from JSON into a ChannelOrder (see above)."""

    model_config = ConfigDict(frozen=True, extra="ignore", str_max_length=MAX_TEXT)

    source_order_id: SegmentId = Field(validation_alias="id")
    created_at: Annotated[datetime, BeforeValidator(_created)]
    updated_at: Annotated[datetime, BeforeValidator(_updated)]
    subtotal: MoneyText = Field(validation_alias="subtotal_price")
    shipping_total: MoneyText = Field(validation_alias="shipping_price")
    tax_total: MoneyText = Field(validation_alias="total_tax")
    grand_total: MoneyText = Field(validation_alias="total_price")
    # not the channel's to set: whatever an order carries under these names is not read
    payment_status: Annotated[Literal["Fully Charged"], Ignored(FULLY_CHARGED)] = FULLY_CHARGED
    awaiting_acceptance: Annotated[bool, Ignored(False)] = False
    channel_financial_status: OptionalText = Field(default=None, validation_alias="financial_status")
    channel_fulfillment_status: OptionalText = Field(default=None, validation_alias="fulfillment_status")
    channel_cancelled: Annotated[bool, Strict()] = Field(default=False, validation_alias="cancelled")
    # an AliasPath: two fields read the one key (a plain alias would name two __init__ arguments alike)
    channel_shipped: Annotated[bool, BeforeValidator(_shipped)] = Field(
        default=False, validation_alias=AliasPath("fulfillment_status")
    )
    buyer: ObjectShape = Field(default=None, exclude=True, repr=False)
    buyer_company: OptionalText = Field(default=None, validation_alias=AliasPath("buyer", "company"))
    buyer_vat_number: OptionalText = Field(default=None, validation_alias=AliasPath("buyer", "vat_number"))
    buyer_email: OptionalText = Field(default=None, validation_alias=AliasPath("buyer", "email"))
    shipping_address: _PageAddress | None = None
    billing_address: _PageAddress | None = None
    lines: list[_PageLine] = Field(min_length=1, max_length=10_000, validation_alias="line_items")  # type: ignore[assignment]


#: ``(orders, next link)`` of one listing page's bytes; raises ValueError for a page to read the plain way
read_page = wire.page_reader(PageOrder)


# ---------------------------------------------------------------------------------------------
# seller account, shipment body, error body


def account_name(raw: Any) -> str:
    """The seller's display name from ``GET /2024-03/seller-account``."""
    data = _object(raw, "seller account", required=True)
    assert data is not None
    name = _text(data.get("name"), "seller account name", required=True)
    assert name is not None
    return name


def shipment_body(shipment: Shipment) -> dict[str, Any]:
    """The JSON body of ``POST /2024-03/orders/{id}/shipments`` for one host shipment."""
    body: dict[str, Any] = {
        "tracking_number": shipment.tracking_number,
        "carrier": shipment.carrier,
        "shipped_at": format_timestamp(shipment.shipped_at),
    }
    if shipment.tracking_url:
        body["tracking_url"] = shipment.tracking_url
    if shipment.lines:
        # without "lines" the channel treats the whole order as shipped in this package
        body["lines"] = [
            {
                "line_id": line.source_line_id,
                "sku": line.sku,
                "quantity": line.quantity,
                "serial_numbers": list(line.serial_numbers),
            }
            for line in shipment.lines
        ]
    return body


def error_code(body: Any) -> str | None:
    """``error.code`` of an API error body, if the body has that shape."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        return code if isinstance(code, str) else None
    return None


def error_message(body: Any, fallback: str) -> str:
    """``error.message`` of an API error body as one short printable line, else ``fallback``."""
    message = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        message = body["error"].get("message")
    if not isinstance(message, str) or not message.strip():
        return fallback
    cleaned = " ".join("".join(ch if ch.isprintable() else " " for ch in message).split())
    return cleaned[:_MESSAGE_MAX]
