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
from typing import cast

import sqlite_utils
from cryptography.fernet import Fernet, InvalidToken

from host.errors import HostError
from host.store.api import Store, backend
from host.store.files import file_of

PREFIX = "fernet:"
KEY_FILE_ENV = "CARTPLUGIN_SECRET_KEY_FILE"
#: SQL true for a ``value`` stored sealed: it starts with ``PREFIX`` exactly (case and all),
#: with :data:`SEALED_PARAMS`
SEALED = "substr(value, 1, :prefix_length) = :prefix"
SEALED_PARAMS = {"prefix_length": len(PREFIX), "prefix": PREFIX}


def key_path(db: Store) -> Path:
    explicit = os.environ.get(KEY_FILE_ENV)
    if explicit:
        return Path(explicit)
    path = file_of(db)
    if path is None:  # no file to put it beside: the key must be named
        raise HostError(_NO_PLACE_BESIDE.get(backend(db), _IN_MEMORY))
    return key_file_beside(path)


_IN_MEMORY = f"an in-memory database keeps no secrets: set {KEY_FILE_ENV}"
#: why a database has no file to keep its key beside, by backend
_NO_PLACE_BESIDE = {
    "postgresql": f"a PostgreSQL database keeps its secrets' key in a file you name: set secret_key_file in the "
    f"config file or {KEY_FILE_ENV} (the same file on every machine; see docs/scale-out.md)",
}


def key_file_beside(database: Path) -> Path:
    """The key file of a SQLite database when none is named: ``shop.db`` -> ``shop.key``."""
    return database.with_name((database.stem if database.suffix != ".key" else database.name) + ".key")


def is_sealed(stored: str | None) -> bool:
    return stored is not None and stored.startswith(PREFIX)


def seal(db: Store, clear: str) -> str:
    """The stored form of a secret (creating the key file on first use)."""
    return PREFIX + _fernet(db, create=True).encrypt(clear.encode()).decode()


def unseal(db: Store, stored: str) -> str:
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


def _fernet(db: Store, *, create: bool) -> Fernet:
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


def count_sealed(db: Store) -> int:
    """How many secrets ``db`` holds sealed (with the key file it must be used with)."""
    return db.execute(f"SELECT COUNT(*) FROM cart_settings WHERE is_secret = 1 AND {SEALED}", SEALED_PARAMS).fetchone()[
        0
    ]


def _sealed_rows_exist(db: Store) -> bool:
    if not db["cart_settings"].exists():
        return False
    return (
        db.execute(f"SELECT 1 FROM cart_settings WHERE is_secret = 1 AND {SEALED} LIMIT 1", SEALED_PARAMS).fetchone()
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


def seal_clear_rows(db: Store | sqlite_utils.Database) -> int:
    """Encrypt every secret still stored in clear (written by an older version); returns how many.
    A migration step calls it with the sqlite-utils ``Database`` it migrates."""
    store = cast(Store, db)  # what seal reads of it (the file beside which the key is) both have
    rows = db.execute(
        "SELECT company_id, channel, key, value FROM cart_settings WHERE is_secret = 1 AND value IS NOT NULL "
        f"AND NOT {SEALED}",
        SEALED_PARAMS,
    ).fetchall()
    for company_id, channel, key, value in rows:
        db.execute(
            "UPDATE cart_settings SET value = :value WHERE company_id = :company_id AND channel = :channel "
            "AND key = :key",
            {"value": seal(store, value), "company_id": company_id, "channel": channel, "key": key},
        )
    return len(rows)
