"""What every route needs: this request's database connection, the signed-in user and the
companies that user reaches (``access``: pass it to every query of ``host.records.queries``)."""

from __future__ import annotations

from flask import current_app, flash, g

from host.records import access as access_module
from host.store.api import Store


def db() -> Store:
    """This request's connection (opened, or borrowed from the app's pool, on first use; closed
    or given back when the request ends)."""
    if "db" not in g:
        g.db = current_app.extensions["cartplugin.connections"].open()
    return g.db


def access() -> access_module.Access:
    """The companies the signed-in user reaches, read once a request."""
    if "access" not in g:
        g.access = access_module.for_user(db(), g.user)
    return g.access


def actor() -> str:
    return g.user.name


def notice(text: str, *, error: bool = False, href: str | None = None, link: str | None = None) -> None:
    """Show ``text`` at the top of the next page (``base.html``), as an error or with a link."""
    message: dict[str, str | bool] = {"text": text, "error": error}
    if href is not None:
        message.update(href=href, link=link or href)
    # Flask annotates the message as str, but flash() keeps any JSON value in the session
    flash(message)  # type: ignore[arg-type]
