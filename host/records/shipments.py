"""Shipments staff correct: Void Shipment before its tracking is uploaded, Update Tracking after
(on a channel that takes a changed tracking number), and Retry of an upload the channel refused.

A refused upload (the channel's lasting 4xx answer) waits for staff: it is never sent again by
itself (``orders.record_upload_results``), so it costs no Queued Job per worker round. Each action
here is written to the company's Change Log (the audit log) with who did it.
"""

from __future__ import annotations

import json
from typing import Any

from host import clock
from host.channel import plugins
from host.channel.tracking import checked_tracking
from host.errors import HostError
from host.jobs import queue as jobs
from host.records import audit
from host.records.orders import FULLY_SHIPPED, _order_row, shipping_status, show_order
from host.records.validation import check_text, parse_id
from host.store.api import Store
from host.store.db import write

#: the capability of a channel that takes a changed tracking number for a recorded shipment
UPDATE_TRACKING = "update_tracking"


def can_update_tracking(channel: str) -> bool:
    """True when the channel's plugin says it takes a corrected tracking number."""
    return UPDATE_TRACKING in plugins.channel_info(channel).capabilities


def on_channel(shipment: dict[str, Any]) -> bool:
    """The channel has recorded this shipment (its tracking, or the one a correction replaces)."""
    return shipment["upload_state"] == "accepted" or bool(shipment.get("replaces_tracking"))


def _shipment(
    db: Store, order: dict[str, Any], shipment_id: int | str | None, action: str, fits: Any
) -> dict[str, Any]:
    """The order's shipment ``shipment_id``, or its only shipment that ``fits`` the action."""
    rows = list(db.query("SELECT * FROM shipments WHERE order_id = :id ORDER BY id", {"id": order["id"]}))
    if shipment_id is not None:
        wanted = parse_id(shipment_id, "shipment")
        found = [row for row in rows if row["id"] == wanted]
        if not found:
            raise HostError(f"order {order['source_order_id']} has no shipment {wanted}")
        return found[0]
    candidates = [row for row in rows if fits(row)]
    if not rows:
        raise HostError(f"order {order['source_order_id']} has no shipment")
    if not candidates:
        raise HostError(f"order {order['source_order_id']} has no shipment to {action}")
    if len(candidates) > 1:
        raise HostError(
            f"order {order['source_order_id']} has {len(candidates)} shipments to {action}: say which one",
            cli_hint="--shipment ID, ids as in `cartplugin orders show`",
        )
    return candidates[0]


def _record(db: Store, actor: str, action: str, order: dict[str, Any], details: dict[str, Any]) -> None:
    audit.record(db, actor, action, company_id=order["company_id"], target=f"order {order['source_order_id']}",
                 details=details)  # fmt: skip


def void_shipment(
    db: Store, order_ref: int | str, shipment_id: int | str | None = None, *, actor: str
) -> dict[str, Any]:
    """Remove a shipment whose tracking the channel has not recorded: its units count as
    unshipped again and the order returns to Unshipped or Partially Shipped (a Completed order
    to In Process). The Change Log keeps what was voided."""
    with write(db):  # read and write in one transaction: the upload cannot record it meanwhile
        order = _order_row(db, order_ref)
        sid = order["source_order_id"]
        shipment = _shipment(db, order, shipment_id, "void", lambda s: not on_channel(s))
        if on_channel(shipment):
            raise HostError(
                f"the channel has recorded shipment {shipment['id']} of order {sid} already "
                f"(tracking {shipment['replaces_tracking'] or shipment['tracking_number']}), so it cannot be voided: "
                "use Update Tracking, or change it in the channel's portal"
            )
        if db.execute(
            "SELECT 1 FROM jobs WHERE company_id = :company_id AND kind = 'upload_tracking' AND status = :status",
            {"company_id": order["company_id"], "status": jobs.PROCESSING},
        ).fetchone():
            raise HostError(f"tracking of {order['company']} is being uploaded right now: void it in a minute")
        lines = list(db.query(
            "SELECT sl.order_line_id, sl.quantity, sl.serial_numbers, ol.sku FROM shipment_lines sl "
            "JOIN order_lines ol ON ol.id = sl.order_line_id WHERE sl.shipment_id = :id ORDER BY ol.id",
            {"id": shipment["id"]},
        ))  # fmt: skip
        for line in lines:  # never below nothing shipped
            db.execute(
                "UPDATE order_lines SET quantity_shipped = CASE WHEN quantity_shipped - :quantity >= 0 "
                "THEN quantity_shipped - :quantity ELSE 0 END WHERE id = :id",
                {"quantity": line["quantity"], "id": line["order_line_id"]},
            )
        db.execute("DELETE FROM shipment_lines WHERE shipment_id = :id", {"id": shipment["id"]})
        db.execute("DELETE FROM shipments WHERE id = :id", {"id": shipment["id"]})
        shipping = _shipping_status(db, order["id"])
        # every shipment left is on the channel already: nothing is left to upload
        all_sent = (
            shipping == FULLY_SHIPPED
            and not db.execute(
                "SELECT 1 FROM shipments WHERE order_id = :id AND upload_state != 'accepted'", {"id": order["id"]}
            ).fetchone()
        )
        status = "In Process" if order["status"] == "Completed" and shipping != FULLY_SHIPPED else order["status"]
        db.execute(
            "UPDATE orders SET shipping_status = :shipping, status = :status, source_updated_for_shipping = :sent, "
            "updated_at = :now WHERE id = :id",
            {"shipping": shipping, "status": status, "sent": int(all_sent), "now": clock.now_iso(), "id": order["id"]},
        )
    _record(db, actor, "shipment voided", order, {
        "shipment": shipment["id"], "carrier": shipment["carrier"], "tracking": shipment["tracking_number"],
        "upload": shipment["upload_state"], "shipping status": f"{order['shipping_status']} -> {shipping}",
        "lines": {line["sku"]: line["quantity"] for line in lines},
        "serials": [s for line in lines for s in json.loads(line["serial_numbers"])],
    })  # fmt: skip
    return show_order(db, order["id"])


