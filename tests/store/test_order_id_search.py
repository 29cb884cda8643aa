"""Manage Orders finds an order on any part of its Channel Order ID, through an index, on both stores."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import sqlite_utils

from host.records import order_search, orders, queries
from host.records.access import EVERY
from host.records.companies import add_company
from host.store import pg_migrations
from host.store.db import connect, write
from host.store.migrations import migrations
from host.store.pg import PgDatabase
from plugin_spec import ChannelOrder, OrderLine

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
IDS = ["BMP-11761108", "BMP-11761109", "BMP-20000001", "bmp-1_6%x"]


def order(source_id: str, *, updated: datetime = T0, cancelled: bool = False) -> ChannelOrder:
    return ChannelOrder(
        source_order_id=source_id, created_at=T0, updated_at=updated, currency="EUR",
        subtotal=Decimal("100.10"), tax_total=Decimal("16.68"), grand_total=Decimal("100.10"),
        channel_cancelled=cancelled, buyer_email="buyer@example.com",
        lines=[OrderLine(source_line_id="L1", sku="SKU-1", title="Phone", quantity=1, unit_price=Decimal("100.10"))],
    )  # fmt: skip


def import_orders(db, company_id: int, batch: list[ChannelOrder]) -> orders.ImportStats:
    stats = orders.ImportStats()
    with write(db):
        assert orders.upsert_each(db, company_id, "backmarket_pro", batch, Decimal("10"), stats) == []
    return stats


def found(db, q: str, **more: str) -> list[str]:
    return [row["source_order_id"] for row in queries.orders_page(db, {"q": q, **more}, EVERY).rows]


def test_part_of_a_channel_order_id_finds_the_order_in_any_case(store):
    company = add_company(store, "Acme Refurb")
    import_orders(store, company.id, [order(i) for i in IDS])
    assert found(store, "11761108") == ["BMP-11761108"]
    assert found(store, "1176110") == ["BMP-11761109", "BMP-11761108"]  # newest first, as the grid sorts
    assert found(store, "bmp-2000") == ["BMP-20000001"]
    assert found(store, "  761108 ") == ["BMP-11761108"]
    assert found(store, "BMP-11761108") == ["BMP-11761108"]  # the whole id still finds it
    page = queries.orders_page(store, {"q": "1176"}, EVERY)
    assert page.total == 2 and page.filters == {"q": "1176"}
    assert found(store, "99999") == []
    assert found(store, "1176", company=str(company.id + 1)) == []  # other filters still apply


def test_wildcards_and_quotes_in_a_search_are_plain_text(store):
    company = add_company(store, "Acme Refurb")
    import_orders(store, company.id, [order(i) for i in IDS])
    assert found(store, "1_6") == ["bmp-1_6%x"]
    assert found(store, "6%x") == ["bmp-1_6%x"]
    assert found(store, "1%1") == []  # a % typed is not "anything"
    assert found(store, 'a"b OR c') == []  # no search syntax: a quote is a character
    assert found(store, "BMP* NOT x") == []


def test_fewer_than_three_characters_match_a_whole_id_only_and_the_grid_says_why(store):
    company = add_company(store, "Acme Refurb")
    import_orders(store, company.id, [order(i) for i in [*IDS, "X9"]])
    assert found(store, "08") == []
    assert found(store, "X9") == ["X9"]
    assert order_search.hint("08") == order_search.SHORT_HINT
    assert "at least 3 characters" in order_search.SHORT_HINT
    assert order_search.hint("117") is None and order_search.hint("") is None


def test_orders_imported_and_updated_after_the_migration_are_found_once(store):
    company = add_company(store, "Acme Refurb")
    import_orders(store, company.id, [order("BMP-11761108")])
    assert found(store, "761108") == ["BMP-11761108"]
    # a later download: one new order, one changed on the channel, in one batch
    stats = import_orders(
        store, company.id, [order("BMP-11761108", updated=T0 + timedelta(hours=1), cancelled=True),
                            order("BMP-11761200", updated=T0 + timedelta(hours=1))]
    )  # fmt: skip
    assert (stats.inserted, stats.updated) == (1, 1)
    assert found(store, "117612") == ["BMP-11761200"]
    assert found(store, "1176") == ["BMP-11761200", "BMP-11761108"]
    assert queries.orders_page(store, {"q": "761108", "cancelled": "yes"}, EVERY).total == 1


def test_an_order_that_cannot_be_stored_leaves_nothing_in_the_index(store):
    company = add_company(store, "Acme Refurb")
    broken = order("BMP-55500001").model_copy(update={"lines": [*order("x").lines, *order("x").lines]})
    stats = orders.ImportStats()
    with write(store):  # two lines with one line id: that order is refused, the other is kept
        failed = orders.upsert_each(store, company.id, "backmarket_pro", [broken, order("BMP-55500002")],
                                    Decimal("10"), stats)  # fmt: skip
    assert [o.source_order_id for o, _ in failed] == ["BMP-55500001"]
    assert found(store, "555000") == ["BMP-55500002"]
    import_orders(store, company.id, [order("BMP-55500001")])
    assert found(store, "555000") == ["BMP-55500001", "BMP-55500002"]


def test_an_order_deleted_or_renumbered_by_hand_leaves_the_sqlite_index_right(tmp_path):
    db = connect(tmp_path / "cart.db")
    company = add_company(db, "Acme Refurb")
    import_orders(db, company.id, [order(i) for i in IDS[:3]])
    with write(db):  # what a repair script might do; the triggers keep the index in step
        db.execute("UPDATE orders SET source_order_id = 'BMP-99761108' WHERE source_order_id = 'BMP-11761108'")
        gone = db.execute("SELECT id FROM orders WHERE source_order_id = 'BMP-11761109'").fetchone()[0]
        db.execute("DELETE FROM order_lines WHERE order_id = ?", [gone])
        db.execute("DELETE FROM orders WHERE id = ?", [gone])
    assert found(db, "1176110") == []
    assert found(db, "997611") == ["BMP-99761108"]
    assert db.execute(f"INSERT INTO {order_search.FTS_TABLE} ({order_search.FTS_TABLE}) VALUES ('integrity-check')")
    db.close()


def _plan(db, q: str) -> list[str]:
    """The plan of the grid's page query, as the store runs it."""
    select, _, params = queries.orders_sql({"q": q}, "id", True, 1, queries.PAGE_SIZE, queries.backend_of(db))
    if queries.backend_of(db) == "postgresql":
        return [row[0].strip() for row in db.execute("EXPLAIN " + select, params).fetchall()]
    return queries.explain(db, select, params)


