"""The store tests run once per backend: a SQLite file and a PostgreSQL database (``db_target``)."""

from __future__ import annotations

import pytest

from host.store.db import connect


@pytest.fixture
def store_target(db_target) -> str:
    """Where the store lives: a SQLite file path or a PostgreSQL URL (a new empty database)."""
    return str(db_target)


@pytest.fixture
def store(store_target):
    db = connect(store_target)
    yield db
    db.close()
