"""A second channel plugin for tests: records every call it gets and answers from memory."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from pydantic import Field, SecretStr

from plugin_spec import CartSettings, ChannelInfo, ChannelOrder, OrderLine, TestResult, UploadResult, hookimpl


class SpySettings(CartSettings):
    token: SecretStr = Field(title="Token", min_length=4)


class SpyChannel:
    """Register an instance; ``calls`` lists (hook, kwargs) in order."""

    def __init__(self, name: str = "spy_channel", orders: int = 2):
        self.name = name
        self.calls: list[tuple[str, dict]] = []
        self.order_count = orders

    @hookimpl
    def cartplugin_channel_info(self) -> ChannelInfo:
        return ChannelInfo(name=self.name, display_name="Spy Channel", version="9.9", settings_model=SpySettings)

    @hookimpl
    def cartplugin_test_settings(self, settings):
        self.calls.append(("test_settings", {"settings": settings}))
        return TestResult(ok=True, message="spy ok", account_name="Spy")

    @hookimpl
    def cartplugin_download_orders(self, settings, since, unfulfilled_only):
        self.calls.append(("download_orders", {"since": since, "unfulfilled_only": unfulfilled_only}))
        now = datetime(2026, 11, 1, tzinfo=UTC)
        return iter(
            ChannelOrder(
                source_order_id=f"SPY-{n}",
                created_at=now,
                updated_at=now,
                currency="EUR",
                subtotal=Decimal("10.00"),
                tax_total=Decimal("2.00"),
                grand_total=Decimal("12.00"),
                lines=[
                    OrderLine(source_line_id="1", sku="SKU", title="Thing", quantity=1, unit_price=Decimal("10.00"))
                ],
            )
            for n in range(self.order_count)
        )

    @hookimpl
    def cartplugin_upload_tracking(self, settings, shipments):
        self.calls.append(("upload_tracking", {"shipments": shipments}))
        return [UploadResult(shipment_id=s.shipment_id, ok=True) for s in shipments]
