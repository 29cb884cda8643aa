"""Security of the web admin over real HTTP: roles, CSRF, sign-in, sessions, error pages, bind address."""

from __future__ import annotations

import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from click.testing import CliRunner
from web_support import PASSWORD, csrf_token, signed_in

from host.cli.main import cli
from host.records import users
from host.store.db import connect
from host.web.auth import start_session


def _state_changing_urls(web) -> list[str]:
    """Every URL that accepts a POST, except signing in and out and changing one's own password
    (open to every signed-in user), with ids filled in."""
    urls = []
    for rule in web.app.url_map.iter_rules():
        if "POST" in (rule.methods or ()) and rule.endpoint not in (
            "auth.login",
            "auth.logout",
            "employees.own_password",
        ):
            urls.append(re.sub(r"<int:\w+>", "1", rule.rule))
    return sorted(urls)


def test_a_read_only_user_gets_403_on_every_form_post(web, run):
    run("companies", "add", "Acme Refurb")
    http, token = signed_in(web, "rita")
    urls = _state_changing_urls(web)
    assert len(urls) >= 7
    for url in urls:
        answer = http.post(
            web.url + url,
            data={"csrf_token": token, "name": "X", "status": "Cancelled"},
            allow_redirects=False,
            timeout=10,
        )
        assert answer.status_code == 403, url
        assert "Traceback" not in answer.text
    assert [c["name"] for c in run.json("companies", "list")] == ["Acme Refurb"]


def test_a_read_only_user_may_ask_for_headers_and_options_of_a_page(web, run):
    # HEAD and OPTIONS change nothing: monitors and browsers send them; they need no permission
    run("companies", "add", "Acme Refurb")
    http, _ = signed_in(web, "rita")
    for url in ("/companies", "/orders", "/jobs"):
        assert http.head(web.url + url, allow_redirects=False, timeout=10).status_code == 200, url
        answer = http.options(web.url + url, allow_redirects=False, timeout=10)
        assert answer.status_code == 200 and "GET" in answer.headers["Allow"], url


def test_a_warehouse_user_cannot_change_company_settings_but_support_can(web, run):
    run("companies", "add", "Acme Refurb")
    http, token = signed_in(web, "walt")
    form = {"csrf_token": token, "store_type": "Custom", "store_plugin": "backmarket_pro", "allow_order_download": "y"}
    assert (
        http.post(
            f"{web.url}/companies/1/website-general-settings", data=form, allow_redirects=False, timeout=10
        ).status_code
        == 403
    )
    http, token = signed_in(web, "sue")
    form["csrf_token"] = token
    assert (
        http.post(
            f"{web.url}/companies/1/website-general-settings", data=form, allow_redirects=False, timeout=10
        ).status_code
        == 302
    )
    assert run.json("website-settings", "Acme Refurb")["allow_order_download"] is True


