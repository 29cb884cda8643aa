"""Pure translation between Back Market API JSON and the plugin_spec models (no I/O).

Every field name of the order, orderline and error bodies lives here (paths, query parameters
and headers live in ``client.py``); ``README.md`` of this plugin is the human-readable contract.

Rules from the seed enforced here, as for Back Market Pro: every order is **Fully Charged**
(the model's default; the channel's state is kept as information), the ``payment_method`` is
**not imported** (read nowhere), tax is the channel's ``sales_taxes`` as given, and money
arrives as JSON strings (a float is refused: it has already lost cents).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from plugin_spec import Address, BadOrder, ChannelOrder, OrderLine, Shipment, wire
from plugin_spec.wire import MappingError, money, timestamp

__all__ = ["MappingError", "money", "timestamp", "order", "order_or_bad"]

#: order states of the seller API (``state`` of an order)
STATE_PAID = 1  # paid by the buyer, waiting for the seller
STATE_ACCEPTED = 3  # accepted by the seller, to ship
STATE_CANCELLED = 8  # cancelled or refunded before shipping (assumed, see README)
STATE_SHIPPED = 9
#: the states a download with unfulfilled_only lists: still to ship, plus cancellations so the
#: host can flag an imported order that the channel cancelled
UNFULFILLED_STATES = (STATE_PAID, STATE_ACCEPTED, STATE_CANCELLED)
STATE_NAMES = {0: "new", 1: "paid", 3: "accepted", 8: "cancelled", 9: "shipped"}
#: ``new_state`` of the shipping call (an orderline state: "shipped")
NEW_STATE_SHIP = 3

_IMEI_RE = re.compile(r"^\d{15}$")
_MESSAGE_MAX = 300


def format_filter_time(value: datetime) -> str:
    """``date_modification`` filter value: whole seconds, UTC (the API ignores fractions)."""
    if value.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    return value.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


_text = wire.text


def _ident(value: Any, field: str) -> str:
    # Back Market ids are integers; a numeric string is accepted as the same id
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.isdigit():
        return value
    raise MappingError(f"{field} must be an integer id, got {value!r:.40}")


def _quantity(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise MappingError(f"{field} must be a positive integer, got {value!r:.40}")
    return value


def address(raw: Any, field: str) -> Address | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise MappingError(f"{field} must be an object, got {type(raw).__name__}")
    names = [_text(raw.get(k), f"{field}.{k}") for k in ("first_name", "last_name")]
    country = _text(raw.get("country"), f"{field}.country")
    return Address(
        name=" ".join(n for n in names if n) or None,
        company=_text(raw.get("company"), f"{field}.company"),
        line1=_text(raw.get("street"), f"{field}.street"),
        line2=_text(raw.get("street2"), f"{field}.street2"),
        city=_text(raw.get("city"), f"{field}.city"),
        postal_code=_text(raw.get("postal_code"), f"{field}.postal_code"),
        region=_text(raw.get("state_or_province"), f"{field}.state_or_province"),
        country=country.upper() if country else None,
        phone=_text(raw.get("phone"), f"{field}.phone"),
        email=_text(raw.get("email"), f"{field}.email"),
    )


def order(raw: Any) -> ChannelOrder:
    """One ``/ws/orders`` result as a ChannelOrder; raises MappingError naming the bad field."""
    if not isinstance(raw, dict):
        raise MappingError(f"an order must be an object, got {type(raw).__name__}")
    state = raw.get("state")
    if isinstance(state, bool) or not isinstance(state, int):
        raise MappingError(f"state must be an integer, got {state!r:.20}")
    lines_raw = raw.get("orderlines")
    if not isinstance(lines_raw, list) or not lines_raw:
        raise MappingError("orderlines must be a non-empty list")
    lines = []
    for i, line in enumerate(lines_raw):
        if not isinstance(line, dict):
            raise MappingError(f"orderlines[{i}] must be an object")
        where = f"orderlines[{i}]"
        lines.append(
            OrderLine(
                source_line_id=_ident(line.get("id"), f"{where}.id"),
                sku=_text(line.get("listing"), f"{where}.listing", required=True),
                title=_text(line.get("product"), f"{where}.product") or "",
                quantity=_quantity(line.get("quantity"), f"{where}.quantity"),
                unit_price=money(line.get("price"), f"{where}.price"),
                tax=money(line.get("sales_taxes", "0"), f"{where}.sales_taxes"),
            )
        )
    shipping = address(raw.get("shipping_address"), "shipping_address")
    currency = _text(raw.get("currency"), "currency", required=True)
    try:
        return ChannelOrder(
            source_order_id=_ident(raw.get("order_id"), "order_id"),
            created_at=timestamp(raw.get("date_creation"), "date_creation"),
            updated_at=timestamp(raw.get("date_modification"), "date_modification"),
            currency=currency,
            # the API has no items subtotal: it is the sum of the lines (a sum, not a tax computation)
            subtotal=sum((line.unit_price * line.quantity for line in lines), Decimal("0")),
            shipping_total=money(raw.get("shipping_price", "0"), "shipping_price"),
            tax_total=money(raw.get("sales_taxes", "0"), "sales_taxes"),
            grand_total=money(raw.get("price"), "price"),
            channel_financial_status="refunded" if state == STATE_CANCELLED else ("pending" if state == 0 else "paid"),
            channel_fulfillment_status=STATE_NAMES.get(state, f"state {state}"),
            channel_cancelled=state == STATE_CANCELLED,
            buyer_company=shipping.company if shipping else None,
            buyer_email=shipping.email if shipping else None,
            shipping_address=shipping,
            billing_address=address(raw.get("billing_address"), "billing_address"),
            lines=lines,
        )
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        raise MappingError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None


def order_or_bad(raw: Any) -> ChannelOrder | BadOrder:
    """The order, or a BadOrder that says which field is wrong (the rest of the download goes on)."""
    return wire.order_or_bad(raw, order, id_field="order_id", updated_field="date_modification", channel="Back Market")


def shipment_body(order_id: str, shipment: Shipment, single_unit: bool) -> dict[str, Any]:
    """The ``POST /ws/orders/{id}`` body that ships ``order_id`` with this tracking.

    ``imei`` / ``serial_number`` are sent only for a single-line, single-unit order: the API has
    one such field per order and refuses it on larger ones.
    """
    body: dict[str, Any] = {
        "order_id": int(order_id) if order_id.isdigit() else order_id,
        "new_state": NEW_STATE_SHIP,
        "tracking_number": shipment.tracking_number,
        "shipper": shipment.carrier,
    }
    if shipment.tracking_url:
        body["tracking_url"] = shipment.tracking_url
    serials = [s for line in shipment.lines for s in line.serial_numbers]
    if single_unit and len(serials) == 1:
        serial = serials[0].strip()
        body["imei" if _IMEI_RE.match(serial) else "serial_number"] = serial
    return body


def is_single_unit(raw_order: dict[str, Any]) -> bool:
    lines = raw_order.get("orderlines")
    return isinstance(lines, list) and len(lines) == 1 and isinstance(lines[0], dict) and lines[0].get("quantity") == 1


def recorded_tracking(raw_order: Any) -> str | None:
    """The tracking number an order already has on the channel, if any."""
    if isinstance(raw_order, dict) and isinstance(raw_order.get("tracking_number"), str):
        return raw_order["tracking_number"] or None
    return None


def error_detail(body: Any) -> str:
    """The API's own error text (``{"detail": ...}``), one short line, or ''."""
    detail = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(detail, str):
        return ""
    line = " ".join(detail.split())
    return line[:_MESSAGE_MAX]


def error_code(body: Any) -> str | None:
    code = body.get("code") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


def same_tracking(a: str, b: str) -> bool:
    return "".join(a.split()).upper() == "".join(b.split()).upper()
