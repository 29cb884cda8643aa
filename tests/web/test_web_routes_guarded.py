"""Every state-changing route of the web admin is guarded: taken from the app's URL map, so a
route added tomorrow is checked the day it is added, and a view that declares no permission is
refused even to an admin (the guard fails closed)."""

from __future__ import annotations

import re

import requests
from flask import url_for
from web_support import ROLES, csrf_token, signed_in

from host.jobs import queue as jobs
from host.records import users
from host.store.db import connect
from host.web import create_app
from host.web.auth import requires, start_session

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
#: the permission each state-changing endpoint must declare, written here and not read from the
#: view, so a dropped or weakened ``@requires`` fails this file; None: signing in is open to
#: everyone and signing out to every signed-in user (both still need their CSRF token)
PERMISSION_OF = {
    "auth.login": None,
    "auth.logout": None,
    "companies.add": "company_settings",
    "companies.website": "company_settings",
    "companies.cart_general": "company_settings",
    "companies.import_orders": "import_orders",
    "companies.test_settings": "test_settings",
    "jobs.cancel": "cancel_job",
    "jobs.priority": "cancel_job",
    "orders.ship": "ship",
    "orders.accept": "ship",
    "orders.set_status": "status",
    "shipments.void": "ship",
    "shipments.update_tracking": "ship",
    "shipments.retry": "ship",
    "employees.add": "users",
    "employees.set_role": "users",
    "employees.disable": "users",
    "employees.enable": "users",
    "employees.remove": "users",
    "employees.reset_password": "users",
    "employees.own_password": None,  # each signed-in user, who proves it with the current password
}
#: what a form of any of these routes could carry, so a request let through by mistake would
#: really change something (and the snapshot below would see it)
FORM = {
    "name": "Forged Ltd", "status": "Cancelled", "store_type": "Custom", "store_plugin": "backmarket_pro",
    "allow_order_download": "y", "website_url": "https://forged.example", "commission_percent": "99",
    "carrier": "UPS", "tracking_number": "1ZFORGED", "priority": "Critical", "role": "admin",
    "password": "forged long password", "confirm": "forged long password",
}  # fmt: skip
#: the tables a state-changing route writes to
WRITTEN = ("companies", "website_settings", "cart_settings", "orders", "order_lines", "shipments", "jobs", "audit_log")


def _state_changing(app) -> list[tuple[str, str, str]]:
    """(method, URL rule, endpoint) of every rule of the URL map that can change state."""
    found = []
    for rule in app.url_map.iter_rules():
        for method in sorted(STATE_CHANGING & set(rule.methods or ())):
            found.append((method, rule.rule, rule.endpoint))
    return sorted(found)


def _url(app, rule: str, endpoint: str, ids: dict[str, int]) -> str:
    """The rule's URL with each parameter filled with the id of a real object of this test."""
    names = re.findall(r"<(?:\w+:)?(\w+)>", rule)
    missing = [name for name in names if name not in ids]
    assert not missing, f"{endpoint}: create a real object for {missing} in _real_objects"
    with app.test_request_context():
        return url_for(endpoint, **{name: ids[name] for name in names})


def _real_objects(run, company: str, db_target) -> dict[str, int]:
    """A company with its connection established, its imported orders and a job still Queued
    (one a dropped check would really cancel), by the names the routes give their ids."""
    run("import-orders", company)
    order = run.json("orders", "list")[0]
    db = connect(db_target)
    try:
        company_id = db.execute("SELECT id FROM companies WHERE name = :name", {"name": company}).fetchone()[0]
        job, _ = jobs.enqueue(db, company_id, "import_orders", {"since": None})
    finally:
        db.close()
    assert job.status == "Queued"
    shipped = run.json("orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", "1Z999AA10123456784")
    user_id = users.get_user_by_name(connect(db_target), "rita").id
    return {"company_id": company_id, "order_id": order["id"], "job_id": job.id,
            "shipment_id": shipped["shipments"][0]["id"], "user_id": user_id}  # fmt: skip


def _snapshot(db_target) -> dict[str, list]:
    db = connect(db_target)
    try:
        return {
            table: sorted((tuple(row) for row in db.execute(f"SELECT * FROM {table}")), key=repr) for table in WRITTEN
        }
    finally:
        db.close()


def test_every_state_changing_route_needs_its_csrf_token_and_the_permission_it_declares(web, run, company, db_target):
    ids = _real_objects(run, company, db_target)
    routes = _state_changing(web.app)
    endpoints = {endpoint for _, _, endpoint in routes}
    # a new route fails here until its permission is written above: a choice, not a default
    assert endpoints == set(PERMISSION_OF), f"state-changing endpoints not listed: {endpoints - set(PERMISSION_OF)}"
    for endpoint, permission in PERMISSION_OF.items():
        declared = getattr(web.app.view_functions[endpoint], "permission", None)
        assert declared == permission, f"{endpoint} declares {declared!r}, expected {permission!r}"
    before = _snapshot(db_target)
    sessions = {name: signed_in(web, name) for name in ROLES}
    admin = sessions["ann"][0]
    for method, rule, endpoint in routes:
        url = web.url + _url(web.app, rule, endpoint, ids)
        # an admin holds every permission: without its token the request would reach the view,
        # so only the CSRF check can answer this 400 (its own page, not a form's bare 400)
        answer = admin.request(method, url, data=FORM, allow_redirects=False, timeout=10)
        assert answer.status_code == 400 and "security token is missing" in answer.text, (method, url)
        permission = PERMISSION_OF[endpoint]
        if permission is None:
            continue
        for name, role in ROLES.items():
            if permission in users.PERMISSIONS[role]:
                continue
            http, token = sessions[name]
            answer = http.request(method, url, data={**FORM, "csrf_token": token}, allow_redirects=False, timeout=10)
            assert answer.status_code == 403, (method, url, role, answer.status_code)
    assert _snapshot(db_target) == before


