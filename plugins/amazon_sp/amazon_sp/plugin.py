"""The hook implementations of the Amazon channel (thin: the work is in client.py and mapping.py).

Every operation hook takes the host's ``credentials``: the company's store of Login with Amazon
access tokens, so every worker process uses one token until it expires.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from plugin_spec import BadOrder, ChannelError, ChannelInfo, ChannelOrder, Shipment, TestResult, UploadResult, hookimpl
from plugin_spec.credentials import CredentialStore
from plugin_spec.wire import send_or_reconcile, settings_as, upload_each

from . import __version__, mapping
from .client import ALL_STATUSES, UNFULFILLED_STATUSES, AmazonClient, ClientOptions, Rejected
from .settings import AmazonSettings

if TYPE_CHECKING:
    import click

log = logging.getLogger(__name__)

NAME = "amazon_sp"
DISPLAY_NAME = "Amazon WebsiteCartPlugin (Selling Partner API)"
#: without a ``since``, how far back a download reaches (searchOrders needs a lower bound)
DEFAULT_LOOKBACK = timedelta(days=30)

#: timeouts, retries, page size and rate scale of every client the hooks make; tests, the demo
#: and the benchmarks replace this module attribute to go faster
client_options = ClientOptions.from_env()


def make_client(settings: Any, credentials: CredentialStore | None) -> AmazonClient:
    """A client for one company's settings (a fresh session per hook call; the token is shared)."""
    return AmazonClient(settings_as(AmazonSettings, settings), credentials, client_options)


@hookimpl
def cartplugin_channel_info() -> ChannelInfo:
    # searchOrders sees a change a little after it is stamped (the model wants ``...Before`` two
    # minutes in the past): every download asks again from two minutes before the cursor
    return ChannelInfo(
        name=NAME, display_name=DISPLAY_NAME, version=__version__, settings_model=AmazonSettings,
        cursor_lag_seconds=120,
    )  # fmt: skip


@hookimpl
def cartplugin_test_settings(settings: AmazonSettings, credentials: CredentialStore) -> TestResult:
    """Mint an access token and read one page of orders: the key, the region and the
    marketplaces all checked by one cheap call. Never raises, never shows a token."""
    settings = settings_as(AmazonSettings, settings)
    try:
        with make_client(settings, credentials) as client:
            client.probe(datetime.now(UTC) - timedelta(days=1))
    except Rejected as exc:
        return TestResult(ok=False, message=f"Amazon refused the order search: {exc.detail or exc.status}. "
                                            "Check the marketplace ids in Cart General.")  # fmt: skip
    except ChannelError as exc:
        return TestResult(ok=False, message=str(exc))
    markets = ", ".join(settings.marketplaces)
    name = f"Selling Partner {settings.region.upper()} ({markets})"
    return TestResult(ok=True, account_name=name, message=f"Connected to Amazon {settings.region.upper()}: "
                                                          f"orders of {markets} can be read")  # fmt: skip


@hookimpl
def cartplugin_download_orders(
    settings: AmazonSettings, since: datetime | None, unfulfilled_only: bool, credentials: CredentialStore
) -> Iterator[ChannelOrder | BadOrder]:
    """Stream merchant-fulfilled orders changed at or after ``since``, oldest change first."""
    if since is not None and since.tzinfo is None:
        raise ValueError("since must be timezone-aware")
    settings = settings_as(AmazonSettings, settings)  # fails now, not at the first next()
    start = since or datetime.now(UTC) - DEFAULT_LOOKBACK
    return _download(settings, credentials, start, unfulfilled_only)


def _download(
    settings: AmazonSettings, credentials: CredentialStore, since: datetime, unfulfilled_only: bool
) -> Iterator[ChannelOrder | BadOrder]:
    with make_client(settings, credentials) as client:
        statuses = UNFULFILLED_STATUSES if unfulfilled_only else ALL_STATUSES
        for raw in client.search_orders(updated_after=since, statuses=statuses):
            yield mapping.order_or_bad(raw)


@hookimpl
def cartplugin_upload_tracking(
    settings: AmazonSettings, shipments: list[Shipment], credentials: CredentialStore
) -> list[UploadResult]:
    """confirmShipment for each package; exactly one result per shipment, in order."""
    settings = settings_as(AmazonSettings, settings)
    with make_client(settings, credentials) as client:
        return upload_each(
            shipments, lambda shipment: _upload_one(client, settings, shipment), label="Amazon",
            concurrency=client.options.concurrency,
        )  # fmt: skip


def _upload_one(client: AmazonClient, settings: AmazonSettings, shipment: Shipment) -> UploadResult:
    order_id, number, sid = shipment.source_order_id, shipment.tracking_number, shipment.shipment_id
    # the order's marketplace: the seller's only one, or read from the order
    markets = settings.marketplaces
    marketplace = markets[0] if len(markets) == 1 else mapping.marketplace_of(client.get_order(order_id, "FULFILLMENT"))

    def send() -> bool:
        client.confirm_shipment(order_id, mapping.shipment_body(shipment, marketplace))
        return True

    def read_back() -> bool | None:
        # a repeat (the answer was lost, or a crash after sending) is refused as already
        # fulfilled: the package on the order says whether this tracking number is there
        return False if number in mapping.tracking_numbers(client.get_order(order_id)) else None

    try:
        created = send_or_reconcile(send, read_back)
    except Rejected as exc:
        return UploadResult(
            shipment_id=sid, ok=False, retryable=False,
            message=f"Amazon refused tracking {number} for order {order_id} (HTTP {exc.status}): "
            f"{exc.detail or exc.code or exc.status}",
        )  # fmt: skip
    if created:
        return UploadResult(shipment_id=sid, ok=True, message=f"Tracking {number} confirmed")
    return UploadResult(shipment_id=sid, ok=True, already_recorded=True,
                        message=f"Tracking {number} was already confirmed for order {order_id}")  # fmt: skip


@hookimpl
def cartplugin_register_commands(cli: click.Group) -> None:
    from .commands import register

    register(cli)
