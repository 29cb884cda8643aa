"""Staff accounts of the web admin: roles, argon2 password hashes, throttled logins.

A role is a set of permissions checked on the server for every state-changing request;
the pages only hide what a role cannot do, they never decide it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from host import clock
from host.errors import HostError, NotFound
from host.records.names import name_key
from host.store.api import Store
from host.store.db import write

ROLES = ("admin", "support", "warehouse", "read-only")
#: what each role may change; every role may look
PERMISSIONS = {
    "admin": {
        "users",
        "plugins",
        "audit",
        "company_settings",
        "test_settings",
        "import_orders",
        "cancel_job",
        "ship",
        "status",
    },
    "support": {"company_settings", "test_settings", "import_orders", "cancel_job"},
    "warehouse": {"ship", "status"},
    "read-only": set(),
}
MIN_PASSWORD = 10
#: failed sign-ins of one name from one address within the window that cost nothing; each
#: further one doubles the wait before the next try (1 s, 2 s, 4 s, ... at most MAX_DELAY_SECONDS)
MAX_FAILURES = 5
FAILURE_WINDOW_SECONDS = 15 * 60
MAX_DELAY_SECONDS = 15 * 60

_hasher = PasswordHasher()
#: verified against when the name is unknown, so a wrong name costs as much time as a wrong password
_DUMMY_HASH = _hasher.hash("not a password of anyone")


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str
    session_version: int
    #: a disabled user cannot sign in (host/records/employees.py disables and enables)
    disabled: bool = False

    def can(self, permission: str) -> bool:
        return permission in PERMISSIONS[self.role]


class LoginThrottled(HostError):
    """Too many failed logins: refused for a while whatever the password."""


def _from_row(row: dict[str, Any]) -> User:
    return User(
        id=row["id"],
        name=row["name"],
        role=row["role"],
        session_version=row["session_version"],
        disabled=bool(row.get("disabled")),
    )


def check_new_user(db: Store, name: str, role: str) -> str:
    """The name of a user that may be added (stripped); refused before a password is asked."""
    name = name.strip()
    if not name or len(name) > 64 or not name.isprintable() or " " in name:
        raise HostError("a user name is 1 to 64 printable characters without spaces")
    if ":" in name or name.casefold() == "system":
        # the Change Log names the CLI "cli:<unix user>" and the worker "system": no user may pass for them
        raise HostError("a user name cannot contain ':' nor be 'system'")
    if role not in ROLES:
        raise HostError(f"unknown role {role!r}; choose one of: {', '.join(ROLES)}")
    if db.execute("SELECT 1 FROM users WHERE name = :name", {"name": name}).fetchone():
        raise HostError(f"user {name!r} already exists")
    return name


def add_user(db: Store, name: str, role: str, password: str) -> User:
    name = check_new_user(db, name, role)
    if len(password) < MIN_PASSWORD:
        raise HostError(f"a password has at least {MIN_PASSWORD} characters")
    with write(db):
        if db.execute("SELECT 1 FROM users WHERE name = :name", {"name": name}).fetchone():
            raise HostError(f"user {name!r} already exists")
        db.execute(
            "INSERT INTO users (name, role, password_hash, created_at) VALUES (:name, :role, :hash, :now)",
            {"name": name, "role": role, "hash": _hasher.hash(password), "now": clock.now_iso()},
        )
    return get_user_by_name(db, name)


def get_user(db: Store, user_id: int) -> User | None:
    rows = list(db.query("SELECT * FROM users WHERE id = :id", {"id": user_id}))
    return _from_row(rows[0]) if rows else None


def get_user_by_name(db: Store, name: str) -> User:
    rows = list(db.query("SELECT * FROM users WHERE name = :name", {"name": name.strip()}))
    if not rows:
        raise NotFound(f"unknown user {name[:64]!r}")
    return _from_row(rows[0])


def list_users(db: Store) -> list[dict[str, Any]]:
    return [
        {
            "id": r["id"],
            "name": r["name"],
            "role": r["role"],
            "created_at": r["created_at"],
            "last_login_at": r["last_login_at"],
            "disabled": bool(r.get("disabled")),
        }
        for r in db.query("SELECT * FROM users ORDER BY name")
    ]


def set_password(db: Store, name: str, password: str) -> None:
    """A new password; sessions signed in with the old one end (their version no longer matches)."""
    if len(password) < MIN_PASSWORD:
        raise HostError(f"a password has at least {MIN_PASSWORD} characters")
    user = get_user_by_name(db, name)
    with write(db):
        db.execute(
            "UPDATE users SET password_hash = :hash, session_version = session_version + 1 WHERE id = :id",
            {"hash": _hasher.hash(password), "id": user.id},
        )


def password_matches(db: Store, user_id: int, password: str) -> bool:
    """Whether ``password`` is the user's (a user changing their own password proves it first)."""
    row = db.execute("SELECT password_hash FROM users WHERE id = :id", {"id": user_id}).fetchone()
    try:
        return bool(_hasher.verify(row[0] if row else _DUMMY_HASH, password)) and row is not None
    except (VerificationError, InvalidHashError):
        return False


