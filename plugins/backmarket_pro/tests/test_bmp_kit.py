"""Back Market Pro passes the cartplugin conformance kit (plugin_spec.testing) on its sandbox."""

from __future__ import annotations

import pytest
from bmp_helpers import unfulfilled

from backmarket_pro import plugin
from backmarket_pro.sandbox import Sandbox
from backmarket_pro.settings import BackMarketProSettings
from plugin_spec.sandbox.faults import KIT_FAULTS
from plugin_spec.testing import ConformanceSuite, KitChannel


class SandboxChannel(KitChannel):
    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox

    def unfulfilled_order_ids(self) -> set[str]:
        # the API's "unfulfilled" filter includes orders cancelled before shipping; the plugin
        # yields them flagged channel_cancelled so the host can tell staff
        return {o["id"] for o in unfulfilled(self.sandbox)}

    def add_order(self) -> str:
        return self.sandbox.add_orders(1)[0]

    def recorded_tracking(self, order_id: str) -> list[str]:
        order = next((o for o in self.sandbox.orders() if o["id"] == order_id), None)
        return [s["tracking_number"] for s in order["shipments"]] if order else []

    def inject(self, fault: str) -> bool:
        self.sandbox.set_faults(**KIT_FAULTS[fault])
        return True

    def clear_faults(self) -> None:
        self.sandbox.clear_faults()

    def unknown_order_id(self) -> str:
        return "BMP-404-NO-SUCH-ORDER"

    def cancel_line(self, order_id: str, line_id: str) -> bool:
        try:
            self.sandbox.cancel_line(order_id, line_id)
        except ValueError:  # shipped already
            return False
        return True


class TestBackMarketProConformance(ConformanceSuite):
    @pytest.fixture
    def cartplugin_kit_plugin(self):
        return plugin

    @pytest.fixture
    def cartplugin_kit_channel(self, sandbox: Sandbox) -> SandboxChannel:
        return SandboxChannel(sandbox)

    @pytest.fixture
    def cartplugin_kit_settings(self, settings: BackMarketProSettings) -> BackMarketProSettings:
        return settings

    @pytest.fixture
    def cartplugin_kit_bad_key_settings(self, sandbox: Sandbox) -> BackMarketProSettings:
        return BackMarketProSettings(website_url=sandbox.base_url, x_api_key="wrong-key-0000-1111")
