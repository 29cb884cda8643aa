"""Staff limited to some companies see only those, on every page and every route: another
company's company, order, job or shipment is "not found" (404, never 403: its existence is not
revealed), its rows and counts are in no grid, and a POST on it changes nothing."""

from __future__ import annotations

import re

import pytest
from support import ups_tracking
from test_web_routes_guarded import FORM, _snapshot
from web_support import ROLES, signed_in

from backmarket_pro.sandbox import Sandbox
from host.jobs import queue as jobs
from host.records import access, users
from host.store.db import connect, write
from host.web import reach

OTHER = "Beta Phones"
OTHER_KEY = "bmp-other-key-0c4f9e2d18a7"
LIMITED = [name for name, role in ROLES.items() if role != "admin"]


@pytest.fixture
def other(run, bmp):
    """A second company on its own channel account, set up like the first."""
    with Sandbox(api_key=OTHER_KEY, orders=6, seed=11) as server:
        run("companies", "add", OTHER)
        run("website-settings", OTHER, "--store-plugin", "backmarket_pro", "--allow-order-download",
            "--allow-tracking-upload")  # fmt: skip
        run("cart-settings", OTHER, "--set", f"website_url={server.base_url}", "--set", f"x_api_key={OTHER_KEY}")
        run("test-settings", OTHER)
        yield OTHER


def _objects(run, name: str, db_target, tracking: str) -> dict[str, int]:
    """The company's real company, order, job (still Queued) and shipment, by the names the routes
    give their ids; one of its orders flagged cancelled by the channel and its shipment refused
    by the channel, so Attention has rows of this company."""
    run("import-orders", name)
    listed = run.json("orders", "list", "--company", name)
    shipped = run.json("orders", "ship", str(listed[0]["id"]), "--carrier", "UPS", "--tracking", tracking)
    db = connect(db_target)
    try:
        company_id = db.execute("SELECT id FROM companies WHERE name = :name", {"name": name}).fetchone()[0]
        job, _ = jobs.enqueue(db, company_id, "import_orders", {"since": None})
        shipment_id = shipped["shipments"][0]["id"]
        with write(db):
            db.execute("UPDATE orders SET channel_cancelled = 1 WHERE id = :id", {"id": listed[1]["id"]})
            db.execute("UPDATE shipments SET upload_state = 'failed', upload_message = 'refused' WHERE id = :id",
                       {"id": shipment_id})  # fmt: skip
    finally:
        db.close()
    return {"company_id": company_id, "order_id": listed[0]["id"], "job_id": job.id, "shipment_id": shipment_id,
            "orders": len(listed), "source_order_ids": [o["source_order_id"] for o in listed]}  # fmt: skip


def _limit(db_target, company: str, names: list[str]) -> None:
    db = connect(db_target)
    try:
        for name in names:
            access.set_companies(db, name, add=[company])
    finally:
        db.close()


def _url(rule: str, ids: dict) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: str(ids[m.group(1)]), rule)


def test_every_route_with_an_id_of_another_company_is_not_found_to_each_limited_role(
    web, run, company, other, db_target
):
    mine = _objects(run, company, db_target, ups_tracking(1))
    theirs = _objects(run, other, db_target, ups_tracking(2))
    _limit(db_target, company, LIMITED)
    # every rule with an id (static files are open to all and carry a file name, no id)
    rules = [rule for rule in web.app.url_map.iter_rules() if rule.arguments and rule.endpoint != "static"]
    # a new kind of id in a URL must say how to find its company, or limited staff get 404 for it
    assert {name for rule in rules for name in rule.arguments} <= set(reach.COMPANY_OF) | reach.EVERY_COMPANY_ONLY
    employee_rules = [rule for rule in rules if rule.arguments & reach.EVERY_COMPANY_ONLY]
    rules = [rule for rule in rules if rule.arguments <= set(reach.COMPANY_OF)]
    assert {"companies.website", "orders.show", "jobs.show", "shipments.void"} <= {rule.endpoint for rule in rules}
    before = _snapshot(db_target)
    tried = 0
    for name in LIMITED:
        http, token = signed_in(web, name)
        for rule in rules:
            for method in sorted((rule.methods or set()) & {"GET", "POST"}):
                url = web.url + _url(rule.rule, theirs)
                answer = http.request(method, url, data={**FORM, "csrf_token": token}, allow_redirects=False,
                                      timeout=10)  # fmt: skip
                assert answer.status_code == 404, (name, method, url, answer.status_code)
                assert OTHER not in answer.text, (name, method, url)
                tried += 1
                if method == "GET":  # the same route on the user's own company is there
                    own = http.get(web.url + _url(rule.rule, mine), allow_redirects=False, timeout=10)
                    assert own.status_code != 404, (name, url, own.status_code)
    assert tried >= 3 * 15
    # an own order with another company's shipment: each id of a URL is checked
    walt, token = signed_in(web, "walt")
    for action in ("void", "retry", "tracking"):
        url = f"{web.url}/orders/{mine['order_id']}/shipments/{theirs['shipment_id']}/{action}"
        answer = walt.post(url, data={**FORM, "csrf_token": token}, allow_redirects=False, timeout=10)
        assert answer.status_code == 404, (url, answer.status_code)
    # an employee belongs to no company: limited staff never reach those routes (only admins do)
    ann_id = connect(db_target).execute("SELECT id FROM users WHERE name = 'ann'").fetchone()[0]
    sue, token = signed_in(web, "sue")
    assert employee_rules
    for rule in employee_rules:
        for method in sorted((rule.methods or set()) & {"GET", "POST"}):
            url = web.url + rule.rule.replace("<int:user_id>", str(ann_id))
            answer = sue.request(method, url, data={**FORM, "csrf_token": token}, allow_redirects=False, timeout=10)
            assert answer.status_code == 404, (method, url, answer.status_code)
    assert _snapshot(db_target) == before