def test_every_state_changing_route_refuses_a_signed_out_post_that_carries_a_valid_token(web, run, company, db_target):
    ids = _real_objects(run, company, db_target)
    before = _snapshot(db_target)
    http = requests.Session()
    # the sign-in page gives a signed-out session its CSRF token: the request passes that check
    # and only the sign-in check can refuse it
    token = csrf_token(http.get(f"{web.url}/login", timeout=10).text)
    for method, rule, endpoint in _state_changing(web.app):
        if endpoint == "auth.login":
            continue
        url = web.url + _url(web.app, rule, endpoint, ids)
        answer = http.request(method, url, data={**FORM, "csrf_token": token}, allow_redirects=False, timeout=10)
        assert answer.status_code == 401, (method, url, answer.status_code)
    assert _snapshot(db_target) == before


def _client(app, db_target, name: str = "ann"):
    """A test client signed in as ``name`` (with its role of web_support.ROLES), and a valid CSRF
    token of its session."""
    user = users.add_user(connect(db_target), name, ROLES[name], "correct horse battery staple")
    client = app.test_client()
    with client.session_transaction() as session:
        start_session(session, user)
    return client, csrf_token(client.get("/companies").get_data(as_text=True))


def test_a_post_to_a_view_that_declares_no_permission_is_refused_even_to_an_admin(db_target, bmp):
    app = create_app(db_target)
    reached: list[str] = []

    # a view someone forgot to decorate: the guard must refuse it, not let it through
    @app.route("/test-only/undeclared", methods=["POST"])
    def undeclared():
        reached.append("undeclared")
        return "changed"

    # the same view with a permission: shows the session and token below are good, so the 403
    # above comes from the missing permission and nothing else
    @app.route("/test-only/declared", methods=["POST"])
    @requires("company_settings")
    def declared():
        reached.append("declared")
        return "changed"

    client, token = _client(app, db_target)
    answer = client.post("/test-only/undeclared", data={"csrf_token": token})
    assert answer.status_code == 403 and "Your role does not allow this" in answer.get_data(as_text=True)
    assert client.post("/test-only/declared", data={"csrf_token": token}).status_code == 200
    assert reached == ["declared"]


def test_a_post_to_a_url_that_takes_only_get_is_refused_by_the_guard_not_answered_405(db_target, bmp):
    app = create_app(db_target)
    client, token = _client(app, db_target)
    posted = {rule.rule for rule in app.url_map.iter_rules() if STATE_CHANGING & set(rule.methods or ())}
    get_only = sorted({rule.rule for rule in app.url_map.iter_rules()} - posted)
    assert len(get_only) >= 10
    for rule in get_only:
        # no view takes the POST, so none declares a permission: the guard refuses it (a 405
        # would mean it let a request with no declared permission through to routing)
        url = re.sub(r"<(?:\w+:)?\w+>", "1", rule)
        assert client.post(url, data={"csrf_token": token}).status_code == 403, url


def test_the_guard_itself_refuses_a_role_without_the_permission_a_view_declares(db_target, bmp):
    app = create_app(db_target)
    reached: list[str] = []

    # declared as companies.website does it (an attribute, no @requires and no check inside),
    # so only the guard stands between a role without the permission and the view
    @app.route("/test-only/attribute", methods=["POST"])
    def attribute():
        reached.append("attribute")
        return "changed"

    attribute.permission = "company_settings"  # type: ignore[attr-defined]
    walt, walt_token = _client(app, db_target, "walt")
    assert walt.post("/test-only/attribute", data={"csrf_token": walt_token}).status_code == 403
    sue, sue_token = _client(app, db_target, "sue")
    assert sue.post("/test-only/attribute", data={"csrf_token": sue_token}).status_code == 200
    assert reached == ["attribute"]


def test_an_id_past_the_largest_integer_is_not_found_on_every_route_that_takes_one(db_target, bmp):
    app = create_app(db_target)
    client, token = _client(app, db_target)
    huge = "9223372036854775808"  # one past SQLite's (and BIGINT's) largest integer
    tried = 0
    for rule in app.url_map.iter_rules():
        if "<int:" not in rule.rule:
            continue
        url = re.sub(r"<int:\w+>", huge, rule.rule)
        for method in sorted((rule.methods or set()) & {"GET", "POST"}):
            answer = client.open(url, method=method, data={"csrf_token": token})
            assert answer.status_code in (403, 404, 405), (method, url, answer.status_code)  # never a 500
            tried += 1
    assert tried >= 8
