"""The conformance kit's view of the OAuth Shop sandbox (``oauth_shop``), for ``oauth_channel``."""

from __future__ import annotations

from typing import Any

import oauth_channel
import pytest
from oauth_channel import OAuthShopSettings
from oauth_shop import CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, OAuthShop

from plugin_spec.testing import ConformanceSuite, KitChannel


class ShopChannel(KitChannel):
    def __init__(self, shop: OAuthShop):
        self.shop = shop

    def unfulfilled_order_ids(self) -> set[str]:
        return {str(o["id"]) for o in self.shop.orders_held if o["status"] == "unfulfilled"}

    def add_order(self) -> str:
        return self.shop.add_order()

    def recorded_tracking(self, order_id: str) -> list[str]:
        return list(self.shop.shipments.get(order_id, []))

    def inject(self, fault: str) -> bool:
        return self.shop.inject(fault)

    def clear_faults(self) -> None:
        self.shop.clear_faults()

    def cancel_order(self, order_id: str) -> bool:
        self.shop.cancel(order_id)
        return True

    def declared_totals(self, order_id: str) -> dict[str, Any] | None:
        order = self.shop.order(order_id)
        if order is None:
            return None
        return {
            "subtotal": order["subtotal"], "shipping_total": order["shipping"], "discount_total": order["discount"],
            "tax_total": order["tax"], "grand_total": order["total"],
            "lines": {line["id"]: {"line_total": line["total"]} for line in order["lines"]},
        }  # fmt: skip

    def change_orders_during_download(self) -> bool:
        self.shop.set_faults(touch_during_download=1)
        return True

    def token_mints(self) -> int | None:
        return self.shop.tokens.mints()

    def expire_tokens(self) -> bool:
        self.shop.tokens.revoke_access_tokens()
        return True

    def issued_tokens(self) -> list[str]:
        return self.shop.tokens.issued()


def settings(shop: OAuthShop, refresh_token: str = REFRESH_TOKEN) -> OAuthShopSettings:
    return OAuthShopSettings(
        api_url=shop.base_url, token_url=shop.token_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
        refresh_token=refresh_token,
    )  # fmt: skip


class OAuthShopSuite(ConformanceSuite):
    """The kit on ``oauth_channel`` and a fresh OAuth Shop sandbox per check (subclass it as ``Test...``)."""

    @pytest.fixture
    def shop(self):
        with OAuthShop() as server:
            yield server

    @pytest.fixture
    def cartplugin_kit_plugin(self):
        return oauth_channel

    @pytest.fixture
    def cartplugin_kit_channel(self, shop):
        return ShopChannel(shop)

    @pytest.fixture
    def cartplugin_kit_settings(self, shop):
        return settings(shop)

    @pytest.fixture
    def cartplugin_kit_bad_key_settings(self, shop):
        return settings(shop, refresh_token="shop-refresh-token-revoked")
