"""Template helpers: dates as staff read them, job summaries in words."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Flask, request

from .. import money, orders, plugins


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
    if not summary:
        return ""
    shown = {k: v for k, v in summary.items() if not isinstance(v, (dict, list))}
    waiting = shown.pop("waiting_until", None)
    parts = [f"{k.replace('_', ' ')} {v}" for k, v in shown.items() if not (waiting and k == "more")]
    if waiting:
        # the channel's rate limit ended the job early: when the next run goes on, in the time staff read
        parts.append(f"waiting for the channel's rate limit until {when(waiting)}")
    return ", ".join(parts)


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
        when=when, plugin_name=plugin_name, summary_text=summary_text, nonzero=nonzero, line_amount=line_amount
    )
    app.jinja_env.globals.update(with_args=with_args)
