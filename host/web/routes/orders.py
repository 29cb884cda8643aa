"""Manage Orders: the paged grid, Order Details, Ship Items, Accept Order and change status."""

from __future__ import annotations

from flask import Blueprint, abort, redirect, render_template, request, url_for

from host.channel import acceptance, gate, tracking
from host.errors import HostError
from host.records import companies, order_search, orders, queries, shipments
from host.web import forms
from host.web.auth import requires
from host.web.context import access, actor, db, notice
from plugin_spec.tracking import OTHER

bp = Blueprint("orders", __name__)


@bp.route("/orders")
def index():
    page = queries.orders_page(db(), request.args.to_dict(), access())
    return render_template(
        "orders.html", page=page, companies=queries.company_choices(db(), access()), statuses=orders.STATUSES,
        payments=queries.payment_statuses(db(), access()),
        shippings=(orders.UNSHIPPED, orders.PARTIALLY_SHIPPED, orders.FULLY_SHIPPED),
        search_hint=order_search.hint(request.args.get("q")),
    )  # fmt: skip


def _unshipped(order: dict) -> list[dict]:
    """The lines Ship Items offers: not shipped yet, and not cancelled on the channel, except on
    an order the channel cancelled, which ships whole once staff confirm it."""
    return [
        line
        for line in order["lines"]
        if line["quantity_shipped"] < line["quantity"] and (order["channel_cancelled"] or not line["channel_cancelled"])
    ]


@bp.route("/orders/<int:order_id>")
def show(order_id: int):
    order = orders.show_order(db(), order_id)
    return _page(order, forms.ship_form(_unshipped(order), carriers=tracking.carriers(order["channel"])))


def _page(order: dict, ship_form, status: int = 200):
    status_form = forms.StatusForm(data={"status": order["status"]})
    accept_form, not_acceptable = None, None
    if order["awaiting_acceptance"] and order["status"] != "Cancelled":
        accept_form = forms.accept_form(order["lines"])
        try:  # why Accept Order would be refused now, said on the page instead of after the click
            gate.check_allowed(db(), companies.get_company(db(), _company_id(order["id"])), "download_orders")
        except HostError as exc:
            not_acceptable = str(exc)
    return render_template(
        "order.html", order=order, ship_form=ship_form, status_form=status_form, unshipped=_unshipped(order),
        accept_form=accept_form, not_acceptable=not_acceptable, **_shipment_actions(order),
    ), status  # fmt: skip


def _shipment_actions(order: dict) -> dict:
    """What the Shipments table offers: Void before upload, Update Tracking after (or the portal), Retry."""
    try:
        updatable = shipments.can_update_tracking(order["channel"])
    except HostError:  # the plugin is not installed
        updatable = False
    return {"action_form": forms.ActionForm(), "tracking_form": forms.TrackingForm(formdata=None),
            "tracking_updatable": updatable, "on_channel": shipments.on_channel}  # fmt: skip


@bp.route("/orders/<int:order_id>/ship", methods=["POST"])
@requires("ship")
def ship(order_id: int):
    order = orders.show_order(db(), order_id)
    lines = _unshipped(order)
    form = forms.ship_form(lines, request.form, carriers=tracking.carriers(order["channel"]))
    if not form.validate_on_submit():
        return _page(order, form, 422)
    carrier = form.carrier.data or ""
    if carrier == OTHER and hasattr(form, "other_carrier"):  # the channel's list lacks it: its name
        carrier = form.other_carrier.data or ""
        if not carrier.strip():
            form.other_carrier.errors = ["Name the carrier."]
            return _page(order, form, 422)
    serials = [
        f"{line['sku']}={serial.strip()}"
        for line in lines
        for serial in (form[f"serial_{line['id']}"].data or "").split(",")
        if serial.strip()
    ]
    confirmed = order["channel_cancelled"] and request.form.get("confirm_cancelled") == "y"
    try:
        shipped = orders.ship_order(
            db(), order_id, carrier=carrier, tracking_number=form.tracking_number.data or "",
            tracking_url=form.tracking_url.data or None, serials=serials,
            confirmed_by=actor() if confirmed else None, actor=actor(),
        )  # fmt: skip
    except orders.CancelledOnChannel as exc:
        form.form_errors.append(f"{exc}; then tick Ship it anyway.")
        return _page(order, form, 422)
    except HostError as exc:
        form.form_errors.append(str(exc))
        return _page(order, form, 422)
    notice(f"Order {order['source_order_id']} is {shipped['shipping_status']}; tracking uploads automatically.")
    return redirect(url_for("orders.show", order_id=order_id))


@bp.route("/orders/<int:order_id>/accept", methods=["POST"])
@requires("ship")
def accept(order_id: int):
    """Accept the order on its channel, cancelling there the lines ticked as not servable."""
    order = orders.show_order(db(), order_id)
    sid = order["source_order_id"]
    back = redirect(url_for("orders.show", order_id=order_id))
    if not order["awaiting_acceptance"]:
        notice(f"Order {sid} is not awaiting acceptance.", error=True)
        return back
    if order["status"] == "Cancelled":
        notice(f"Order {sid} is Cancelled here: it is not accepted on the channel.", error=True)
        return back
    form = forms.accept_form(order["lines"], request.form)
    if not form.validate_on_submit():
        abort(400)
    cancel = [line for line in order["lines"] if form[f"cancel_{line['id']}"].data]
    company = companies.get_company(db(), _company_id(order_id))
    try:
        report = acceptance.accept_orders(
            db(),
            company,
            [order_id],
            cancel_lines={order_id: [line["source_line_id"] for line in cancel]},
            actor=actor(),
        )
    except HostError as exc:  # Allow Order Download off, connection not established, plugin missing
        notice(f"Order {sid} not accepted: {exc}", error=True)
        return back
    if not report:  # accepted meanwhile (a download with Accept new orders on download)
        notice(f"Order {sid} is not awaiting acceptance.", error=True)
        return back
    (result,) = report  # its message is the channel's answer, secrets removed; the Change Log has it
    answer = result["message"].rstrip(".")
    if not result["ok"]:
        notice(f"Order {sid} not accepted: {answer or 'the channel gave no reason'}.", error=True)
        return back
    answer = answer or f"Order {sid} accepted"
    if len(cancel) == len(order["lines"]):
        notice(f"{answer}. Nothing of the order is left to ship: set its status to Cancelled.")
    else:
        notice(f"{answer}.")
    return back


def _company_id(order_id: int) -> int:
    return db().execute("SELECT company_id FROM orders WHERE id = :id", {"id": order_id}).fetchone()[0]


@bp.route("/orders/<int:order_id>/status", methods=["POST"])
@requires("status")
def set_status(order_id: int):
    order = orders.show_order(db(), order_id)
    form = forms.StatusForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        changed = orders.set_status(db(), order_id, form.status.data or "", actor=actor())
    except HostError as exc:
        notice(str(exc), error=True)
        return redirect(url_for("orders.show", order_id=order_id))
    notice(f"Order {order['source_order_id']} is now {changed['status']}.")
    return redirect(url_for("orders.show", order_id=order_id))
