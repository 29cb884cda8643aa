"""Pure translation between the Selling Partner API's JSON and the plugin_spec models (no I/O).

Every field name of the Orders API's ``Order`` (2026-01-01) and of confirmShipment's body
(v0) lives here, paths and parameters in ``client.py``; ``reference/`` holds the models.

* Amounts are the model's ``Money`` (``{"amount": "12.30", "currencyCode": "EUR"}``), read
  with ``plugin_spec.wire.Currencies``: an order in two currencies is a bad order with its
  reason, the rest of the page imports.
* An item's ``proceeds`` break its amount down by type: ``ITEM`` (unit price x quantity, the
  line total as Amazon states it), ``SHIPPING``, ``TAX`` and ``DISCOUNT`` (negative: a
  promotion lowers the proceeds). The order's ``proceeds.grandTotal`` is what the buyer paid.
* Orders Amazon fulfils (``fulfilledBy`` AMAZON) are not the seller's to ship; orders still
  ``PENDING`` payment have no prices yet. ``client.py`` asks for neither; one that comes all
  the same is refused here, as a bad order that names why.
* A ``CANCELLED`` order is yielded flagged ``channel_cancelled`` so the host tells staff.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from plugin_spec import Address, BadOrder, ChannelOrder, OrderLine, Shipment, wire
from plugin_spec.wire import Currencies, MappingError, plain_id, text, timestamp

__all__ = ["MappingError", "channel_order", "order_or_bad", "shipment_body", "carrier_code"]

CHANNEL = "Amazon"
#: the fulfilment states whose orders the seller ships (or staff must hear were cancelled)
SHIPPABLE = ("UNSHIPPED", "PARTIALLY_SHIPPED")
CANCELLED = "CANCELLED"
#: the carrier names staff type (lower case) -> Amazon's carrierCode; any other is sent as
#: carrierCode "Other" with the name as carrierName, which Amazon accepts for every carrier
CARRIER_CODES = {
    "ups": "UPS", "usps": "USPS", "fedex": "FedEx", "dhl": "DHL", "dhl express": "DHL", "dpd": "DPD",
    "gls": "GLS", "hermes": "Hermes", "royal mail": "Royal Mail", "parcelforce": "Parcelforce",
    "colissimo": "Colissimo", "chronopost": "Chronopost", "la poste": "La Poste", "tnt": "TNT",
    "deutsche post": "Deutsche Post", "poste italiane": "Poste Italiane", "correos": "Correos",
    "seur": "SEUR", "bpost": "Bpost", "postnl": "PostNL", "canada post": "Canada Post",
    "japan post": "Japan Post", "yamato transport": "Yamato Transport",
}  # fmt: skip


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MappingError(f"{field} is missing or not an object")
    return value


def _list(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise MappingError(f"{field} is missing or not a list")
    return value


def _quantity(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise MappingError(f"{field} must be a positive integer, got {value!r:.40}")
    return value


def _amount(money: Currencies, value: Any, field: str, *, signed: bool = False) -> Decimal:
    """The model's ``Money``, in the order's one currency."""
    return money.amount(value, field, value_key="amount", currency_key="currencyCode", signed=signed)


def _breakdowns(proceeds: dict[str, Any], field: str, money: Currencies) -> dict[str, Decimal]:
    """``proceeds.breakdowns`` added up by type (``ITEM``, ``SHIPPING``, ``TAX``, ``DISCOUNT``...)."""
    totals: dict[str, Decimal] = {}
    for i, part in enumerate(_list(proceeds.get("breakdowns"), f"{field}.breakdowns")):
        where = f"{field}.breakdowns[{i}]"
        part = _object(part, where)
        kind = text(part.get("type"), f"{where}.type", required=True) or ""
        value = _amount(money, part.get("subtotal"), f"{where}.subtotal", signed=True)
        totals[kind] = totals.get(kind, Decimal("0")) + value
    return totals


def _discount(totals: dict[str, Decimal], field: str) -> Decimal:
    """The amount taken off: Amazon sends it negative; a positive DISCOUNT is not one."""
    value = totals.get("DISCOUNT", Decimal("0"))
    if value > 0:
        raise MappingError(f"{field} DISCOUNT is positive ({value}); a discount lowers the proceeds")
    return -value


def item_cancelled(item: dict[str, Any], where: str) -> bool:
    """The item's cancellation was carried out (``cancellation.cancellationExecution``, by the
    buyer, the seller or Amazon); a cancellation only requested is not one yet."""
    cancellation = item.get("cancellation")
    if cancellation is None:
        return False
    execution = _object(cancellation, f"{where}.cancellation").get("cancellationExecution")
    return execution is not None and bool(_object(execution, f"{where}.cancellation.cancellationExecution"))


def order_line(raw: Any, index: int, money: Currencies, *, order_cancelled: bool = False) -> OrderLine:
    where = f"orderItems[{index}]"
    item = _object(raw, where)
    product = _object(item.get("product"), f"{where}.product")
    quantity = _quantity(item.get("quantityOrdered"), f"{where}.quantityOrdered")
    price = _object(product.get("price"), f"{where}.product.price")
    unit = _amount(money, price.get("unitPrice"), f"{where}.product.price.unitPrice")
    totals = _breakdowns(_object(item.get("proceeds"), f"{where}.proceeds"), f"{where}.proceeds", money)
    if "ITEM" not in totals:
        raise MappingError(f"{where}.proceeds has no ITEM breakdown")
    return OrderLine(
        source_line_id=plain_id(item.get("orderItemId"), f"{where}.orderItemId"),
        sku=text(product.get("sellerSku"), f"{where}.product.sellerSku", required=True) or "",
        title=text(product.get("title"), f"{where}.product.title") or "",
        quantity=quantity,
        unit_price=unit,
        line_total=totals["ITEM"],
        discount=_discount(totals, f"{where}.proceeds"),
        tax=totals.get("TAX", Decimal("0")),
        channel_cancelled=order_cancelled or item_cancelled(item, where),
    )


def address(raw: Any, field: str, email: str | None) -> Address | None:
    if raw is None:
        return None
    data = _object(raw, field)
    return Address(
        name=text(data.get("name"), f"{field}.name"),
        company=text(data.get("companyName"), f"{field}.companyName"),
        line1=text(data.get("addressLine1"), f"{field}.addressLine1"),
        line2=" ".join(
            filter(None, (text(data.get(k), f"{field}.{k}") for k in ("addressLine2", "addressLine3")))
        ) or None,
        city=text(data.get("city"), f"{field}.city"),
        postal_code=text(data.get("postalCode"), f"{field}.postalCode"),
        region=text(data.get("stateOrRegion"), f"{field}.stateOrRegion"),
        country=text(data.get("countryCode"), f"{field}.countryCode"),
        phone=text(data.get("phone"), f"{field}.phone"),
        email=email,
    )  # fmt: skip


def channel_order(raw: dict[str, Any]) -> ChannelOrder:
    """One ``Order`` (searchOrders with includedData BUYER, RECIPIENT, PROCEEDS, FULFILLMENT,
    CANCELLATION) as a ChannelOrder."""
    fulfillment = _object(raw.get("fulfillment"), "fulfillment")
    status = text(fulfillment.get("fulfillmentStatus"), "fulfillment.fulfillmentStatus", required=True)
    if fulfillment.get("fulfilledBy") != "MERCHANT":
        raise MappingError(f"it is fulfilled by {fulfillment.get('fulfilledBy')!r:.20}, not by the seller")
    if status not in (*SHIPPABLE, CANCELLED, "SHIPPED"):
        raise MappingError(f"its status {status!r:.30} has no prices yet (it waits for payment)")
    money = Currencies()
    items = _list(raw.get("orderItems"), "orderItems")
    lines = [order_line(item, i, money, order_cancelled=status == CANCELLED) for i, item in enumerate(items)]
    proceeds = _object(raw.get("proceeds"), "proceeds")
    totals = _breakdowns(proceeds, "proceeds", money)
    grand_total = _amount(money, proceeds.get("grandTotal"), "proceeds.grandTotal")
    buyer: dict[str, Any] = raw.get("buyer") or {}
    recipient: dict[str, Any] = raw.get("recipient") or {}
    email = text(_object(buyer, "buyer").get("buyerEmail"), "buyer.buyerEmail")
    _object(recipient, "recipient")
    return ChannelOrder(
        source_order_id=plain_id(raw.get("orderId"), "orderId"),
        created_at=timestamp(raw.get("createdTime"), "createdTime"),
        updated_at=timestamp(raw.get("lastUpdatedTime"), "lastUpdatedTime"),
        currency=money.code,
        subtotal=totals.get("ITEM", Decimal("0")),
        shipping_total=totals.get("SHIPPING", Decimal("0")),
        tax_total=totals.get("TAX", Decimal("0")),
        discount_total=_discount(totals, "proceeds"),
        grand_total=grand_total,
        channel_fulfillment_status=status,
        channel_cancelled=status == CANCELLED,
        buyer_email=email,
        shipping_address=address(recipient.get("deliveryAddress"), "recipient.deliveryAddress", email),
        lines=lines,
    )


def order_or_bad(raw: Any) -> ChannelOrder | BadOrder:
    return wire.order_or_bad(raw, channel_order, id_field="orderId", updated_field="lastUpdatedTime", channel=CHANNEL)


def carrier_code(carrier: str) -> tuple[str, str | None]:
    """Amazon's ``carrierCode`` for a carrier as staff named it, and ``carrierName`` when the
    code is ``Other``."""
    known = CARRIER_CODES.get(carrier.strip().lower())
    return (known, None) if known else ("Other", carrier.strip()[:100])


def shipment_body(shipment: Shipment, marketplace_id: str) -> dict[str, Any]:
    """confirmShipment's ``ConfirmShipmentRequest`` for one package (v0 model).

    ``packageReferenceId`` must be a positive number unique within the order: the host's
    shipment id is both, and the same on a repeat, so a repeat is recognised.
    """
    code, name = carrier_code(shipment.carrier)
    package: dict[str, Any] = {
        "packageReferenceId": str(shipment.shipment_id),
        "carrierCode": code,
        "trackingNumber": shipment.tracking_number,
        "shipDate": shipment.shipped_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "orderItems": [{"orderItemId": line.source_line_id, "quantity": line.quantity} for line in shipment.lines],
    }
    if name:
        package["carrierName"] = name
    return {"marketplaceId": marketplace_id, "packageDetail": package}


def marketplace_of(order: Any) -> str:
    """The marketplace an order was placed on (getOrder's ``salesChannel.marketplaceId``)."""
    channel = _object(_object(order, "order").get("salesChannel"), "salesChannel")
    return text(channel.get("marketplaceId"), "salesChannel.marketplaceId", required=True) or ""


def tracking_numbers(order: Any) -> list[str]:
    """The tracking numbers of an order's packages (getOrder with includedData PACKAGES)."""
    packages = _object(order, "order").get("packages") or []
    return [p["trackingNumber"] for p in packages if isinstance(p, dict) and isinstance(p.get("trackingNumber"), str)]


def format_time(value: datetime) -> str:
    """searchOrders' date-time parameters: ISO 8601, UTC, whole seconds (``2026-01-01T00:00:00Z``)."""
    if value.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def error_detail(body: Any) -> str:
    """The text of the SP-API's ``{"errors": [{"code", "message", "details"}]}`` envelope."""
    first = _first_error(body)
    if first is None:
        return ""
    parts = [first.get("message"), first.get("details")]
    return wire.mask_text(" ".join(p for p in parts if isinstance(p, str) and p), 300)


def error_code(body: Any) -> str | None:
    first = _first_error(body)
    code = first.get("code") if first else None
    return code if isinstance(code, str) else None


def _first_error(body: Any) -> dict[str, Any] | None:
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return errors[0]
    return None
