"""Secrets at rest: Cart General values typed ``SecretStr`` are stored encrypted with Fernet.

The key lives in a file of its own, readable by its owner only, outside the database: a copy
of the database alone (a backup, a support bundle) does not reveal the channel keys. By
default it sits next to the database (``cartplugin.db`` -> ``cartplugin.key``);
``CARTPLUGIN_SECRET_KEY_FILE`` points elsewhere. A missing key file while encrypted secrets
exist is an error, never a new key: a new key would silently lose every stored secret.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import sqlite_utils
from cryptography.fernet import Fernet, InvalidToken

from host.errors import HostError

PREFIX = "fernet:"
KEY_FILE_ENV = "CARTPLUGIN_SECRET_KEY_FILE"


def key_path(db: sqlite_utils.Database) -> Path:
    explicit = os.environ.get(KEY_FILE_ENV)
    if explicit:
        return Path(explicit)
    from host.store.db import file_of, is_postgresql

    if is_postgresql(db):
        raise HostError(
            f"a PostgreSQL database keeps its secrets' key in a file you name: set secret_key_file in the "
            f"config file or {KEY_FILE_ENV} (the same file on every machine; see docs/scale-out.md)"
        )
    path = file_of(db)
    if path is None:
        raise HostError(f"an in-memory database keeps no secrets: set {KEY_FILE_ENV}")
    return key_file_beside(path)


def key_file_beside(database: Path) -> Path:
    """The key file of a SQLite database when none is named: ``shop.db`` -> ``shop.key``."""
    return database.with_name((database.stem if database.suffix != ".key" else database.name) + ".key")


def is_sealed(stored: str | None) -> bool:
    return stored is not None and stored.startswith(PREFIX)


def seal(db: sqlite_utils.Database, clear: str) -> str:
    """The stored form of a secret (creating the key file on first use)."""
    return PREFIX + _fernet(db, create=True).encrypt(clear.encode()).decode()


def unseal(db: sqlite_utils.Database, stored: str) -> str:
    """The secret itself; a value stored in clear by an older version is returned as it is."""
    if not is_sealed(stored):
        return stored
    try:
        return _fernet(db, create=False).decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        raise HostError(
            f"the key file {str(key_path(db))!r} does not open the secrets in this database "
            f"(another key file?); restore the right one or set {KEY_FILE_ENV}"
        ) from None


def _fernet(db: sqlite_utils.Database, *, create: bool) -> Fernet:
    path = key_path(db)
    try:
        return Fernet(path.read_bytes().strip())
    except FileNotFoundError:
        pass
    except (ValueError, OSError) as exc:
        raise HostError(f"cannot use the key file {str(path)!r}: {type(exc).__name__}") from None
    if not create or _sealed_rows_exist(db):
        raise HostError(
            f"the secrets in this database are encrypted with the key file {str(path)!r}, which is missing; "
            f"restore it (or point {KEY_FILE_ENV} at it), or set the secrets again after removing them"
        )
    return Fernet(_create_key(path))


def _sealed_rows_exist(db: sqlite_utils.Database) -> bool:
    if not db["cart_settings"].exists():
        return False
    return (
        db.execute(
            "SELECT 1 FROM cart_settings WHERE is_secret = 1 AND value LIKE ? LIMIT 1", [PREFIX + "%"]
        ).fetchone()
        is not None
    )


def _create_key(path: Path) -> bytes:
    """Write a new key 0600, atomically: two processes creating it at once end with one key."""
    key = Fernet.generate_key()
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
    fd = os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    try:
        os.write(fd, key + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temp, path)
    except FileExistsError:
        key = path.read_bytes().strip()
    finally:
        temp.unlink()
    return key


def seal_clear_rows(db: sqlite_utils.Database) -> int:
    """Encrypt every secret still stored in clear (written by an older version); returns how many."""
    rows = db.execute(
        "SELECT company_id, channel, key, value FROM cart_settings WHERE is_secret = 1 AND value IS NOT NULL "
        "AND value NOT LIKE ?",
        [PREFIX + "%"],
    ).fetchall()
    for company_id, channel, key, value in rows:
        db.execute(
            "UPDATE cart_settings SET value = ? WHERE company_id = ? AND channel = ? AND key = ?",
            [seal(db, value), company_id, channel, key],
        )
    return len(rows)
