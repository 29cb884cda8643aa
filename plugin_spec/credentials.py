"""Where a channel's auth keeps what it obtains at run time: access tokens, rotated refresh tokens.

A key typed into Cart General is a setting; an OAuth 2.0 access token minted from it is not:
it expires after an hour or two, every process of the host must share it (a token endpoint
has its own quota, and a channel that rotates its refresh token invalidates the old one at
each refresh), and a rotated refresh token must outlive the job that received it. The host
gives each hook call a :class:`CredentialStore` for that company and channel (the
``credentials`` argument of the hooks); ``plugin_spec.auth`` uses it, so a plugin rarely
touches it directly.

The store is a compare-and-set record per name:

* :meth:`CredentialStore.load` reads the record (``None`` before the first token);
* :meth:`CredentialStore.begin_refresh` claims the right to refresh for ``lease`` seconds,
  only while the record is still the version the caller saw and nobody else holds a live
  claim: of two workers that find the token expired at once, one mints, the other waits for
  its result, so one token is minted, not two;
* :meth:`CredentialStore.finish_refresh` saves the new values under the claim (version + 1);
  :meth:`CredentialStore.abandon_refresh` gives the claim up after a failed mint.

A claim that outlives its lease (its holder died mid-mint) may be taken over by the next
caller.

:class:`MemoryCredentialStore` keeps records in one process (a plugin's own tests, the
conformance kit, a script); the host's store keeps them encrypted in its database, shared
by every process and machine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class Credential:
    """One stored record: the values (tokens), when they expire, and its version."""

    #: e.g. ``{"access_token": ..., "refresh_token": ...}``; secrets: never print them
    values: Mapping[str, str] = field(repr=False)
    #: when the access token stops working (None: unknown, used until refused)
    expires_at: datetime | None
    #: the store's version of this record: 1 after the first save, + 1 each save after
    version: int
    #: what the record was derived from (a digest of the settings that minted it): a record
    #: from other settings (another client id, a new refresh token typed by staff) is not used
    origin: str = ""
    refreshed_at: datetime | None = None

    def expires_within(self, seconds: float, now: datetime | None = None) -> bool:
        if self.expires_at is None:
            return False
        return self.expires_at <= (now or datetime.now(UTC)) + timedelta(seconds=seconds)


@runtime_checkable
class CredentialStore(Protocol):
    """The records of one company's channel; thread- and process-safe by contract."""

    def load(self, name: str) -> Credential | None:
        """The record ``name``, or None when nothing was saved yet."""
        ...

    def begin_refresh(self, name: str, seen_version: int, lease_seconds: float) -> bool:
        """Claim the refresh of ``name`` while its version is ``seen_version`` (0: no record
        yet) and no other claim is live; True when this caller may mint."""
        ...

    def finish_refresh(
        self, name: str, seen_version: int, values: Mapping[str, str], expires_at: datetime | None, origin: str
    ) -> Credential:
        """Save the minted values and release the claim; the new record (version + 1).

        Saved even when the claim lapsed meanwhile and another process saved first: a token
        the channel just issued is valid, and a refresh token it rotated is the only one left
        (the one it replaced is spent), so dropping it would lock the account out.
        """
        ...

    def abandon_refresh(self, name: str, seen_version: int) -> None:
        """Release the caller's claim without saving (the mint failed)."""
        ...

    def secret_values(self) -> list[str]:
        """Every stored value, so the host can scrub them from messages it did not write."""
        ...


class MemoryCredentialStore:
    """A :class:`CredentialStore` in this process only (tests, the kit, scripts)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: dict[str, Credential] = {}
        self._leases: dict[str, float] = {}
        #: every value ever saved, so a test can check none of them was shown
        self.history: list[Mapping[str, str]] = []

    def load(self, name: str) -> Credential | None:
        with self._lock:
            return self._records.get(name)

    def begin_refresh(self, name: str, seen_version: int, lease_seconds: float) -> bool:
        with self._lock:
            current = self._records.get(name)
            if (current.version if current else 0) != seen_version:
                return False
            if self._leases.get(name, 0.0) > time.monotonic():
                return False
            self._leases[name] = time.monotonic() + lease_seconds
            return True

    def finish_refresh(
        self, name: str, seen_version: int, values: Mapping[str, str], expires_at: datetime | None, origin: str
    ) -> Credential:
        with self._lock:
            current = self._records.get(name)
            record = Credential(
                values=dict(values), expires_at=expires_at, version=(current.version if current else 0) + 1,
                origin=origin, refreshed_at=datetime.now(UTC),
            )  # fmt: skip
            self._records[name] = record
            self._leases.pop(name, None)
            self.history.append(dict(values))
            return record

    def abandon_refresh(self, name: str, seen_version: int) -> None:
        with self._lock:
            self._leases.pop(name, None)

    def secret_values(self) -> list[str]:
        with self._lock:
            return [value for values in self.history for value in values.values() if value]
