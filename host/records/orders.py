"""Orders in the host: import (upsert), shipping, status changes, Source Updated for Shipping.

What belongs to whom: the channel owns the order's content and its channel_* fields; staff own
the status, shipments and everything they change in the host. A re-import updates only the
channel's fields, so it never undoes a change staff made.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from host import clock
from host.channel.tracking import checked_tracking
from host.errors import HostError, NotFound
from host.records import audit, money, order_search
from host.records.validation import check_text, parse_id
from host.store import bulk
from host.store.api import OperationalError, Store, in_list
from host.store.db import write
from plugin_spec import Address, ChannelOrder, Shipment, ShipmentLine, UploadResult

STATUSES = ("In Process", "On Hold", "Completed", "Cancelled", "Problem Order")
UNSHIPPED, PARTIALLY_SHIPPED, FULLY_SHIPPED = "Unshipped", "Partially Shipped", "Fully Shipped"

_ORDER_COLUMNS = (
    "company_id", "channel", "source_order_id", "payment_status", "order_date", "channel_updated_at",
    "currency", "subtotal", "shipping_total", "tax", "grand_total", "commission", "total_cost",
    "buyer_company", "buyer_vat_number", "buyer_email", "shipping_address", "billing_address",
    "channel_financial_status", "channel_fulfillment_status", "channel_cancelled", "imported_at", "updated_at",
    "awaiting_acceptance", "discount_total", "adjustment_total",
)  # fmt: skip
_LINE_COLUMNS = (
    "order_id", "source_line_id", "sku", "title", "quantity", "unit_price", "tax", "line_total", "discount",
    "channel_cancelled",
)  # fmt: skip
# Only the channel's own fields; a staff change (status, shipments) is never touched. A
# cancellation once seen stays: the larger of the stored flag and the new one.
_UPDATE_FROM_CHANNEL = (
    "UPDATE orders SET channel_updated_at = :updated_at, channel_financial_status = :financial, "
    "channel_fulfillment_status = :fulfillment, "
    "channel_cancelled = CASE WHEN channel_cancelled >= :cancelled THEN channel_cancelled ELSE :cancelled END, "
    "updated_at = :now, awaiting_acceptance = :awaiting WHERE id = :id"
)
# A line the channel cancelled since the last copy; as for the order, a cancellation once seen
# stays (the channel's cancelled and refunded states are final), so only new ones are written.
_CANCEL_LINE_FROM_CHANNEL = (
    "UPDATE order_lines SET channel_cancelled = 1 "
    "WHERE order_id = :order_id AND source_line_id = :source_line_id AND channel_cancelled = 0"
)


@dataclass
class ImportStats:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    flagged_cancelled: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "inserted": self.inserted,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "flagged_cancelled": len(self.flagged_cancelled),
        }


def _address(value: Address | None) -> str | None:
    """The address as JSON without its empty fields (``model_dump_json(exclude_none=True)``,
    called on the model's serializer directly: two per imported order)."""
    if value is None:
        return None
    return value.__pydantic_serializer__.to_json(value, exclude_none=True).decode()


def _iso(value: datetime) -> str:
    """``clock.iso``, with a fast path for the UTC datetimes plugins give (two per imported order)."""
    if value.tzinfo is UTC and value.year >= 1000:
        return value.isoformat(timespec="microseconds")[:26] + "Z"
    return clock.iso(value)


@dataclass
class Prepared:
    """A batch's rows, built before its write transaction (``prepare``) so that the write lock,
    which every job process of the database shares, is held only for the writing."""

    #: each order's ``updated_at`` as stored, in batch order
    updated_at: list[str]
    #: the order row and line rows (without the order id) of each order that was not in the
    #: database when prepared: the copy with the newest ``updated_at`` of each source order id
    rows: dict[str, tuple[tuple[Any, ...], list[tuple[Any, ...]]]]


def prepare(
    db: Store,
    company_id: int,
    channel: str,
    orders: Sequence[ChannelOrder],
    commission_percent: Decimal | None,
    known: dict[str, tuple[Any, ...]] | None = None,
) -> Prepared:
    """Build the rows ``upsert_orders`` will write, outside any write transaction. Reading which
    orders exist already is only a guess here (another job may insert one meanwhile): the
    upsert asks again inside its transaction and builds what the guess missed. ``known``:
    ``_known`` of these orders, when the caller has read it already."""
    if known is None:
        known = _known(db, company_id, channel, [order.source_order_id for order in orders])
    now = clock.now_iso()
    updated = [_iso(order.updated_at) for order in orders]
    rows: dict[str, tuple[tuple[Any, ...], list[tuple[Any, ...]]]] = {}
    newest: dict[str, str] = {}
    for order, updated_at in zip(orders, updated, strict=True):
        source_id = order.source_order_id
        if source_id in known or (source_id in newest and updated_at <= newest[source_id]):
            continue
        newest[source_id] = updated_at
        rows[source_id] = _rows(company_id, channel, order, updated_at, commission_percent, now)
    return Prepared(updated, rows)


def prepare_batch(
    db: Store,
    company_id: int,
    channel: str,
    orders: Sequence[ChannelOrder],
    commission_percent: Decimal | None,
) -> Prepared | None:
    """``prepare``, or None when an order's rows cannot be built: ``upsert_each`` then finds
    which one, in its own savepoint, and stores the others."""
    try:
        return prepare(db, company_id, channel, orders, commission_percent)
    except OperationalError:
        raise
    except Exception:  # noqa: BLE001 - the order's own fault, reported by upsert_each
        return None


def _rows(
    company_id: int, channel: str, order: ChannelOrder, updated_at: str, percent: Decimal | None, now: str
) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    """One new order's row (values in the order of ``_ORDER_COLUMNS``) and its lines' rows
    (``_LINE_COLUMNS`` without the order id, unknown until inserted); money as plain text,
    exactly as received."""
    grand_total = order.grand_total
    commission = money.commission(grand_total, percent)
    created = order.created_at
    row = (
        company_id, channel, order.source_order_id, order.payment_status,
        # the same text only for the same UTC instant (a zone's two 02:30s compare equal)
        updated_at if created.tzinfo is UTC and created == order.updated_at else _iso(created),
        updated_at, order.currency, _text(order.subtotal), _text(order.shipping_total),
        _text(order.tax_total), _text(grand_total), _text(commission),
        _text(grand_total + commission), order.buyer_company, order.buyer_vat_number,
        order.buyer_email, _address(order.shipping_address), _address(order.billing_address),
        order.channel_financial_status, order.channel_fulfillment_status, int(order.channel_cancelled),
        now, now, int(order.awaiting_acceptance), _text(order.discount_total), _text(order.adjustment_total),
    )  # fmt: skip
    # a line total is stored as the channel gave it, never divided into a unit price
    lines = [
        (line.source_line_id, line.sku, line.title, line.quantity, _optional(line.unit_price), _text(line.tax),
         _optional(line.line_total), _text(line.discount), int(line.channel_cancelled))
        for line in order.lines
    ]  # fmt: skip
    return row, lines


def _known(db: Store, company_id: int, channel: str, source_ids: list[str]) -> dict[str, tuple[Any, ...]]:
    """(id, channel_updated_at, channel_cancelled, status) of the orders already stored."""
    if not source_ids:
        return {}
    marks, params = in_list("source", source_ids)
    return {
        row[0]: row[1:]
        for row in db.execute(
            "SELECT source_order_id, id, channel_updated_at, channel_cancelled, status FROM orders "
            f"WHERE company_id = :company_id AND channel = :channel AND source_order_id IN {marks}",
            {"company_id": company_id, "channel": channel, **params},
        )
    }


def upsert_orders(
    db: Store,
    company_id: int,
    channel: str,
    orders: Sequence[ChannelOrder],
    commission_percent: Decimal | None,
    stats: ImportStats,
    prepared: Prepared | None = None,
) -> None:
    """Insert new orders with their lines and refresh the channel's fields of known ones.

    Runs in the caller's transaction; unique on (company, channel, source order id).
    ``prepared``: the rows ``prepare`` built for exactly these orders beforehand.
    """
    if not orders:
        return
    known = _known(db, company_id, channel, [order.source_order_id for order in orders])
    if prepared is None:
        prepared = prepare(db, company_id, channel, orders, commission_percent, known)
    now = clock.now_iso()  # an update is stamped when written (a new order: when its row was built)
    new: dict[str, tuple[ChannelOrder, str]] = {}
    updates: list[dict[str, Any]] = []  # written in one executemany, in this order
    cancelled_lines: list[dict[str, Any]] = []
    for order, updated_at in zip(orders, prepared.updated_at, strict=True):
        source_id = order.source_order_id
        seen = known.get(source_id)
        if seen is not None:
            order_id, seen_updated_at, was_cancelled, status = seen
            if updated_at <= seen_updated_at:
                stats.unchanged += 1
                continue
            updates.append(
                {"updated_at": updated_at, "financial": order.channel_financial_status,
                 "fulfillment": order.channel_fulfillment_status, "cancelled": int(order.channel_cancelled),
                 "now": now, "awaiting": int(order.awaiting_acceptance), "id": order_id}
            )  # fmt: skip
            stats.updated += 1
            cancelled_lines.extend(
                {"order_id": order_id, "source_line_id": line.source_line_id}
                for line in order.lines
                if line.channel_cancelled
            )
            # seen again later in this batch: compare with what was just written
            known[source_id] = (order_id, updated_at, was_cancelled or order.channel_cancelled, status)
            if order.channel_cancelled and not was_cancelled and status != "Cancelled":
                stats.flagged_cancelled.append(source_id)
        else:
            first = new.get(source_id)
            if first is None or updated_at > first[1]:
                new[source_id] = (order, updated_at)  # seen twice in one batch: the newer copy wins
    if updates:
        _log_channel_changes(db, company_id, updates, known)
        db.conn.executemany(_UPDATE_FROM_CHANNEL, updates)
    if cancelled_lines:
        db.conn.executemany(_CANCEL_LINE_FROM_CHANNEL, cancelled_lines)
    if not new:
        return
    built = prepared.rows
    rows = []
    line_rows: list[tuple[str, list[tuple[Any, ...]]]] = []
    for source_id, (order, updated_at) in new.items():
        row, lines = built.get(source_id) or _rows(company_id, channel, order, updated_at, commission_percent, now)
        rows.append(row)
        line_rows.append((source_id, lines))
        if order.channel_cancelled:
            stats.flagged_cancelled.append(source_id)
    bulk.insert_rows(db, "orders", _ORDER_COLUMNS, rows)
    order_ids = {source_id: row[0] for source_id, row in _known(db, company_id, channel, list(new)).items()}
    order_search.index_new(db, [(order_id, source_id) for source_id, order_id in order_ids.items()])
    bulk.insert_rows(
        db,
        "order_lines",
        _LINE_COLUMNS,
        [(order_ids[source_id], *line) for source_id, lines in line_rows for line in lines],
    )
    shipped = [order_ids[source_id] for source_id, (order, _) in new.items() if order.channel_shipped]
    if shipped:
        _shipped_on_channel(db, shipped)
    stats.inserted += len(new)


def _log_channel_changes(
    db: Store, company_id: int, updates: list[dict[str, Any]], known: dict[str, tuple[Any, ...]]
) -> None:
    """The Change Log's automatic entries of a download, one per order the channel changed: its
    status there (paid, shipped, refunded...) or a cancellation flagged for staff. An order read
    again unchanged writes nothing; neither does a change of the channel's own timestamps only."""
    by_id = {update["id"]: update for update in updates}
    names = {values[0]: source_id for source_id, values in known.items()}
    marks, params = in_list("order", by_id)
    entries: list[tuple[str, int | None, str | None, dict[str, Any]]] = []
    for row in db.execute(
        "SELECT id, channel_financial_status, channel_fulfillment_status, channel_cancelled FROM orders "
        f"WHERE id IN {marks} ORDER BY id",
        params,
    ).fetchall():
        order_id, financial, fulfillment, cancelled = row
        update = by_id[order_id]
        new_financial, new_fulfillment, new_cancelled = update["financial"], update["fulfillment"], update["cancelled"]
        target = f"order {names.get(order_id, order_id)}"
        changed: dict[str, Any] = {
            label: {"from": before, "to": after}
            for label, before, after in (
                ("channel payment status", financial, new_financial),
                ("channel fulfillment status", fulfillment, new_fulfillment),
            )
            if after != before
        }
        if new_cancelled and not cancelled:  # one entry for the order, its status change with it
            flagged = {"flagged for staff": True, **changed}
            entries.append(("order cancelled on the channel", company_id, target, flagged))
        elif changed:
            entries.append(("order status changed by the channel", company_id, target, changed))
    audit.record_many(db, audit.SYSTEM, entries)


def _shipped_on_channel(db: Store, order_ids: list[int]) -> None:
    """New orders the seller shipped on the channel already (Allow Download Shipped Orders):
    Fully Shipped, and Source Updated for Shipping, since the channel has the tracking."""
    marks, params = in_list("order", order_ids)
    db.execute(f"UPDATE order_lines SET quantity_shipped = quantity WHERE order_id IN {marks}", params)
    db.execute(
        "UPDATE orders SET shipping_status = :shipping, source_updated_for_shipping = 1, status = 'Completed' "
        f"WHERE id IN {marks}",
        {"shipping": FULLY_SHIPPED, **params},
    )


def _text(value: Decimal) -> str:
    """Money as stored: plain digits, exactly as received (``str`` unless it would write an
    exponent, which a Decimal such as ``Decimal("1E+2")`` does; ``format(..., "f")`` never does)."""
    text = str(value)
    return format(value, "f") if "E" in text or "e" in text else text


def _optional(value: Decimal | None) -> str | None:
    return None if value is None else _text(value)


def line_amount(line: dict[str, Any]) -> str | None:
    """What a stored line is worth before its discount, as shown to staff: the channel's line
    total, else unit price x quantity (exact: a product of decimals needs no rounding)."""
    if line.get("line_total") is not None:
        return str(line["line_total"])
    if line.get("unit_price") is None:
        return None
    return _text(Decimal(line["unit_price"]) * line["quantity"])


def upsert_each(
    db: Store,
    company_id: int,
    channel: str,
    orders: Sequence[ChannelOrder],
    commission_percent: Decimal | None,
    stats: ImportStats,
    prepared: Prepared | None = None,
) -> list[tuple[ChannelOrder, str]]:
    """``upsert_orders``, but an order that cannot be stored does not sink the others.

    The batch is written whole inside a SAVEPOINT (the fast path costs one savepoint); only if
    that fails is each order written in a savepoint of its own. Returns the orders that could
    not be stored, with the reason. A failure of the database itself (locked, disk full) is
    not an order's fault and is raised. ``prepared``: ``prepare_batch`` of these orders.
    """
    before = _copy(stats)
    db.execute("SAVEPOINT import_batch")
    try:
        upsert_orders(db, company_id, channel, orders, commission_percent, stats, prepared)
    except OperationalError:
        db.execute("ROLLBACK TO import_batch")
        db.execute("RELEASE import_batch")
        raise
    except Exception:
        db.execute("ROLLBACK TO import_batch")
        _restore(stats, before)
    else:
        db.execute("RELEASE import_batch")
        return []
    failed: list[tuple[ChannelOrder, str]] = []
    try:
        for order in orders:
            before = _copy(stats)
            db.execute("SAVEPOINT import_order")
            try:
                upsert_orders(db, company_id, channel, [order], commission_percent, stats)
            except OperationalError:
                raise
            except Exception as exc:
                db.execute("ROLLBACK TO import_order")
                _restore(stats, before)
                failed.append((order, f"the host cannot store it ({type(exc).__name__}: {str(exc)[:120]})"))
            db.execute("RELEASE import_order")
    finally:
        db.execute("RELEASE import_batch")
    return failed


def _copy(stats: ImportStats) -> ImportStats:
    return dataclasses.replace(stats, flagged_cancelled=list(stats.flagged_cancelled))


def _restore(stats: ImportStats, saved: ImportStats) -> None:
    stats.inserted, stats.updated, stats.unchanged = saved.inserted, saved.updated, saved.unchanged
    stats.flagged_cancelled[:] = saved.flagged_cancelled


# -- reading ---------------------------------------------------------------------------------


def _order_row(db: Store, order_id: int | str) -> dict[str, Any]:
    """An order by its number, or by the channel's order id (``BMP-11761105``) when unique."""
    if isinstance(order_id, str) and not order_id.strip().isdecimal():
        ref = order_id.strip()
        rows = list(
            db.query(
                "SELECT o.*, c.name AS company FROM orders o JOIN companies c ON c.id = o.company_id "
                "WHERE o.source_order_id = :ref ORDER BY o.id LIMIT 2",
                {"ref": ref},
            )
        )
        if not rows:
            raise NotFound(f"no order with number or channel order id {ref[:60]!r}")
        if len(rows) > 1:
            raise HostError(f"channel order id {ref[:60]!r} belongs to several companies' orders; use the order number")
        return rows[0]
    order_id = parse_id(order_id, "order")
    rows = list(
        db.query(
            "SELECT o.*, c.name AS company FROM orders o JOIN companies c ON c.id = o.company_id WHERE o.id = :id",
            {"id": order_id},
        )
    )
    if not rows:
        raise NotFound(f"unknown order {order_id}")
    return rows[0]


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "company": row["company"],
        "channel": row["channel"],
        "source_order_id": row["source_order_id"],
        "status": row["status"],
        "payment_status": row["payment_status"],
        "shipping_status": row["shipping_status"],
        "payment_method": row["payment_method"],
        "order_date": row["order_date"],
        "currency": row["currency"],
        "subtotal": row["subtotal"],
        "shipping_total": row["shipping_total"],
        "tax": row["tax"],
        "discount_total": row["discount_total"],
        "adjustment_total": row["adjustment_total"],
        "grand_total": row["grand_total"],
        "commission": row["commission"],
        "total_cost": row["total_cost"],
        "buyer_company": row["buyer_company"],
        "buyer_vat_number": row["buyer_vat_number"],
        "source_updated_for_shipping": bool(row["source_updated_for_shipping"]),
        "channel_cancelled": bool(row["channel_cancelled"]),
        "needs_attention": bool(row["channel_cancelled"]) and row["status"] != "Cancelled",
        "awaiting_acceptance": bool(row["awaiting_acceptance"]),
    }


