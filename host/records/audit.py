"""The audit log (the Change Log): every change, whoever makes it, and when.

Who made it is one of three sources: a person in the web admin (their user name), the command
line (``cli:<unix user>``), or cartplugin itself (``system``: the worker's automatic changes).
The source is stored beside the name, so a web user who happens to be called ``system`` is
still shown as a person. Details name the fields that changed and their new values, except
secrets: for those only the fact that they were replaced is written.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from host import clock
from host.store.api import Store
from host.store.db import delete_in_batches, joined_write

WEB, CLI, SYSTEM_SOURCE = "web", "cli", "system"
#: the sources the Change Log can be filtered by, in staff words
SOURCE_WORDS = {WEB: "Web admin", CLI: "Command line", SYSTEM_SOURCE: "Automatic"}


class Actor(str):
    """Who makes a change: the name the Change Log keeps, and where it came from (``source``)."""

    source: str

    def __new__(cls, name: str, source: str = WEB) -> Actor:
        made = super().__new__(cls, name)
        made.source = source
        return made


#: cartplugin itself: the worker and the job runner's automatic changes
SYSTEM = Actor("system", SYSTEM_SOURCE)


def cli_actor() -> Actor:
    """Who runs this command: ``cli:<unix user>`` (``cli:unknown`` when the user has no name)."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError, ImportError):  # no user name in the environment nor the password database
        name = "unknown"
    # the name comes from the environment: one printable line, bounded
    name = "".join(ch for ch in name if ch.isprintable())[:64] or "unknown"
    return Actor(f"cli:{name}", CLI)


def source_of(actor: str) -> str:
    """The source of ``actor``: an ``Actor`` says it; a plain name is a web user."""
    return getattr(actor, "source", WEB)


def trimmed(actor: str) -> Actor:
    """``actor`` without surrounding spaces, keeping its source."""
    return Actor(actor.strip(), source_of(actor))


def to_params(actor: str) -> dict[str, str]:
    """``actor`` as a Queued Job's parameters keep it (JSON), for the job's own entry."""
    return {"requested_by": str(actor), "requested_via": source_of(actor)}


def from_params(params: dict[str, Any]) -> Actor:
    """Who asked for a job (``to_params``); a job nobody asked for is cartplugin's own."""
    name = params.get("requested_by")
    if not name:
        return SYSTEM
    return Actor(str(name), str(params.get("requested_via") or WEB))


def parse_source(value: str | None) -> str | None:
    """The Change Log's "Who" filter (``web``, ``cli``, ``system``); anything else: everyone."""
    return value if value in SOURCE_WORDS else None


def who_words(actor: str, source: str) -> str:
    """Who, as staff read it: ``sue``, ``Operator (cli:root)``, ``cartplugin (automatic)``."""
    if source == SYSTEM_SOURCE:
        return "cartplugin (automatic)"
    if source == CLI:
        return f"Operator ({actor})"
    return actor


def _row(
    actor: str, action: str, company_id: int | None, target: str | None, details: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "at": clock.now_iso(),
        "actor": str(actor),
        "source": source_of(actor),
        "action": action,
        "company_id": company_id,
        "target": target,
        "details": json.dumps(details or {}, ensure_ascii=False, default=str),
    }


_INSERT = (
    "INSERT INTO audit_log (at, actor, source, action, company_id, target, details) "
    "VALUES (:at, :actor, :source, :action, :company_id, :target, :details)"
)


