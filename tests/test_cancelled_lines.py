"""Lines the channel cancelled, through the real CLI, a real SQLite file and the Back Market Pro
sandbox: flagged on download, shown, not shipped, not waited for by Fully Shipped; shipping what
the channel cancelled needs an explicit confirmation, which the Change Log keeps."""

from __future__ import annotations

import pytest
import sqlite_utils
from support import db_digest

from host.records import audit
from host.records.orders import CONFIRMED_ACTION
from host.store.db import connect
from host.store.migrations import SCHEMA_VERSION, migrations

# tracking numbers UPS would issue (1Z + 16), so tracking-number checks do not turn these tests into lies
UPS_1, UPS_2 = "1Z999AA10123456784", "1Z12345E6605272234"


def _two_line_order(sandbox) -> dict:
    """An unfulfilled, uncancelled order of the sandbox with at least two lines of different SKUs."""
    return next(
        o for o in sandbox.orders()
        if o["fulfillment_status"] == "unfulfilled" and not o["cancelled"] and len(o["line_items"]) >= 2
        and len({line["sku"] for line in o["line_items"]}) == len(o["line_items"])
    )  # fmt: skip


def _imported(run, company: str, source_id: str) -> dict:
    job = run.json("import-orders", company)
    assert job["status"] == "Completed", job
    (order,) = [o for o in run.json("orders", "list") if o["source_order_id"] == source_id]
    return run.json("orders", "show", str(order["id"]))


def test_a_line_cancelled_on_the_channel_is_imported_flagged_and_shown_in_orders_show(run, company, sandbox):
    target = _two_line_order(sandbox)
    gone = target["line_items"][0]
    sandbox.cancel_line(target["id"], gone["id"])
    order = _imported(run, company, target["id"])
    flags = {line["source_line_id"]: line["channel_cancelled"] for line in order["lines"]}
    assert flags == {line["id"]: line["id"] == gone["id"] for line in target["line_items"]}
    assert order["channel_cancelled"] is False  # the rest of the order stands
    text = run("orders", "show", str(order["id"])).stdout
    (shown,) = [row for row in text.splitlines() if f"line {gone['sku']} " in row]
    assert "[CANCELLED ON THE CHANNEL: not shipped]" in shown
    assert text.count("CANCELLED ON THE CHANNEL") == 1


def test_a_line_cancelled_after_the_import_is_flagged_by_the_next_download(run, company, sandbox):
    target = _two_line_order(sandbox)
    order = _imported(run, company, target["id"])
    assert not any(line["channel_cancelled"] for line in order["lines"])
    gone = target["line_items"][-1]
    sandbox.cancel_line(target["id"], gone["id"])
    run("worker", "--once", "--download-every", "0")
    again = run.json("orders", "show", str(order["id"]))
    assert [line["source_line_id"] for line in again["lines"] if line["channel_cancelled"]] == [gone["id"]]
    assert again["status"] == order["status"] == "In Process"  # staff's field is left alone


def test_shipping_skips_the_cancelled_line_and_the_order_is_fully_shipped_and_uploads(run, company, sandbox):
    target = _two_line_order(sandbox)
    sandbox.cancel_line(target["id"], target["line_items"][0]["id"])
    order = _imported(run, company, target["id"])
    open_lines = [line for line in order["lines"] if not line["channel_cancelled"]]
    # one line left to ship: a plain IMEI belongs to it (no SKU=SERIAL needed)
    serial = ["--serial", "356789012345678"] if len(open_lines) == 1 else []
    shipped = run.json("orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", UPS_1, *serial)
    assert shipped["shipping_status"] == "Fully Shipped"
    by_id = {line["id"]: line for line in shipped["lines"]}
    assert {sl["order_line_id"] for sl in shipped["shipments"][0]["lines"]} == {line["id"] for line in open_lines}
    assert all(by_id[line["id"]]["quantity_shipped"] == 0 for line in order["lines"] if line["channel_cancelled"])
    if serial:
        assert shipped["shipments"][0]["lines"][0]["serial_numbers"] == ["356789012345678"]
    run("worker", "--once")
    channel = {o["id"]: o for o in sandbox.orders()}[target["id"]]
    assert channel["fulfillment_status"] == "fulfilled"  # the channel took it: nothing cancelled was sent
    assert {sl["line_id"] for sl in channel["shipments"][0]["lines"]} == {line["source_line_id"] for line in open_lines}
    assert run.json("orders", "show", str(order["id"]))["source_updated_for_shipping"] is True


def test_a_fully_shipped_order_is_not_shipped_again_nor_one_whose_every_line_was_cancelled(
    run, company, sandbox, db_target
):
    target = _two_line_order(sandbox)
    first = _imported(run, company, target["id"])
    run("orders", "ship", str(first["id"]), "--carrier", "UPS", "--tracking", UPS_1)
    shipped = run.json("orders", "show", str(first["id"]))
    assert shipped["shipping_status"] == "Fully Shipped"
    before = db_digest(db_target)
    again = run("orders", "ship", str(first["id"]), "--carrier", "UPS", "--tracking", UPS_2, ok=False)
    assert again.exit_code != 0 and "already Fully Shipped" in again.output
    other = next(o for o in sandbox.orders() if o["fulfillment_status"] == "unfulfilled" and not o["cancelled"]
                 and o["id"] != target["id"] and len(o["line_items"]) >= 2)  # fmt: skip
    for line in other["line_items"][:-1]:
        sandbox.cancel_line(other["id"], line["id"])
    sandbox.cancel_line(other["id"], other["line_items"][-1]["id"])  # every line: the order is cancelled too
    order = _imported(run, company, other["id"])
    assert order["channel_cancelled"] and all(line["channel_cancelled"] for line in order["lines"])
    before = db_digest(db_target)
    result = run("orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", UPS_2, ok=False)
    assert result.exit_code != 0 and "was cancelled on the channel" in result.output
    assert db_digest(db_target) == before


