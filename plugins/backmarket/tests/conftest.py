"""Fixtures of the Back Market plugin tests: a live sandbox on 127.0.0.1 and fast clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from bm_helpers import FAST, TOKEN, settings_for

from backmarket import plugin
from backmarket.client import ClientOptions
from backmarket.sandbox import Sandbox
from backmarket.settings import BackMarketSettings


@pytest.fixture
def bm_sandbox() -> Iterator[Sandbox]:
    with Sandbox(token=TOKEN, orders=18, seed=5) as server:
        yield server


@pytest.fixture
def bm_settings(bm_sandbox: Sandbox) -> BackMarketSettings:
    return settings_for(bm_sandbox, token=bm_sandbox.token)


@pytest.fixture(autouse=True)
def bm_fast_clients(monkeypatch: pytest.MonkeyPatch) -> ClientOptions:
    monkeypatch.setattr(plugin, "client_options", FAST)
    return FAST