def buyer(row: dict[str, Any]) -> str | None:
    """Who bought: the business name, else the name on the shipping address."""
    if row.get("buyer_company"):
        return row["buyer_company"]
    address = row.get("shipping_address")
    if isinstance(address, str):
        address = json.loads(address)
    return (address or {}).get("name") or (address or {}).get("company")


def show_order(db: Store, order_id: int | str) -> dict[str, Any]:
    row = _order_row(db, order_id)
    order = _public(row)
    order["shipping_address"] = json.loads(row["shipping_address"]) if row["shipping_address"] else None
    order["billing_address"] = json.loads(row["billing_address"]) if row["billing_address"] else None
    order["channel_financial_status"] = row["channel_financial_status"]
    order["channel_fulfillment_status"] = row["channel_fulfillment_status"]
    order["lines"] = [
        {
            k: line[k]
            for k in (
                "id",
                "source_line_id",
                "sku",
                "title",
                "quantity",
                "unit_price",
                "line_total",
                "discount",
                "tax",
                "quantity_shipped",
            )
        }
        | {"channel_cancelled": bool(line["channel_cancelled"])}
        for line in db.query("SELECT * FROM order_lines WHERE order_id = :id ORDER BY id", {"id": row["id"]})
    ]
    order["shipments"] = [
        {
            **{k: s[k] for k in ("id", "carrier", "tracking_number", "tracking_url", "shipped_at", "upload_state",
                                 "upload_attempts", "upload_message", "uploaded_at", "replaces_tracking")},
            "lines": [
                {"order_line_id": sl["order_line_id"], "quantity": sl["quantity"],
                 "serial_numbers": json.loads(sl["serial_numbers"])}
                for sl in db.query("SELECT * FROM shipment_lines WHERE shipment_id = :id", {"id": s["id"]})
            ],
        }
        for s in db.query("SELECT * FROM shipments WHERE order_id = :id ORDER BY id", {"id": row["id"]})
    ]  # fmt: skip
    return order


