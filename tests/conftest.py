"""Shared fixtures: a real SQLite file, the real CLI, the real Back Market Pro sandbox."""

from __future__ import annotations

import itertools
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pg_server
import pytest
from support import API_KEY, Cli, registered

import backmarket_pro.plugin
from backmarket_pro.sandbox import Sandbox


def pytest_configure(config):
    # Installed plugins stay out of the host's own tests: each test registers what it needs.
    sys._called_from_test = True
    config.addinivalue_line(
        "markers",
        "sqlite_only(why): the test is about a SQLite file itself (its bytes, WAL, lock file); "
        "db_target gives it the SQLite backend only",
    )


def pytest_unconfigure(config):
    del sys._called_from_test


@pytest.fixture
def bmp():
    """The Back Market Pro plugin, registered for this test only."""
    with registered(backmarket_pro.plugin, "backmarket_pro") as plugin:
        yield plugin


@pytest.fixture
def run(db_target: Path | str) -> Cli:
    return Cli(db_target)


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


@pytest.fixture(scope="session")
def postgres():
    """One throwaway PostgreSQL server for the whole run (tests.pg_server), stopped at the end.

    Skipped where PostgreSQL is not installed, unless CARTPLUGIN_REQUIRE_POSTGRESQL=1 (.ci/run
    installs it and sets that, so CI never skips these tests silently).
    """
    if not pg_server.available():
        if os.environ.get("CARTPLUGIN_REQUIRE_POSTGRESQL") == "1":
            pytest.fail("PostgreSQL is required (CARTPLUGIN_REQUIRE_POSTGRESQL=1) but not installed")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    folder = tempfile.mkdtemp(prefix="cartpg-")  # under /tmp: the server's own user must reach it
    server = pg_server.PgServer(folder)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


_database_numbers = itertools.count(1)

#: CARTPLUGIN_TEST_DB_BACKEND=sqlite or =postgresql runs the tests that open a database on one only
BACKENDS = [b for b in ("sqlite", "postgresql") if os.environ.get("CARTPLUGIN_TEST_DB_BACKEND", b) == b] or [
    "sqlite",
    "postgresql",
]


def pytest_generate_tests(metafunc):
    """Every test that opens the host database (through ``db_target``, or ``run``, ``company``,
    ``web``... which take it) runs once per backend, ``test[sqlite]`` and ``test[postgresql]``;
    a test marked ``sqlite_only`` runs on SQLite alone."""
    if "db_target" not in metafunc.fixturenames:
        return
    only_sqlite = metafunc.definition.get_closest_marker("sqlite_only") is not None
    backends = [b for b in BACKENDS if b == "sqlite" or not only_sqlite]
    metafunc.parametrize("db_target", backends, indirect=True)


@pytest.fixture
def db_target(request, tmp_path: Path, monkeypatch) -> Path | str:
    """The host database of a test: a SQLite file not made yet, or a new empty PostgreSQL
    database (then its key file is named, for this process and the CLI it starts)."""
    if request.param == "sqlite":
        return tmp_path / "cart.db"
    monkeypatch.setenv("CARTPLUGIN_SECRET_KEY_FILE", str(tmp_path / "cart.key"))
    return request.getfixturevalue("pg_url")


@pytest.fixture
def pg_url(postgres) -> Iterator[str]:
    """The URL of a new empty PostgreSQL database, dropped after the test."""
    name = f"test_{os.getpid()}_{next(_database_numbers)}"
    url = postgres.create_database(name)
    try:
        yield url
    finally:
        postgres.drop_database(name)
