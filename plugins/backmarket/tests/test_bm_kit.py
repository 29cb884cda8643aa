"""The Back Market plugin passes the cartplugin conformance kit on its own sandbox."""

from __future__ import annotations

from bm_helpers import SandboxChannel, settings_for

from backmarket import plugin
from plugin_spec.testing import conformance_suite

TestBackMarketConformance = conformance_suite(
    plugin,
    sandbox="bm_sandbox",
    channel=SandboxChannel,
    settings=lambda sandbox: settings_for(sandbox),
    bad_key_settings=lambda sandbox: settings_for(sandbox, token="d3Jvbmc6dG9rZW4tMDAwMA=="),
)
