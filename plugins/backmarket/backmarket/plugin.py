"""The hook implementations of the Back Market channel (thin: the work is in client and mapping)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from plugin_spec import AuthError, ChannelError, ChannelInfo, RateLimited, TestResult, TransientError, hookimpl
from plugin_spec.models import AcceptRequest, AcceptResult, BadOrder, ChannelOrder, Shipment, UploadResult
from plugin_spec.wire import send_or_reconcile, settings_as, upload_each

from . import __version__, mapping
from .client import BackMarketClient, ClientOptions, Rejected
from .settings import BackMarketSettings

if TYPE_CHECKING:
    import click

log = logging.getLogger(__name__)

NAME = "backmarket"
DISPLAY_NAME = "BackMarket WebsiteCartPlugin"

#: timeouts, retries and page size of every client the hooks make (tests replace it)
client_options = ClientOptions()


def make_client(settings: BackMarketSettings) -> BackMarketClient:
    return BackMarketClient(settings, client_options)


def _settings(settings: Any) -> BackMarketSettings:
    return settings_as(BackMarketSettings, settings)


@hookimpl
def cartplugin_channel_info() -> ChannelInfo:
    return ChannelInfo(
        name=NAME, display_name=DISPLAY_NAME, version=__version__, settings_model=BackMarketSettings,
        capabilities=frozenset({"test_settings", "download_orders", "upload_tracking", "accept_orders"}),
    )  # fmt: skip


@hookimpl
def cartplugin_test_settings(settings: BackMarketSettings) -> TestResult:
    """One cheap authenticated call (a one-order listing page); never raises, never shows the token."""
    settings = _settings(settings)
    try:
        with make_client(settings) as client:
            count = client.probe()
    except Rejected as exc:
        hint = " Check the Country code (Accept-Language), e.g. fr-fr." if "Accept-Language" in exc.detail else ""
        return TestResult(ok=False, message=f"{exc.message}{hint}")
    except ChannelError as exc:
        return TestResult(ok=False, message=exc.message)
    return TestResult(
        ok=True,
        message=f"Connected to Back Market ({settings.region}, {settings.country_code}): {count} orders visible",
    )


@hookimpl
def cartplugin_download_orders(
    settings: BackMarketSettings, since: datetime | None, unfulfilled_only: bool
) -> Iterator[ChannelOrder | BadOrder]:
    """Stream orders modified at or after ``since``, oldest change first.

    One listing whatever the state (the API never lists states 0 and 8), so a cancellation or
    refund of an order imported earlier is seen; with ``unfulfilled_only`` the orders that are
    shipped and untouched by refunds are left out.
    """
    if since is not None and since.tzinfo is None:
        raise ValueError("since must be timezone-aware")
    return _download(_settings(settings), since, unfulfilled_only)


def _download(
    settings: BackMarketSettings, since: datetime | None, unfulfilled_only: bool
) -> Iterator[ChannelOrder | BadOrder]:
    with make_client(settings) as client:
        for raw in client.iter_orders(modified_since=since):
            if unfulfilled_only and not mapping.wanted(raw):
                continue
            item = mapping.order_or_bad(raw)
            # the API filters by whole seconds; `since` is exact and inclusive
            if since is not None and isinstance(item, ChannelOrder) and item.updated_at < since:
                continue
            yield item


@hookimpl
def cartplugin_accept_orders(settings: BackMarketSettings, orders: list[AcceptRequest]) -> list[AcceptResult]:
    """Accept every paid line (``new_state`` 2 with its ``sku``), cancel the ones asked (4)."""
    results = []
    with make_client(_settings(settings)) as client:
        for request in orders:
            try:
                results.append(_accept_one(client, request))
            except AuthError as exc:
                results.extend(AcceptResult(source_order_id=r.source_order_id, ok=False, message=exc.message)
                               for r in orders[len(results):])  # fmt: skip
                break
            except ChannelError as exc:
                results.append(AcceptResult(source_order_id=request.source_order_id, ok=False, message=exc.message,
                                            retryable=isinstance(exc, TransientError | RateLimited)))  # fmt: skip
    return results


def _accept_one(client: BackMarketClient, request: AcceptRequest) -> AcceptResult:
    order_id = request.source_order_id
    raw = client.get_order(order_id)
    cancel = set(request.cancel_line_ids)
    unknown = cancel - {str(line.get("id")) for line in raw.get("orderlines") or [] if isinstance(line, dict)}
    if unknown:
        return AcceptResult(
            source_order_id=order_id,
            ok=False,
            message=f"Back Market order {order_id} has no line {', '.join(sorted(unknown))}",
        )
    done = []
    for line in mapping.lines_in_state(raw, mapping.LINE_PAID):
        line_id, sku = str(line.get("id")), str(line.get("listing"))
        new_state = mapping.NEW_STATE_CANCEL if line_id in cancel else mapping.NEW_STATE_ACCEPT

        def landed(line_id: str = line_id, new_state: int = new_state) -> dict[str, Any] | None:
            # the answer was lost: the line has left state 1 if the change landed
            again = client.get_order(order_id)
            states = {str(x.get("id")): x.get("state") for x in again.get("orderlines") or [] if isinstance(x, dict)}
            return again if states.get(line_id) == new_state else None

        send_or_reconcile(partial(client.update, order_id, mapping.line_body(order_id, new_state, sku)), landed)
        done.append(f"{'cancelled' if new_state == mapping.NEW_STATE_CANCEL else 'accepted'} {sku}")
    message = f"Back Market order {order_id}: " + (", ".join(done) if done else "nothing left to accept")
    return AcceptResult(source_order_id=order_id, ok=True, message=message)


@hookimpl
def cartplugin_upload_tracking(settings: BackMarketSettings, shipments: list[Shipment]) -> list[UploadResult]:
    """Ship each order with its tracking; exactly one result per shipment, whatever happens."""
    with make_client(_settings(settings)) as client:
        return upload_each(
            shipments,
            lambda shipment: _upload_one(client, shipment),
            label="Back Market",
            concurrency=client.options.concurrency,  # up to the rate limit, which paces every request
        )


def _upload_one(client: BackMarketClient, shipment: Shipment) -> UploadResult:
    order_id = shipment.source_order_id
    sid = shipment.shipment_id
    # single-unit orders carry the IMEI / serial number; the shipment's own lines tell us
    units = sum(line.quantity for line in shipment.lines)
    single = len(shipment.lines) == 1 and units == 1
    body = mapping.shipment_body(order_id, shipment, single)

    def ship() -> UploadResult:
        client.update(order_id, body)
        return UploadResult(shipment_id=sid, ok=True, message=f"Tracking {shipment.tracking_number} recorded")

    def read_back() -> UploadResult | None:
        # a repeat, or a lost answer: the order tells whether this tracking is already there
        recorded = mapping.recorded_tracking(client.get_order(order_id))
        if recorded and mapping.same_tracking(recorded, shipment.tracking_number):
            return UploadResult(
                shipment_id=sid, ok=True, already_recorded=True,
                message=f"Tracking {shipment.tracking_number} was already recorded for order {order_id}",
            )  # fmt: skip
        if recorded:
            return UploadResult(
                shipment_id=sid, ok=False,
                message=f"Back Market order {order_id} is already shipped with tracking {recorded}; "
                "Back Market takes one tracking number per order: change it in the seller portal.",
            )  # fmt: skip
        return None

    try:
        return send_or_reconcile(ship, read_back)
    except Rejected as exc:
        reason = exc.detail or f"HTTP {exc.status}"
        traced = f" (request id {exc.request_id})" if exc.request_id else ""
        return UploadResult(
            shipment_id=sid, ok=False,
            message=f"Back Market refused tracking {shipment.tracking_number} for order {order_id} "
            f"(HTTP {exc.status}): {reason}{traced}",
        )  # fmt: skip


@hookimpl
def cartplugin_register_commands(cli: click.Group) -> None:
    from .commands import register

    register(cli)
