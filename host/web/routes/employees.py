"""Employees (Sellercloud's Manage Employees) and My Password.

Admins add a user, change a role, disable, enable, remove and reset a password; every signed-in
user changes their own password. The rules are host/records/employees.py's; a refused change shows its
one line and changes nothing.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, g, redirect, render_template, request, session, url_for
from flask_wtf import FlaskForm
from wtforms import PasswordField, SelectField, StringField, SubmitField
from wtforms.validators import DataRequired, EqualTo, Length

from host.errors import HostError, NotFound
from host.records import access as access_module
from host.records import employees, users
from host.web import forms
from host.web.auth import requires
from host.web.context import actor, db, notice

bp = Blueprint("employees", __name__)

_PASSWORD = [DataRequired("Type a password."), Length(max=1024)]
_TWICE = [DataRequired("Type the password again."), EqualTo("password", "The two passwords differ.")]


def _role_choices() -> list[Any]:
    return forms.choices([(role, role) for role in users.ROLES])


class AddEmployeeForm(FlaskForm):
    name = StringField("User Name", validators=[DataRequired("Type a user name."), Length(max=64)])
    role = SelectField("Role", choices=list(users.ROLES))
    password = PasswordField("Initial Password", validators=_PASSWORD)
    confirm = PasswordField("Password Again", validators=_TWICE)
    submit = SubmitField("Add Employee")


class ResetPasswordForm(FlaskForm):
    password = PasswordField("New Password", validators=_PASSWORD)
    confirm = PasswordField("New Password Again", validators=_TWICE)
    submit = SubmitField("Reset Password")


class OwnPasswordForm(FlaskForm):
    current = PasswordField("Current Password", validators=[DataRequired("Type your current password.")])
    password = PasswordField("New Password", validators=_PASSWORD)
    confirm = PasswordField("New Password Again", validators=_TWICE)
    submit = SubmitField("Change Password")


def _line(exc: HostError) -> str:
    """The host's line as a sentence of the page."""
    text = str(exc)
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _first_error(form: FlaskForm) -> str:
    for errors in form.errors.values():
        for error in errors:
            return str(error)
    return "Fill in the form."


def _employee(user_id: int) -> users.User:
    user = users.get_user(db(), user_id)
    if user is None:
        raise NotFound(f"no employee {user_id}")
    return user


def _page(add_form: AddEmployeeForm | None = None, error: str | None = None, status: int = 200) -> Any:
    rows = users.list_users(db())
    given = access_module.company_names(db())
    for row in rows:
        row["may"] = employees.permission_words(row["role"])
        row["companies"] = access_module.describe(given.get(row["id"]), row["role"])
    page = render_template(
        "users.html",
        rows=rows,
        add_form=add_form or AddEmployeeForm(formdata=None),
        roles=users.ROLES,
        action_form=forms.ActionForm(),
        error=error,
    )
    return page, status


@bp.route("/users")
@requires("users")
def index():
    return _page()


@bp.route("/users/add", methods=["POST"])
@requires("users")
def add():
    form = AddEmployeeForm()
    if not form.validate_on_submit():
        return _page(form, _first_error(form), 422)
    try:
        user = employees.add(db(), actor(), form.name.data or "", form.role.data or "", form.password.data or "")
    except HostError as exc:
        return _page(form, _line(exc), 422)
    notice(f"Employee {user.name} added ({user.role}). Give them their password; they change it under My Password.")
    return redirect(url_for("employees.index"))


def _change(user_id: int, do: Any, done: str) -> Any:
    """Run one admin action on the employee; its refusal is the page's one line."""
    target = _employee(user_id)
    try:
        do(target)
    except HostError as exc:
        notice(_line(exc), error=True)
    else:
        notice(done.format(name=target.name))
    return redirect(url_for("employees.index"))


@bp.route("/users/<int:user_id>/role", methods=["POST"])
@requires("users")
def set_role(user_id: int):
    role = request.form.get("role") or ""
    return _change(
        user_id,
        lambda target: employees.set_role(db(), actor(), target.name, role),
        "{name} is now " + (role if role in users.ROLES else "?") + "; their sessions ended.",
    )


@bp.route("/users/<int:user_id>/disable", methods=["POST"])
@requires("users")
def disable(user_id: int):
    return _change(
        user_id,
        lambda target: employees.set_disabled(db(), actor(), target.name, True),
        "{name} is disabled: they cannot sign in, and their sessions ended.",
    )


@bp.route("/users/<int:user_id>/enable", methods=["POST"])
@requires("users")
def enable(user_id: int):
    return _change(
        user_id,
        lambda target: employees.set_disabled(db(), actor(), target.name, False),
        "{name} is enabled: they may sign in again.",
    )


@bp.route("/users/<int:user_id>/remove", methods=["GET", "POST"])
@requires("users")
def remove(user_id: int):
    target = _employee(user_id)
    if request.method == "GET":
        return render_template("employee_remove.html", target=target, action_form=forms.ActionForm())
    return _change(
        user_id,
        lambda target: employees.remove(db(), actor(), target.name),
        "{name} is removed; their sessions ended. The Change Log keeps what they did.",
    )


@bp.route("/users/<int:user_id>/password", methods=["GET", "POST"])
@requires("users")
def reset_password(user_id: int):
    target = _employee(user_id)
    if target.id == g.user.id:
        return redirect(url_for("employees.own_password"))
    form = ResetPasswordForm()
    error = None
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                employees.reset_password(db(), actor(), target.name, form.password.data or "")
            except HostError as exc:
                error = _line(exc)
            else:
                notice(f"Password of {target.name} reset; their sessions ended. Give them the new one.")
                return redirect(url_for("employees.index"))
        else:
            error = _first_error(form)
    page = render_template("employee_password.html", form=form, target=target, error=error)
    return page, (422 if error else 200)


@bp.route("/account/password", methods=["GET", "POST"])
def own_password():
    """Any signed-in user (auth.ANY_USER_POSTS): the current password proves it is them."""
    form = OwnPasswordForm()
    error = None
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                changed = employees.change_own_password(db(), g.user, form.current.data or "", form.password.data or "")
            except HostError as exc:
                error = _line(exc)
            else:
                session["ver"] = changed.session_version  # this browser stays signed in, the others end
                notice("Password changed. You stay signed in here; your other sessions ended.")
                return redirect(url_for("employees.own_password"))
        else:
            error = _first_error(form)
    page = render_template("own_password.html", form=form, error=error)
    return page, (422 if error else 200)


@bp.app_context_processor
def _words() -> dict[str, Any]:
    """``who_may('ship', 'ship items')`` on a page that hides an action: who has it."""
    return {"who_may": employees.who_may}
