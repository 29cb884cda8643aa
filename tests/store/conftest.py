"""The store tests run once per backend: a SQLite file and a PostgreSQL database."""

from __future__ import annotations

import pytest

from host.db import connect


@pytest.fixture(params=["sqlite", "postgresql"])
def store_target(request, tmp_path, monkeypatch) -> str:
    """Where the store lives: a SQLite file path or a PostgreSQL URL (a new empty database)."""
    if request.param == "sqlite":
        return str(tmp_path / "store.db")
    # PostgreSQL has no file to put the key beside: the key file is named, as in production
    monkeypatch.setenv("CARTPLUGIN_SECRET_KEY_FILE", str(tmp_path / "store.key"))
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(store_target):
    db = connect(store_target)
    yield db
    db.close()
