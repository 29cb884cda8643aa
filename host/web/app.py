"""The Flask application: one database connection per request (on PostgreSQL borrowed from a
bounded pool, ``web_db_pool_size``), error pages without tracebacks, security headers on every
answer."""

from __future__ import annotations

import os
import secrets
import weakref
from datetime import timedelta
from pathlib import Path

from flask import Flask, g, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.routing import IntegerConverter

from host import config
from host.channel import plugins
from host.errors import NotFound
from host.records import secrets as sealing
from host.store.api import unavailable
from host.store.db import Connections, as_target, connect, write
from host.web import auth, filters
from host.web.routes import admin, companies, employees, jobs, orders, shipments

#: the longest a session lasts after sign-in, and without a request (web_session_hours, web_idle_minutes)
SESSION_HOURS = 8
SESSION_IDLE_MINUTES = 60


def _secret_key(path: Path | str) -> str:
    """The session signing key, kept in the database (sessions survive a restart) and sealed with
    the host's key file like the channel secrets, so a copy of the database cannot forge a session."""
    db = connect(path)
    try:
        with write(db):
            row = db.execute("SELECT value FROM web_secrets WHERE name = 'session_key'").fetchone()
            if row is not None and sealing.is_sealed(row[0]):
                return sealing.unseal(db, row[0])
            # none yet, or one an older version stored in clear: a new key (open sessions end)
            key = secrets.token_hex(32)
            db.execute(
                "INSERT INTO web_secrets (name, value) VALUES ('session_key', :value) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                {"value": sealing.seal(db, key)},
            )
            return key
    finally:
        db.close()


class RowId(IntegerConverter):
    """An id in a URL: a whole number from 0 to SQLite's (and PostgreSQL's BIGINT) largest."""

    def __init__(self, url_map, *args, **kwargs) -> None:
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(url_map, *args, **kwargs)


def create_app(
    db_path: str | os.PathLike,
    *,
    secure_cookies: bool = False,
    session_hours: float = SESSION_HOURS,
    idle_minutes: float = SESSION_IDLE_MINUTES,
    pool_size: int | None = None,
) -> Flask:
    """The web admin on ``db_path``; ``pool_size``: the most connections it holds to PostgreSQL
    at once (default: the ``web_db_pool_size`` setting)."""
    path = as_target(db_path)
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=_secret_key(path),
        DB_PATH=str(path),
        SESSION_COOKIE_NAME="cartplugin_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=session_hours),
        WTF_CSRF_TIME_LIMIT=int(session_hours * 3600),
        SESSION_HOURS=session_hours,
        SESSION_IDLE_MINUTES=idle_minutes,
        WTF_CSRF_SSL_STRICT=secure_cookies,
        MAX_CONTENT_LENGTH=256 * 1024,
        PROPAGATE_EXCEPTIONS=False,
        TRAP_HTTP_EXCEPTIONS=False,
    )
    # every <int:...> in a route is a row id: one past SQLite's largest integer is "not found",
    # not an OverflowError from the database (a 500)
    app.url_map.converters["int"] = RowId
    connections = Connections(path, pool_size or config.current().web_db_pool_size)
    app.extensions["cartplugin.connections"] = connections
    weakref.finalize(app, connections.close)  # an app dropped (tests) closes its pool; at exit too
    CSRFProtect(app)
    plugins.load_plugins()
    auth.init_app(app)
    filters.init_app(app)
    for module in (companies, jobs, orders, shipments, admin, employees):
        app.register_blueprint(module.bp)

    @app.teardown_appcontext
    def _close(_exc: BaseException | None) -> None:
        db = g.pop("db", None)
        if db is not None:
            db.close()

    @app.after_request
    def _headers(response):
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
        )
        if secure_cookies:  # served over HTTPS only (a TLS proxy in front): browsers never try plain HTTP again
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        if not request.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError):
        return _error(
            400,
            "The form could not be accepted",
            "Its security token is missing or expired: reload the page and try again.",
        )

    @app.errorhandler(NotFound)
    def _not_found(exc: NotFound):
        return _error(404, "Not found", str(exc))

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):
        titles = {403: "Not allowed", 404: "Not found", 405: "Not allowed here"}
        messages = {403: "Your role does not allow this. Ask an admin if you need it."}
        code = exc.code or 500
        return _error(code, titles.get(code, exc.name), messages.get(code, exc.description or ""))

    @app.errorhandler(Exception)
    def _internal(exc: Exception):
        if unavailable(exc):  # restarting, or a write kept waiting past lock_timeout: nothing was saved
            app.logger.warning("database unavailable on %s %s: %s", request.method, request.path, exc)
            page, code = _error(503, "The database is busy", "Nothing was saved. Try again in a moment.")
            return page, code, {"Retry-After": "5"}
        app.logger.error("internal error on %s %s: %s", request.method, request.path, type(exc).__name__)
        return _error(
            500, "Something went wrong", "The error was logged. Try again, or tell an admin what you were doing."
        )

    return app


def _error(code: int, title: str, message: str) -> tuple[str, int]:
    return render_template("error.html", code=code, title=title, message=message), code
