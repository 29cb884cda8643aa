"""Fixtures of the Back Market Pro plugin tests: a live sandbox on 127.0.0.1 and fast clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bmp_helpers import FAST, SECRET_KEY

from backmarket_pro import plugin
from backmarket_pro.client import ClientOptions
from backmarket_pro.sandbox import Sandbox
from backmarket_pro.settings import BackMarketProSettings


@pytest.fixture(autouse=True)
def fast_clients(monkeypatch: pytest.MonkeyPatch) -> ClientOptions:
    monkeypatch.setattr(plugin, "client_options", FAST)
    return FAST


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    server = Sandbox(host="127.0.0.1", port=0, api_key=SECRET_KEY, orders=40, seed=7)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def settings(sandbox: Sandbox) -> BackMarketProSettings:
    return BackMarketProSettings(website_url=sandbox.base_url, x_api_key=sandbox.api_key)