def list_orders(
    db: Store,
    company_id: int | None = None,
    *,
    needs_attention: bool = False,
    upload_failed: bool = False,
    limit: int | None = None,
    with_buyer: bool = False,
) -> Iterable[dict[str, Any]]:
    where: list[str] = []
    params: dict[str, Any] = {}
    if company_id is not None:
        where.append("o.company_id = :company_id")
        params["company_id"] = company_id
    if needs_attention:
        where.append("o.channel_cancelled = 1 AND o.status != 'Cancelled'")
    if upload_failed:
        where.append("EXISTS (SELECT 1 FROM shipments s WHERE s.order_id = o.id AND s.upload_state = 'failed')")
    sql = "SELECT o.*, c.name AS company FROM orders o JOIN companies c ON c.id = o.company_id"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY o.id"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    if with_buyer:
        return ({**_public(row), "buyer": buyer(row)} for row in db.query(sql, params))
    return (_public(row) for row in db.query(sql, params))


# -- staff actions ---------------------------------------------------------------------------


def set_status(db: Store, order_id: int | str, status: str, *, actor: str | None = None) -> dict[str, Any]:
    """Change an order's status by hand; ``actor`` (when given) is written to the Change Log."""
    matched = [s for s in STATUSES if s.lower() == status.strip().lower()]
    if not matched:
        raise HostError(f"unknown status {status[:40]!r}; choose one of: {', '.join(STATUSES)}")
    row = _order_row(db, order_id)
    with write(db):
        db.execute(
            "UPDATE orders SET status = :status, updated_at = :now WHERE id = :id",
            {"status": matched[0], "now": clock.now_iso(), "id": row["id"]},
        )
        if actor is not None:
            audit.record(db, actor, "order status changed", company_id=row["company_id"],
                         target=f"order {row['source_order_id']}",
                         details={"from": row["status"], "to": matched[0]})  # fmt: skip
    return show_order(db, row["id"])


