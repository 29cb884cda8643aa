"""Lines cancelled on the channel on both stores (SQLite and PostgreSQL): stored on import, flagged
again by a newer copy, skipped by shipping, not waited for by Fully Shipped; the confirmation of
a cancelled order's shipment is in the Change Log in the same transaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from host.records import audit, orders
from host.records.companies import add_company
from host.store import pg_migrations
from host.store.db import connect, write
from host.store.pg import PgDatabase
from plugin_spec import ChannelOrder, OrderLine

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
UPS = "1Z999AA10123456784"


def _order(*cancelled: bool, updated: datetime = T0, order_cancelled: bool = False) -> ChannelOrder:
    return ChannelOrder(
        source_order_id="SO-1", created_at=T0, updated_at=updated, currency="EUR", subtotal=Decimal("30.00"),
        tax_total=Decimal("0"), grand_total=Decimal("30.00"), channel_cancelled=order_cancelled,
        lines=[OrderLine(source_line_id=f"L{i}", sku=f"SKU-{i}", title="Phone", quantity=1, unit_price=Decimal("10.00"),
                         channel_cancelled=flag) for i, flag in enumerate(cancelled)],
    )  # fmt: skip


def _import(db, company_id: int, order: ChannelOrder) -> orders.ImportStats:
    stats = orders.ImportStats()
    with write(db):
        assert orders.upsert_each(db, company_id, "backmarket_pro", [order], None, stats) == []
    return stats


def _flags(db, order_id: int) -> list[bool]:
    return [line["channel_cancelled"] for line in orders.show_order(db, order_id)["lines"]]


def test_a_line_flag_is_stored_kept_by_an_older_copy_and_set_by_a_newer_one(store):
    company = add_company(store, "Acme Refurb")
    _import(store, company.id, _order(False, True, False))
    (row,) = orders.list_orders(store, company.id)
    assert _flags(store, row["id"]) == [False, True, False]
    assert _import(store, company.id, _order(False, False, False)).unchanged == 1  # an older copy: nothing moves
    newer = _import(store, company.id, _order(True, False, False, updated=T0 + timedelta(hours=1)))
    assert newer.updated == 1
    # a cancellation once seen stays (the channel's cancelled states are final)
    assert _flags(store, row["id"]) == [True, True, False]
    assert orders.show_order(store, row["id"])["channel_cancelled"] is False


def test_shipping_skips_cancelled_lines_and_fully_shipped_does_not_wait_for_them(store):
    company = add_company(store, "Acme Refurb")
    _import(store, company.id, _order(True, False, True))
    (row,) = orders.list_orders(store, company.id)
    shipped = orders.ship_order(store, row["id"], carrier="UPS", tracking_number=UPS, serials=["356789012345678"])
    assert shipped["shipping_status"] == orders.FULLY_SHIPPED
    assert [line["quantity_shipped"] for line in shipped["lines"]] == [0, 1, 0]
    assert shipped["shipments"][0]["lines"][0]["serial_numbers"] == ["356789012345678"]
    (upload,) = orders.shipments_to_upload(store, company.id)
    assert [line.source_line_id for line in upload.lines] == ["L1"]
    assert audit.entries(store) == []  # nothing cancelled was shipped: nothing to confirm


def test_a_cancelled_order_ships_only_when_confirmed_and_the_change_log_commits_with_it(store):
    company = add_company(store, "Acme Refurb")
    _import(store, company.id, _order(True, True, order_cancelled=True))
    (row,) = orders.list_orders(store, company.id)
    with pytest.raises(orders.CancelledOnChannel):
        orders.ship_order(store, row["id"], carrier="UPS", tracking_number=UPS)
    assert orders.show_order(store, row["id"])["shipments"] == []
    shipped = orders.ship_order(store, row["id"], carrier="UPS", tracking_number=UPS, confirmed_by="walt")
    assert shipped["shipping_status"] == orders.FULLY_SHIPPED
    assert [line["quantity_shipped"] for line in shipped["lines"]] == [1, 1]
    (entry,) = audit.entries(store)
    assert (entry["actor"], entry["action"], entry["target"]) == ("walt", orders.CONFIRMED_ACTION, "order SO-1")
    assert entry["details"]["lines shipped anyway"] == ["SKU-0", "SKU-1"]


def test_a_postgresql_database_of_the_previous_version_gains_the_line_flag(pg_url):
    db = PgDatabase(pg_url)
    pg_migrations.migrate(db, until="0003_channel_money")
    with db.write():
        db.execute("INSERT INTO companies (name, created_at) VALUES ('Old Co', 'd')")
        db.execute(
            "INSERT INTO orders (company_id, channel, source_order_id, payment_status, order_date, channel_updated_at,"
            " currency, subtotal, shipping_total, tax, grand_total, commission, total_cost, imported_at, updated_at)"
            " VALUES (1, 'bmp', 'A-1', 'Fully Charged', 'd', 'd', 'EUR', '20.00', '0', '0', '20.00', '0', '20.00',"
            " 'd', 'd')"
        )
        db.execute(
            "INSERT INTO order_lines (order_id, source_line_id, sku, title, quantity, unit_price, tax)"
            " VALUES (1, 'L1', 'SKU', 'Phone', 2, '10.00', '0')"
        )
    assert "channel_cancelled" not in db["order_lines"].columns_dict
    db.close()
    db = connect(pg_url)
    assert db.execute("SELECT sku, channel_cancelled FROM order_lines").fetchall() == [("SKU", 0)]
    assert "0004_cancelled_lines" in pg_migrations.applied(db)
    db.close()


def test_an_order_whose_every_line_was_cancelled_has_nothing_to_ship_and_stays_unshipped(store):
    company = add_company(store, "Acme Refurb")
    _import(store, company.id, _order(True, True))  # every line flagged, the order not (a lax plugin)
    (row,) = orders.list_orders(store, company.id)
    with pytest.raises(orders.HostError, match="nothing left to ship: its unshipped lines were cancelled"):
        orders.ship_order(store, row["id"], carrier="UPS", tracking_number=UPS)
    shown = orders.show_order(store, row["id"])
    assert shown["shipping_status"] == orders.UNSHIPPED and shown["shipments"] == []
    assert orders.shipping_status(store, row["id"]) == orders.UNSHIPPED


def test_voiding_the_confirmed_shipment_of_a_cancelled_line_leaves_the_order_fully_shipped(store):
    from host.records import shipments

    company = add_company(store, "Acme Refurb")
    _import(store, company.id, _order(False, True))
    (row,) = orders.list_orders(store, company.id)
    first = orders.ship_order(store, row["id"], carrier="UPS", tracking_number=UPS)
    assert first["shipping_status"] == orders.FULLY_SHIPPED  # the cancelled line is not waited for
    # staff then ship the cancelled line too, confirmed, and think better of it: void that package
    second = orders.ship_order(store, row["id"], carrier="UPS", tracking_number="1Z12345E6605272234",
                               serials=["SKU-1=356789012345678"], confirmed_by="walt")  # fmt: skip
    assert [line["quantity_shipped"] for line in second["lines"]] == [1, 1]
    voided = shipments.void_shipment(store, row["id"], second["shipments"][-1]["id"], actor="walt")
    assert [line["quantity_shipped"] for line in voided["lines"]] == [1, 0]
    assert voided["shipping_status"] == orders.FULLY_SHIPPED  # not Partially Shipped: line 1 stays cancelled
