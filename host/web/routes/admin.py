"""Attention, Plugins and the audit log (Employees: routes/employees.py)."""

from __future__ import annotations

import typing
from typing import Any

from flask import Blueprint, abort, g, render_template, request
from pydantic import SecretStr

from host.channel import plugins
from host.records import audit, queries
from host.web import forms
from host.web.context import access, db, notice
from plugin_spec import CartSettings

bp = Blueprint("admin", __name__)


@bp.route("/attention")
def attention():
    return render_template(
        "attention.html", cancelled=queries.attention_orders(db(), access()),
        failed=queries.failed_uploads(db(), access()), action_form=forms.ActionForm(),
    )  # fmt: skip


def _fields(model: type[CartSettings]) -> list[dict[str, Any]]:
    return [
        {
            "key": key,
            "label": info.title or key,
            "help": info.description or "",
            "required": info.is_required(),
            "secret": info.annotation is SecretStr or SecretStr in typing.get_args(info.annotation),
            "default": None if info.is_required() or info.default is None else str(info.default),
        }
        for key, info in model.model_fields.items()
    ]


@bp.route("/plugins")
def plugin_list():
    rows = plugins.plugin_listing()
    channels = plugins.channels()
    for row in rows:
        info = channels.get(row.get("channel") or "")
        row["fields"] = _fields(info.settings_model) if info else []
    return render_template("plugins.html", rows=rows)


def _who(who: str | None) -> dict[str, object]:
    """The Change Log's "Who" filter as its template shows it."""
    return {"who": who, "who_choices": audit.SOURCE_WORDS}


@bp.route("/audit")
def audit_log():
    if not g.user.can("audit"):
        abort(403)
    wanted, problems = audit.Filters.parse(request.args)
    for problem in problems:
        notice(problem, error=True)
    return render_template(
        "audit.html",
        entries=audit.entries(db(), filters=wanted, limit=500),
        wanted=wanted,
        kinds=audit.kinds(db()),
        companies=[(c["id"], c["name"]) for c in queries.company_choices(db(), access())],
        **_who(wanted.source),
    )
