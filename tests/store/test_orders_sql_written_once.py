"""The orders side (orders, shipments, the grids, the web admin) writes its SQL once, with named
parameters: PostgreSQL runs it without rewriting it, and what differs by backend (a search
within text, binding a bulk insert) is asked of the store (``host.store.search``, ``host.store.bulk``)."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from correcting_plugin import Correcting
from support import registered

from host.records import access, orders, queries, shipments, users
from host.records.access import EVERY
from host.records.companies import add_company
from host.store import bulk, pg, search
from host.store.db import connect, write
from host.web import create_app
from plugin_spec import ChannelOrder, OrderLine, UploadResult

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
PASSWORD = "correct horse battery staple"
HOST = Path(__import__("host").__file__).resolve().parent
#: the modules whose every statement is written once (host/web: every file under it)
OWNED = {HOST / "records" / name for name in ("orders.py", "shipments.py", "order_search.py", "queries.py", "money.py")}


def test_a_search_within_text_ignores_case_and_takes_wildcards_as_text_on_both(store):
    store.execute("CREATE TABLE words (id INTEGER PRIMARY KEY, word TEXT)")
    with write(store):
        store.conn.executemany(
            "INSERT INTO words (id, word) VALUES (:id, :word)",
            [{"id": i, "word": w} for i, w in enumerate(["BMP-1176", "bmp-1_6%x", "a\\b", "other"], 1)],
        )

    def found(text: str) -> list[int]:
        condition, params = search.contains(store, "word", text, name="q")
        return [row[0] for row in store.execute(f"SELECT id FROM words WHERE {condition} ORDER BY id", params)]

    assert found("MP-11") == [1]
    assert found("bmp") == [1, 2]  # case ignored on both (PostgreSQL's LIKE minds it)
    assert found("1_6") == [2] and found("6%x") == [2] and found("1%1") == [] and found("_") == [2]
    assert found("a\\b") == [3]
    assert found("nothing") == []


def test_a_bulk_insert_writes_each_value_to_its_column_on_both(store):
    store.execute("CREATE TABLE bulk_t (id INTEGER PRIMARY KEY, name TEXT, amount TEXT, flag INTEGER)")
    columns = ("id", "amount", "name", "flag")  # not the table's order
    with write(store):
        bulk.insert_rows(store, "bulk_t", columns, [(1, "12.50", "first", 1), (2, None, "second", 0)])
        bulk.insert_rows(store, "bulk_t", ("id",), [(3,)])
        bulk.insert_rows(store, "bulk_t", columns, [])
    rows = store.execute("SELECT id, name, amount, flag FROM bulk_t ORDER BY id").fetchall()
    assert [tuple(row) for row in rows] == [(1, "first", "12.50", 1), (2, "second", None, 0), (3, None, None, None)]


def order(n: int, *, updated: datetime = T0, cancelled: bool = False, shipped: bool = False) -> ChannelOrder:
    return ChannelOrder(
        source_order_id=f"SO-{n}", created_at=T0, updated_at=updated, currency="EUR",
        subtotal=Decimal("200.00"), tax_total=Decimal("0"), grand_total=Decimal("200.00"),
        channel_cancelled=cancelled, channel_shipped=shipped,
        lines=[OrderLine(source_line_id="L1", sku="SKU-1", title="Phone", quantity=2, unit_price=Decimal("100.00")),
               OrderLine(source_line_id="L2", sku="SKU-2", title="Case", quantity=1, unit_price=Decimal("0"),
                         channel_cancelled=cancelled)],
    )  # fmt: skip


#: the functions of host.store.pg that run a statement someone else wrote
_RUNNERS = {"_statement", "execute", "executemany", "query"}


@pytest.fixture
def rewritten(monkeypatch) -> list[str]:
    """Where ``host.store.pg.translate`` (the regular expressions that rewrite SQLite's SQL)
    changed a statement of the orders side, as ``file:line: sql``."""
    seen: list[str] = []
    original = getattr(pg, "translate", None)
    if original is None:  # no rewriting left in the store at all
        return seen

    def translate(sql: str) -> str:
        translated = original(sql)
        if translated == sql.replace("%", "%%"):  # a statement without parameters, as written
            return translated
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename == pg.__file__ and frame.f_code.co_name in _RUNNERS:
            frame = frame.f_back
        if frame is not None:  # the statement's author (the store's own, such as its write lock, are its own)
            path = Path(frame.f_code.co_filename).resolve()
            if path in OWNED or path.is_relative_to(HOST / "web"):
                seen.append(f"{path.relative_to(HOST.parent)}:{frame.f_lineno}: {sql[:80]}")
        return translated

    monkeypatch.setattr(pg, "translate", translate)
    return seen


def _token(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def test_the_orders_side_runs_on_postgresql_without_its_sql_being_rewritten(pg_url, tmp_path, monkeypatch, rewritten):
    monkeypatch.setenv("CARTPLUGIN_SECRET_KEY_FILE", str(tmp_path / "cart.key"))
    db = connect(pg_url)
    acme, beta = add_company(db, "Acme Refurb"), add_company(db, "Beta Phones")
    with registered(Correcting(name="correcting_shop"), "correcting_shop"):
        stats = orders.ImportStats()
        with write(db):  # new orders, one shipped on the channel already
            batch = [order(1), order(2), order(3, shipped=True)]
            assert orders.upsert_each(db, acme.id, "correcting_shop", batch, Decimal("10"), stats) == []
        with write(db):  # a later copy: cancelled on the channel, the order and a line
            later = [order(2, updated=T0 + timedelta(hours=1), cancelled=True), order(1)]
            assert orders.upsert_each(db, acme.id, "correcting_shop", later, Decimal("10"), stats) == []
        assert (stats.inserted, stats.updated, stats.unchanged) == (3, 1, 1)
        first, second, third = (orders.show_order(db, f"SO-{n}") for n in (1, 2, 3))
        assert second["channel_cancelled"] and second["lines"][1]["channel_cancelled"]
        assert third["shipping_status"] == orders.FULLY_SHIPPED and third["source_updated_for_shipping"]

        orders.ship_order(db, first["id"], carrier="UPS", tracking_number="1Z999AA10123456784", serials=["SKU-1=A"])
        orders.defer_uploads(db, acme.id, "2000-01-01T00:00:00.000000Z")
        (due,) = orders.shipments_to_upload(db, acme.id)
        orders.hold_uploads(db, [(due.shipment_id, "2000-01-01T00:00:00.000000Z")])
        orders.record_upload_results(db, [UploadResult(shipment_id=due.shipment_id, ok=False, message="HTTP 422")])
        assert [row["shipment_id"] for row in queries.failed_uploads(db, EVERY)] == [due.shipment_id]
        shipments.retry_upload(db, first["id"], actor="walt")
        orders.record_upload_results(db, [UploadResult(shipment_id=due.shipment_id, ok=True)])
        shipments.update_tracking(db, first["id"], tracking_number="1Z12345E6605272234", actor="walt")
        (due,) = orders.shipments_to_upload(db, acme.id)
        assert due.replaces_tracking_number == "1Z999AA10123456784"
        orders.ship_order(db, "SO-2", carrier="UPS", tracking_number="1Z999AA10123456793", confirmed_by="walt")
        voided = shipments.void_shipment(db, "SO-2", actor="walt")
        assert voided["shipping_status"] == orders.UNSHIPPED and voided["lines"][0]["quantity_shipped"] == 0
        orders.set_status(db, "SO-2", "on hold", actor="walt")

        # the grids, for everyone and for staff limited to one company
        limited = access.Access(frozenset({beta.id}))
        assert queries.orders_page(db, {"q": "so-", "status": "On Hold"}, EVERY).total == 1
        assert queries.orders_page(db, {"q": "SO-1", "company": str(acme.id), "shipping": "Fully Shipped"}, EVERY).total
        assert queries.orders_page(db, {"q": "so-"}, limited).total == 0
        assert queries.jobs_page(db, {"company": str(acme.id), "kind": "x", "status": "y"}, limited).total == 0
        assert [c["name"] for c in queries.companies_overview(db, limited)] == ["Beta Phones"]
        assert queries.payment_statuses(db, EVERY) == ["Fully Charged"] and queries.payment_statuses(db, limited) == []
        assert [o["source_order_id"] for o in queries.attention_orders(db, EVERY)] == ["SO-2"]

        # the web admin, for an admin and for staff limited to the other company
        users.add_user(db, "ann", "admin", PASSWORD)
        users.add_user(db, "sue", "support", PASSWORD)
        access.set_companies(db, "sue", add=["Beta Phones"])
        db.close()
        app = create_app(pg_url)
        for name, status in (("ann", 200), ("sue", 404)):
            client = app.test_client()
            answer = client.post("/login", data={"csrf_token": _token(client.get("/login").text), "name": name,
                                                 "password": PASSWORD})  # fmt: skip
            assert answer.status_code == 302, answer.text
            assert client.get("/orders?q=SO-1").status_code == 200
            assert client.get(f"/orders/{first['id']}").status_code == status
    assert rewritten == []
