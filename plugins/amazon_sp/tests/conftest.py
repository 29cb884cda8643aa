"""Fixtures of the Amazon plugin tests: a live sandbox on 127.0.0.1, stopped after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from amazon_sp import plugin
from amazon_sp.client import ClientOptions
from amazon_sp.sandbox import Sandbox

#: short timeouts and retries, small pages (several pages per listing)
FAST = ClientOptions(connect_timeout=0.5, read_timeout=1.0, deadline=5, retries=2, backoff_factor=0.01,
                     backoff_jitter=0.01, backoff_max=0.05, retry_after_max=1, page_size=5)  # fmt: skip


@pytest.fixture(autouse=True)
def fast_clients(monkeypatch: pytest.MonkeyPatch) -> ClientOptions:
    monkeypatch.setattr(plugin, "client_options", FAST)
    return FAST


@pytest.fixture
def amz_sandbox() -> Iterator[Sandbox]:
    with Sandbox(orders=24, seed=7, marketplaces=("A1PA6795UKMFR9", "A13V1IB3VIYZZH")) as server:
        yield server