class CancelledOnChannel(HostError):
    """Shipping what the channel cancelled (the order, or a line) without staff confirming it."""


#: the Change Log's action for a shipment staff confirmed despite the channel's cancellation
CONFIRMED_ACTION = "shipped although cancelled on the channel"


def ship_order(
    db: Store,
    order_id: int | str,
    *,
    carrier: str,
    tracking_number: str,
    tracking_url: str | None = None,
    serials: Sequence[str] = (),
    confirmed_by: str | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """Ship everything still unshipped in one package; the order becomes Fully Shipped.
    ``actor`` (who ships it, when given) is written to the Change Log with the shipment.

    ``serials`` are serial numbers or IMEIs: plain values when one line is shipped, or
    ``SKU=SERIAL`` to say which line each belongs to.

    Lines the channel cancelled are not shipped, and Fully Shipped does not wait for them. An
    order the channel cancelled, or a serial naming a cancelled line, is refused
    (``CancelledOnChannel``) unless ``confirmed_by`` names who confirmed shipping it anyway:
    then every unshipped line ships, cancelled ones too, and the Change Log records who
    confirmed it, in the same transaction as the shipment.
    """
    carrier = check_text("carrier", carrier)
    tracking_number = checked_tracking(carrier, check_text("tracking number", tracking_number, limit=100))
    tracking_url = check_text("tracking URL", tracking_url, required=False, limit=2000)
    if tracking_url and not tracking_url.lower().startswith(("https://", "http://")):
        raise HostError("tracking URL must start with https:// or http://")
    now = clock.now_iso()
    with write(db):  # read and write in one transaction: two people shipping at once ship once
        row = _order_row(db, order_id)
        if row["status"] == "Cancelled":
            raise HostError(f"order {row['id']} is Cancelled and cannot be shipped")
        unshipped = list(
            db.query(
                "SELECT * FROM order_lines WHERE order_id = :id AND quantity_shipped < quantity", {"id": row["id"]}
            )
        )
        confirmed = bool(confirmed_by and confirmed_by.strip())
        lines = _lines_to_ship(row, unshipped, serials, confirmed)
        per_line = _assign_serials(lines, serials)
        if db.execute(
            "SELECT 1 FROM shipments WHERE order_id = :id AND tracking_number = :tracking",
            {"id": row["id"], "tracking": tracking_number},
        ).fetchone():
            raise HostError(f"order {row['id']} already has a shipment with tracking {tracking_number!r}")
        shipment_id = db.execute(
            "INSERT INTO shipments (order_id, carrier, tracking_number, tracking_url, shipped_at) "
            "VALUES (:order_id, :carrier, :tracking, :url, :now) RETURNING id",
            {"order_id": row["id"], "carrier": carrier, "tracking": tracking_number, "url": tracking_url, "now": now},
        ).fetchone()[0]
        for line in lines:
            db.execute(
                "INSERT INTO shipment_lines (shipment_id, order_line_id, quantity, serial_numbers) "
                "VALUES (:shipment_id, :line_id, :quantity, :serials)",
                {
                    "shipment_id": shipment_id,
                    "line_id": line["id"],
                    "quantity": line["quantity"] - line["quantity_shipped"],
                    "serials": json.dumps(per_line[line["id"]]),
                },
            )
            db.execute("UPDATE order_lines SET quantity_shipped = quantity WHERE id = :id", {"id": line["id"]})
        db.execute(
            "UPDATE orders SET shipping_status = :shipping, source_updated_for_shipping = 0, "
            "status = CASE WHEN status = 'In Process' THEN 'Completed' ELSE status END, updated_at = :now "
            "WHERE id = :id",
            {"shipping": shipping_status(db, row["id"]), "now": now, "id": row["id"]},
        )
        overridden = [line["sku"] for line in lines if line["channel_cancelled"]]
        if row["channel_cancelled"] or overridden:
            assert confirmed_by is not None  # _lines_to_ship refused it otherwise
            audit.record(
                db, audit.trimmed(confirmed_by), CONFIRMED_ACTION, company_id=row["company_id"],
                target=f"order {row['source_order_id']}",
                details={"cancelled on the channel": "the order" if row["channel_cancelled"] else "lines",
                         "lines shipped anyway": overridden, "tracking": tracking_number,
                         "confirmed by": confirmed_by.strip()},
            )  # fmt: skip
        if actor is not None:
            audit.record(db, actor, "order shipped", company_id=row["company_id"],
                         target=f"order {row['source_order_id']}",
                         details={"carrier": carrier, "tracking": tracking_number})  # fmt: skip
    return show_order(db, row["id"])


def _lines_to_ship(
    row: dict[str, Any], unshipped: list[dict[str, Any]], serials: Sequence[str], confirmed: bool
) -> list[dict[str, Any]]:
    """The unshipped lines this shipment takes: all of them when staff confirmed shipping what
    the channel cancelled, else those the channel did not cancel (refusing an order the channel
    cancelled, and a serial that names a cancelled line)."""
    if not unshipped:
        raise HostError(f"order {row['id']} is already Fully Shipped")
    if confirmed:
        return unshipped
    who = f"order {row['id']} ({row['source_order_id']})"
    if row["channel_cancelled"]:
        raise CancelledOnChannel(
            f"{who} was cancelled on the channel, which will most likely refuse its tracking; "
            "ship it only after checking in the channel's portal that it still ships",
            cli_hint="to ship it anyway, add --confirm-cancelled",
        )
    lines = [line for line in unshipped if not line["channel_cancelled"]]
    open_skus = {line["sku"] for line in lines}
    for line in unshipped:
        named = any(value.partition("=")[0].strip() == line["sku"] for value in serials if "=" in value)
        if line["channel_cancelled"] and named and line["sku"] not in open_skus:
            raise CancelledOnChannel(
                f"line {line['sku']} of {who} was cancelled on the channel: it ships only when staff "
                "confirm shipping it anyway",
                cli_hint="to ship it anyway, add --confirm-cancelled",
            )
    if not lines:
        if row["shipping_status"] == FULLY_SHIPPED:
            raise HostError(
                f"order {row['id']} is already Fully Shipped (its other lines were cancelled on the channel)"
            )
        raise HostError(f"{who} has nothing left to ship: its unshipped lines were cancelled on the channel")
    return lines


def shipping_status(db: Store, order_id: int) -> str:
    """Unshipped, Partially Shipped or Fully Shipped, from the order's lines: a line the channel
    cancelled is not waited for (every other line shipped is Fully Shipped), though one shipped
    anyway counts as shipped."""
    open_units, shipped = db.execute(
        "SELECT COALESCE(SUM(CASE WHEN channel_cancelled = 0 THEN quantity - quantity_shipped ELSE 0 END), 0), "
        "COALESCE(SUM(quantity_shipped), 0) FROM order_lines WHERE order_id = :id",
        {"id": order_id},
    ).fetchone()
    if not open_units:
        return FULLY_SHIPPED if shipped else UNSHIPPED
    return PARTIALLY_SHIPPED if shipped else UNSHIPPED


def _assign_serials(lines: list[dict[str, Any]], serials: Sequence[str]) -> dict[int, list[str]]:
    per_line: dict[int, list[str]] = {line["id"]: [] for line in lines}
    by_sku = {line["sku"]: line for line in lines}
    for raw in serials:
        value = check_text("serial number", raw, limit=100)
        sku, sep, serial = value.partition("=")
        if sep and sku in by_sku:
            per_line[by_sku[sku]["id"]].append(serial.strip())
        elif len(lines) == 1:
            per_line[lines[0]["id"]].append(value)
        else:
            raise HostError("this order ships several lines: give each serial as SKU=SERIAL")
    for line in lines:
        if len(per_line[line["id"]]) > line["quantity"] - line["quantity_shipped"]:
            raise HostError(f"more serial numbers than units for SKU {line['sku']!r}")
    return per_line


# -- tracking upload ---------------------------------------------------------------------------


def defer_uploads(db: Store, company_id: int, until: str) -> None:
    """Make none of the company's unaccepted shipments due before ``until`` (a stored timestamp:
    when the channel's rate limit allows the next post), so the scheduler does not queue an
    upload every tick only to have it refused; one due later keeps its own time."""
    with write(db):
        db.execute(
            "UPDATE shipments SET next_upload_at = :until WHERE upload_state = 'pending' "
            "AND (next_upload_at IS NULL OR next_upload_at < :until) "
            "AND order_id IN (SELECT id FROM orders WHERE company_id = :company_id)",
            {"until": until, "company_id": company_id},
        )


def hold_uploads(db: Store, due: list[tuple[int, str]]) -> None:
    """Make each shipment ``(id, instant)`` not due before that instant (Delay Tracking Time)."""
    with write(db):
        db.conn.executemany(
            "UPDATE shipments SET next_upload_at = :at WHERE id = :id AND upload_state != 'accepted' "
            "AND (next_upload_at IS NULL OR next_upload_at < :at)",
            [{"at": at, "id": shipment_id} for shipment_id, at in due],
        )


def shipments_to_upload(db: Store, company_id: int, *, after_id: int = 0, limit: int = 500) -> list[Shipment]:
    """Shipments of Fully Shipped orders whose Source Updated for Shipping is still False,
    in id order from ``after_id`` on (so a caller pages through them once)."""
    rows = list(
        db.query(
            "SELECT s.*, o.source_order_id FROM orders o JOIN shipments s ON s.order_id = o.id "
            "WHERE o.company_id = :company_id AND o.shipping_status = 'Fully Shipped' "
            "AND o.source_updated_for_shipping = 0 "
            # the channel refuses tracking for an order the seller has not accepted yet
            "AND o.awaiting_acceptance = 0 "
            # a refused shipment ('failed') waits for staff: Retry makes it pending again
            "AND s.upload_state = 'pending' AND (s.next_upload_at IS NULL OR s.next_upload_at <= :now) "
            "AND s.id > :after_id ORDER BY s.id LIMIT :limit",
            {"company_id": company_id, "now": clock.now_iso(), "after_id": after_id, "limit": limit},
        )
    )
    # the lines of the whole page in one query, not one query per shipment
    lines: dict[int, list[ShipmentLine]] = {row["id"]: [] for row in rows}
    if rows:
        marks, params = in_list("shipment", [row["id"] for row in rows])
        for line in db.query(
            "SELECT sl.shipment_id, ol.source_line_id, ol.sku, sl.quantity, sl.serial_numbers FROM shipment_lines sl "
            "JOIN order_lines ol ON ol.id = sl.order_line_id "
            f"WHERE sl.shipment_id IN {marks} ORDER BY sl.shipment_id, ol.id",
            params,
        ):
            lines[line["shipment_id"]].append(
                ShipmentLine(
                    source_line_id=line["source_line_id"],
                    sku=line["sku"],
                    quantity=line["quantity"],
                    serial_numbers=json.loads(line["serial_numbers"]),
                )
            )
    shipments = []
    for row in rows:
        shipments.append(
            Shipment(
                shipment_id=row["id"],
                source_order_id=row["source_order_id"],
                carrier=row["carrier"],
                tracking_number=row["tracking_number"],
                tracking_url=row["tracking_url"],
                shipped_at=clock.parse(row["shipped_at"]),
                lines=lines[row["id"]],
                replaces_tracking_number=row["replaces_tracking"],
            )
        )
    return shipments


def record_upload_results(db: Store, results: Iterable[UploadResult]) -> dict[str, int]:
    """Mark each shipment accepted, failed (refused) or still pending (a passing failure); an
    order whose shipments are all accepted gets Source Updated for Shipping = True. One transaction
    (for one result, a short one: its shipment's row, and its order's once all are accepted).

    A refusal is the channel's lasting answer (a 4xx): the shipment is not sent again until
    staff retry or void it (``host.records.shipments``), so no upload is queued for it meanwhile.
    """
    counts = {"accepted": 0, "failed": 0, "retrying": 0}
    now = clock.now_iso()
    with write(db):
        touched = set()
        for result in results:
            # a passing failure (network, 5xx, a cut-off answer) is no refusal: the shipment stays
            # pending, with the reason, and is not listed among the failed uploads staff must handle
            state = "accepted" if result.ok else "pending" if result.retryable else "failed"
            # a passing failure is tried again next round; a refusal waits for staff (never due); an
            # unknown shipment, or one accepted already (a late duplicate result), is left alone
            cursor = db.execute(
                "UPDATE shipments SET upload_state = :state, upload_attempts = upload_attempts + 1, "
                "upload_message = :message, uploaded_at = :uploaded_at, next_upload_at = NULL, replaces_tracking = "
                "CASE WHEN :ok = 1 THEN NULL ELSE replaces_tracking END "
                "WHERE id = :id AND upload_state != 'accepted' RETURNING order_id",
                {
                    "state": state,
                    "message": result.message or None,
                    "uploaded_at": now if result.ok else None,
                    "ok": int(result.ok),
                    "id": result.shipment_id,
                },  # fmt: skip
            )
            row = cursor.fetchone()
            if row:
                touched.add(row[0])
                counts["retrying" if state == "pending" else state] += 1
        entries: list[tuple[str, int | None, str | None, dict[str, Any]]] = []
        for order_id in sorted(touched):
            marked = db.execute(
                "UPDATE orders SET source_updated_for_shipping = 1, updated_at = :now WHERE id = :id "
                "AND shipping_status = 'Fully Shipped' AND source_updated_for_shipping = 0 "
                "AND NOT EXISTS (SELECT 1 FROM shipments WHERE order_id = :id AND upload_state != 'accepted') "
                "RETURNING company_id, source_order_id",
                {"now": now, "id": order_id},
            ).fetchone()
            if marked:  # one entry per order, when the flag is set (not again on a late duplicate)
                entries.append(("Source Updated for Shipping set", marked[0], f"order {marked[1]}",
                                {"Source Updated for Shipping": True}))  # fmt: skip
        audit.record_many(db, audit.SYSTEM, entries)
    return counts
