"""The conformance kit on the Amazon plugin against its sandbox: every check runs (the plugin
declares no accept_orders: Amazon does not ask sellers to accept orders)."""

from __future__ import annotations

import pytest
from amz_helpers import SandboxChannel

from amazon_sp import plugin
from amazon_sp.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN
from amazon_sp.settings import AmazonSettings
from plugin_spec.testing import ConformanceSuite


def settings_for(sandbox, refresh_token: str = DEFAULT_REFRESH_TOKEN) -> AmazonSettings:
    return AmazonSettings(
        region="eu", marketplace_ids=",".join(sandbox.marketplaces), lwa_client_id=DEFAULT_CLIENT_ID,
        lwa_client_secret=DEFAULT_CLIENT_SECRET, refresh_token=refresh_token, api_url=sandbox.base_url,
    )  # fmt: skip


class TestAmazonConformance(ConformanceSuite):
    @pytest.fixture
    def cartplugin_kit_plugin(self):
        return plugin

    @pytest.fixture
    def cartplugin_kit_channel(self, amz_sandbox):
        return SandboxChannel(amz_sandbox)

    @pytest.fixture
    def cartplugin_kit_settings(self, amz_sandbox):
        return settings_for(amz_sandbox)

    @pytest.fixture
    def cartplugin_kit_bad_key_settings(self, amz_sandbox):
        return settings_for(amz_sandbox, refresh_token="Atzr|revoked-refresh-token-0000")
