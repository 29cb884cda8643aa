"""Fixtures of the web admin tests: the sandbox, the server, Chromium from Debian."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from web_support import WEB_KEY, WebServer

from backmarket_pro.sandbox import Sandbox

CHROMIUM = os.environ.get("CARTPLUGIN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture
def web(db_target: Path, bmp):
    with WebServer(db_target) as server:
        yield server


@pytest.fixture
def channel():
    with Sandbox(api_key=WEB_KEY, orders=14, seed=5) as server:
        yield server


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium (see .ci/run)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()
