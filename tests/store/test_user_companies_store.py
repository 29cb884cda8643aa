"""Which companies a staff account reaches, on both stores: an account made before the step
reaches every company, as it did; given companies limit it; admins always reach all."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import sqlite_utils

from host.errors import HostError
from host.jobs import queue as jobs
from host.records import access, orders, queries, users
from host.records.access import EVERY, Access
from host.records.companies import add_company
from host.store import pg_migrations
from host.store.db import connect, write
from host.store.migrations import migrations
from host.store.pg import PgDatabase
from plugin_spec import ChannelOrder, OrderLine

PASSWORD = "correct horse battery staple"
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


def test_an_account_reaches_every_company_until_given_some_and_admins_always_do(store):
    acme, beta = add_company(store, "Acme Refurb"), add_company(store, "Beta Phones")
    sue = users.add_user(store, "sue", "support", PASSWORD)
    ann = users.add_user(store, "ann", "admin", PASSWORD)
    assert access.for_user(store, sue) == EVERY
    assert access.set_companies(store, "sue", add=["acme refurb"]) == ["Acme Refurb"]
    assert access.for_user(store, sue) == Access(frozenset({acme.id}))
    assert access.set_companies(store, "SUE", add=[str(beta.id)]) == ["Acme Refurb", "Beta Phones"]
    assert access.set_companies(store, "sue", remove=["Acme Refurb"]) == ["Beta Phones"]
    assert access.for_user(store, sue) == Access(frozenset({beta.id}))
    assert access.set_companies(store, "sue", every=True) is None
    assert access.for_user(store, sue) == EVERY
    assert access.for_user(store, ann) == EVERY


def test_a_refused_change_changes_nothing(store):
    add_company(store, "Acme Refurb")
    add_company(store, "Beta Phones")
    users.add_user(store, "sue", "support", PASSWORD)
    users.add_user(store, "ann", "admin", PASSWORD)
    access.set_companies(store, "sue", add=["Acme Refurb"])
    before = access.company_names(store)
    refused = [
        ("sue", {"add": ["Beta Phones", "Nowhere Ltd"]}),  # one unknown name: not even Beta is given
        ("sue", {"add": ["Beta Phones"], "remove": ["Beta Phones"]}),
        ("sue", {"add": ["Beta Phones"], "every": True}),
        ("ann", {"add": ["Beta Phones"]}),  # admins reach every company
        ("nobody", {"every": True}),
    ]
    for name, change in refused:
        with pytest.raises(HostError) as refusal:
            access.set_companies(store, name, **change)
        assert "\n" not in str(refusal.value), change
    assert access.company_names(store) == before


def test_a_sqlite_database_of_the_previous_version_keeps_every_account_reaching_every_company(tmp_path):
    path = tmp_path / "old.db"
    old = sqlite_utils.Database(path)
    migrations.apply(old, stop_before="0015_user_companies")
    old.execute("INSERT INTO companies (name, name_key, created_at) VALUES ('Old Co', 'old co', 'd')")
    old.execute("INSERT INTO users (name, role, password_hash, created_at) VALUES ('walt', 'warehouse', 'x', 'd')")
    old.conn.commit()
    old.close()
    db = connect(path)
    assert access.for_user(db, users.get_user_by_name(db, "walt")) == EVERY
    assert db["user_companies"].pks == ["user_id", "company_id"]


def test_a_postgresql_database_of_the_previous_version_keeps_every_account_reaching_every_company(pg_url):
    db = PgDatabase(pg_url)
    pg_migrations.migrate(db, until="0009_order_id_search")
    with db.write():
        db.execute("INSERT INTO users (name, role, password_hash, created_at) VALUES ('walt', 'warehouse', 'x', 'd')")
    db.close()
    db = connect(pg_url)
    try:
        assert access.for_user(db, users.get_user_by_name(db, "walt")) == EVERY
        assert "0010_user_companies" in pg_migrations.applied(db)
    finally:
        db.close()


def _import(db, company_id: int, source_order_id: str, *, cancelled: bool = False) -> None:
    order = ChannelOrder(
        source_order_id=source_order_id, created_at=T0, updated_at=T0, currency="EUR", subtotal=Decimal("30.00"),
        tax_total=Decimal("0"), grand_total=Decimal("30.00"), channel_cancelled=cancelled,
        lines=[OrderLine(source_line_id="L1", sku="SKU-1", title="Phone", quantity=1, unit_price=Decimal("30.00"))],
    )  # fmt: skip
    with write(db):
        assert orders.upsert_each(db, company_id, "backmarket_pro", [order], None, orders.ImportStats()) == []


def test_every_grid_query_keeps_to_the_companies_it_is_given(store):
    acme, beta = add_company(store, "Acme Refurb"), add_company(store, "Beta Phones")
    _import(store, acme.id, "A-1")
    _import(store, beta.id, "B-1")
    _import(store, beta.id, "B-2", cancelled=True)
    jobs.enqueue(store, beta.id, "import_orders", {"since": None})
    with write(store):
        store.execute("UPDATE orders SET payment_status = 'Beta only' WHERE company_id = :id", {"id": beta.id})
    mine, nobody = Access(frozenset({acme.id})), Access(frozenset())
    assert [c["name"] for c in queries.companies_overview(store, mine)] == ["Acme Refurb"]
    assert [c["name"] for c in queries.companies_overview(store, EVERY)] == ["Acme Refurb", "Beta Phones"]
    assert queries.companies_overview(store, nobody) == []
    assert queries.orders_page(store, {}, mine).total == 1
    assert queries.orders_page(store, {"company": str(beta.id)}, mine).total == 0
    assert queries.orders_page(store, {"q": "B-"}, mine).total == 0
    assert queries.orders_page(store, {"company": str(beta.id)}, EVERY).total == 2
    assert queries.payment_statuses(store, mine) == ["Fully Charged"]
    assert queries.payment_statuses(store, EVERY) == ["Beta only", "Fully Charged"]
    assert queries.payment_statuses(store, nobody) == []
    assert [c["name"] for c in queries.company_choices(store, mine)] == ["Acme Refurb"]
    assert [c["name"] for c in queries.company_choices(store, EVERY)] == ["Acme Refurb", "Beta Phones"]
    assert queries.company_choices(store, nobody) == []
    assert queries.jobs_page(store, {}, mine).total == 0 and queries.jobs_page(store, {}, EVERY).total == 1
    assert queries.attention_orders(store, mine) == []
    assert [o["source_order_id"] for o in queries.attention_orders(store, EVERY)] == ["B-2"]
    assert queries.failed_uploads(store, mine) == []
