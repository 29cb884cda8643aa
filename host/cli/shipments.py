"""``cartplugin orders void-shipment``, ``update-tracking`` and ``retry-upload``: shipments staff correct."""

from __future__ import annotations

import click

from host.cli.common import emit, open_db
from host.records import shipments
from host.records.audit import cli_actor as _actor


def register(orders_group: click.Group) -> None:
    shipment_option = click.option(
        "--shipment", "shipment_id", metavar="ID", help="Which shipment, when the order has several (see orders show)."
    )

    @orders_group.command(name="void-shipment")
    @click.argument("order_id")
    @shipment_option
    @click.option("--json", "as_json", is_flag=True, help="Output JSON.")
    @click.pass_context
    def orders_void_shipment(ctx: click.Context, order_id: str, shipment_id: str | None, as_json: bool) -> None:
        """Void a shipment whose tracking is not uploaded yet: its items are unshipped again."""
        order = shipments.void_shipment(open_db(ctx), order_id, shipment_id, actor=_actor())
        emit(order, as_json, f"Shipment voided; order {order['source_order_id']} is {order['shipping_status']}.")

    @orders_group.command(name="update-tracking")
    @click.argument("order_id")
    @shipment_option
    @click.option("--tracking", "tracking_number", required=True, help="The correct tracking number.")
    @click.option("--carrier", help="The correct carrier (default: the shipment's).")
    @click.option("--tracking-url", help="Tracking URL.")
    @click.option("--json", "as_json", is_flag=True, help="Output JSON.")
    @click.pass_context
    def orders_update_tracking(
        ctx: click.Context,
        order_id: str,
        shipment_id: str | None,
        tracking_number: str,
        carrier: str | None,
        tracking_url: str | None,
        as_json: bool,
    ) -> None:
        """Correct the tracking of an uploaded shipment, on a channel that takes a change."""
        order = shipments.update_tracking(
            open_db(ctx), order_id, shipment_id, tracking_number=tracking_number, carrier=carrier,
            tracking_url=tracking_url, actor=_actor(),
        )  # fmt: skip
        emit(order, as_json, f"Tracking of order {order['source_order_id']} corrected; it is uploaded again.")

    @orders_group.command(name="retry-upload")
    @click.argument("order_id")
    @shipment_option
    @click.option("--json", "as_json", is_flag=True, help="Output JSON.")
    @click.pass_context
    def orders_retry_upload(ctx: click.Context, order_id: str, shipment_id: str | None, as_json: bool) -> None:
        """Send a tracking the channel refused once more, on the worker's next round."""
        order = shipments.retry_upload(open_db(ctx), order_id, shipment_id, actor=_actor())
        emit(order, as_json, f"Tracking of order {order['source_order_id']} is uploaded on the next round.")