def _shipping_status(db: Store, order_id: int) -> str:
    # the one rule of orders.shipping_status: a line cancelled on the channel is not waited for
    return shipping_status(db, order_id)


def update_tracking(
    db: Store,
    order_ref: int | str,
    shipment_id: int | str | None = None,
    *,
    tracking_number: str,
    carrier: str | None = None,
    tracking_url: str | None = None,
    actor: str,
) -> dict[str, Any]:
    """Correct the tracking of a shipment the channel has recorded, on a channel that takes a
    change (capability ``update_tracking``): the next upload sends it as a replacement of the
    recorded one. Elsewhere the change belongs in the channel's portal, and nothing changes here."""
    order = _order_row(db, order_ref)
    sid = order["source_order_id"]
    if not can_update_tracking(order["channel"]):
        name = plugins.channel_info(order["channel"]).display_name
        raise HostError(
            f"{name} does not take a changed tracking number from the host: change it in the channel's portal"
        )
    tracking_number = check_text("tracking number", tracking_number, limit=100)
    tracking_url = check_text("tracking URL", tracking_url, required=False, limit=2000)
    if tracking_url and not tracking_url.lower().startswith(("https://", "http://")):
        raise HostError("tracking URL must start with https:// or http://")
    with write(db):
        shipment = _shipment(db, order, shipment_id, "update", on_channel)
        if not on_channel(shipment):
            raise HostError(
                f"shipment {shipment['id']} of order {sid} is not on the channel yet: void it and ship again"
            )
        new_carrier = check_text("carrier", carrier) if carrier else shipment["carrier"]
        number = checked_tracking(new_carrier, tracking_number)
        if number == shipment["tracking_number"] and new_carrier == shipment["carrier"]:
            raise HostError(f"shipment {shipment['id']} of order {sid} has tracking {number} already")
        if db.execute(
            "SELECT 1 FROM shipments WHERE order_id = :order_id AND tracking_number = :tracking AND id != :id",
            {"order_id": order["id"], "tracking": number, "id": shipment["id"]},
        ).fetchone():
            raise HostError(f"order {sid} already has a shipment with tracking {number!r}")
        db.execute(
            "UPDATE shipments SET carrier = :carrier, tracking_number = :tracking, tracking_url = :url, "
            "upload_state = 'pending', upload_attempts = 0, upload_message = NULL, uploaded_at = NULL, "
            "next_upload_at = NULL, replaces_tracking = COALESCE(replaces_tracking, :replaced) WHERE id = :id",
            {
                "carrier": new_carrier,
                "tracking": number,
                "url": tracking_url,
                "replaced": shipment["tracking_number"],
                "id": shipment["id"],
            },  # fmt: skip
        )
        db.execute(
            "UPDATE orders SET source_updated_for_shipping = 0, updated_at = :now WHERE id = :id",
            {"now": clock.now_iso(), "id": order["id"]},
        )
    _record(db, actor, "tracking updated", order, {
        "shipment": shipment["id"], "from": f"{shipment['carrier']} {shipment['tracking_number']}",
        "to": f"{new_carrier} {number}",
    })  # fmt: skip
    return show_order(db, order["id"])


def retry_upload(
    db: Store, order_ref: int | str, shipment_id: int | str | None = None, *, actor: str
) -> dict[str, Any]:
    """Send a refused shipment again: it is pending, and the next worker round uploads it."""
    with write(db):
        order = _order_row(db, order_ref)
        shipment = _shipment(db, order, shipment_id, "retry", lambda s: s["upload_state"] == "failed")
        if shipment["upload_state"] != "failed":
            raise HostError(
                f"the upload of shipment {shipment['id']} of order {order['source_order_id']} was not refused "
                f"(it is {shipment['upload_state']})"
            )
        db.execute(
            "UPDATE shipments SET upload_state = 'pending', next_upload_at = NULL WHERE id = :id",
            {"id": shipment["id"]},
        )
    _record(db, actor, "tracking upload retried", order, {
        "shipment": shipment["id"], "tracking": shipment["tracking_number"], "refusal": shipment["upload_message"],
    })  # fmt: skip
    return show_order(db, order["id"])
