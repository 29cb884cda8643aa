"""Fixtures of the Amazon plugin tests: a live sandbox on 127.0.0.1, stopped after each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from amazon_sp.sandbox import Sandbox


@pytest.fixture
def amz_sandbox() -> Iterator[Sandbox]:
    with Sandbox(orders=24, seed=7, marketplaces=("A1PA6795UKMFR9", "A13V1IB3VIYZZH")) as server:
        yield server