def test_grids_counts_and_filters_show_only_the_user_s_companies(web, run, company, other, db_target):
    mine = _objects(run, company, db_target, ups_tracking(3))
    theirs = _objects(run, other, db_target, ups_tracking(4))
    assert not set(mine["source_order_ids"]) & set(theirs["source_order_ids"])
    sue, _ = signed_in(web, "sue")
    # before any company is given, an account sees every company, as before this existed
    assert OTHER in sue.get(f"{web.url}/companies", timeout=10).text
    _limit(db_target, company, ["sue"])
    pages = {
        "/companies": None,
        "/orders": mine["orders"],
        f"/orders?company={theirs['company_id']}": 0,
        f"/orders?q={theirs['source_order_ids'][0]}": 0,
        f"/orders?company={theirs['company_id']}&cancelled=yes": 0,
        "/jobs": None,
        f"/jobs?company={theirs['company_id']}": 0,
        "/attention": None,
    }
    for path, found in pages.items():
        text = sue.get(web.url + path, timeout=10).text
        assert OTHER not in text, path
        rows = "".join(re.findall(r"<tbody>.*?</tbody>", text, re.S))  # the search box repeats its words
        for source_order_id in theirs["source_order_ids"]:
            assert source_order_id not in rows, (path, source_order_id)
        if found is not None:
            assert f"{found} found" in text, (path, re.findall(r"\d+ found", text))
    assert company in sue.get(f"{web.url}/companies", timeout=10).text
    assert mine["source_order_ids"][1] in sue.get(f"{web.url}/attention", timeout=10).text
    # the admin still sees both: the grids above were filtered, not empty
    ann, _ = signed_in(web, "ann")
    assert f"{mine['orders'] + theirs['orders']} found" in ann.get(f"{web.url}/orders", timeout=10).text
    assert theirs["source_order_ids"][1] in ann.get(f"{web.url}/attention", timeout=10).text


def test_a_limited_user_cannot_add_a_company_and_the_employees_page_says_who_sees_what(web, run, company, db_target):
    _limit(db_target, company, ["sue"])
    sue, token = signed_in(web, "sue")
    page = sue.get(f"{web.url}/companies", timeout=10).text
    assert "Add Company" not in page and "You see only the companies given to you" in page
    before = _snapshot(db_target)
    answer = sue.post(f"{web.url}/companies", data={"csrf_token": token, "name": "Sneaky Ltd"}, timeout=10)
    assert "Only staff who see every company add companies" in answer.text
    assert _snapshot(db_target) == before
    ann, _ = signed_in(web, "ann")
    employees = ann.get(f"{web.url}/users", timeout=10).text
    row = {
        name: re.search(rf'<tr data-name="{name}".*?</tr>', employees, re.S).group(0) for name in ("sue", "walt", "ann")
    }
    assert f'<td class="companies">{company}</td>' in row["sue"]
    assert '<td class="companies">every company</td>' in row["walt"]
    assert '<td class="companies">every company (admin)</td>' in row["ann"]


def test_a_role_change_to_admin_reaches_every_company_again(web, run, company, other, db_target):
    _limit(db_target, company, ["sue"])
    db = connect(db_target)
    with write(db):
        db.execute("UPDATE users SET role = 'admin' WHERE name = 'sue'")
    assert access.for_user(db, users.get_user_by_name(db, "sue")).everything
    db.close()
    sue, _ = signed_in(web, "sue")
    assert OTHER in sue.get(f"{web.url}/companies", timeout=10).text
