"""Update Tracking on a channel that takes a corrected tracking number (capability
``update_tracking``): the next upload hands the plugin the number it replaces."""

from __future__ import annotations

import pytest
from correcting_plugin import Correcting
from support import db_digest, registered


@pytest.fixture
def correcting(run):
    with registered(Correcting(), "correcting_shop") as plugin:
        run("companies", "add", "Fix Co")
        run("website-settings", "Fix Co", "--store-plugin", "correcting_shop", "--allow-order-download",
            "--allow-tracking-upload")  # fmt: skip
        run("cart-settings", "Fix Co", "--set", "token=spy-token-1234")
        run("test-settings", "Fix Co")
        run("import-orders", "Fix Co")
        yield plugin


def test_update_tracking_replaces_the_recorded_tracking_on_the_next_upload(run, correcting, db_target):
    order = run.json("orders", "list")[0]
    run("orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", "1Z999AA10123456784")
    run("worker", "--once", "--processes", "1")
    assert correcting.tracking == {order["source_order_id"]: "1Z999AA10123456784"}
    before = db_digest(db_target)
    bad = run("orders", "update-tracking", str(order["id"]), "--tracking", "1Z999AA10123456785", ok=False)
    assert bad.exit_code == 1 and "not a UPS tracking number" in bad.output and db_digest(db_target) == before
    result = run("orders", "update-tracking", str(order["id"]), "--tracking", "1Z12345E6605272234")
    assert "uploaded again" in result.output
    (shipment,) = run.json("orders", "show", str(order["id"]))["shipments"]
    assert shipment["upload_state"] == "pending" and shipment["replaces_tracking"] == "1Z999AA10123456784"
    run("worker", "--once", "--processes", "1")
    assert correcting.tracking == {order["source_order_id"]: "1Z12345E6605272234"}
    shown = run.json("orders", "show", str(order["id"]))
    assert shown["source_updated_for_shipping"] is True and shown["shipments"][0]["replaces_tracking"] is None
