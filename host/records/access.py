"""Which companies a staff account reaches: all of them, or the ones it was given.

A host that serves several client companies (a 3PL) limits its staff to theirs. An account
reaches every company unless an operator gave it some (``cartplugin users companies``): so
accounts made before this existed keep seeing everything, and admins always see everything
(they give the companies). The web admin asks ``for_user`` once a request and passes the
answer to every query (``host.records.queries``); the CLI is the operator's and reaches all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from host.errors import HostError
from host.records import audit
from host.records.companies import get_company
from host.records.users import User, get_user_by_name
from host.store.api import Store, in_list
from host.store.db import write


@dataclass(frozen=True)
class Access:
    """The companies one account reaches; ``company_ids`` None means every company."""

    company_ids: frozenset[int] | None

    @property
    def everything(self) -> bool:
        return self.company_ids is None

    def allows(self, company_id: int | None) -> bool:
        return self.company_ids is None or company_id in self.company_ids

    def where(self, column: str) -> tuple[str, dict[str, Any]]:
        """A SQL condition on ``column`` (a fixed name, never text from a request) and its named
        parameters (``:reach_0``, ...: a query's other parameters take other names)."""
        if self.company_ids is None:
            return "1 = 1", {}
        if not self.company_ids:
            return "1 = 0", {}
        marks, params = in_list("reach", sorted(self.company_ids))
        return f"{column} IN {marks}", params


#: every company: the operator's CLI, the worker, an admin
EVERY = Access(None)


def for_user(db: Store, user: User) -> Access:
    """What ``user`` reaches now (read at every request: a change applies at the next page)."""
    if user.role == "admin":
        return EVERY
    row = db.execute("SELECT all_companies FROM users WHERE id = :id", {"id": user.id}).fetchone()
    if row is None:
        return Access(frozenset())
    if row[0]:
        return EVERY
    ids = db.execute("SELECT company_id FROM user_companies WHERE user_id = :id", {"id": user.id}).fetchall()
    return Access(frozenset(int(r[0]) for r in ids))


def company_names(db: Store) -> dict[int, list[str] | None]:
    """Per user id, the names of the companies it was given, or None for every company."""
    names: dict[int, list[str] | None] = {}
    for row in db.query("SELECT id, role, all_companies FROM users"):
        names[row["id"]] = None if row["all_companies"] or row["role"] == "admin" else []
    for row in db.query(
        "SELECT uc.user_id, c.name FROM user_companies uc JOIN companies c ON c.id = uc.company_id ORDER BY c.name"
    ):
        given = names.get(row["user_id"])
        if given is not None:
            given.append(row["name"])
    return names


def describe(names: list[str] | None, role: str) -> str:
    """The line staff read: "every company", "Acme, Other" or "none yet"."""
    if names is None:
        return "every company (admin)" if role == "admin" else "every company"
    return ", ".join(names) if names else "none (sees no company)"


def set_companies(
    db: Store,
    name: str,
    *,
    add: Iterable[str] = (),
    remove: Iterable[str] = (),
    every: bool | None = None,
    actor: str | None = None,
) -> list[str] | None:
    """Give ``name`` the companies ``add`` and take ``remove`` away; ``every`` True reaches all
    (the list is kept for later), False only the given ones. Adding or removing a company limits
    the user to the list. Every name is checked before anything changes; returns what the user
    now reaches (None: every company)."""
    user = get_user_by_name(db, name)
    added = [get_company(db, ref) for ref in add]
    removed = [get_company(db, ref) for ref in remove]
    both = {c.id for c in added} & {c.id for c in removed}
    if both:
        raise HostError("a company cannot be added and removed at once")
    if every and (added or removed):
        raise HostError("--all reaches every company: give it alone, or give companies without it")
    if user.role == "admin" and (added or removed or every is False):
        raise HostError(f"{user.name!r} is an admin: admins always reach every company (change the role first)")
    reaches_all = db.execute("SELECT all_companies FROM users WHERE id = :id", {"id": user.id}).fetchone()[0]
    if reaches_all and removed and not added:
        raise HostError(
            f"{user.name!r} reaches every company: name the companies it keeps with --add, not the ones it loses"
        )
    limited = every is False or bool(added or removed)
    with write(db):
        for company in added:
            db.execute(
                "INSERT INTO user_companies (user_id, company_id) VALUES (:user_id, :company_id) "
                "ON CONFLICT DO NOTHING",
                {"user_id": user.id, "company_id": company.id},
            )
        for company in removed:
            db.execute(
                "DELETE FROM user_companies WHERE user_id = :user_id AND company_id = :company_id",
                {"user_id": user.id, "company_id": company.id},
            )
        if every or limited:
            db.execute(
                "UPDATE users SET all_companies = :every WHERE id = :id", {"every": 1 if every else 0, "id": user.id}
            )
        if actor is not None and (added or removed or every is not None):
            details: dict[str, Any] = {"Given": [c.name for c in added], "Taken away": [c.name for c in removed]}
            if every is not None:
                details["Every company"] = bool(every)
            audit.record(db, actor, "companies of an employee changed", target=f"user {user.name}", details=details)
    return company_names(db).get(user.id)
