"""Void Shipment, Update Tracking and Retry of a refused upload, from the order page and Attention."""

from __future__ import annotations

from flask import Blueprint, redirect, request, url_for

from host.errors import HostError
from host.records import orders, shipments
from host.web import forms
from host.web.auth import requires
from host.web.context import actor, db, notice

bp = Blueprint("shipments", __name__)


def _back(order_id: int):
    """Back where the button was: Attention, or the order page."""
    if request.form.get("back") == "attention":
        return redirect(url_for("admin.attention"))
    return redirect(url_for("orders.show", order_id=order_id))


@bp.route("/orders/<int:order_id>/shipments/<int:shipment_id>/void", methods=["POST"])
@requires("ship")
def void(order_id: int, shipment_id: int):
    order = orders.show_order(db(), order_id)
    if not forms.ActionForm().validate_on_submit():
        notice("The page was out of date; nothing was changed. Try again.", error=True)
        return _back(order_id)
    try:
        changed = shipments.void_shipment(db(), order_id, shipment_id, actor=actor())
    except HostError as exc:
        notice(f"Shipment not voided: {exc}.", error=True)
        return _back(order_id)
    notice(f"Shipment voided: order {order['source_order_id']} is {changed['shipping_status']} again.")
    return _back(order_id)


@bp.route("/orders/<int:order_id>/shipments/<int:shipment_id>/tracking", methods=["POST"])
@requires("ship")
def update_tracking(order_id: int, shipment_id: int):
    order = orders.show_order(db(), order_id)
    form = forms.TrackingForm()
    if not form.validate_on_submit():
        notice("Tracking not changed: give the new tracking number.", error=True)
        return _back(order_id)
    try:
        shipments.update_tracking(
            db(), order_id, shipment_id, tracking_number=form.tracking_number.data or "",
            tracking_url=form.tracking_url.data or None, actor=actor(),
        )  # fmt: skip
    except HostError as exc:
        notice(f"Tracking not changed: {exc}.", error=True)
        return _back(order_id)
    notice(f"Tracking of order {order['source_order_id']} changed; the channel gets it with the next upload.")
    return _back(order_id)


@bp.route("/orders/<int:order_id>/shipments/<int:shipment_id>/retry", methods=["POST"])
@requires("ship")
def retry(order_id: int, shipment_id: int):
    order = orders.show_order(db(), order_id)
    if not forms.ActionForm().validate_on_submit():
        notice("The page was out of date; nothing was changed. Try again.", error=True)
        return _back(order_id)
    try:
        shipments.retry_upload(db(), order_id, shipment_id, actor=actor())
    except HostError as exc:
        notice(f"Upload not retried: {exc}.", error=True)
        return _back(order_id)
    notice(f"The tracking of order {order['source_order_id']} is sent again with the next upload.")
    return _back(order_id)
