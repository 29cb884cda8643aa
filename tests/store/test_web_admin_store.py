"""The web admin runs unchanged on either backend: its grids, pages and a write, through Flask's test client."""

from __future__ import annotations

import re

import pytest
from test_store import import_orders, order

from host.jobs import queue as jobs
from host.records import companies, orders, users
from host.records.companies import add_company
from host.store.db import connect
from host.web import create_app

PASSWORD = "correct horse battery staple"


def _token(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


@pytest.fixture
def admin(store_target, bmp):
    db = connect(store_target)
    acme = add_company(db, "Acme Refurb")
    companies.update_website_settings(db, acme, store_plugin="backmarket_pro", allow_order_download=True)
    import_orders(db, acme.id, [order(n) for n in range(1, 8)] + [order(8, cancelled=True)])
    done, _ = jobs.enqueue(db, acme.id, "import_orders")
    jobs.finish(db, jobs.claim(db, "w"), jobs.COMPLETED, {"inserted": 8})
    queued, _ = jobs.enqueue(db, acme.id, "download_orders")
    users.add_user(db, "ann", "admin", PASSWORD)
    db.close()
    app = create_app(store_target)
    client = app.test_client()
    login = client.get("/login")
    answer = client.post("/login", data={"csrf_token": _token(login.text), "name": "ann", "password": PASSWORD})
    assert answer.status_code == 302, answer.text
    return client, done.id, queued.id


def test_the_orders_grid_filters_sorts_and_pages(admin):
    client, _, _ = admin
    grid = client.get("/orders")
    assert grid.status_code == 200 and "SO-1" in grid.text and "SO-8" in grid.text
    found = client.get("/orders?q=SO-3")
    assert "SO-3" in found.text and "SO-4" not in found.text
    cancelled = client.get("/orders?cancelled=yes&sort=grand_total&dir=asc")
    assert cancelled.status_code == 200 and "SO-8" in cancelled.text and "SO-2" not in cancelled.text
    assert client.get("/orders?shipping=Unshipped&page=2").status_code == 200
    assert client.get("/attention").status_code == 200


def test_an_order_is_shown_and_shipped_from_its_page(admin, store_target):
    client, _, _ = admin
    db = connect(store_target)
    first = next(iter(orders.list_orders(db)))
    db.close()
    page = client.get(f"/orders/{first['id']}")
    assert page.status_code == 200 and first["source_order_id"] in page.text
    shipped = client.post(
        f"/orders/{first['id']}/ship",
        data={"csrf_token": _token(page.text), "carrier": "UPS", "tracking_number": "1Z999AA10000000104"},
    )
    assert shipped.status_code == 302, shipped.text
    assert "Fully Shipped" in client.get(f"/orders/{first['id']}").text
    assert "order shipped" in client.get("/audit").text


def test_queued_jobs_list_show_and_cancel(admin):
    client, done, queued = admin
    listed = client.get("/jobs")
    assert listed.status_code == 200 and "Queued" in listed.text and "Completed" in listed.text
    assert client.get("/jobs?status=Queued").status_code == 200
    assert "8 new, 0 updated, 0 unchanged" in client.get(f"/jobs/{done}").text
    shown = client.get(f"/jobs/{queued}")
    cancelled = client.post(f"/jobs/{queued}/cancel", data={"csrf_token": _token(shown.text)})
    assert cancelled.status_code == 302
    assert "Cancelled" in client.get(f"/jobs/{queued}").text
    assert client.get("/companies").status_code == 200 and "Acme Refurb" in client.get("/companies").text