def end_sessions(db: Store, user_id: int) -> None:
    """End every session of the user, on every device (signing out ends them all)."""
    with write(db):
        db.execute("UPDATE users SET session_version = session_version + 1 WHERE id = :id", {"id": user_id})


def _throttle_key(name: str, address: str) -> str:
    """One name (as a person would write it: any case, any width, spaces around) from one address:
    guesses from elsewhere never slow down the person at their own desk."""
    return f"pair:{name_key(name)[:64]}\x1f{address}"  # PostgreSQL text holds no NUL


def _wait_left(db: Store, key: str) -> float:
    """Seconds before this (name, address) may try again: none for the first failures, then
    doubling with each failure, never a lock that outlasts ``MAX_DELAY_SECONDS``."""
    count, last = db.execute(
        "SELECT COUNT(*), MAX(at) FROM login_failures WHERE key = :key AND at >= :since",
        {"key": key, "since": clock.now_iso(-FAILURE_WINDOW_SECONDS)},
    ).fetchone()
    if count < MAX_FAILURES:
        return 0.0
    delay = min(2.0 ** (count - MAX_FAILURES), MAX_DELAY_SECONDS)
    return max(0.0, delay - (clock.now() - clock.parse(last)).total_seconds())


def authenticate(db: Store, name: str, password: str, *, address: str = "") -> User | None:
    """The user when the password matches; None when not. Raises LoginThrottled while the
    (name, address) pair must wait after repeated failures (``_wait_left``)."""
    key = _throttle_key(name, address)
    wait = _wait_left(db, key)
    if wait > 0:
        raise LoginThrottled(f"too many failed logins from here; try again in {max(1, round(wait))} s")
    rows = list(db.query("SELECT * FROM users WHERE name = :name", {"name": name.strip()}))
    try:
        _hasher.verify(rows[0]["password_hash"] if rows else _DUMMY_HASH, password)
        # a disabled user is answered as a wrong password: the page never tells the state
        ok = bool(rows) and not rows[0].get("disabled")
    except (VerificationError, InvalidHashError):
        ok = False
    with write(db):
        if not ok:
            db.execute("INSERT INTO login_failures (key, at) VALUES (:key, :now)", {"key": key, "now": clock.now_iso()})
            return None
        db.execute("DELETE FROM login_failures WHERE key = :key", {"key": key})
        db.execute(
            "UPDATE users SET last_login_at = :now WHERE id = :id", {"now": clock.now_iso(), "id": rows[0]["id"]}
        )
    return _from_row(rows[0])


def unlock(db: Store, name: str) -> int:
    """Forget the failed sign-ins of ``name`` from every address; how many were forgotten."""
    prefix = _throttle_key(name, "")
    with write(db):
        cursor = db.execute(
            "DELETE FROM login_failures WHERE substr(key, 1, :n) = :prefix", {"n": len(prefix), "prefix": prefix}
        )
    return int(cursor.rowcount or 0)
