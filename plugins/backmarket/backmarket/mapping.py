"""Pure translation between Back Market API JSON and the plugin_spec models (no I/O).

Every field name of the order, orderline and error bodies lives here (paths, query parameters
and headers live in ``client.py``); ``README.md`` of this plugin is the human-readable contract.

Rules from the seed enforced here, as for Back Market Pro: every paid order is **Fully Charged**
(the model's default; the channel's state is kept as information); one in state 10 (the buyer
still has time to pay) is ``No Payment`` and one in state 9 (shipped) ``channel_shipped``, which
the host imports only when the company allows them; the ``payment_method`` is
**not imported** (read nowhere), tax is the channel's ``sales_taxes`` as given, and money
arrives as JSON strings (a float is refused: it has already lost cents).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from plugin_spec import Address, BadOrder, ChannelOrder, OrderLine, Shipment, wire
from plugin_spec.models import FULLY_CHARGED, NO_PAYMENT
from plugin_spec.wire import MappingError, money, timestamp

__all__ = ["MappingError", "money", "timestamp", "order", "order_or_bad"]

#: order states (Table 5 of the orders API); the listing never shows 0 (new) nor 8 (not paid)
ORDER_STATE_NAMES = {0: "new", 10: "pending payment", 1: "to accept", 3: "to ship", 8: "not paid", 9: "shipped"}
#: orders the seller still has to accept or ship
ORDER_STATES_TO_SHIP = (1, 3)
#: the buyer has ordered but not paid yet (must not be shipped): ``No Payment`` for the host
ORDER_STATE_PENDING_PAYMENT = 10
#: the seller has shipped the package
ORDER_STATE_SHIPPED = 9
#: orderline states (Table 6): 1 paid (accept with 2 or cancel with 4), 2 accepted (ship with 3)
LINE_PAID, LINE_ACCEPTED, LINE_SHIPPED, LINE_CANCELLED = 1, 2, 3, 4
#: final states of a line the buyer does not get or pays back: cancelled, refunded before
#: shipping, refunded after shipping, not paid
LINE_STATES_CANCELLED = frozenset({4, 5, 6, 7})
#: ``new_state`` of the update call: accept a line (with its ``sku``), ship the order, cancel a line
NEW_STATE_ACCEPT, NEW_STATE_SHIP, NEW_STATE_CANCEL = 2, 3, 4

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

    def pick(*names: str) -> str | None:
        # the orders API's Address table spells fields snake_case, its schema camelCase
        name = next((n for n in names if raw.get(n) is not None), names[0])
        return _text(raw.get(name), f"{field}.{name}")

    names = [pick("first_name", "firstName"), pick("last_name", "lastName")]
    country = pick("country")
    return Address(
        name=" ".join(n for n in names if n) or None,
        company=pick("company"),
        line1=pick("street"),
        line2=pick("street2"),
        city=pick("city"),
        postal_code=pick("postal_code", "postalCode"),
        region=pick("state_or_province", "state"),
        country=country.upper() if country else None,
        phone=pick("phone", "phoneNumber"),
        email=pick("email"),
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
    line_states = []
    for i, line in enumerate(lines_raw):
        if not isinstance(line, dict):
            raise MappingError(f"orderlines[{i}] must be an object")
        where = f"orderlines[{i}]"
        line_states.append(_line_state(line.get("state"), f"{where}.state"))
        lines.append(
            OrderLine(
                source_line_id=_ident(line.get("id"), f"{where}.id"),
                sku=_text(line.get("listing"), f"{where}.listing", required=True),
                title=_text(line.get("product"), f"{where}.product") or "",
                quantity=_quantity(line.get("quantity"), f"{where}.quantity"),
                unit_price=money(line.get("price"), f"{where}.price"),
                tax=money(line.get("sales_taxes", "0"), f"{where}.sales_taxes"),
                channel_cancelled=line_states[-1] in LINE_STATES_CANCELLED,
            )
        )
    shipping = address(raw.get("shipping_address"), "shipping_address")
    currency = _text(raw.get("currency"), "currency", required=True)
    # price is the items' total, taxes included, without shipping; shipping_price is apart
    items_total = money(raw.get("price"), "price")
    shipping_total = money(raw.get("shipping_price", "0"), "shipping_price")
    cancelled = [s for s in line_states if s in LINE_STATES_CANCELLED]
    financial = "refunded" if len(cancelled) == len(line_states) else ("partially refunded" if cancelled else "paid")
    awaiting = state == 1 and LINE_PAID in line_states
    try:
        return ChannelOrder(
            source_order_id=_ident(raw.get("order_id"), "order_id"),
            created_at=timestamp(raw.get("date_creation"), "date_creation"),
            updated_at=timestamp(raw.get("date_modification"), "date_modification"),
            currency=currency,
            subtotal=items_total,
            shipping_total=shipping_total,
            # the VAT contained in the tax-inclusive prices, as the channel gives it
            tax_total=money(raw.get("sales_taxes", "0"), "sales_taxes"),
            grand_total=items_total + shipping_total,
            channel_financial_status=financial,
            channel_fulfillment_status=ORDER_STATE_NAMES.get(state, f"state {state}"),
            # a buyer cancellation or a refund shows as lines in final states 4 to 7: each such
            # line is flagged (the rest still ships), the order once every line is
            channel_cancelled=len(cancelled) == len(line_states),
            awaiting_acceptance=awaiting,
            payment_status=NO_PAYMENT if state == ORDER_STATE_PENDING_PAYMENT else FULLY_CHARGED,
            channel_shipped=state == ORDER_STATE_SHIPPED,
            buyer_company=shipping.company if shipping else None,
            buyer_email=shipping.email if shipping else None,
            shipping_address=shipping,
            billing_address=address(raw.get("billing_address"), "billing_address"),
            lines=lines,
        )
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        raise MappingError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None


def _line_state(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MappingError(f"{field} must be an integer, got {value!r:.20}")
    return value


def wanted(raw: Any) -> bool:
    """An order a download of unfulfilled orders keeps: to accept or ship, or with a cancelled
    or refunded line (so the host flags an order it imported earlier)."""
    if not isinstance(raw, dict):
        return True  # let the mapping say what is wrong with it
    lines = raw.get("orderlines")
    if not isinstance(lines, list):
        lines = []
    # an unpaid order is still to ship once paid: the host's Allow Unpaid Orders decides on it
    return raw.get("state") in (*ORDER_STATES_TO_SHIP, ORDER_STATE_PENDING_PAYMENT) or any(
        isinstance(line, dict) and line.get("state") in LINE_STATES_CANCELLED for line in lines
    )


def lines_in_state(raw_order: Any, state: int) -> list[dict[str, Any]]:
    lines = raw_order.get("orderlines") if isinstance(raw_order, dict) else None
    return [line for line in lines or [] if isinstance(line, dict) and line.get("state") == state]


def line_body(order_id: str, new_state: int, sku: str) -> dict[str, Any]:
    """The ``POST /ws/orders/{id}`` body that accepts (2) or cancels (4) the line with ``sku``."""
    return {"order_id": int(order_id), "new_state": new_state, "sku": sku}


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


def recorded_tracking(raw_order: Any) -> str | None:
    """The tracking number an order already has on the channel, if any."""
    if isinstance(raw_order, dict) and isinstance(raw_order.get("tracking_number"), str):
        return raw_order["tracking_number"] or None
    return None


def _error(body: Any) -> dict[str, Any]:
    # {"error": {"code", "message"}, "requestId"}; newer endpoints send {"errors": [...]}
    if not isinstance(body, dict):
        return {}
    error = body.get("error")
    if not isinstance(error, dict) and isinstance(body.get("errors"), list) and body["errors"]:
        error = body["errors"][0]
    return error if isinstance(error, dict) else {}


def error_detail(body: Any) -> str:
    """The API's own error message, one short line, or ''."""
    detail = _error(body).get("message")
    if not isinstance(detail, str):
        return ""
    line = " ".join(detail.split())
    return line[:_MESSAGE_MAX]


def error_code(body: Any) -> str | None:
    code = _error(body).get("code")
    return code if isinstance(code, str) else None


def same_tracking(a: str, b: str) -> bool:
    return "".join(a.split()).upper() == "".join(b.split()).upper()
