"""The Back Market plugin passes the cartplugin conformance kit on its own sandbox."""

from __future__ import annotations

from bm_helpers import TOKEN, SandboxChannel

from backmarket import plugin
from backmarket.settings import BackMarketSettings
from plugin_spec.testing import conformance_suite

TestBackMarketConformance = conformance_suite(
    plugin,
    sandbox="bm_sandbox",
    channel=SandboxChannel,
    settings=lambda sandbox: BackMarketSettings(api_url=sandbox.base_url, token=TOKEN, country_code="fr-fr"),
    bad_key_settings=lambda sandbox: BackMarketSettings(api_url=sandbox.base_url, token="d3Jvbmc6dG9rZW4tMDAwMA=="),
)
