"""`cartplugin users` keeps the verbs of the Employees page (issue 24, item 3): add, list,
password, disable, enable, remove, role; each says one line, exits non-zero on bad input and
changes nothing then; each change ends the user's sessions and is in the Change Log as
``cli:<unix user>``. Through click's CliRunner on a real SQLite file."""

from __future__ import annotations

import getpass

import pytest
import sqlite_utils

from host.records import audit, users
from host.store.db import connect
from host.store.migrations import migrations

PASSWORD = "correct horse battery staple"


@pytest.fixture
def staff(run, db_target):
    run("companies", "add", "Acme")
    db = connect(db_target)
    for name, role in (("ann", "admin"), ("walt", "warehouse")):
        users.add_user(db, name, role, PASSWORD)
    db.close()


def _user(db_target, name: str) -> users.User:
    db = connect(db_target)
    try:
        return users.get_user_by_name(db, name)
    finally:
        db.close()


def _state(db_target) -> list[tuple]:
    db = connect(db_target)
    try:
        return [tuple(row) for row in db.execute("SELECT id, name, role, disabled, session_version FROM users")]
    finally:
        db.close()


def _log(db_target) -> list[tuple]:
    """The Change Log's entries about employees (the set-up's `companies add` has its own)."""
    db = connect(db_target)
    try:
        entries = reversed(audit.entries(db))
        return [(e["actor"], e["action"], e["target"]) for e in entries if e["action"].startswith("employee")]
    finally:
        db.close()


def test_users_disable_and_enable_end_sessions_and_say_one_line(run, db_target, staff):
    before = _user(db_target, "walt")
    said = run("users", "disable", "walt").output
    assert said == "Disabled 'walt': cannot sign in; open sessions ended\n"
    walt = _user(db_target, "walt")
    assert walt.disabled and walt.session_version == before.session_version + 1
    db = connect(db_target)
    assert users.authenticate(db, "walt", PASSWORD, address="10.0.0.1") is None
    db.close()
    assert "walt  warehouse  disabled" in run("users", "list").output
    assert run("users", "enable", "walt").output == "Enabled 'walt': may sign in again\n"
    db = connect(db_target)
    assert users.authenticate(db, "walt", PASSWORD, address="10.0.0.2") is not None
    db.close()
    me = f"cli:{getpass.getuser()}"
    assert _log(db_target) == [(me, "employee disabled", "walt"), (me, "employee enabled", "walt")]


def test_users_role_and_remove_end_sessions_and_keep_the_last_admin(run, db_target, staff):
    before = _user(db_target, "walt")
    assert run("users", "role", "walt", "support").output == "'walt' is now support; open sessions ended\n"
    walt = _user(db_target, "walt")
    assert walt.role == "support" and walt.session_version == before.session_version + 1
    assert run("users", "remove", "walt").output == "Removed 'walt'; open sessions ended\n"
    assert "walt" not in run("users", "list").output
    me = f"cli:{getpass.getuser()}"
    assert _log(db_target)[-2:] == [(me, "employee role changed", "walt"), (me, "employee removed", "walt")]
    state = _state(db_target)
    for args in (("remove", "ann"), ("disable", "ann"), ("role", "ann", "support")):
        refused = run("users", *args, ok=False)
        assert refused.exit_code == 1, args
        assert refused.output.strip().splitlines() == [
            "Error: 'ann' is the last admin who can sign in: add another admin before you "
            + {"remove": "remove this user", "disable": "disable this user", "role": "change this role"}[args[0]]
        ]
    assert _state(db_target) == state


def test_users_verbs_refuse_bad_input_in_one_line_and_change_nothing(run, db_target, staff):
    state, log = _state(db_target), _log(db_target)
    for args, said in (
        (("disable", "nobody"), "Error: unknown user 'nobody'"),
        (("enable", "walt"), "Error: 'walt' is already enabled"),
        (("role", "walt", "warehouse"), "Error: 'walt' is already warehouse"),
        (("remove", "nobody"), "Error: unknown user 'nobody'"),
        (("password", "nobody"), "Error: unknown user 'nobody'"),
    ):
        result = run("users", *args, ok=False)
        assert result.exit_code == 1 and result.output.strip().splitlines() == [said], args
    bad_role = run("users", "role", "walt", "owner", ok=False)
    assert bad_role.exit_code == 2 and "'owner' is not one of" in bad_role.output
    assert _state(db_target) == state and _log(db_target) == log


def test_users_add_and_password_from_the_cli_are_in_the_change_log(run, db_target, staff):
    from click.testing import CliRunner

    from host.cli.main import cli

    runner = CliRunner()  # the password piped: read once
    added = runner.invoke(
        cli, ["--db", str(db_target), "users", "add", "zoe", "--role", "support"], input=PASSWORD + "\n"
    )
    assert added.exit_code == 0, added.output
    before = _user(db_target, "zoe")
    changed = runner.invoke(cli, ["--db", str(db_target), "users", "password", "zoe"], input="another long password\n")
    assert changed.exit_code == 0, changed.output
    assert _user(db_target, "zoe").session_version == before.session_version + 1
    me = f"cli:{getpass.getuser()}"
    assert _log(db_target) == [(me, "employee added", "zoe"), (me, "employee password reset", "zoe")]
    assert PASSWORD not in str(_log(db_target))


@pytest.mark.sqlite_only("SQLite's legacy migration path; PostgreSQL's: tests/store/test_pg_migrations.py")
def test_an_older_database_gains_the_disabled_flag_and_keeps_its_users_enabled(db_target):
    old = sqlite_utils.Database(db_target)
    migrations.apply(old, stop_before="0016_user_lifecycle")
    old.execute("INSERT INTO users (name, role, password_hash, created_at) VALUES ('old', 'admin', 'x', '2025-01-01')")
    old.conn.commit()
    old.close()
    db = connect(db_target)
    assert db.execute("SELECT name, disabled FROM users").fetchall() == [("old", 0)]
    assert not users.get_user_by_name(db, "old").disabled


def test_no_user_may_take_the_change_log_s_names_of_the_cli_and_the_worker(run, db_target, staff):
    state = _state(db_target)
    for name in ("cli:root", "System"):
        refused = run("users", "add", name, "--role", "admin", ok=False)
        assert refused.exit_code == 1
        assert refused.output.strip().splitlines() == ["Error: a user name cannot contain ':' nor be 'system'"]
    assert _state(db_target) == state