def test_shipping_an_order_cancelled_on_the_channel_is_refused_and_changes_nothing(run, company, sandbox, db_target):
    target = _two_line_order(sandbox)
    sandbox.cancel_order(target["id"])
    order = _imported(run, company, target["id"])
    assert order["channel_cancelled"] is True
    before = db_digest(db_target)
    result = run("orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", UPS_1, ok=False)
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "was cancelled on the channel" in lines[0] and "--confirm-cancelled" in lines[0]
    assert db_digest(db_target) == before
    assert run.json("orders", "show", str(order["id"]))["shipments"] == []


def test_with_confirm_cancelled_it_ships_and_the_change_log_names_who_confirmed(run, company, sandbox, db_target):
    target = _two_line_order(sandbox)
    sandbox.cancel_order(target["id"])
    order = _imported(run, company, target["id"])
    shipped = run.json("orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", UPS_1,
                       "--confirm-cancelled")  # fmt: skip
    assert shipped["shipping_status"] == "Fully Shipped"
    assert len(shipped["shipments"][0]["lines"]) == len(target["line_items"])  # staff confirmed shipping it all
    (entry,) = [e for e in audit.entries(connect(db_target)) if e["action"] == CONFIRMED_ACTION]
    assert entry["target"] == f"order {target['id']}" and entry["actor"].startswith("cli:")
    assert entry["details"]["cancelled on the channel"] == "the order"
    assert entry["details"]["confirmed by"] == entry["actor"]
    assert entry["details"]["tracking"] == UPS_1


def test_a_serial_naming_a_cancelled_line_is_refused_unless_confirmed(run, company, sandbox, db_target):
    target = _two_line_order(sandbox)
    gone = target["line_items"][0]
    sandbox.cancel_line(target["id"], gone["id"])
    order = _imported(run, company, target["id"])
    before = db_digest(db_target)
    refused = run("orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", UPS_1,
                  "--serial", f"{gone['sku']}=356789012345678", ok=False)  # fmt: skip
    assert refused.exit_code != 0
    assert f"line {gone['sku']}" in refused.output and "cancelled on the channel" in refused.output
    assert db_digest(db_target) == before
    shipped = run.json("orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", UPS_1,
                       "--serial", f"{gone['sku']}=356789012345678", "--confirm-cancelled")  # fmt: skip
    cancelled_id = next(line["id"] for line in order["lines"] if line["channel_cancelled"])
    assert cancelled_id in {sl["order_line_id"] for sl in shipped["shipments"][0]["lines"]}
    (entry,) = [e for e in audit.entries(connect(db_target)) if e["action"] == CONFIRMED_ACTION]
    assert entry["details"]["lines shipped anyway"] == [gone["sku"]]
    assert entry["details"]["cancelled on the channel"] == "lines"


def test_an_order_without_cancelled_lines_ships_without_a_change_log_entry(run, company, sandbox, db_target):
    target = _two_line_order(sandbox)
    order = _imported(run, company, target["id"])
    run("orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", UPS_1, "--confirm-cancelled")
    assert [e for e in audit.entries(connect(db_target)) if e["action"] == CONFIRMED_ACTION] == []


# -- the schema ----------------------------------------------------------------------------------


@pytest.mark.sqlite_only("SQLite's legacy migration path; PostgreSQL's: tests/store/test_pg_migrations.py")
def test_a_version_8_database_gains_the_line_flag_and_keeps_its_lines(db_target):
    old = sqlite_utils.Database(db_target)
    migrations.apply(old, stop_before="0009_cancelled_lines")
    old.execute("INSERT INTO companies (name, created_at) VALUES ('Old Co', '2025-01-01T00:00:00.000000Z')")
    old.execute(
        "INSERT INTO orders (company_id, channel, source_order_id, payment_status, order_date, channel_updated_at,"
        " currency, subtotal, shipping_total, tax, grand_total, commission, total_cost, imported_at, updated_at)"
        " VALUES (1, 'bmp', 'A-1', 'Fully Charged', 'd', 'd', 'EUR', '20.00', '0', '0', '20.00', '2.00', '22.00',"
        " 'd', 'd')"
    )
    old.execute(
        "INSERT INTO order_lines (order_id, source_line_id, sku, title, quantity, unit_price, tax)"
        " VALUES (1, 'L1', 'SKU', 'Phone', 2, '10.00', '1.90')"
    )
    old.conn.commit()
    assert old.execute("PRAGMA user_version").fetchone()[0] == 8
    old.close()
    db = connect(db_target)
    assert db.execute("SELECT sku, quantity, channel_cancelled FROM order_lines").fetchall() == [("SKU", 2, 0)]
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


@pytest.mark.sqlite_only("SQLite's legacy migration path; PostgreSQL's: tests/store/test_pg_migrations.py")
def test_a_database_with_later_steps_but_not_this_one_gains_the_flag_and_keeps_its_version(db_target):
    """A database an earlier build migrated past 0009 without it (steps merged in another
    order): the step runs, and the database does not claim an older version afterwards."""
    db = sqlite_utils.Database(db_target)
    migrations.apply(db)  # the old steps' history: one made from the baseline has no step 0009 to miss
    db.execute("ALTER TABLE order_lines DROP COLUMN channel_cancelled")
    db.execute(f"DELETE FROM {migrations.migrations_table} WHERE name = '0009_cancelled_lines'")
    db.conn.commit()
    db.close()
    again = connect(db_target)
    assert "channel_cancelled" in again["order_lines"].columns_dict
    assert again.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
