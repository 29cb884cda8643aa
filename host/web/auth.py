"""Sign-in, sessions and the role check every state-changing request goes through.

The session cookie is signed (Flask's itsdangerous), HttpOnly and SameSite=Strict; it carries
the user id, the user's session version (signing out or a password change ends every session
of that user), the sign-in time and the last request's: a session ends after
``SESSION_IDLE_MINUTES`` idle and ``SESSION_HOURS`` after sign-in whatever its use. A POST
reaches its view only when the view declares a permission (``@requires``) that the user's role
has; a view that declares none is refused, so a forgotten check fails closed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, Flask, abort, current_app, g, redirect, render_template, request, session, url_for

from host.records import users
from host.web import forms, reach
from host.web.context import db, notice

bp = Blueprint("auth", __name__)
OPEN_ENDPOINTS = {"auth.login", "static"}
#: POSTs that need a signed-in user but no permission
ANY_USER_POSTS = {"auth.logout", "employees.own_password"}


def requires(permission: str) -> Callable:
    def decorate(view: Callable) -> Callable:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not g.user.can(permission):
                abort(403)
            return view(*args, **kwargs)

        wrapper.permission = permission  # type: ignore[attr-defined]
        return wrapper

    return decorate


def start_session(store: Any, user: users.User) -> None:
    """Sign ``user`` in on this browser: the session ends at sign-out (on every device), after
    ``SESSION_IDLE_MINUTES`` without a request, and ``SESSION_HOURS`` after sign-in at the latest."""
    store.clear()
    store.permanent = True
    now = int(time.time())
    store["uid"], store["ver"], store["iat"], store["seen"] = user.id, user.session_version, now, now


def _load_user() -> users.User | None:
    uid, version = session.get("uid"), session.get("ver")
    if not isinstance(uid, int):
        return None
    started, seen, now = session.get("iat"), session.get("seen"), int(time.time())
    if not isinstance(started, int) or not isinstance(seen, int):
        return None  # a cookie from before these limits: sign in again
    if now - started > current_app.config["SESSION_HOURS"] * 3600:
        return None
    if now - seen > current_app.config["SESSION_IDLE_MINUTES"] * 60:
        return None
    user = users.get_user(db(), uid)
    if user is None or user.disabled or user.session_version != version:
        return None
    if now - seen >= 30:  # a request renews the idle time, never the session's end
        session["seen"] = now
    return user


def _guard() -> Any:
    g.user = None
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    g.user = _load_user()
    if g.user is None:
        if request.method == "GET":
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        abort(401 if request.endpoint else 404)
    reach.check()  # before the role's check: another company's id is "not found" to every role
    if request.method not in ("GET", "HEAD", "OPTIONS") and request.endpoint not in ANY_USER_POSTS:
        view = current_app.view_functions.get(request.endpoint or "")
        permission = getattr(view, "permission", None)
        if permission is None or not g.user.can(permission):
            abort(403)
    return None


def _safe_next(target: str | None) -> str:
    if not target:
        return url_for("companies.index")
    # only a path of this site: it starts with one "/" (so it has no scheme and no other host);
    # browsers read a backslash as a slash ("/\\evil.example" is another site) and drop control
    # characters ("/\t/evil.example" is "//evil.example"), so a target with either is refused too
    unsafe = "\\" in target or any(ord(c) < 32 or ord(c) == 127 for c in target)
    if unsafe or not target.startswith("/") or target.startswith("//"):
        return url_for("companies.index")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = forms.LoginForm()
    error = None
    if form.validate_on_submit():
        try:
            user = users.authenticate(
                db(), form.name.data or "", form.password.data or "", address=request.remote_addr or ""
            )
        except users.LoginThrottled as exc:
            user, error = None, str(exc)
        else:
            error = None if user else "Wrong user name or password."
        if user is not None:
            start_session(session, user)
            return redirect(_safe_next(request.args.get("next")))
    return render_template("login.html", form=form, error=error), (401 if error else 200)


@bp.route("/logout", methods=["POST"])
def logout():
    if g.user is not None:  # every session of this user ends, a copied cookie too
        users.end_sessions(db(), g.user.id)
    session.clear()
    notice("Signed out.")
    return redirect(url_for("auth.login"))


def init_app(app: Flask) -> None:
    app.before_request(_guard)
    app.register_blueprint(bp)

    @app.context_processor
    def _user() -> dict[str, Any]:
        return {"user": g.get("user"), "logout_form": forms.ActionForm()}