#: 50,000 orders in one statement both stores take, so that the planner weighs a real table
_BULK = (
    "INSERT INTO orders (company_id, channel, source_order_id, payment_status, order_date, channel_updated_at,"
    " currency, subtotal, shipping_total, tax, grand_total, commission, total_cost, imported_at, updated_at)"
    " WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 50000)"
    " SELECT ?, 'backmarket_pro', 'BMP-' || (30000000 + k), 'Fully Charged', 'd', 'd', 'EUR', '1', '0', '0',"
    " '1', '0', '1', 'd', 'd' FROM n"
)


def test_the_grid_searches_part_of_an_id_through_the_index(store):
    company = add_company(store, "Acme Refurb")
    with write(store):
        store.execute(_BULK, [company.id])
        if queries.backend_of(store) == "sqlite":  # rows written around the host's import path
            store.execute(order_search.REBUILD)
    import_orders(store, company.id, [order("BMP-11761108")])
    store.execute("ANALYZE")
    assert found(store, "761108") == ["BMP-11761108"]
    assert queries.orders_page(store, {"q": "3001234"}, EVERY).total == 10
    plan = _plan(store, "761108")
    if queries.backend_of(store) == "postgresql":
        assert any(order_search.PG_INDEX in step for step in plan), plan
        assert not any(step.startswith("->  Seq Scan on orders") for step in plan), plan
    else:
        assert "SCAN orders_id_search VIRTUAL TABLE INDEX 0:M1" in plan, plan
        assert not [step for step in plan if step.startswith("SCAN o ") or step == "SCAN o"], plan
    assert any("orders_source_grid" in step for step in _plan(store, "76")), _plan(store, "76")  # the whole id


# -- migration of an existing database (backfill) --------------------------------------------


def _raw_order(db, company_id: int, source_id: str) -> None:
    db.execute(
        "INSERT INTO orders (company_id, channel, source_order_id, payment_status, order_date, channel_updated_at,"
        " currency, subtotal, shipping_total, tax, grand_total, commission, total_cost, imported_at, updated_at)"
        " VALUES (?, 'backmarket_pro', ?, 'Fully Charged', 'd', 'd', 'EUR', '10.50', '0', '0', '10.50', '0', '0',"
        " 'd', 'd')",
        [company_id, source_id],
    )


