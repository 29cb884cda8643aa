"""The audit log: who changed which setting or toggle, ran which action, shipped which order, when.

Details name the fields that changed and their new values, except secrets: for those only the
fact that they were replaced is written.
"""

from __future__ import annotations

import json
from typing import Any

import sqlite_utils

from . import clock
from .db import write


def record(
    db: sqlite_utils.Database,
    actor: str,
    action: str,
    *,
    company_id: int | None = None,
    target: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    with write(db):
        db.execute(
            "INSERT INTO audit_log (at, actor, action, company_id, target, details) VALUES (?, ?, ?, ?, ?, ?)",
            [
                clock.now_iso(),
                actor,
                action,
                company_id,
                target,
                json.dumps(details or {}, ensure_ascii=False, default=str),
            ],
        )


def entries(db: sqlite_utils.Database, *, company_id: int | None = None, limit: int = 200) -> list[dict[str, Any]]:
    sql = "SELECT a.*, c.name AS company FROM audit_log a LEFT JOIN companies c ON c.id = a.company_id"
    params: list[Any] = []
    if company_id is not None:
        sql += " WHERE a.company_id = ?"
        params.append(company_id)
    sql += " ORDER BY a.id DESC LIMIT ?"
    params.append(limit)
    return [{**row, "details": json.loads(row["details"])} for row in db.query(sql, params)]
