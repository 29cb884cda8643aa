"""Every domain rule of the help page, through the real CLI, a real SQLite file and the sandbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import pytest
from support import API_KEY, ups_tracking

from host.channel import cursors


def channel_unfulfilled(sandbox) -> dict[str, dict]:
    since = datetime.now(UTC) - timedelta(days=cursors.recent_days())
    return {
        o["id"]: o
        for o in sandbox.orders()
        if o["fulfillment_status"] == "unfulfilled" and datetime.fromisoformat(o["updated_at"]) >= since
    }


def api_calls(sandbox, method: str | None = None, contains: str = "") -> list[dict]:
    return [
        r for r in sandbox.request_log()
        if (method is None or r["method"] == method) and contains in r["path"] and r["key_ok"]
    ]  # fmt: skip


@pytest.fixture
def imported(run, company, sandbox):
    job = run.json("import-orders", company)
    assert job["status"] == "Completed", job
    return {o["source_order_id"]: o for o in run.json("orders", "list")}


def test_import_orders_brings_in_exactly_the_recent_unfulfilled_orders(imported, sandbox):
    expected = channel_unfulfilled(sandbox)
    assert len(expected) >= 5
    assert set(imported) == set(expected)


def test_every_imported_order_is_fully_charged_even_when_unpaid(imported, sandbox):
    expected = channel_unfulfilled(sandbox)
    unpaid = [sid for sid, o in expected.items() if o["financial_status"] != "paid"]
    assert unpaid, "the sandbox should hold unpaid orders"
    assert {o["payment_status"] for o in imported.values()} == {"Fully Charged"}


def test_the_payment_method_is_not_imported(run, imported, sandbox):
    assert all(o["payment_method"] for o in channel_unfulfilled(sandbox).values())
    for order in imported.values():
        shown = run.json("orders", "show", str(order["id"]))
        assert shown["payment_method"] is None
        assert "invoice" not in str(shown) and "card" not in str(shown).lower().replace("cards", "")


def test_tax_is_stored_as_the_channel_sent_it(run, imported, sandbox):
    for sid, channel in channel_unfulfilled(sandbox).items():
        order = run.json("orders", "show", str(imported[sid]["id"]))
        assert order["tax"] == channel["total_tax"]
        assert [line["tax"] for line in order["lines"]] == [line["tax"] for line in channel["line_items"]]
        assert [(line["sku"], line["quantity"], line["unit_price"]) for line in order["lines"]] == [
            (line["sku"], line["quantity"], line["price"]) for line in channel["line_items"]
        ]


def test_commission_is_added_to_total_cost_in_decimal_half_up(imported, sandbox):
    for sid, channel in channel_unfulfilled(sandbox).items():
        total = Decimal(channel["total_price"])
        commission = (total * Decimal("10") / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        order = imported[sid]
        assert order["grand_total"] == channel["total_price"]
        assert order["commission"] == str(commission)
        assert order["total_cost"] == str(total + commission)


def test_reimport_never_duplicates_nor_overwrites_staff_changes(run, imported, sandbox, company):
    first, second = list(imported.values())[:2]
    run("orders", "set-status", str(first["id"]), "On Hold")
    run("orders", "ship", str(second["id"]), "--carrier", "DHL", "--tracking", "JD014600006112345678")
    since = (datetime.now(UTC) - timedelta(days=cursors.recent_days())).date().isoformat()
    job = run.json("import-orders", company, "--since", since)  # read every order again
    assert job["summary"]["inserted"] == 0 and job["summary"]["unchanged"] == len(imported)
    after = {o["source_order_id"]: o for o in run.json("orders", "list")}
    assert len(after) == len(imported)
    assert after[first["source_order_id"]]["status"] == "On Hold"
    assert after[second["source_order_id"]]["shipping_status"] == "Fully Shipped"
    assert [s["tracking_number"] for s in run.json("orders", "show", str(second["id"]))["shipments"]] == [
        "JD014600006112345678"
    ]


def test_new_orders_arrive_automatically_from_the_saved_cursor(run, imported, sandbox):
    new_ids = sandbox.add_orders(3)
    sandbox.clear_request_log()
    run("worker", "--once", "--download-every", "0")
    listing = api_calls(sandbox, "GET", "/orders")
    assert listing and all("updated_at_min" in r["query"] for r in listing)
    after = {o["source_order_id"] for o in run.json("orders", "list")}
    assert set(new_ids) <= after and len(after) == len(imported) + 3


def test_a_channel_cancellation_is_flagged_for_staff_without_changing_the_status(run, imported, sandbox):
    victim = next(iter(imported.values()))
    sandbox.cancel_order(victim["source_order_id"])
    run("worker", "--once", "--download-every", "0")
    order = run.json("orders", "show", str(victim["id"]))
    assert order["channel_cancelled"] is True and order["status"] == "In Process"
    flagged = run.json("orders", "list", "--needs-attention")
    assert [o["id"] for o in flagged] == [victim["id"]]
    run("orders", "set-status", str(victim["id"]), "Cancelled")
    assert run.json("orders", "list", "--needs-attention") == []


def test_tracking_of_fully_shipped_orders_uploads_once_and_sets_source_updated(run, imported, sandbox):
    order = next(iter(imported.values()))
    run("orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", "1Z999AA10000000015",
        "--tracking-url", "https://ups.example/1Z999AA10000000015")  # fmt: skip
    assert run.json("orders", "show", str(order["id"]))["source_updated_for_shipping"] is False
    run("worker", "--once")
    channel = {o["id"]: o for o in sandbox.orders()}[order["source_order_id"]]
    assert [s["tracking_number"] for s in channel["shipments"]] == ["1Z999AA10000000015"]
    assert channel["shipments"][0]["carrier"] == "UPS"
    assert channel["shipments"][0]["tracking_url"] == "https://ups.example/1Z999AA10000000015"
    shown = run.json("orders", "show", str(order["id"]))
    assert shown["source_updated_for_shipping"] is True and shown["shipments"][0]["upload_state"] == "accepted"
    sandbox.clear_request_log()
    run("worker", "--once")
    assert api_calls(sandbox, "POST") == []  # not sent again


def test_unshipped_orders_are_not_uploaded(run, imported, sandbox):
    sandbox.clear_request_log()
    run("worker", "--once")
    assert api_calls(sandbox, "POST") == []


@pytest.mark.parametrize(
    "toggle,method", [("--no-allow-order-download", "GET"), ("--no-allow-tracking-upload", "POST")]
)
def test_with_a_toggle_off_the_plugin_is_never_called_for_that_work(run, imported, sandbox, company, toggle, method):
    order = next(iter(imported.values()))
    run("orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", "1Z999AA10000000024")
    run("website-settings", company, toggle)
    sandbox.add_orders(1)
    sandbox.clear_request_log()
    run("worker", "--once", "--download-every", "0")
    assert api_calls(sandbox, method) == []  # GET: order listing; POST: shipments
    assert api_calls(sandbox, "POST" if method == "GET" else "GET")  # the other work still ran


def test_import_is_refused_while_download_is_off(run, company, db_target):
    from support import db_digest

    run("website-settings", company, "--no-allow-order-download")
    before = db_digest(db_target)
    result = run("import-orders", company, ok=False)
    assert result.exit_code != 0 and "Allow Order Download is off" in result.output
    assert db_digest(db_target) == before


def test_nothing_automatic_runs_until_test_settings_passes(run, bmp, sandbox):
    run("companies", "add", "Untested")
    run(
        "website-settings",
        "Untested",
        "--store-plugin",
        "backmarket_pro",
        "--allow-order-download",
        "--allow-tracking-upload",
    )
    run("cart-settings", "Untested", "--set", f"website_url={sandbox.base_url}", "--set", f"x_api_key={API_KEY}")
    sandbox.clear_request_log()
    run("worker", "--once", "--download-every", "0")
    result = run("import-orders", "Untested", ok=False)
    assert "run Test Settings first" in result.output
    assert sandbox.request_log() == []


def test_test_settings_with_a_wrong_key_fails_readably_and_keeps_the_connection_down(run, bmp, sandbox):
    wrong = "wrong-key-5678abcd"
    run("companies", "add", "Wrong")
    run("website-settings", "Wrong", "--store-plugin", "backmarket_pro", "--allow-order-download")
    run("cart-settings", "Wrong", "--set", f"website_url={sandbox.base_url}", "--set", f"x_api_key={wrong}")
    result = run("test-settings", "Wrong", ok=False)
    assert result.exit_code == 1 and "Test Settings failed" in result.output and wrong not in result.output
    assert run.json("website-settings", "Wrong")["connection_status"] == "failed"


def test_a_refused_upload_is_listed_and_waits_for_staff_not_retried_by_itself(run, imported, sandbox, db_target):
    from host.store.db import connect

    # the channel cancels an order while staff ship it: the channel refuses the tracking (422)
    cancelled = next(iter(imported.values()))
    sandbox.cancel_order(cancelled["source_order_id"])
    run("orders", "ship", str(cancelled["id"]), "--carrier", "UPS", "--tracking", "1Z999AA10000000033")
    run("worker", "--once")
    shown = run.json("orders", "show", str(cancelled["id"]))
    assert shown["shipments"][0]["upload_state"] == "failed" and "422" in shown["shipments"][0]["upload_message"]
    assert shown["source_updated_for_shipping"] is False
    assert [o["id"] for o in run.json("orders", "list", "--upload-failed")] == [cancelled["id"]]
    jobs = run.json("jobs", "list")
    assert jobs[0]["kind"] == "upload_tracking" and jobs[0]["status"] == "Failed"  # nothing accepted
    sandbox.clear_request_log()
    run("worker", "--once")
    assert api_calls(sandbox, "POST") == []  # the channel's refusal stands: not sent again
    connect(db_target).execute("UPDATE shipments SET next_upload_at = '2000-01-01T00:00:00.000000Z'")
    run("worker", "--once")
    assert api_calls(sandbox, "POST") == []  # not even once a retry time is past: staff Retry or Void it


def test_import_orders_again_starts_where_the_last_read_stopped(run, imported, sandbox, company):
    sandbox.clear_request_log()
    job = run.json("import-orders", company)
    assert job["summary"]["inserted"] == 0 and job["summary"]["seen"] < len(imported)
    assert any("read up to there already" in line["message"] for line in job["log"])
    listing = api_calls(sandbox, "GET", "/orders")
    newest = max(o["updated_at"] for o in channel_unfulfilled(sandbox).values())
    assert len(listing) == 1 and listing[0]["query"]["updated_at_min"][:19] == newest[:19]


def test_two_people_shipping_one_order_at_once_ship_it_once(run, imported, db_target):
    import threading

    from host.errors import HostError
    from host.records import orders as host_orders
    from host.store.db import connect

    order_id = next(iter(imported.values()))["id"]
    outcomes: list[str] = []
    start = threading.Barrier(4)

    def ship(n: int) -> None:
        db = connect(db_target)
        start.wait()
        try:
            host_orders.ship_order(db, order_id, carrier="UPS", tracking_number=ups_tracking(n))
            outcomes.append("shipped")
        except HostError as exc:
            outcomes.append(str(exc))
        finally:
            db.close()

    threads = [threading.Thread(target=ship, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("shipped") == 1, outcomes
    assert len(run.json("orders", "show", str(order_id))["shipments"]) == 1


def test_an_import_from_a_later_date_does_not_let_the_cursor_skip_the_gap(run, imported, sandbox, company):
    import time

    gap = sandbox.add_orders(2)  # changed after the cursor, before the --since below
    time.sleep(1.1)
    since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    time.sleep(0.1)
    later = sandbox.add_orders(1)
    job = run.json("import-orders", company, "--since", since)
    assert job["summary"]["inserted"] == 1
    run("worker", "--once", "--download-every", "0")  # the incremental download still sees the gap
    have = {o["source_order_id"] for o in run.json("orders", "list")}
    assert set(gap) | set(later) <= have


def test_an_order_whose_lines_share_an_id_is_set_aside_and_the_rest_import(run, company, db_target):
    from decimal import Decimal as D

    from spy_plugin import SpyChannel

    from host.channel import plugins
    from plugin_spec import ChannelOrder, OrderLine, hookimpl

    class TwinLines(SpyChannel):
        @hookimpl
        def cartplugin_download_orders(self, settings, since, unfulfilled_only):
            now = datetime.now(UTC) - timedelta(hours=1)
            line = OrderLine(source_line_id="1", sku="A", title="A", quantity=1, unit_price=D("1.00"))
            good = ChannelOrder(
                source_order_id="GOOD",
                created_at=now,
                updated_at=now,
                currency="EUR",
                subtotal=D("1.00"),
                tax_total=D("0"),
                grand_total=D("1.00"),
                lines=[line],
            )
            # built without validation, as a careless plugin might: the host must still cope
            twin = ChannelOrder.model_construct(**{**good.__dict__, "source_order_id": "TWIN", "lines": [line, line]})
            return iter([twin, good])

    channel = TwinLines(name="twin_channel")
    plugins.register(channel, name="twin")
    try:
        run("companies", "add", "Twin Co")
        run("website-settings", "Twin Co", "--store-plugin", "twin_channel", "--allow-order-download")
        run("cart-settings", "Twin Co", "--set", "token=abcd1234")
        run("test-settings", "Twin Co")
        job = run.json("import-orders", "Twin Co")
        assert job["status"] == "Partial Success" and job["summary"]["bad_orders"] == 1
        assert any("TWIN not imported: two of its lines share one line id" in entry["message"] for entry in job["log"])
        assert [o["source_order_id"] for o in run.json("orders", "list", "--company", "Twin Co")] == ["GOOD"]
    finally:
        plugins.unregister(channel)


def test_a_tax_with_four_decimals_is_stored_and_shown_exactly_as_the_channel_sent_it(run, imported, sandbox, company):
    (order_id,) = sandbox.add_orders(1)
    order = {o["id"]: o for o in sandbox.orders()}[order_id]
    # a sandbox order has one to four lines: each takes the next of these taxes
    lines = [
        {**line, "tax": tax} for line, tax in zip(order["line_items"], ["0.1235", "1.2", "0.001", "2.5"], strict=False)
    ]
    sandbox.edit_order(order_id, total_tax="1.2345", line_items=lines)
    run("worker", "--once", "--download-every", "0")
    listed = {o["source_order_id"]: o for o in run.json("orders", "list")}[order_id]
    shown = run.json("orders", "show", str(listed["id"]))
    assert shown["tax"] == "1.2345"
    assert [line["tax"] for line in shown["lines"]] == [line["tax"] for line in lines]


def test_an_upload_queued_before_tracking_upload_is_switched_off_sends_nothing_and_ends_cancelled(
    run, imported, sandbox, company, db_target
):
    from host.jobs import queue as jobs
    from host.jobs import runner
    from host.records import companies
    from host.store.db import connect

    order = next(iter(imported.values()))
    run("orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", "1Z999AA10000000042")
    db = connect(db_target)
    try:
        queued, _ = jobs.enqueue(db, companies.get_company(db, company).id, "upload_tracking")
    finally:
        db.close()
    run("website-settings", company, "--no-allow-tracking-upload")
    sandbox.clear_request_log()
    runner.LocalPool(db_target, max_workers=1).drain()
    assert api_calls(sandbox, "POST") == []
    shown = run.json("jobs", "show", str(queued.id))
    assert shown["status"] == "Cancelled" and "Allow Tracking Upload is off" in shown["summary"]["reason"]
    after = run.json("orders", "show", str(order["id"]))
    assert after["source_updated_for_shipping"] is False and after["shipments"][0]["upload_state"] != "accepted"
    assert sandbox.orders() and all(not o["shipments"] for o in sandbox.orders() if o["id"] == order["source_order_id"])


def test_the_schema_refuses_a_second_order_with_the_same_company_channel_and_source_order_id(imported, db_target):
    from host.records.companies import add_company
    from host.store.api import IntegrityError
    from host.store.db import connect

    db = connect(db_target)
    try:
        row = dict(next(db.query("SELECT * FROM orders ORDER BY id LIMIT 1")))
        del row["id"]
        with pytest.raises(IntegrityError, match="(?i)unique"):  # SQLite's UNIQUE, PostgreSQL's unique constraint
            db.execute(f"INSERT INTO orders ({', '.join(row)}) VALUES ({', '.join(':' + c for c in row)})", row)
        # the same channel order id is fine for another company or another channel
        other = {**row, "company_id": add_company(db, "Other Co").id}
        elsewhere = {**row, "channel": "another_channel"}
        for ok in (other, elsewhere):
            db.execute(f"INSERT INTO orders ({', '.join(ok)}) VALUES ({', '.join(':' + c for c in ok)})", ok)
        count = db.execute(
            "SELECT COUNT(*) FROM orders WHERE source_order_id = :sid", {"sid": row["source_order_id"]}
        ).fetchone()[0]
        assert count == 3
    finally:
        db.close()


def test_a_channel_update_keeps_the_status_staff_set(run, imported, sandbox):
    held, cancelled = list(imported.values())[:2]
    run("orders", "set-status", str(held["id"]), "On Hold")
    run("orders", "set-status", str(cancelled["id"]), "On Hold")
    sandbox.edit_order(held["source_order_id"], financial_status="paid")
    sandbox.cancel_order(cancelled["source_order_id"])
    job_count = len(run.json("jobs", "list"))
    run("worker", "--once", "--download-every", "0")
    assert len(run.json("jobs", "list")) > job_count
    for order in (held, cancelled):
        shown = run.json("orders", "show", str(order["id"]))
        assert shown["status"] == "On Hold", shown
    shown = run.json("orders", "show", str(cancelled["id"]))
    assert shown["channel_cancelled"] is True  # the channel's own fields did change


def test_a_run_whose_newest_order_is_older_than_the_saved_cursor_leaves_the_cursor_where_it_was(
    run, company, db_target
):
    from decimal import Decimal as D

    from spy_plugin import SpyChannel

    from host.channel import plugins
    from plugin_spec import ChannelOrder, OrderLine, hookimpl

    now = datetime.now(UTC).replace(microsecond=0)
    newer, older = now - timedelta(days=2), now - timedelta(days=5)

    class Dated(SpyChannel):
        when = newer

        @hookimpl
        def cartplugin_download_orders(self, settings, since, unfulfilled_only):
            self.calls.append(("download_orders", {"since": since}))
            line = OrderLine(source_line_id="1", sku="A", title="A", quantity=1, unit_price=D("1.00"))
            return iter([ChannelOrder(source_order_id=f"AT-{self.when:%d}", created_at=self.when, updated_at=self.when,
                                      currency="EUR", subtotal=D("1.00"), tax_total=D("0"), grand_total=D("1.00"),
                                      lines=[line])])  # fmt: skip

    channel = Dated(name="dated_channel")
    plugins.register(channel, name="dated")
    try:
        run("companies", "add", "Dated Co")
        run("website-settings", "Dated Co", "--store-plugin", "dated_channel", "--allow-order-download")
        run("cart-settings", "Dated Co", "--set", "token=abcd1234")
        run("test-settings", "Dated Co")
        run("import-orders", "Dated Co")
        channel.when = older  # the channel now only answers with an order older than the cursor
        run("import-orders", "Dated Co", "--since", (now - timedelta(days=10)).date().isoformat())
        assert len(run.json("orders", "list", "--company", "Dated Co")) == 2
        run("worker", "--once", "--processes", "1", "--download-every", "0")  # calls are recorded in this process
        assert channel.calls[-1] == ("download_orders", {"since": newer})  # asked from where it was
    finally:
        plugins.unregister(channel)


def test_import_orders_after_an_import_from_a_later_date_still_reads_the_whole_recent_window(run, company, sandbox):
    expected = channel_unfulfilled(sandbox)
    stamps = sorted(datetime.fromisoformat(o["updated_at"]) for o in expected.values())
    middle = stamps[len(stamps) // 2].astimezone(UTC) + timedelta(seconds=1)
    older = {sid for sid, o in expected.items() if datetime.fromisoformat(o["updated_at"]) < middle}
    assert older and older != set(expected)
    run("import-orders", company, "--since", middle.strftime("%Y-%m-%dT%H:%M:%S"))
    assert not older & {o["source_order_id"] for o in run.json("orders", "list")}
    run("import-orders", company)  # the last 30 days were not all read: read them
    assert {o["source_order_id"] for o in run.json("orders", "list")} == set(expected)


def test_each_download_moves_the_cursor_to_its_newest_order_and_the_next_asks_from_there(run, imported, sandbox):
    new_ids = sandbox.add_orders(2)
    run("worker", "--once", "--download-every", "0")
    newest = {o["id"]: o for o in sandbox.orders()}[new_ids[-1]]["updated_at"]
    sandbox.clear_request_log()
    run("worker", "--once", "--download-every", "0")
    (listing,) = api_calls(sandbox, "GET", "/orders")
    assert listing["query"]["updated_at_min"][:19] == newest[:19]


def test_a_malformed_order_holds_the_cursor_so_the_next_download_asks_for_it_again(run, imported, sandbox):
    new_ids = sandbox.add_orders(3)
    sandbox.set_faults(malformed_order=new_ids[1])
    run("worker", "--once", "--download-every", "0")
    have = {o["source_order_id"] for o in run.json("orders", "list")}
    assert {new_ids[0], new_ids[2]} <= have and new_ids[1] not in have
    bad_at = {o["id"]: o for o in sandbox.orders()}[new_ids[1]]["updated_at"]
    sandbox.clear_faults()
    sandbox.clear_request_log()
    run("worker", "--once", "--download-every", "0")
    (listing,) = api_calls(sandbox, "GET", "/orders")
    assert listing["query"]["updated_at_min"][:19] == bad_at[:19]
    assert new_ids[1] in {o["source_order_id"] for o in run.json("orders", "list")}


def test_a_shipment_the_plugin_gives_no_answer_for_is_not_shown_delivered_and_is_sent_again_next_round(
    run, db_target, monkeypatch
):
    from decimal import Decimal as D

    from spy_plugin import SpyChannel

    from host.channel import plugins
    from plugin_spec import ChannelOrder, OrderLine, UploadResult, hookimpl

    class Silent(SpyChannel):
        answers = False

        @hookimpl
        def cartplugin_download_orders(self, settings, since, unfulfilled_only):
            when = datetime.now(UTC) - timedelta(hours=1)
            line = OrderLine(source_line_id="1", sku="A", title="A", quantity=1, unit_price=D("1.00"))
            return iter([ChannelOrder(source_order_id=f"S-{n}", created_at=when, updated_at=when, currency="EUR",
                                      subtotal=D("1.00"), tax_total=D("0"), grand_total=D("1.00"), lines=[line])
                         for n in range(3)])  # fmt: skip

        @hookimpl
        def cartplugin_upload_tracking(self, settings, shipments):
            self.calls.append(("upload_tracking", {"shipments": shipments}))
            # the first round answers only for the first shipment, as a plugin that lost a reply
            if not self.answers and shipments[0].source_order_id != "S-0":
                return []
            return [UploadResult(shipment_id=s.shipment_id, ok=True) for s in shipments]

    monkeypatch.setenv("CARTPLUGIN_UPLOAD_BATCH", "1")  # one shipment per hook call: counts add up over batches
    channel = Silent(name="silent_channel")
    plugins.register(channel, name="silent")
    try:
        run("companies", "add", "Silent Co")
        run("website-settings", "Silent Co", "--store-plugin", "silent_channel", "--allow-order-download",
            "--allow-tracking-upload")  # fmt: skip
        run("cart-settings", "Silent Co", "--set", "token=abcd1234")
        run("test-settings", "Silent Co")
        run("import-orders", "Silent Co")
        orders = run.json("orders", "list")
        for n, order in enumerate(orders):
            run("orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", ups_tracking(100 + n))
        run("worker", "--once", "--download-every", "3600")
        first = run.json("jobs", "list")[0]
        assert first["kind"] == "upload_tracking" and first["status"] == "Partial Success"
        assert (first["summary"]["accepted"], first["summary"]["failed"], first["summary"]["retrying"]) == (1, 0, 2)
        shown = [run.json("orders", "show", str(o["id"])) for o in orders]
        assert [o["source_updated_for_shipping"] for o in shown] == [True, False, False]
        assert all("no result" in o["shipments"][0]["upload_message"] for o in shown[1:])
        channel.answers = True
        # not held back: sent on the next round (in this process, where channel.calls is read)
        run("worker", "--once", "--processes", "1", "--download-every", "3600")
        second = run.json("jobs", "list")[0]
        assert second["status"] == "Completed"
        assert (second["summary"]["accepted"], second["summary"]["failed"], second["summary"]["retrying"]) == (2, 0, 0)
        assert [len(call["shipments"]) for _, call in channel.calls[-2:]] == [1, 1]
        assert all(run.json("orders", "show", str(o["id"]))["source_updated_for_shipping"] for o in orders)
    finally:
        plugins.unregister(channel)