def test_a_sqlite_database_with_orders_gains_the_search_index_with_its_orders(tmp_path):
    path = tmp_path / "old.db"
    old = sqlite_utils.Database(path)
    migrations.apply(old, stop_before="0014_order_id_search")
    old.execute("PRAGMA user_version = 8")  # what cartplugin with schema version 8 wrote
    old.execute("INSERT INTO companies (name, created_at) VALUES ('Old Co', '2025-01-01T00:00:00.000000Z')")
    for source_id in ("BMP-11761108", "BMP-20000001"):
        _raw_order(old, 1, source_id)
    old.conn.commit()
    old.close()
    db = connect(path)
    assert migrations.pending(db) == []
    assert order_search.FTS_TABLE in db.table_names()
    assert found(db, "11761108") == ["BMP-11761108"]
    assert found(db, "bmp-") == ["BMP-20000001", "BMP-11761108"]
    import_orders(db, 1, [order("BMP-11761300")])
    assert found(db, "1176") == ["BMP-11761300", "BMP-11761108"]
    db.close()


def test_a_postgresql_database_with_orders_gains_the_trigram_index(pg_url):
    old = PgDatabase(pg_url)
    pg_migrations.migrate(old, until="0003_channel_money")
    with old.write():
        old.execute("INSERT INTO companies (name, created_at) VALUES ('Old Co', 'd')")
        company_id = old.execute("SELECT id FROM companies").fetchone()[0]
        for source_id in ("BMP-11761108", "BMP-20000001"):
            _raw_order(old, company_id, source_id)
    old.close()
    db = connect(pg_url)
    assert "0009_order_id_search" in pg_migrations.applied(db)
    assert db.execute("SELECT 1 FROM pg_indexes WHERE indexname = ?", [order_search.PG_INDEX]).fetchone()
    assert found(db, "11761108") == ["BMP-11761108"]
    assert found(db, "bmp-") == ["BMP-20000001", "BMP-11761108"]
    db.close()


def test_without_rights_to_create_pg_trgm_the_database_opens_and_the_search_still_answers(postgres, caplog):
    name = "order_search_no_trgm"
    postgres.drop_database(name)
    superuser_url = postgres.create_database(name)
    with psycopg.connect(superuser_url, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS cart_app")
        conn.execute("CREATE ROLE cart_app LOGIN")
    with psycopg.connect(superuser_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION citext")  # what an operator did for this user once: step 0001 needs it
        conn.execute("GRANT ALL ON SCHEMA public TO cart_app")  # tables, but no CREATE on the database
    app_url = superuser_url.replace("cartplugin@", "cart_app@", 1)
    try:
        with caplog.at_level(logging.WARNING, logger="host.records.order_search"):
            db = connect(app_url)
        assert pg_migrations.up_to_date(db)
        assert not db.execute("SELECT 1 FROM pg_indexes WHERE indexname = ?", [order_search.PG_INDEX]).fetchone()
        (warning,) = [r.getMessage() for r in caplog.records if r.name == "host.records.order_search"]
        assert "CREATE EXTENSION IF NOT EXISTS pg_trgm" in warning and order_search.PG_INDEX in warning
        company = add_company(db, "Acme Refurb")
        import_orders(db, company.id, [order(i) for i in IDS])
        assert found(db, "11761108") == ["BMP-11761108"]  # read from the table: right, if slower
        db.close()
        # what docs/operations.md tells the database owner to run; the next open needs nothing more
        with psycopg.connect(superuser_url, autocommit=True) as conn:
            for statement in order_search.PG_OPERATOR_SQL.split(";"):
                if statement.strip():
                    conn.execute(statement)
        db = connect(app_url)
        assert db.execute("SELECT 1 FROM pg_indexes WHERE indexname = ?", [order_search.PG_INDEX]).fetchone()
        assert found(db, "761108") == ["BMP-11761108"]
        db.close()
    finally:
        postgres.drop_database(name)
        with psycopg.connect(postgres.url(), autocommit=True) as conn:
            conn.execute("DROP ROLE IF EXISTS cart_app")
