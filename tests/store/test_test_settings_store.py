"""Test Settings from the web admin on either backend: the request queues the job and returns, the
web process runs it on a thread of its own with its own connection, and Cart General shows the
answer (Flask's test client, the real Back Market Pro sandbox, SQLite or PostgreSQL)."""

from __future__ import annotations

import re

from support import API_KEY, wait_until

from host.records import companies, users
from host.records.companies import add_company
from host.store.db import connect
from host.web import create_app

PASSWORD = "correct horse battery staple"


def _token(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def test_test_settings_runs_in_the_background_and_cart_general_shows_its_answer(store_target, bmp, sandbox):
    db = connect(store_target)
    acme = add_company(db, "Acme Refurb")
    companies.update_website_settings(db, acme, store_plugin="backmarket_pro", allow_order_download=True)
    companies.update_cart_settings(db, acme, {"website_url": sandbox.base_url, "x_api_key": API_KEY})
    users.add_user(db, "sue", "support", PASSWORD)
    db.close()
    client = create_app(store_target).test_client()
    login = client.get("/login")
    client.post("/login", data={"csrf_token": _token(login.text), "name": "sue", "password": PASSWORD})
    page = client.get(f"/companies/{acme.id}/cart-general")
    started = client.post(f"/companies/{acme.id}/test-settings", data={"csrf_token": _token(page.text)})
    assert started.status_code == 302
    assert "Test Settings started as Queued Job" in client.get(f"/companies/{acme.id}/cart-general").text

    def answered() -> bool:
        return 'data-pending="no"' in client.get(f"/companies/{acme.id}/test-settings").text

    assert wait_until(answered, timeout=15)
    shown = client.get(f"/companies/{acme.id}/cart-general").text
    assert "Connection established: Connected to Back Market Pro as" in shown
    db = connect(store_target)
    try:
        assert companies.get_company(db, acme.id).connection_status == "established"
        rows = db.execute("SELECT actor, action FROM audit_log ORDER BY id").fetchall()
    finally:
        db.close()
    assert [tuple(r) for r in rows][-2:] == [("sue", "Test Settings started"), ("sue", "Test Settings")]
