"""The hook implementations of the Back Market Pro channel (thin: the work is elsewhere).

``client.py`` talks HTTP, ``mapping.py`` translates, ``commands.py`` adds the CLI; this module
only wires them to the plugin_spec hooks and turns errors into results a person can act on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from plugin_spec import (
    BadOrder,
    ChannelError,
    ChannelInfo,
    ChannelOrder,
    Shipment,
    TestResult,
    UploadResult,
    hookimpl,
)
from plugin_spec.wire import settings_as, upload_each

from . import __version__, mapping
from .carriers import CARRIERS
from .client import BackMarketProClient, ClientOptions, Rejected
from .settings import DEFAULT_WEBSITE_URL, BackMarketProSettings

if TYPE_CHECKING:
    import click

log = logging.getLogger(__name__)

NAME = "backmarket_pro"
DISPLAY_NAME = "BackMarketForBusiness WebsiteCartPlugin"

#: timeouts, retries and page size of every client the hooks make; tests, the demo and the
#: benchmarks replace this module attribute (e.g. with pytest's monkeypatch) to go faster
client_options = ClientOptions.from_env()


def make_client(settings: Any) -> BackMarketProClient:
    """A client for one company's settings (a fresh session per hook call, see the docs)."""
    return BackMarketProClient(_settings(settings), client_options)


def _settings(settings: Any) -> BackMarketProSettings:
    return settings_as(BackMarketProSettings, settings)


@hookimpl
def cartplugin_channel_info() -> ChannelInfo:
    # no update_tracking: Back Market's seller API lets a shipped orderline (state 3) only become
    # refunded (6), and says of its identifiers "once registered, the value cannot be corrected"
    return ChannelInfo(
        name=NAME, display_name=DISPLAY_NAME, version=__version__, settings_model=BackMarketProSettings,
        carriers=CARRIERS,
    )  # fmt: skip


@hookimpl
def cartplugin_test_settings(settings: BackMarketProSettings) -> TestResult:
    """One cheap authenticated call (the seller account); never raises, never shows the key."""
    try:
        with make_client(settings) as client:
            name = mapping.account_name(client.seller_account())
    except mapping.MappingError:
        return TestResult(
            ok=False,
            message=(
                f"{_url(settings)} answered with JSON that has no seller account name: it does not "
                f"look like the Back Market Pro API. Check the Website URL (normally {DEFAULT_WEBSITE_URL})."
            ),
        )
    except Rejected as exc:
        if exc.status == 404:
            message = (
                f"{_url(settings)} has no Back Market Pro seller account endpoint (HTTP 404). Check "
                f"the Website URL (normally {DEFAULT_WEBSITE_URL})."
            )
        else:
            message = str(exc)
        return TestResult(ok=False, message=message)
    except ChannelError as exc:
        return TestResult(ok=False, message=str(exc))
    return TestResult(ok=True, account_name=name, message=f"Connected to Back Market Pro as {name}")


@hookimpl
def cartplugin_download_orders(
    settings: BackMarketProSettings, since: datetime | None, unfulfilled_only: bool
) -> Iterator[ChannelOrder | BadOrder]:
    """Stream orders updated at or after ``since``, oldest change first, one page at a time."""
    if since is not None and since.tzinfo is None:
        raise ValueError("since must be timezone-aware")
    # validate now, so a bad settings object fails at the call, not at the first next()
    return _download(_settings(settings), since, "unfulfilled" if unfulfilled_only else "any")


def _download(
    settings: BackMarketProSettings, since: datetime | None, status: str
) -> Iterator[ChannelOrder | BadOrder]:
    with make_client(settings) as client:
        for item in client.iter_orders(updated_at_min=since, fulfillment_status=status):
            # a page validated whole brings ChannelOrders; any other page raw orders, each read alone
            yield item if isinstance(item, ChannelOrder) else mapping.order_or_bad(item)


@hookimpl
def cartplugin_upload_tracking(settings: BackMarketProSettings, shipments: list[Shipment]) -> list[UploadResult]:
    """Post each shipment; exactly one result per shipment, in order, whatever happens."""
    with make_client(settings) as client:
        return upload_each(
            shipments,
            lambda shipment: _upload_one(client, shipment),
            label="Back Market Pro",
            concurrency=client.options.concurrency,  # up to the rate limit, which paces every request
        )


def _upload_one(client: BackMarketProClient, shipment: Shipment) -> UploadResult:
    order_id = shipment.source_order_id
    try:
        created = client.post_shipment(order_id, mapping.shipment_body(shipment))
    except Rejected as exc:
        return UploadResult(
            shipment_id=shipment.shipment_id,
            ok=False,
            retryable=False,
            message=f"Back Market Pro refused tracking {shipment.tracking_number} for order {order_id} "
            f"(HTTP {exc.status}): {exc.detail or f'HTTP {exc.status}'}",
        )
    if created:
        return UploadResult(
            shipment_id=shipment.shipment_id, ok=True, message=f"Tracking {shipment.tracking_number} recorded"
        )
    return UploadResult(
        shipment_id=shipment.shipment_id,
        ok=True,
        already_recorded=True,
        message=f"Tracking {shipment.tracking_number} was already recorded for order {order_id}",
    )


@hookimpl
def cartplugin_register_commands(cli: click.Group) -> None:
    from .commands import register

    register(cli)


def _url(settings: Any) -> str:
    return str(getattr(settings, "website_url", None) or DEFAULT_WEBSITE_URL)
