"""Manage Employees: the life of a staff account, from the web admin or the CLI.

An admin adds a user, disables and enables them, removes them, changes their role and resets
their password; each user changes their own password. Every one of these ends the sessions of
the user it changes at once (``users.session_version``) and is written to the Change Log with
who did it. The last admin who can sign in is never removed, disabled or given another role,
and nobody removes, disables or changes the role of themselves (another admin does).
Permissions are said in words here, for the pages.
"""

from __future__ import annotations

from host.errors import HostError
from host.records import audit, users
from host.store.api import Store
from host.store.db import write

#: what a permission lets a user do, as staff read it (the order is the Employees page's)
PERMISSION_WORDS = {
    "company_settings": "Change company settings",
    "test_settings": "Run Test Settings",
    "import_orders": "Import Orders",
    "cancel_job": "Cancel Queued Jobs",
    "ship": "Ship Items",
    "status": "Change order status",
    "plugins": "Manage plugins",
    "audit": "Read the Change Log",
    "users": "Manage employees",
}


def permission_words(role: str) -> list[str]:
    """What ``role`` may change, in words; empty for a role that only looks."""
    granted = users.PERMISSIONS[role]
    return [words for permission, words in PERMISSION_WORDS.items() if permission in granted]


def roles_with(permission: str) -> str:
    """The roles that hold ``permission``, in words: "admin", "admin and support", "admin, a and b"."""
    names = [role for role in users.ROLES if permission in users.PERMISSIONS[role]]
    if len(names) <= 1:
        return "".join(names) or "no role"
    return f"{', '.join(names[:-1])} and {names[-1]}"


def who_may(permission: str, what: str) -> str:
    """A page's word where it hides an action: "Only admin and support may change these settings"."""
    return f"Only {roles_with(permission)} may {what}."


def _target(db: Store, name: str) -> users.User:
    return users.get_user_by_name(db, name)


def _not_oneself(target: users.User, actor: str, doing: str) -> None:
    if target.name.casefold() == actor.casefold():
        raise HostError(f"you cannot {doing} yourself; another admin can")


def _keeps_an_admin(db: Store, target: users.User, doing: str) -> None:
    """Refuse when ``target`` is the last admin who can sign in: nobody could manage staff after."""
    if target.role != "admin" or target.disabled:
        return
    others = db.execute(
        "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0 AND id != :id", {"id": target.id}
    ).fetchone()[0]
    if not others:
        raise HostError(f"{target.name!r} is the last admin who can sign in: add another admin before you {doing}")


def add(db: Store, actor: str, name: str, role: str, password: str) -> users.User:
    with write(db):
        user = users.add_user(db, name, role, password)
        audit.record(db, actor, "employee added", target=user.name, details={"role": role})
    return user


def set_role(db: Store, actor: str, name: str, role: str) -> users.User:
    """Give ``name`` another role; their sessions end (they sign in again under the new one)."""
    if role not in users.ROLES:
        raise HostError(f"unknown role {role!r}; choose one of: {', '.join(users.ROLES)}")
    with write(db):  # the check and the change together: two admins cannot demote each other at once
        target = _target(db, name)
        if target.role == role:
            raise HostError(f"{target.name!r} is already {role}")
        _not_oneself(target, actor, "change the role of")
        if role != "admin":
            _keeps_an_admin(db, target, "change this role")
        db.execute(
            "UPDATE users SET role = :role, session_version = session_version + 1 WHERE id = :id",
            {"role": role, "id": target.id},
        )
        audit.record(db, actor, "employee role changed", target=target.name, details={"role": role, "was": target.role})
    return _target(db, name)


def set_disabled(db: Store, actor: str, name: str, disabled: bool) -> users.User:
    """Disable ``name`` (they cannot sign in; their sessions end) or enable them again."""
    with write(db):
        target = _target(db, name)
        if target.disabled == disabled:
            raise HostError(f"{target.name!r} is already {'disabled' if disabled else 'enabled'}")
        if disabled:
            _not_oneself(target, actor, "disable")
            _keeps_an_admin(db, target, "disable this user")
        db.execute(
            "UPDATE users SET disabled = :disabled, session_version = session_version + 1 WHERE id = :id",
            {"disabled": int(disabled), "id": target.id},
        )
        audit.record(db, actor, "employee disabled" if disabled else "employee enabled", target=target.name)
    return _target(db, name)


def remove(db: Store, actor: str, name: str) -> None:
    """Remove ``name`` for good (the Change Log keeps their name on what they did)."""
    with write(db):
        target = _target(db, name)
        _not_oneself(target, actor, "remove")
        _keeps_an_admin(db, target, "remove this user")
        db.execute("DELETE FROM user_companies WHERE user_id = :id", {"id": target.id})  # the companies given
        db.execute("DELETE FROM users WHERE id = :id", {"id": target.id})
        users.unlock(db, target.name)  # their failed sign-ins go with them
        audit.record(db, actor, "employee removed", target=target.name, details={"role": target.role})


def reset_password(db: Store, actor: str, name: str, password: str) -> None:
    """An admin sets a new password for ``name``; their sessions end. Nobody resets their own:
    they change it knowing the current one (``change_own_password``)."""
    target = _target(db, name)
    if target.name.casefold() == actor.casefold():
        raise HostError("change your own password under My Password, with your current one")
    with write(db):
        users.set_password(db, target.name, password)
        audit.record(db, actor, "employee password reset", target=target.name)


def change_own_password(db: Store, user: users.User, current: str, new: str) -> users.User:
    """``user`` sets a new password knowing the current one; their other sessions end. Returns
    the user as now stored (the session that changed it takes the new session version)."""
    if not users.password_matches(db, user.id, current):
        raise HostError("the current password is not right")
    if new == current:
        raise HostError("the new password is the current one: choose another")
    with write(db):
        users.set_password(db, user.name, new)
        audit.record(db, user.name, "own password changed", target=user.name)
    changed = users.get_user(db, user.id)
    assert changed is not None
    return changed
