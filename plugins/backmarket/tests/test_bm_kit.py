"""The Back Market plugin passes the cartplugin conformance kit on its own sandbox."""

from __future__ import annotations

import pytest
from bm_helpers import SandboxChannel

from backmarket import plugin
from backmarket.sandbox import Sandbox
from backmarket.settings import BackMarketSettings
from plugin_spec.testing import ConformanceSuite


class TestBackMarketConformance(ConformanceSuite):
    @pytest.fixture
    def cartplugin_kit_plugin(self):
        return plugin

    @pytest.fixture
    def cartplugin_kit_channel(self, bm_sandbox: Sandbox) -> SandboxChannel:
        return SandboxChannel(bm_sandbox)

    @pytest.fixture
    def cartplugin_kit_settings(self, bm_settings: BackMarketSettings) -> BackMarketSettings:
        return bm_settings

    @pytest.fixture
    def cartplugin_kit_bad_key_settings(self, bm_sandbox: Sandbox) -> BackMarketSettings:
        return BackMarketSettings(api_url=bm_sandbox.base_url, token="d3Jvbmc6dG9rZW4tMDAwMA==")