def test_a_post_without_its_csrf_token_is_refused_and_changes_nothing(web, run):
    http, token = signed_in(web, "sue")
    answer = http.post(f"{web.url}/companies", data={"name": "Forged Ltd"}, allow_redirects=False, timeout=10)
    assert answer.status_code == 400 and "security token" in answer.text
    answer = http.post(
        f"{web.url}/companies",
        data={"name": "Forged Ltd", "csrf_token": token + "x"},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 400
    assert (
        http.post(
            f"{web.url}/companies", data={"name": "Real Ltd", "csrf_token": token}, allow_redirects=False, timeout=10
        ).status_code
        == 302
    )
    assert [c["name"] for c in run.json("companies", "list")] == ["Real Ltd"]


def test_a_logged_out_visit_redirects_to_login_and_a_logged_out_post_is_refused(web, run):
    for path in ("/companies", "/orders?page=2", "/orders?search=BOX", "/jobs/1", "/plugins", "/audit"):
        answer = requests.get(web.url + path, allow_redirects=False, timeout=10)
        assert answer.status_code == 302
        # after signing in, staff land on the page they asked for, exactly (no stray "?")
        location = urlsplit(answer.headers["Location"])
        assert location.path == "/login" and parse_qs(location.query) == {"next": [path]}, path
    # the POST carries a valid token of its signed-out session (the sign-in page gives one): the
    # CSRF check lets it through, so only the sign-in check can answer, and it must answer 401
    http = requests.Session()
    token = csrf_token(http.get(f"{web.url}/login", timeout=10).text)
    answer = http.post(
        f"{web.url}/companies", data={"csrf_token": token, "name": "X"}, allow_redirects=False, timeout=10
    )
    assert answer.status_code == 401 and "security token" not in answer.text
    # a signed-out POST to an address the admin does not have is "not found", not "sign in"
    answer = http.post(f"{web.url}/no-such-page", data={"csrf_token": token}, allow_redirects=False, timeout=10)
    assert answer.status_code == 404
    assert run.json("companies", "list") == []


def test_the_session_cookie_is_signed_http_only_and_same_site(web):
    http = requests.Session()
    page = http.get(f"{web.url}/login", timeout=10)
    answer = http.post(
        f"{web.url}/login",
        data={"csrf_token": csrf_token(page.text), "name": "sue", "password": PASSWORD},
        allow_redirects=False,
        timeout=10,
    )
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    # a cookie edited by hand (another user id) is not accepted
    value = http.cookies["cartplugin_session"]
    forged = requests.get(
        f"{web.url}/companies", cookies={"cartplugin_session": value[:-3] + "AAA"}, allow_redirects=False, timeout=10
    )
    assert forged.status_code == 302


def test_logins_are_throttled_after_repeated_failures(web):
    http = requests.Session()
    for _ in range(users.MAX_FAILURES):
        page = http.get(f"{web.url}/login", timeout=10)
        wrong = http.post(
            f"{web.url}/login",
            data={"csrf_token": csrf_token(page.text), "name": "ann", "password": "wrong password!"},
            timeout=10,
        )
        assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text
    page = http.get(f"{web.url}/login", timeout=10)
    right = http.post(
        f"{web.url}/login",
        data={"csrf_token": csrf_token(page.text), "name": "ann", "password": PASSWORD},
        allow_redirects=False,
        timeout=10,
    )
    assert right.status_code == 401 and "too many failed logins from here; try again in 1 s" in right.text


def test_guesses_from_elsewhere_never_lock_out_the_person_and_the_wait_grows_instead_of_locking(
    db_target, bmp, monkeypatch
):
    from datetime import UTC, datetime, timedelta

    from host import clock

    db = connect(db_target)
    users.add_user(db, "u_admin", "admin", PASSWORD)
    users.add_user(db, "sue", "support", PASSWORD)
    attacker, desk = "203.0.113.7", "10.0.0.5"
    for spelling in ("u_admin", "U_ADMIN", " u_admin", "\uff55_admin", "u_admin "):  # one name however written
        assert users.authenticate(db, spelling, "a wrong guess!!", address=attacker) is None
    with pytest.raises(users.LoginThrottled, match="try again in 1 s"):
        users.authenticate(db, "u_admin", PASSWORD, address=attacker)
    assert users.authenticate(db, "u_admin", PASSWORD, address=desk) is not None  # never locked out at the desk

    now = [datetime(2026, 12, 6, 10, 0, tzinfo=UTC)]
    monkeypatch.setattr(clock, "now", lambda: now[0])
    for _ in range(users.MAX_FAILURES):
        assert users.authenticate(db, "sue", "a wrong guess!!", address=attacker) is None
    waits = []
    for _ in range(4):
        with pytest.raises(users.LoginThrottled) as refused:
            users.authenticate(db, "sue", PASSWORD, address=attacker)
        waits.append(int(re.search(r"try again in (\d+) s", str(refused.value)).group(1)))
        now[0] += timedelta(seconds=waits[-1])  # after the wait, one more try is taken (and fails)
        assert users.authenticate(db, "sue", "a wrong guess!!", address=attacker) is None
    assert waits == [1, 2, 4, 8]
    now[0] += timedelta(seconds=users.FAILURE_WINDOW_SECONDS + 1)  # old failures are forgotten
    assert users.authenticate(db, "sue", PASSWORD, address=attacker) is not None


def test_users_unlock_lets_the_name_sign_in_again_at_once(run, db_target, bmp):
    run("companies", "add", "Acme")
    db = connect(db_target)
    users.add_user(db, "walt", "warehouse", PASSWORD)
    for _ in range(users.MAX_FAILURES + 3):
        try:
            users.authenticate(db, "walt", "a wrong guess!!", address="10.0.0.9")
        except users.LoginThrottled:
            pass
    with pytest.raises(users.LoginThrottled):
        users.authenticate(db, "walt", PASSWORD, address="10.0.0.9")
    said = run("users", "unlock", "walt").stdout
    assert "'walt' may sign in again" in said
    assert users.authenticate(db, "walt", PASSWORD, address="10.0.0.9") is not None
    unknown = run("users", "unlock", "nobody", ok=False)
    assert unknown.exit_code == 1 and "unknown user 'nobody'" in unknown.output


def test_a_changed_password_ends_open_sessions(web, db_target):
    http, _ = signed_in(web, "walt")
    assert http.get(f"{web.url}/orders", allow_redirects=False, timeout=10).status_code == 200
    users.set_password(connect(db_target), "walt", "another long password")
    assert http.get(f"{web.url}/orders", allow_redirects=False, timeout=10).status_code == 302


def test_error_pages_show_no_traceback(web):
    http, _ = signed_in(web, "ann")
    for path, code in (
        ("/no/such/page", 404),
        ("/orders/999", 404),
        ("/jobs/12345", 404),
        ("/companies/77/cart-general", 404),
    ):
        answer = http.get(web.url + path, timeout=10)
        assert answer.status_code == code, path
        assert "Traceback" not in answer.text and 'File "' not in answer.text


def test_only_admins_see_the_change_log_and_employees(web):
    http, _ = signed_in(web, "sue")
    assert http.get(f"{web.url}/audit", timeout=10).status_code == 403
    assert http.get(f"{web.url}/users", timeout=10).status_code == 403
    assert http.get(f"{web.url}/companies/1/change-log", timeout=10).status_code == 403
    http, _ = signed_in(web, "ann")
    assert http.get(f"{web.url}/users", timeout=10).status_code == 200


def test_users_add_asks_the_password_at_a_prompt_and_stores_only_its_argon2_hash(db_target):
    assert CliRunner().invoke(cli, ["--db", str(db_target), "companies", "add", "Acme"]).exit_code == 0
    result = CliRunner().invoke(cli, ["--db", str(db_target), "users", "add", "zoe", "--role", "support"],
                                input="a long enough secret\na long enough secret\n")  # fmt: skip
    assert result.exit_code == 0, result.output
    stored = connect(db_target).execute("SELECT password_hash FROM users WHERE name = 'zoe'").fetchone()[0]
    assert stored.startswith("$argon2") and "a long enough secret" not in stored
    assert "a long enough secret" not in result.output


def test_users_add_needs_the_database_reads_a_piped_password_once_and_says_a_taken_name_first(tmp_path):
    db_target = tmp_path / "cart.db"
    runner = CliRunner()
    before = runner.invoke(cli, ["--db", str(db_target), "users", "add", "zoe", "--role", "support"],
                           input="a long enough secret\n")  # fmt: skip
    assert before.exit_code == 1 and not db_target.exists()  # only `companies add` creates the database
    assert before.output.strip().splitlines()[-1].startswith("Error: ")
    assert runner.invoke(cli, ["--db", str(db_target), "companies", "add", "Acme"]).exit_code == 0
    piped = runner.invoke(cli, ["--db", str(db_target), "users", "add", "zoe", "--role", "support"],
                          input="a long enough secret\n")  # fmt: skip  # once, as a script pipes it
    assert piped.exit_code == 0, piped.output
    assert users.authenticate(connect(db_target), "zoe", "a long enough secret") is not None
    taken = runner.invoke(cli, ["--db", str(db_target), "users", "add", "zoe", "--role", "admin"], input="")
    assert taken.exit_code == 1 and "user 'zoe' already exists" in taken.output  # before any password
    nothing = runner.invoke(cli, ["--db", str(db_target), "users", "add", "amy", "--role", "admin"], input="\n")
    assert nothing.exit_code == 1 and "none on stdin" in nothing.output


def test_serve_refuses_a_non_loopback_address_without_the_explicit_flag(db_target):
    result = CliRunner().invoke(cli, ["--db", str(db_target), "serve", "--host", "0.0.0.0"])
    assert result.exit_code != 0 and "--allow-remote" in result.output


def test_an_internal_error_page_shows_neither_traceback_nor_the_error_message(db_target, bmp):
    from host.web import create_app

    app = create_app(db_target)

    @app.route("/boom")
    def boom():
        raise RuntimeError("secret-looking detail 1234567890")

    ann = users.add_user(connect(db_target), "ann", "admin", PASSWORD)
    client = app.test_client()
    with client.session_transaction() as session:
        start_session(session, ann)
    answer = client.get("/boom")
    assert answer.status_code == 500
    text = answer.get_data(as_text=True)
    assert "Something went wrong" in text and "Traceback" not in text and "secret-looking" not in text


def test_sign_in_never_redirects_to_another_site(web):
    for target in (
        "//evil.example/x",
        "https://evil.example/",
        "javascript:alert(1)",
        "/\\evil.example/x",
        "/\t/evil.example/x",
        "/orders\x0b/x",  # a control character browsers drop
        "/orders\x01",
        "/orders\x7f",
    ):
        http = requests.Session()
        page = http.get(f"{web.url}/login", params={"next": target}, timeout=10)
        answer = http.post(f"{web.url}/login", params={"next": target},
                           data={"csrf_token": csrf_token(page.text), "name": "rita", "password": PASSWORD},
                           allow_redirects=False, timeout=10)  # fmt: skip
        assert answer.headers["Location"] == "/companies", target


def test_sign_in_returns_to_a_page_of_this_site_even_with_a_space_in_its_address(web):
    # the page staff asked for before signing in: Flask decodes its path, so a space is real
    for target in ("/orders?search=BMP 1", "/orders/BMP 1"):
        http = requests.Session()
        page = http.get(f"{web.url}/login", params={"next": target}, timeout=10)
        answer = http.post(f"{web.url}/login", params={"next": target},
                           data={"csrf_token": csrf_token(page.text), "name": "rita", "password": PASSWORD},
                           allow_redirects=False, timeout=10)  # fmt: skip
        assert answer.status_code == 302 and answer.headers["Location"] == target.replace(" ", "%20"), target


def test_a_refused_key_is_named_but_never_echoed(web, run, bmp):
    run("companies", "add", "Acme Refurb")
    run("website-settings", "Acme Refurb", "--store-plugin", "backmarket_pro")
    http, token = signed_in(web, "sue")
    bad_key = "pasted key with spaces 9f8e7d"
    answer = http.post(
        f"{web.url}/companies/1/cart-general",
        timeout=10,
        data={"csrf_token": token, "website_url": "", "commission_percent": "", "x_api_key": bad_key},
    )
    assert answer.status_code == 422 and 'id="error-x_api_key"' in answer.text
    assert bad_key not in answer.text and "9f8e7d" not in answer.text


def test_the_session_signing_key_is_sealed_in_the_database_so_a_copy_cannot_forge_a_session(web, db_target):
    from host.records import secrets

    db = connect(db_target)
    try:
        (stored,) = db.execute("SELECT value FROM web_secrets WHERE name = 'session_key'").fetchone()
    finally:
        db.close()
    assert secrets.is_sealed(stored)
    assert web.app.secret_key not in stored


def test_signing_out_ends_every_session_of_the_user_and_a_copied_cookie_with_them(web, run, company):
    first, _ = signed_in(web, "sue")
    second, token = signed_in(web, "sue")  # another browser of the same person
    copied = requests.Session()
    copied.cookies.update(second.cookies)  # a cookie saved before signing out
    assert copied.get(f"{web.url}/companies", timeout=10, allow_redirects=False).status_code == 200
    out = second.post(f"{web.url}/logout", data={"csrf_token": token}, timeout=10, allow_redirects=False)
    assert out.status_code == 302
    for session in (first, copied):
        answer = session.get(f"{web.url}/companies", timeout=10, allow_redirects=False)
        assert answer.status_code == 302 and "/login" in answer.headers["Location"]


def _session_aged(app, db_target, *, started: float, seen: float):
    user = users.get_user_by_name(connect(db_target), "ann")
    client = app.test_client()
    with client.session_transaction() as session:
        start_session(session, user)
        session["iat"], session["seen"] = int(time.time() - started), int(time.time() - seen)
    return client


def test_a_session_ends_when_idle_too_long_and_at_its_lifetime_however_busy(db_target, bmp):
    from host.web import create_app

    app = create_app(db_target, session_hours=8, idle_minutes=60)
    users.add_user(connect(db_target), "ann", "admin", PASSWORD)
    fresh = _session_aged(app, db_target, started=3600, seen=60)
    assert fresh.get("/companies").status_code == 200
    idle = _session_aged(app, db_target, started=3600, seen=61 * 60)
    assert idle.get("/companies").status_code == 302  # to the sign-in page
    busy = _session_aged(app, db_target, started=8 * 3600 + 60, seen=5)
    assert busy.get("/companies").status_code == 302
    renewed = _session_aged(app, db_target, started=3600, seen=50 * 60)
    assert renewed.get("/companies").status_code == 200
    with renewed.session_transaction() as session:  # the request renewed the idle time, not the end
        assert time.time() - session["seen"] < 5 and time.time() - session["iat"] >= 3600
