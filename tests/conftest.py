"""Shared fixtures: a real SQLite file, the real CLI, the real Back Market Pro sandbox."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from support import API_KEY

import backmarket_pro.plugin
from backmarket_pro.sandbox import Sandbox
from host import plugins
from host.cli import cli


def pytest_configure(config):
    # Installed plugins stay out of the host's own tests: each test registers what it needs.
    sys._called_from_test = True


def pytest_unconfigure(config):
    del sys._called_from_test


@pytest.fixture
def bmp():
    """The Back Market Pro plugin, registered for this test only."""
    plugins.register(backmarket_pro.plugin, name="backmarket_pro")
    try:
        yield backmarket_pro.plugin
    finally:
        plugins.unregister(backmarket_pro.plugin)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "cart.db"


class Cli:
    def __init__(self, db_path: Path):
        self.db_path = db_path
        self.runner = CliRunner()

    def __call__(self, *args: str, ok: bool = True):
        result = self.runner.invoke(cli, ["--db", str(self.db_path), *args], catch_exceptions=False)
        if ok and result.exit_code != 0:
            raise AssertionError(f"cartplugin {' '.join(args)} exited {result.exit_code}: {result.output}")
        return result

    def json(self, *args: str):
        return json.loads(self(*args, "--json").stdout)


@pytest.fixture
def run(db_path: Path) -> Cli:
    return Cli(db_path)


@pytest.fixture
def sandbox():
    with Sandbox(api_key=API_KEY, orders=12, seed=3) as server:
        yield server


@pytest.fixture
def company(run: Cli, bmp, sandbox) -> str:
    """A company set up as the help page says, with the connection established."""
    name = "Acme Refurb"
    run("companies", "add", name)
    run(
        "website-settings",
        name,
        "--store-plugin",
        "backmarket_pro",
        "--allow-order-download",
        "--allow-tracking-upload",
    )
    run("cart-settings", name, "--set", f"website_url={sandbox.base_url}", "--set", f"x_api_key={API_KEY}",
        "--set", "commission_percent=10")  # fmt: skip
    run("test-settings", name)
    return name
