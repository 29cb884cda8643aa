"""A channel plugin for tests that takes corrected tracking numbers (capability ``update_tracking``):
it keeps one tracking per order, and a correction must name the number it replaces."""

from __future__ import annotations

from spy_plugin import SpyChannel

from plugin_spec import ChannelInfo, hookimpl


class Correcting(SpyChannel):
    def __init__(self, name: str = "correcting_shop") -> None:
        super().__init__(name=name, orders=2)
        self.tracking: dict[str, str] = {}

    @hookimpl
    def cartplugin_channel_info(self) -> ChannelInfo:
        info = super().cartplugin_channel_info()
        return info.model_copy(update={"capabilities": info.capabilities | {"update_tracking"}})

    @hookimpl
    def cartplugin_upload_tracking(self, settings, shipments):
        results = super().cartplugin_upload_tracking(settings, shipments)
        for s in shipments:
            assert self.tracking.get(s.source_order_id) == s.replaces_tracking_number  # replace, never add
            self.tracking[s.source_order_id] = s.tracking_number
        return results
