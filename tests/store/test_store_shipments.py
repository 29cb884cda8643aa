"""Void Shipment, Update Tracking and Retry on both backends (a SQLite file and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from correcting_plugin import Correcting
from support import registered

from host.errors import HostError
from host.records import orders, shipments
from host.records.companies import add_company
from host.store.db import write
from plugin_spec import ChannelOrder, OrderLine, UploadResult

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def shipped(store):
    """An order of two units on a channel that takes corrections, shipped with one UPS number."""
    company = add_company(store, "Acme Refurb")
    order = ChannelOrder(
        source_order_id="SO-1", created_at=T0, updated_at=T0, currency="EUR", subtotal=Decimal("200.00"),
        tax_total=Decimal("0"), grand_total=Decimal("200.00"),
        lines=[OrderLine(source_line_id="L1", sku="SKU-1", title="Phone", quantity=2, unit_price=Decimal("100.00"))],
    )  # fmt: skip
    with registered(Correcting(name="correcting_shop"), "correcting_shop"):
        with write(store):
            orders.upsert_each(store, company.id, "correcting_shop", [order], None, orders.ImportStats())
        order_id = next(iter(orders.list_orders(store, company.id)))["id"]
        orders.ship_order(store, order_id, carrier="UPS", tracking_number="1Z999AA10123456784")
        yield company, order_id


def test_void_unships_the_order_on_both_backends(store, shipped):
    company, order_id = shipped
    voided = shipments.void_shipment(store, order_id, actor="walt")
    assert voided["shipments"] == [] and voided["shipping_status"] == "Unshipped" and voided["status"] == "In Process"
    assert voided["lines"][0]["quantity_shipped"] == 0 and not voided["source_updated_for_shipping"]
    (row,) = store.query(
        "SELECT actor, action, details FROM audit_log WHERE company_id = :company", {"company": company.id}
    )
    assert (row["actor"], row["action"]) == ("walt", "shipment voided")
    assert json.loads(row["details"])["lines"] == {"SKU-1": 2}


def test_a_refusal_waits_retry_makes_it_due_and_update_replaces_on_both_backends(store, shipped):
    company, order_id = shipped
    (due,) = orders.shipments_to_upload(store, company.id)
    orders.record_upload_results(store, [UploadResult(shipment_id=due.shipment_id, ok=False, message="HTTP 422")])
    assert orders.shipments_to_upload(store, company.id) == []  # waits for staff
    shipments.retry_upload(store, order_id, actor="walt")
    (due,) = orders.shipments_to_upload(store, company.id)
    orders.record_upload_results(store, [UploadResult(shipment_id=due.shipment_id, ok=True)])
    with pytest.raises(HostError, match="cannot be voided"):
        shipments.void_shipment(store, order_id, due.shipment_id, actor="walt")
    shipments.update_tracking(store, order_id, tracking_number="1Z12345E6605272234", actor="walt")
    (due,) = orders.shipments_to_upload(store, company.id)
    assert due.replaces_tracking_number == "1Z999AA10123456784" and due.tracking_number == "1Z12345E6605272234"
    orders.record_upload_results(store, [UploadResult(shipment_id=due.shipment_id, ok=True)])
    shown = orders.show_order(store, order_id)
    assert shown["source_updated_for_shipping"] and shown["shipments"][0]["replaces_tracking"] is None
