"""On PostgreSQL the secrets' key file is never guessed: every machine must name the same file."""

from __future__ import annotations

import pytest

from host.errors import HostError
from host.records import secrets
from host.store.db import connect_postgresql


def test_a_postgresql_database_without_a_named_key_file_refuses_to_keep_a_secret(pg_url, monkeypatch):
    monkeypatch.delenv(secrets.KEY_FILE_ENV, raising=False)
    db = connect_postgresql(pg_url)
    try:
        with pytest.raises(HostError) as refused:
            secrets.seal(db, "bmp-key-1234")
    finally:
        db.close()
    assert str(refused.value).startswith(
        "a PostgreSQL database keeps its secrets' key in a file you name: set secret_key_file in the config file "
        f"or {secrets.KEY_FILE_ENV}"
    )
