"""A deliberately broken channel plugin: every check of the conformance kit but one must fail.

It talks to an in-memory shop (no HTTP) so the kit's own test stays fast. Each defect below is
one a real author could make; tests/kit/test_kit_broken.py asserts the kit names each of them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pydantic import Field

from plugin_spec import (
    AuthError,
    BadData,
    CartSettings,
    ChannelError,
    ChannelInfo,
    ChannelOrder,
    OrderLine,
    TestResult,
    UploadResult,
    hookimpl,
)
from plugin_spec.testing import KitChannel

GOOD_KEY = "broken-good-key-5150"


class Shop:
    """The channel: orders by id, tracking recorded per order."""

    def __init__(self, orders: int = 6):
        self.clock = datetime(2026, 3, 1, tzinfo=UTC)
        self.orders: dict[str, ChannelOrder] = {}
        self.tracking: dict[str, list[str]] = {}
        self.trouble: str | None = None
        self.cancelled: set[str] = set()  # DEFECT (below): the plugin never reads it
        self.cancelled_lines: set[str] = set()  # DEFECT (below): nor this
        for _ in range(orders):
            self.add()

    def cancel(self, order_id: str) -> None:
        """The buyer cancels: the shop records it and the order's updated_at moves."""
        self.clock += timedelta(minutes=5)
        self.cancelled.add(order_id)
        self.orders[order_id] = self.orders[order_id].model_copy(update={"updated_at": self.clock})

    def cancel_line(self, order_id: str, line_id: str) -> None:
        """The buyer cancels one line: the shop records it and the order's updated_at moves."""
        self.clock += timedelta(minutes=5)
        self.cancelled_lines.add(line_id)
        self.orders[order_id] = self.orders[order_id].model_copy(update={"updated_at": self.clock})

    def add(self) -> str:
        self.clock += timedelta(minutes=5)
        order_id = f"BRK-{len(self.orders) + 1}"
        self.orders[order_id] = ChannelOrder(
            source_order_id=order_id,
            created_at=self.clock,
            updated_at=self.clock,
            currency="EUR",
            subtotal="10.00",
            tax_total="2.00",
            grand_total="12.00",
            lines=[
                OrderLine(source_line_id=f"{order_id}-1", sku="SKU-1", title="Phone", quantity=1, unit_price="10.00")
            ],
        )
        return order_id


SHOP = Shop()


class BrokenSettings(CartSettings):
    api_key: str = Field(title="API key")  # DEFECT: a credential typed str, not SecretStr
    shop_name: str = "demo"  # DEFECT: no title, so staff would see a bare field name


@hookimpl
def cartplugin_channel_info() -> ChannelInfo:
    return ChannelInfo(name="broken", display_name="Broken Example", version="0.0.1", settings_model=BrokenSettings)


@hookimpl
def cartplugin_test_settings(settings: BrokenSettings) -> TestResult:
    return TestResult(ok=True, message="Connected")  # DEFECT: never checks the key


@hookimpl
def cartplugin_download_orders(settings: BrokenSettings, since, unfulfilled_only):
    if SHOP.trouble:
        raise BadData(f"the shop answered with {SHOP.trouble}")  # DEFECT: passing trouble called bad data
    if settings.api_key != GOOD_KEY:
        raise AuthError(f"key {settings.api_key} refused")  # DEFECT: the key in a message
    if since is None:
        return sorted(SHOP.orders.values(), key=lambda o: o.updated_at)  # DEFECT: a list, not a stream
    return (o for o in SHOP.orders.values())  # DEFECT: ignores since


@hookimpl
def cartplugin_upload_tracking(settings: BrokenSettings, shipments):
    results = []
    for shipment in shipments:
        recorded = SHOP.tracking[shipment.source_order_id]  # DEFECT: KeyError for an unknown order
        if shipment.tracking_number in recorded:
            # DEFECT: a repeat is an error (and the key leaks into it)
            raise ChannelError(f"tracking {shipment.tracking_number} exists (key {settings.api_key})")
        recorded.append(shipment.tracking_number)
        results.append(UploadResult(shipment_id=shipment.shipment_id, ok=True))
    return results


@hookimpl
def cartplugin_download_order(settings):  # DEFECT: misspelled hook name (no final "s")
    return None


class ShopChannel(KitChannel):
    def __init__(self, shop: Shop):
        self.shop = shop
        for order_id in shop.orders:
            shop.tracking.setdefault(order_id, [])

    def unfulfilled_order_ids(self) -> set[str]:
        return {i for i, t in self.shop.tracking.items() if not t}

    def add_order(self) -> str:
        order_id = self.shop.add()
        self.shop.tracking[order_id] = []
        return order_id

    def recorded_tracking(self, order_id: str) -> list[str]:
        return list(self.shop.tracking.get(order_id, []))

    def inject(self, fault: str) -> bool:
        self.shop.trouble = fault
        return True

    def clear_faults(self) -> None:
        self.shop.trouble = None

    def cancel_order(self, order_id: str) -> bool:
        self.shop.cancel(order_id)
        return True

    def cancel_line(self, order_id: str, line_id: str) -> bool:
        self.shop.cancel_line(order_id, line_id)
        return True


def reset() -> ShopChannel:
    """A fresh shop for one test."""
    global SHOP
    SHOP = Shop()
    return ShopChannel(SHOP)
