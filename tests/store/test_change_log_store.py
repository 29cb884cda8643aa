"""The Change Log of every change on both stores (SQLite and PostgreSQL): who made it (a web
user, ``cli:<user>``, ``system``) is kept with where it came from, the channel's changes are one
entry per order changed and none for an order read again unchanged, Source Updated for
Shipping once per order, and the filter by who reads the stored source."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from host.records import audit, orders
from host.records.companies import add_company
from host.store.db import write
from plugin_spec import ChannelOrder, OrderLine, UploadResult

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
UPS = "1Z999AA10123456784"


def _order(source_id: str, *, updated: datetime = T0, paid: str = "paid", cancelled: bool = False) -> ChannelOrder:
    return ChannelOrder(
        source_order_id=source_id, created_at=T0, updated_at=updated, currency="EUR", subtotal=Decimal("30.00"),
        tax_total=Decimal("0"), grand_total=Decimal("30.00"), channel_cancelled=cancelled,
        channel_financial_status=paid,
        lines=[OrderLine(source_line_id="L1", sku="SKU-1", title="Phone", quantity=1, unit_price=Decimal("30.00"))],
    )  # fmt: skip


def _import(db, company_id: int, batch: list[ChannelOrder]) -> orders.ImportStats:
    stats = orders.ImportStats()
    with write(db):
        assert orders.upsert_each(db, company_id, "backmarket_pro", batch, None, stats) == []
    return stats


def _log(db) -> list[tuple[str, str, str, str | None]]:
    return [(e["actor"], e["source"], e["action"], e["target"]) for e in reversed(audit.entries(db, limit=1000))]


def test_every_source_is_kept_and_the_channel_writes_one_entry_per_order_it_changed(store):
    company = add_company(store, "Acme Refurb", actor=audit.Actor("cli:root", audit.CLI))
    first = [_order("SO-1"), _order("SO-2"), _order("SO-3")]
    assert _import(store, company.id, first).inserted == 3
    assert _import(store, company.id, first).unchanged == 3  # read again unchanged
    later = T0 + timedelta(hours=1)
    stats = _import(store, company.id, [
        _order("SO-1", updated=later, paid="refunded", cancelled=True),
        _order("SO-2", updated=later, paid="partially_refunded"),
        _order("SO-3", updated=later),  # its timestamp only
    ])  # fmt: skip
    assert stats.updated == 3
    assert _import(store, company.id, [_order("SO-2", updated=later, paid="partially_refunded")]).unchanged == 1
    so3 = next(o for o in orders.list_orders(store, company.id) if o["source_order_id"] == "SO-3")
    orders.ship_order(store, so3["id"], carrier="UPS", tracking_number=UPS, actor="sue")
    (due,) = orders.shipments_to_upload(store, company.id)
    for _ in range(2):  # a late duplicate answer sets nothing twice
        orders.record_upload_results(store, [UploadResult(shipment_id=due.shipment_id, ok=True)])
    assert _log(store) == [
        ("cli:root", "cli", "company added", "Acme Refurb"),
        ("system", "system", "order cancelled on the channel", "order SO-1"),
        ("system", "system", "order status changed by the channel", "order SO-2"),
        ("sue", "web", "order shipped", "order SO-3"),
        ("system", "system", "Source Updated for Shipping set", "order SO-3"),
    ]
    cancelled = audit.entries(store, source="system")[-1]
    assert cancelled["details"] == {
        "flagged for staff": True, "channel payment status": {"from": "paid", "to": "refunded"}
    }  # fmt: skip
    assert [e["who"] for e in audit.entries(store, source="cli")] == ["Operator (cli:root)"]
    assert [e["who"] for e in audit.entries(store, source="web")] == ["sue"]
    assert {e["who"] for e in audit.entries(store, source="system")} == {"cartplugin (automatic)"}


def test_a_web_user_called_system_is_a_person_on_both_stores(store):
    company = add_company(store, "Acme Refurb", actor="system")  # a plain name: a web user's
    (entry,) = audit.entries(store, company_id=company.id)
    assert (entry["actor"], entry["source"], entry["who"]) == ("system", "web", "system")
    assert audit.entries(store, source="system") == []


def test_entries_written_before_the_step_keep_their_source(db_target):
    """Steps 0017 (SQLite) / 0012 (PostgreSQL): an entry of the command line written before it
    (``root (command line)``) is the command line's; every other one a web user's."""
    old_entries = [("ann", "company added"), ("root (command line)", "Queued Job priority changed")]
    if isinstance(db_target, str):  # PostgreSQL: every step before this one
        from host.store import pg_migrations
        from host.store.pg import PgDatabase

        names = [name for name, _ in pg_migrations.steps]
        old = PgDatabase(db_target)
        pg_migrations.migrate(old, until=names[names.index("0012_change_log_source") - 1])
        with old.write():
            for actor, action in old_entries:
                old.execute(
                    "INSERT INTO audit_log (at, actor, action) VALUES ('d', :actor, :action)",
                    {"actor": actor, "action": action},
                )
        old.close()
    else:
        import sqlite_utils

        from host.store.migrations import migrations

        legacy = sqlite_utils.Database(db_target)
        migrations.apply(legacy, stop_before="0017_change_log_source")
        for actor, action in old_entries:
            legacy.execute(
                "INSERT INTO audit_log (at, actor, action) VALUES ('d', :actor, :action)",
                {"actor": actor, "action": action},
            )
        legacy.conn.commit()
        legacy.close()
    from host.store.db import connect

    db = connect(str(db_target))
    try:
        assert [(e["actor"], e["source"]) for e in reversed(audit.entries(db))] == [
            ("ann", "web"), ("root (command line)", "cli")
        ]  # fmt: skip
        assert [e["action"] for e in audit.entries(db, source="cli")] == ["Queued Job priority changed"]
    finally:
        db.close()
