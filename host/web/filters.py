"""Template helpers: dates as staff read them, job summaries in words."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Flask, request

from host.channel import plugins
from host.jobs import queue as jobs
from host.records import money, orders


def when(value: str | None) -> str:
    """``2026-11-27T01:02:03.456789Z`` as ``2026-11-27 01:02:03 UTC``."""
    if not value:
        return "-"
    return value[:19].replace("T", " ") + " UTC"


def plugin_name(name: str | None) -> str:
    if not name:
        return "-"
    try:
        return plugins.channel_info(name).display_name
    except Exception:  # an uninstalled plugin still named in old settings
        return name


def summary_text(summary: dict[str, Any] | None) -> str:
    """A job's counts in words (``19 new, 0 updated, 1 unchanged``), its instants as staff read them."""
    return jobs.summary_words(summary, when=when)


def progress_text(job: dict[str, Any]) -> str:
    """What a download job has read so far (pages, orders), or what it read once it ended."""
    return jobs.progress_words(job.get("progress"), running=job.get("status") in jobs.PENDING)


def kind_name(kind: str | None) -> str:
    return jobs.kind_name(kind) if kind else "-"


#: Change Log details that are a yes or no, as what happened
_OUTCOMES = {"created": ("Created", "Already queued"), "ok": ("Connection established", "Failed")}
#: Change Log detail keys as the screens name them (Cart General fields are named by their plugin)
_LABELS = {
    "store_plugin": "Store Plugin",
    "allow_order_download": "Allow Order Download",
    "allow_tracking_upload": "Allow Tracking Upload",
    "carrier": "Carrier",
    "tracking": "Tracking Number",
    "cancel": "Cancelled on the channel",
    "answer": "Channel's answer",
    "start_date": "Start Date",
}


def _label(key: str) -> str:
    if key in _LABELS:
        return _LABELS[key]
    for info in plugins.channels().values():
        field = info.settings_model.model_fields.get(key)
        if field is not None and field.title:
            return field.title
    return key.replace("_", " ").capitalize()


def _detail_value(key: str, value: Any) -> str:
    if key == "store_plugin":
        return plugin_name(value) if value else "(none)"
    if key == "start_date":
        return when(value)
    if isinstance(value, bool):
        return "On" if value else "Off"
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "none"
    return "(none)" if value is None or value == "" else str(value)


def change_details(details: dict[str, Any] | None) -> list[str]:
    """A Change Log entry's details as staff read them: ``Created``, ``Allow Order Download: Off → On``."""
    shown = []
    for key, value in (details or {}).items():
        if key in _OUTCOMES and isinstance(value, bool):
            shown.append(_OUTCOMES[key][0 if value else 1])
        elif isinstance(value, dict) and "to" in value:
            shown.append(f"{_label(key)}: {_detail_value(key, value.get('from'))} → {_detail_value(key, value['to'])}")
        else:
            shown.append(f"{_label(key)}: {_detail_value(key, value)}")
    return shown


def with_args(**changes: Any) -> str:
    """This page's query string with some arguments changed (paging and sorting links)."""
    args = request.args.to_dict()
    args.update({k: v for k, v in changes.items() if v is not None})
    return "?" + urlencode({k: v for k, v in args.items() if v not in ("", None)})


def nonzero(stored: str | None) -> bool:
    """True for a stored amount other than zero (a discount worth a row of its own)."""
    return not money.is_zero(stored)


def line_amount(line: dict[str, Any]) -> str:
    """The line's total: the channel's, else unit price x quantity."""
    return orders.line_amount(line) or "-"


def init_app(app: Flask) -> None:
    app.jinja_env.filters.update(
        when=when,
        plugin_name=plugin_name,
        summary_text=summary_text,
        nonzero=nonzero,
        line_amount=line_amount,
        kind_name=kind_name,
        progress_text=progress_text,
        change_details=change_details,
        priority_name=jobs.priority_name,
    )
    app.jinja_env.globals.update(with_args=with_args)
