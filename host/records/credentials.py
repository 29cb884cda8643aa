"""The host's credential store: what a channel's auth obtains at run time, per company.

OAuth 2.0 access tokens (and refresh tokens a channel rotates) live in the table
``channel_credentials``, their values encrypted with the host's key like the Cart General
secrets (``host.records.secrets``), so every worker process and machine shares one token per company
and channel. Each hook call gets a :class:`DbCredentialStore` (the hooks' ``credentials``
argument); it opens a connection of its own on first use, so a renewal commits on its own,
whatever transaction the job's connection is in, and a token the channel issued is never
rolled back with a batch of orders.

Staff see when a token was last renewed and until when it is valid (:func:`status`), never
the token.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from host import clock
from host.records import secrets
from host.store.api import Store
from host.store.db import connect, target_of, write
from plugin_spec.credentials import Credential

#: one record of a company's channel, by name (the parameters are ``DbCredentialStore._key``)
_WHERE = "company_id = :company_id AND channel = :channel AND name = :name"


class DbCredentialStore:
    """A ``plugin_spec.credentials.CredentialStore`` of one company's channel in the host's database."""

    def __init__(self, target: str, company_id: int, channel: str):
        self.target, self.company_id, self.channel = target, company_id, channel
        self._lock = threading.Lock()  # the threads of one upload share the store
        self._db: Store | None = None
        self._seen: set[str] = set()
        #: name -> the lease this store wrote when it claimed a renewal (another's is never released)
        self._claims: dict[str, str] = {}

    @classmethod
    def of(cls, db: Store, company_id: int, channel: str) -> DbCredentialStore:
        return cls(target_of(db), company_id, channel)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _conn(self) -> Store:
        if self._db is None:
            self._db = connect(self.target, migrate=False, create=False)
        return self._db

    def _key(self, name: str) -> dict[str, Any]:
        """The named parameters that pick one record (``_WHERE``)."""
        return {"company_id": self.company_id, "channel": self.channel, "name": name}

    # --- CredentialStore --------------------------------------------------------------------

    def load(self, name: str) -> Credential | None:
        with self._lock:
            db = self._conn()
            row = db.execute(
                f"SELECT value, expires_at, version, origin, refreshed_at FROM channel_credentials WHERE {_WHERE}",
                self._key(name),
            ).fetchone()
            if row is None or not row[2] or row[0] is None:
                return None  # nothing saved yet (a claim without a result is version 0)
            values = _values(db, row[0])
            self._seen.update(v for v in values.values() if v)
            return Credential(
                values=values, expires_at=_when(row[1]), version=int(row[2]), origin=row[3], refreshed_at=_when(row[4])
            )

    def begin_refresh(self, name: str, seen_version: int, lease_seconds: float) -> bool:
        with self._lock:
            db = self._conn()
            now, until = clock.now_iso(), clock.now_iso(lease_seconds)
            with write(db):
                if seen_version == 0:
                    created = db.execute(
                        "INSERT INTO channel_credentials (company_id, channel, name, version, lease_until) "
                        "VALUES (:company_id, :channel, :name, 0, :until) ON CONFLICT DO NOTHING",
                        {**self._key(name), "until": until},
                    ).rowcount
                    if created == 1:
                        self._claims[name] = until
                        return True
                claimed = db.execute(
                    f"UPDATE channel_credentials SET lease_until = :until WHERE {_WHERE} "
                    "AND version = :seen AND (lease_until IS NULL OR lease_until < :now)",
                    {**self._key(name), "until": until, "seen": seen_version, "now": now},
                ).rowcount
            if claimed == 1:
                self._claims[name] = until
            return bool(claimed == 1)

    def finish_refresh(
        self, name: str, seen_version: int, values: Mapping[str, str], expires_at: datetime | None, origin: str
    ) -> Credential:
        with self._lock:
            db = self._conn()
            sealed = secrets.seal(db, json.dumps(dict(values)))
            refreshed = clock.now()
            with write(db):
                # saved whatever the claim became: see CredentialStore.finish_refresh
                db.execute(
                    "INSERT INTO channel_credentials (company_id, channel, name, origin, value, expires_at, version, "
                    "refreshed_at, lease_until) VALUES (:company_id, :channel, :name, :origin, :value, :expires_at, "
                    "1, :refreshed_at, NULL) "
                    "ON CONFLICT (company_id, channel, name) DO UPDATE SET origin = excluded.origin, "
                    "value = excluded.value, expires_at = excluded.expires_at, "
                    "version = channel_credentials.version + 1, refreshed_at = excluded.refreshed_at, "
                    "lease_until = NULL",
                    {
                        **self._key(name),
                        "origin": origin,
                        "value": sealed,
                        "expires_at": clock.iso(expires_at) if expires_at else None,
                        "refreshed_at": clock.iso(refreshed),
                    },
                )
                version = db.execute(
                    f"SELECT version FROM channel_credentials WHERE {_WHERE}", self._key(name)
                ).fetchone()[0]
            self._seen.update(v for v in values.values() if v)
            self._claims.pop(name, None)
            return Credential(
                values=dict(values), expires_at=expires_at, version=int(version), origin=origin, refreshed_at=refreshed
            )

    def abandon_refresh(self, name: str, seen_version: int) -> None:
        with self._lock:
            claim = self._claims.pop(name, None)
            if claim is None:
                return
            db = self._conn()
            with write(db):
                # only this store's own claim: one taken over since (its lease lapsed) stays
                db.execute(
                    f"UPDATE channel_credentials SET lease_until = NULL WHERE {_WHERE} "
                    "AND version = :seen AND lease_until = :claim",
                    {**self._key(name), "seen": seen_version, "claim": claim},
                )

    def secret_values(self) -> list[str]:
        """The values this store loaded or saved (what this process may have seen)."""
        with self._lock:
            return sorted(self._seen, key=len, reverse=True)


def values_of(db: Store, company_id: int) -> list[str]:
    """Every token stored for the company, in clear: for scrubbing a message, never for showing."""
    rows = db.execute(
        "SELECT value FROM channel_credentials WHERE company_id = :company_id AND version > 0 AND value IS NOT NULL",
        {"company_id": company_id},
    ).fetchall()
    return [v for (sealed,) in rows for v in _values(db, sealed).values() if v]


def status(db: Store, company_id: int, channel: str) -> list[dict[str, Any]]:
    """What staff may see of a company's stored tokens: their name and dates, never a value."""
    rows = db.execute(
        "SELECT name, refreshed_at, expires_at FROM channel_credentials "
        "WHERE company_id = :company_id AND channel = :channel AND version > 0 ORDER BY name",
        {"company_id": company_id, "channel": channel},
    ).fetchall()
    return [{"name": name, "refreshed_at": refreshed, "expires_at": expires} for name, refreshed, expires in rows]


def _values(db: Store, sealed: str) -> dict[str, str]:
    """A record's values, decrypted (strings only: what a token endpoint answered)."""
    return {k: v for k, v in json.loads(secrets.unseal(db, sealed)).items() if isinstance(v, str)}


def _when(value: str | None) -> datetime | None:
    return clock.parse(value) if value else None
