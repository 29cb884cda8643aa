"""Employees in the browser (issue 24, item 3): admins add, disable, enable, remove, change the
role and reset the password of staff; each user changes their own password. Every change ends
that user's open sessions at the next request, is in the Change Log under the admin who made it,
and needs the admin's permission. Through the real server (waitress) on a real SQLite file."""

from __future__ import annotations

import re
from html import unescape

import requests
from support import fetch_rows
from web_support import PASSWORD, csrf_token, signed_in

from host.records import audit, users
from host.store.db import connect

NEW_PASSWORD = "a brand new long passphrase"


def _main(html: str) -> str:
    return unescape(html.split("<main>", 1)[1].split("</main>", 1)[0])


def _without_token(html: str) -> str:
    return re.sub(r'name="csrf_token" type="hidden" value="[^"]+"', "", html)


def _sign_in(web, name: str, password: str) -> requests.Response:
    http = requests.Session()
    page = http.get(f"{web.url}/login", timeout=10)
    return http.post(
        f"{web.url}/login",
        data={"csrf_token": csrf_token(page.text), "name": name, "password": password},
        allow_redirects=False,
        timeout=10,
    )


def _signed_in_still(web, http: requests.Session) -> bool:
    """The session opens a page (and is not sent to sign in)."""
    answer = http.get(f"{web.url}/companies", allow_redirects=False, timeout=10)
    assert answer.status_code in (200, 302), answer.status_code
    return answer.status_code == 200


def _user_id(db_target, name: str) -> int:
    db = connect(db_target)
    try:
        return users.get_user_by_name(db, name).id
    finally:
        db.close()


def _rows(db_target, sql: str) -> list[tuple]:
    return fetch_rows(db_target, sql)


def _log(db_target) -> list[tuple[str, str, str | None]]:
    db = connect(db_target)
    try:
        return [(e["actor"], e["action"], e["target"]) for e in reversed(audit.entries(db))]
    finally:
        db.close()


def _post(web, http, path: str, token: str, **data: str) -> requests.Response:
    return http.post(f"{web.url}{path}", data={"csrf_token": token, **data}, timeout=10)