def record(
    db: Store,
    actor: str,
    action: str,
    *,
    company_id: int | None = None,
    target: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    with joined_write(db):  # one statement: in the caller's transaction when there is one
        db.execute(_INSERT, _row(actor, action, company_id, target, details))


def record_many(db: Store, actor: str, entries: Iterable[tuple[str, int | None, str | None, dict[str, Any]]]) -> None:
    """Several entries of one actor, as (action, company_id, target, details), in the caller's
    transaction (a download writes them with the orders they describe, or not at all)."""
    rows = [_row(actor, action, company_id, target, details) for action, company_id, target, details in entries]
    if rows:
        db.conn.executemany(_INSERT, rows)


@dataclass(frozen=True)
class Filters:
    """What a Change Log page asks for: who (source and user name), which kind of change, when."""

    source: str | None = None
    user: str | None = None
    kind: str | None = None
    #: inclusive dates (UTC), ``YYYY-MM-DD``
    since: str | None = None
    until: str | None = None
    company_id: int | None = None

    @classmethod
    def parse(cls, args: Mapping[str, str], *, company_id: int | None = None) -> tuple[Filters, list[str]]:
        """The filters of a request's query string, and a readable line for each value refused
        (a refused value is left out, never half-used)."""
        problems: list[str] = []
        dates: dict[str, str | None] = {}
        for key, label in (("from", "From"), ("to", "To")):
            text = (args.get(key) or "").strip()
            try:
                dates[key] = date.fromisoformat(text).isoformat() if text else None
            except ValueError:
                dates[key] = None
                problems.append(f"{label} must be a date written YYYY-MM-DD.")
        if company_id is None and (args.get("company") or "").strip():
            try:
                company_id = int(args["company"])
            except ValueError:
                problems.append("Choose a company from the list.")
        return (
            cls(
                source=parse_source(args.get("who")),
                user=(args.get("user") or "").strip()[:64] or None,
                kind=(args.get("kind") or "").strip()[:100] or None,
                since=dates["from"],
                until=dates["to"],
                company_id=company_id,
            ),
            problems,
        )


def entries(
    db: Store,
    *,
    company_id: int | None = None,
    source: str | None = None,
    filters: Filters | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """The newest entries first, of one company and/or one source (``web``, ``cli``, ``system``),
    or as ``filters`` say (a user's name in any case, a kind of change, a range of dates)."""
    wanted = filters or Filters()
    company_id = company_id if company_id is not None else wanted.company_id
    source = source if source is not None else wanted.source
    sql = "SELECT a.*, c.name AS company FROM audit_log a LEFT JOIN companies c ON c.id = a.company_id"
    where: list[str] = []
    params: dict[str, Any] = {"limit": limit}
    if company_id is not None:
        where.append("a.company_id = :company_id")
        params["company_id"] = company_id
    if source is not None:
        where.append("a.source = :source")
        params["source"] = source
    if wanted.user is not None:
        where.append("lower(a.actor) = lower(:user)")
        params["user"] = wanted.user
    if wanted.kind is not None:
        where.append("a.action = :kind")
        params["kind"] = wanted.kind
    if wanted.since is not None:
        where.append("a.at >= :since")
        params["since"] = wanted.since
    if wanted.until is not None:
        where.append("a.at < :until")
        params["until"] = (date.fromisoformat(wanted.until) + timedelta(days=1)).isoformat()
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY a.id DESC LIMIT :limit"
    return [
        {**row, "details": json.loads(row["details"]), "who": who_words(row["actor"], row["source"])}
        for row in db.query(sql, params)
    ]


def kinds(db: Store, *, company_id: int | None = None) -> list[str]:
    """The kinds of change the Change Log holds (of one company), for its Kind filter."""
    if company_id is None:
        return [row[0] for row in db.execute("SELECT DISTINCT action FROM audit_log ORDER BY action").fetchall()]
    sql = "SELECT DISTINCT action FROM audit_log WHERE company_id = :company_id ORDER BY action"
    return [row[0] for row in db.execute(sql, {"company_id": company_id}).fetchall()]


def purge(db: Store, days: float, *, batch: int = 1000) -> int:
    """Delete the entries older than ``days`` (0: keep every entry); how many. In batches, each
    its own short transaction."""
    if days <= 0:
        return 0
    pick = "SELECT id FROM audit_log WHERE at < :before ORDER BY id LIMIT :batch"
    return delete_in_batches(db, pick, {"before": clock.now_iso(-days * 86400)}, [("audit_log", "id")], batch)
