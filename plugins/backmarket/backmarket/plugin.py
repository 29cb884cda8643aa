"""The hook implementations of the Back Market channel (thin: the work is in client and mapping)."""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from plugin_spec import ChannelError, ChannelInfo, TestResult, hookimpl
from plugin_spec.models import BadOrder, ChannelOrder, Shipment, UploadResult
from plugin_spec.wire import settings_as, upload_each

from . import __version__, mapping
from .client import BackMarketClient, ClientOptions, Rejected
from .settings import BackMarketSettings

if TYPE_CHECKING:
    import click

log = logging.getLogger(__name__)

NAME = "backmarket"
DISPLAY_NAME = "BackMarket WebsiteCartPlugin"
_OLDEST = datetime.min.replace(tzinfo=UTC)

#: timeouts, retries and page size of every client the hooks make (tests replace it)
client_options = ClientOptions()


def make_client(settings: BackMarketSettings) -> BackMarketClient:
    return BackMarketClient(settings, client_options)


def _settings(settings: Any) -> BackMarketSettings:
    return settings_as(BackMarketSettings, settings)


@hookimpl
def cartplugin_channel_info() -> ChannelInfo:
    return ChannelInfo(name=NAME, display_name=DISPLAY_NAME, version=__version__, settings_model=BackMarketSettings)


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

    The API filters one ``state`` per listing, so "unfulfilled" is three listings (paid,
    accepted, cancelled) merged lazily by modification time: one page of each in memory.
    """
    if since is not None and since.tzinfo is None:
        raise ValueError("since must be timezone-aware")
    settings = _settings(settings)
    states: tuple[int | None, ...] = mapping.UNFULFILLED_STATES if unfulfilled_only else (None,)
    return _download(settings, since, states)


def _download(settings: BackMarketSettings, since: datetime | None, states: tuple[int | None, ...]) -> Iterator[ChannelOrder | BadOrder]:
    with make_client(settings) as client:
        streams = [_listing(client, state, since) for state in states]
        yield from heapq.merge(*streams, key=_sort_key) if len(streams) > 1 else streams[0]


def _listing(client: BackMarketClient, state: int | None, since: datetime | None) -> Iterator[ChannelOrder | BadOrder]:
    for raw in client.iter_orders(state=state, modified_since=since):
        item = mapping.order_or_bad(raw)
        # the API filters by whole seconds; `since` is exact and inclusive
        if since is not None and isinstance(item, ChannelOrder) and item.updated_at < since:
            continue
        yield item


def _sort_key(item: ChannelOrder | BadOrder) -> tuple[datetime, str]:
    return (item.updated_at or _OLDEST, item.source_order_id or "")


@hookimpl
def cartplugin_upload_tracking(settings: BackMarketSettings, shipments: list[Shipment]) -> list[UploadResult]:
    """Ship each order with its tracking; exactly one result per shipment, whatever happens."""
    with make_client(_settings(settings)) as client:
        return upload_each(shipments, lambda shipment: _upload_one(client, shipment), label="Back Market")


def _upload_one(client: BackMarketClient, shipment: Shipment) -> UploadResult:
    order_id = shipment.source_order_id
    sid = shipment.shipment_id
    try:
        # single-unit orders carry the IMEI / serial number; the shipment's own lines tell us
        # when they cover exactly one unit, otherwise ask the channel
        units = sum(line.quantity for line in shipment.lines)
        single = len(shipment.lines) == 1 and units == 1
        body = mapping.shipment_body(order_id, shipment, single)
        try:
            client.ship(order_id, body)
        except Rejected as exc:
            if exc.code != "order_already_shipped":
                raise
            recorded = mapping.recorded_tracking(client.get_order(order_id))
            if recorded and mapping.same_tracking(recorded, shipment.tracking_number):
                return UploadResult(
                    shipment_id=sid, ok=True, already_recorded=True,
                    message=f"Tracking {shipment.tracking_number} was already recorded for order {order_id}",
                )  # fmt: skip
            return UploadResult(
                shipment_id=sid, ok=False,
                message=f"Back Market order {order_id} is already shipped with tracking {recorded or '(none)'}; "
                "Back Market takes one tracking number per order: change it in the seller portal.",
            )  # fmt: skip
    except Rejected as exc:
        reason = exc.detail or f"HTTP {exc.status}"
        return UploadResult(
            shipment_id=sid, ok=False,
            message=f"Back Market refused tracking {shipment.tracking_number} for order {order_id} (HTTP {exc.status}): {reason}",
        )  # fmt: skip
    return UploadResult(shipment_id=sid, ok=True, message=f"Tracking {shipment.tracking_number} recorded")


@hookimpl
def cartplugin_register_commands(cli: click.Group) -> None:
    from .commands import register

    register(cli)
