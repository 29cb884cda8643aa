"""Secrets at rest (host/records/secrets.py) on a real SQLite file: where the key file lives, what a
missing, wrong or unreadable key file does, and how a secret stored in clear gets sealed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import sqlite_utils
from cryptography.fernet import Fernet

from host.errors import HostError
from host.records import companies, secrets
from host.store.db import connect


@pytest.fixture(autouse=True)
def _key_next_to_the_database(monkeypatch):
    monkeypatch.delenv(secrets.KEY_FILE_ENV, raising=False)


def _secret_row(db: sqlite_utils.Database, value: str | None, *, key: str = "x_api_key", secret: bool = True) -> None:
    company = companies.add_company(db, f"Company {key}")
    db["cart_settings"].insert(
        {"company_id": company.id, "channel": "backmarket_pro", "key": key, "value": value, "is_secret": int(secret)}
    )


def test_the_key_file_sits_beside_the_database_and_is_private(tmp_path):
    db = connect(tmp_path / "cart.db")
    sealed = secrets.seal(db, "bmp-key-1234")
    key_file = tmp_path / "cart.key"
    assert key_file.exists() and sorted(p.name for p in tmp_path.glob("*.key")) == ["cart.key"]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert sealed.startswith("fernet:") and "bmp-key-1234" not in sealed
    assert secrets.unseal(db, sealed) == "bmp-key-1234"


def test_a_database_named_like_a_key_file_never_becomes_its_own_key(tmp_path):
    db = connect(tmp_path / "vault.key")
    assert secrets.key_path(db) == tmp_path / "vault.key.key"


def test_the_key_file_named_in_the_environment_is_the_one_used(tmp_path, monkeypatch):
    named = tmp_path / "elsewhere" / "host-secrets.key"
    named.parent.mkdir()
    monkeypatch.setenv(secrets.KEY_FILE_ENV, str(named))
    db = connect(tmp_path / "cart.db")
    sealed = secrets.seal(db, "bmp-key-1234")
    assert named.exists() and not (tmp_path / "cart.key").exists()
    assert secrets.unseal(db, sealed) == "bmp-key-1234"


def test_an_in_memory_database_keeps_no_secrets_and_says_how_to_keep_them():
    with pytest.raises(HostError, match=f"in-memory database keeps no secrets: set {secrets.KEY_FILE_ENV}"):
        secrets.seal(sqlite_utils.Database(memory=True), "bmp-key-1234")


def test_a_value_stored_in_clear_by_an_older_version_reads_as_it_is(tmp_path):
    db = connect(tmp_path / "cart.db")
    assert not secrets.is_sealed(None) and not secrets.is_sealed("bmp-key-1234")
    assert secrets.unseal(db, "bmp-key-1234") == "bmp-key-1234"
    assert not (tmp_path / "cart.key").exists()  # reading a clear value makes no key


def test_reading_a_secret_without_its_key_file_is_an_error_and_makes_no_new_key(tmp_path):
    db = connect(tmp_path / "cart.db")
    sealed = secrets.seal(db, "bmp-key-1234")  # never stored: the database has no sealed row
    key_file = tmp_path / "cart.key"
    key_file.unlink()
    with pytest.raises(HostError) as caught:
        secrets.unseal(db, sealed)
    assert f"key file {str(key_file)!r}, which is missing" in str(caught.value)
    assert not key_file.exists()


def test_another_key_file_is_named_and_does_not_open_the_secret(tmp_path):
    db = connect(tmp_path / "cart.db")
    sealed = secrets.seal(db, "bmp-key-1234")
    key_file = tmp_path / "cart.key"
    key_file.write_bytes(Fernet.generate_key())
    with pytest.raises(HostError) as caught:
        secrets.unseal(db, sealed)
    message = str(caught.value)
    assert f"the key file {str(key_file)!r} does not open the secrets" in message and "bmp-key" not in message


def test_an_unreadable_key_file_is_named_with_the_reason(tmp_path):
    db = connect(tmp_path / "cart.db")
    key_file = tmp_path / "cart.key"
    key_file.write_text("not a key\n")
    with pytest.raises(HostError) as caught:
        secrets.seal(db, "bmp-key-1234")
    assert str(caught.value) == f"cannot use the key file {str(key_file)!r}: ValueError"
    assert key_file.read_text() == "not a key\n"  # left as it was


def test_a_key_written_by_another_process_at_the_same_moment_wins(tmp_path):
    """Two processes seal their first secret at once: both must end with the one key on disk."""
    key_file = tmp_path / "cart.key"
    theirs = Fernet.generate_key()
    key_file.write_bytes(theirs + b"\n")
    assert secrets._create_key(key_file) == theirs
    assert key_file.read_bytes() == theirs + b"\n"
    assert os.listdir(tmp_path) == ["cart.key"]  # our temporary file is gone


def test_secrets_stored_in_clear_are_sealed_and_nothing_else_is(tmp_path):
    db = connect(tmp_path / "cart.db")
    _secret_row(db, "bmp-key-1234")
    _secret_row(db, None, key="refresh_token")
    _secret_row(db, "https://www.backmarket.fr", key="website_url", secret=False)
    _secret_row(db, secrets.seal(db, "already-sealed"), key="client_secret")

    assert secrets.seal_clear_rows(db) == 1
    values = {r["key"]: r["value"] for r in db["cart_settings"].rows}
    assert secrets.is_sealed(values["x_api_key"]) and secrets.unseal(db, values["x_api_key"]) == "bmp-key-1234"
    assert values["refresh_token"] is None
    assert values["website_url"] == "https://www.backmarket.fr"
    assert secrets.unseal(db, values["client_secret"]) == "already-sealed"
    assert secrets.seal_clear_rows(db) == 0


def test_with_a_sealed_secret_stored_a_missing_key_file_refuses_a_new_secret(tmp_path):
    db = connect(tmp_path / "cart.db")
    _secret_row(db, secrets.seal(db, "bmp-key-1234"))
    key_file = tmp_path / "cart.key"
    key_file.unlink()
    with pytest.raises(HostError, match="which is missing; restore it"):
        secrets.seal(db, "another-key-5678")
    assert not key_file.exists()
    assert list(Path(tmp_path).glob(".cart.key.*")) == []