def test_an_admin_adds_an_employee_who_then_signs_in_with_the_password_typed_twice(web, db_target):
    http, token = signed_in(web, "ann")
    form = {"name": "zoe", "role": "support", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    page = _main(_post(web, http, "/users/add", token, **form).text)
    assert "Employee zoe added (support)" in page and "cartplugin" not in page
    assert _sign_in(web, "zoe", NEW_PASSWORD).status_code == 302
    assert ("ann", "employee added", "zoe") in _log(db_target)
    assert NEW_PASSWORD not in str(_rows(db_target, "SELECT * FROM audit_log"))


def test_adding_an_employee_with_bad_input_says_one_line_and_adds_nobody(web, db_target):
    http, token = signed_in(web, "ann")
    before = _rows(db_target, "SELECT * FROM users ORDER BY id")
    cases = [
        ({"name": "zoe", "role": "support", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD + "x"},
         "The two passwords differ."),
        ({"name": "zoe", "role": "support", "password": "short", "confirm": "short"},
         "A password has at least 10 characters."),
        ({"name": "sue", "role": "support", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
         "User 'sue' already exists."),
        ({"name": "zoe", "role": "owner", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, "Not a valid choice"),
        ({"name": "", "role": "support", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}, "Type a user name."),
        ({"name": "two words", "role": "support", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
         "1 to 64 printable characters without spaces"),
    ]  # fmt: skip
    for form, said in cases:
        answer = _post(web, http, "/users/add", token, **form)
        assert answer.status_code == 422, form
        page = _main(answer.text)
        assert said in page, (form, page)
        assert NEW_PASSWORD not in answer.text  # a password typed is never sent back
    assert _rows(db_target, "SELECT * FROM users ORDER BY id") == before
    assert not [entry for entry in _log(db_target) if entry[1] == "employee added"]


def test_a_disabled_employee_is_signed_out_at_the_next_request_and_cannot_sign_in_until_enabled(web, db_target):
    walt, walt_token = signed_in(web, "walt")
    assert _signed_in_still(web, walt)
    http, token = signed_in(web, "ann")
    walt_id = _user_id(db_target, "walt")
    page = _main(_post(web, http, f"/users/{walt_id}/disable", token).text)
    assert "walt is disabled" in page
    assert re.search(r'data-name="walt" class="disabled">.*?<td class="status">Disabled</td>', page, re.S)
    assert not _signed_in_still(web, walt)
    refused = walt.post(f"{web.url}/logout", data={"csrf_token": walt_token}, allow_redirects=False, timeout=10)
    assert refused.status_code == 401
    # the same answer as a wrong password: the page never tells that the account exists, disabled
    disabled = _sign_in(web, "walt", PASSWORD)
    wrong = _sign_in(web, "walt", "not the password at all")
    assert disabled.status_code == wrong.status_code == 401
    assert _without_token(_main(disabled.text)) == _without_token(_main(wrong.text))
    assert "Wrong user name or password." in disabled.text and "disabled" not in _main(disabled.text).lower()
    page = _main(_post(web, http, f"/users/{walt_id}/enable", token).text)
    assert "walt is enabled" in page
    assert _sign_in(web, "walt", PASSWORD).status_code == 302
    assert [e for e in _log(db_target) if e[2] == "walt"] == [
        ("ann", "employee disabled", "walt"),
        ("ann", "employee enabled", "walt"),
    ]


def test_a_removed_employee_is_signed_out_and_gone_but_nobody_removes_themselves_or_the_last_admin(web, db_target):
    sue, _ = signed_in(web, "sue")
    http, token = signed_in(web, "ann")
    sue_id, ann_id = _user_id(db_target, "sue"), _user_id(db_target, "ann")
    confirm = http.get(f"{web.url}/users/{sue_id}/remove", timeout=10)
    assert confirm.status_code == 200 and "Remove sue?" in confirm.text
    assert _signed_in_still(web, sue)  # asking is not removing
    page = _main(_post(web, http, f"/users/{sue_id}/remove", token).text)
    assert "sue is removed" in page and 'data-name="sue"' not in page
    assert not _signed_in_still(web, sue)
    assert _sign_in(web, "sue", PASSWORD).status_code == 401
    assert ("ann", "employee removed", "sue") in _log(db_target)
    before = _rows(db_target, "SELECT * FROM users ORDER BY id")
    page = _main(_post(web, http, f"/users/{ann_id}/remove", token).text)
    assert "You cannot remove yourself; another admin can." in page
    assert _rows(db_target, "SELECT * FROM users ORDER BY id") == before
    assert _post(web, http, f"/users/{2**40}/remove", token).status_code == 404


def test_the_last_admin_who_can_sign_in_is_never_disabled_demoted_or_removed(db_target, web):
    db = connect(db_target)
    users.add_user(db, "adam", "admin", PASSWORD)
    db.close()
    adam, adam_token = signed_in(web, "adam")
    http, token = signed_in(web, "ann")
    adam_id, ann_id = _user_id(db_target, "adam"), _user_id(db_target, "ann")
    assert "adam is now support" in _main(_post(web, http, f"/users/{adam_id}/role", token, role="support").text)
    assert not _signed_in_still(web, adam)
    # nobody else is admin: ann stays, whoever asks (here a second admin made for the purpose)
    before = _rows(db_target, "SELECT id, role, disabled, session_version FROM users ORDER BY id")
    db = connect(db_target)
    from host.records import employees

    for change in (
        lambda: employees.set_role(db, "adam", "ann", "support"),
        lambda: employees.set_disabled(db, "adam", "ann", True),
        lambda: employees.remove(db, "adam", "ann"),
    ):
        try:
            change()
        except Exception as exc:  # noqa: BLE001 - the host's one line
            assert "'ann' is the last admin who can sign in: add another admin" in str(exc)
        else:
            raise AssertionError("the last admin was changed")
    db.close()
    assert _rows(db_target, "SELECT id, role, disabled, session_version FROM users ORDER BY id") == before
    page = _main(_post(web, http, f"/users/{ann_id}/role", token, role="support").text)
    assert "You cannot change the role of yourself; another admin can." in page
    page = _main(_post(web, http, f"/users/{ann_id}/disable", token).text)
    assert "You cannot disable yourself; another admin can." in page
    assert _rows(db_target, "SELECT id, role, disabled, session_version FROM users ORDER BY id") == before
    assert _signed_in_still(web, http)


def test_a_role_change_ends_the_open_session_and_the_next_one_has_the_new_role(web, db_target, run, company):
    run("import-orders", company)
    order_id = run.json("orders", "list")[0]["id"]
    sue, sue_token = signed_in(web, "sue")
    order_page = _main(sue.get(f"{web.url}/orders/{order_id}", timeout=10).text)
    assert "Only admin and warehouse may ship items." in order_page and "<h3>Ship Items</h3>" not in order_page
    http, token = signed_in(web, "ann")
    sue_id = _user_id(db_target, "sue")
    page = _main(_post(web, http, f"/users/{sue_id}/role", token, role="warehouse").text)
    assert "sue is now warehouse; their sessions ended." in page
    assert not _signed_in_still(web, sue)
    answer = sue.post(f"{web.url}/companies", data={"csrf_token": sue_token, "name": "Sneaky Co"}, timeout=10)
    assert answer.status_code == 401
    assert _rows(db_target, "SELECT name FROM companies WHERE name = 'Sneaky Co'") == []
    sue, _ = signed_in(web, "sue")
    order_page = _main(sue.get(f"{web.url}/orders/{order_id}", timeout=10).text)
    assert "<h3>Ship Items</h3>" in order_page and "Only admin and warehouse" not in order_page
    assert ("ann", "employee role changed", "sue") in _log(db_target)
    # a role that is not one, and the same role again, change nothing
    before = _rows(db_target, "SELECT role, session_version FROM users WHERE name = 'sue'")
    assert "Unknown role 'owner'" in _main(_post(web, http, f"/users/{sue_id}/role", token, role="owner").text)
    assert "'sue' is already warehouse" in _main(
        _post(web, http, f"/users/{sue_id}/role", token, role="warehouse").text
    )
    assert _rows(db_target, "SELECT role, session_version FROM users WHERE name = 'sue'") == before


def test_an_admin_resets_a_password_which_ends_the_employee_s_sessions(web, db_target):
    walt, _ = signed_in(web, "walt")
    http, token = signed_in(web, "ann")
    walt_id = _user_id(db_target, "walt")
    assert "Reset Password of walt" in http.get(f"{web.url}/users/{walt_id}/password", timeout=10).text
    bad = _post(web, http, f"/users/{walt_id}/password", token, password=NEW_PASSWORD, confirm="something else")
    assert bad.status_code == 422 and "The two passwords differ." in bad.text
    assert _signed_in_still(web, walt)
    page = _main(
        _post(web, http, f"/users/{walt_id}/password", token, password=NEW_PASSWORD, confirm=NEW_PASSWORD).text
    )
    assert "Password of walt reset" in page
    assert not _signed_in_still(web, walt)
    assert _sign_in(web, "walt", PASSWORD).status_code == 401
    assert _sign_in(web, "walt", NEW_PASSWORD).status_code == 302
    assert ("ann", "employee password reset", "walt") in _log(db_target)
    # her own goes through My Password, which asks for the current one
    own = http.get(f"{web.url}/users/{_user_id(db_target, 'ann')}/password", allow_redirects=False, timeout=10)
    assert own.status_code == 302 and own.headers["Location"].endswith("/account/password")


def test_each_user_changes_their_own_password_and_stays_signed_in_while_their_other_sessions_end(web, db_target):
    here, token = signed_in(web, "rita")
    elsewhere, _ = signed_in(web, "rita")
    form = {"current": "not my password", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    wrong = _post(web, here, "/account/password", token, **form)
    assert wrong.status_code == 422 and "The current password is not right." in wrong.text
    twice = _post(web, here, "/account/password", token, current=PASSWORD, password=NEW_PASSWORD, confirm="other")
    assert twice.status_code == 422 and "The two passwords differ." in twice.text
    short = _post(web, here, "/account/password", token, current=PASSWORD, password="short", confirm="short")
    assert short.status_code == 422 and "A password has at least 10 characters." in short.text
    assert _signed_in_still(web, elsewhere) and _sign_in(web, "rita", PASSWORD).status_code == 302
    done = _post(web, here, "/account/password", token, current=PASSWORD, password=NEW_PASSWORD, confirm=NEW_PASSWORD)
    assert done.status_code == 200 and "Password changed. You stay signed in here" in done.text
    assert _signed_in_still(web, here)
    assert not _signed_in_still(web, elsewhere)
    assert _sign_in(web, "rita", PASSWORD).status_code == 401
    assert _sign_in(web, "rita", NEW_PASSWORD).status_code == 302
    assert ("rita", "own password changed", "rita") in _log(db_target)


def test_only_admins_manage_employees_and_a_refused_change_changes_nothing(web, db_target):
    walt_id = _user_id(db_target, "walt")
    for name in ("sue", "walt", "rita"):
        http, token = signed_in(web, name)
        before = _rows(db_target, "SELECT id, name, role, disabled, session_version FROM users ORDER BY id")
        for path, data in (
            ("/users/add", {"name": "zoe", "role": "admin", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}),
            (f"/users/{walt_id}/role", {"role": "admin"}),
            (f"/users/{walt_id}/disable", {}),
            (f"/users/{walt_id}/enable", {}),
            (f"/users/{walt_id}/remove", {}),
            (f"/users/{walt_id}/password", {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}),
        ):
            assert _post(web, http, path, token, **data).status_code == 403, (name, path)
        assert http.get(f"{web.url}/users/{walt_id}/password", timeout=10).status_code == 403
        assert _rows(db_target, "SELECT id, name, role, disabled, session_version FROM users ORDER BY id") == before
        assert "My Password" in http.get(f"{web.url}/account/password", timeout=10).text


def test_the_employees_page_says_permissions_in_words_and_has_no_command(web):
    http, _ = signed_in(web, "ann")
    page = _main(http.get(f"{web.url}/users", timeout=10).text)
    for words in ("Cancel Queued Jobs", "Change company settings", "Ship Items", "Manage employees"):
        assert words in page
    assert "Nothing (looks only)" in page
    assert not re.search(r"\b(cancel_job|company_settings|import_orders|test_settings)\b", page)
    assert "cartplugin" not in page
    for button in ("Add Employee", "Change Role", "Disable", "Reset Password", "Remove"):
        assert button in page


def test_a_page_that_hides_an_action_says_which_roles_have_it(web, run, company):
    walt, _ = signed_in(web, "walt")
    page = _main(walt.get(f"{web.url}/companies/1/cart-general", timeout=10).text)
    assert "Only admin and support may change these settings." in page and "?edit=1" not in page
    page = _main(walt.get(f"{web.url}/companies/1/website-general-settings", timeout=10).text)
    assert "Only admin and support may change these settings." in page
    sue, _ = signed_in(web, "sue")
    assert "Only admin and support" not in _main(sue.get(f"{web.url}/companies/1/cart-general", timeout=10).text)
    run("import-orders", company)
    order_id = run.json("orders", "list")[0]["id"]
    rita, _ = signed_in(web, "rita")
    page = _main(rita.get(f"{web.url}/orders/{order_id}", timeout=10).text)
    assert "Only admin and warehouse may ship items." in page
    assert "Only admin and warehouse may change the status." in page
    page = _main(walt.get(f"{web.url}/orders/{order_id}", timeout=10).text)
    assert "Only admin" not in page and "<h3>Ship Items</h3>" in page
