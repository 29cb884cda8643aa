"""What every route needs: this request's database connection and the signed-in user."""

from __future__ import annotations

import sqlite_utils
from flask import current_app, flash, g

from ..db import connect


def db() -> sqlite_utils.Database:
    """This request's connection (opened on first use, closed when the request ends)."""
    if "db" not in g:
        g.db = connect(current_app.config["DB_PATH"], migrate=False)
    return g.db


def actor() -> str:
    return g.user.name


def notice(text: str, *, error: bool = False, href: str | None = None, link: str | None = None) -> None:
    """Show ``text`` at the top of the next page (``base.html``), as an error or with a link."""
    message: dict[str, str | bool] = {"text": text, "error": error}
    if href is not None:
        message.update(href=href, link=link or href)
    # Flask annotates the message as str, but flash() keeps any JSON value in the session
    flash(message)  # type: ignore[arg-type]
