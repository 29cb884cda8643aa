"""The x-api-key appears nowhere but in its Cart General row: not in logs (DEBUG included), job
logs, CLI output, --json output, exception text, nor the sandbox's request log."""

from __future__ import annotations

import json
import time
from pathlib import Path

from fault_harness import Harness

from backmarket_pro.sandbox import Sandbox

KEY = "SeCrEt-ApIkEy-0042-zz9q"


def test_the_key_leaks_nowhere_after_a_full_run_with_faults(tmp_path, db_target):
    with Sandbox(api_key=KEY, orders=30, seed=4) as channel:
        h = Harness(tmp_path, channel, db=db_target)
        h.cli("import-orders", h.company)
        shipped = h.ship(4)
        channel.add_orders(5)
        channel.set_faults(fail_5xx=0.3, drop_connection=0.1, malformed_body=0.1, slow=0.1, slow_seconds=1.0,
                           rate_limit=5, rate_window=1.0)  # fmt: skip
        worker = h.start_worker()
        time.sleep(2)
        channel.clear_faults()
        assert h.wait_until(lambda: all(o["source_updated_for_shipping"] for o in h.host_orders()
                                        if o["source_order_id"] in shipped), timeout=30)  # fmt: skip
        assert h.stop_worker(worker) == 0
        # the paths where an error message is made from the key's surroundings
        h.cli("cart-settings", h.company, "--set", "x_api_key=" + KEY[::-1])  # a wrong key
        h.cli("test-settings", h.company, check=False)
        h.cli("cart-settings", h.company, "--set", "website_url=http://127.0.0.1:9", "--set", f"x_api_key={KEY}")
        h.cli("test-settings", h.company, check=False)
        outputs = [
            h.cli("cart-settings", h.company, "--json").stdout,
            h.cli("cart-settings", h.company).stdout,
            h.cli("companies", "list", "--json").stdout,
            h.cli("website-settings", h.company, "--json").stdout,
            h.cli("orders", "list", "--json").stdout,
            h.cli("jobs", "list", "--json").stdout,
        ]
        for (job_id,) in h.query("SELECT id FROM jobs"):
            outputs.append(h.cli("jobs", "show", str(job_id), "--json").stdout)
        request_log = json.dumps(channel.request_log())
        assert any(record["key_ok"] for record in channel.request_log())

    everything = "\n".join(h.logs + outputs + [request_log])
    assert "DEBUG" in everything  # the run really logged at DEBUG
    for text in (KEY, KEY[::-1]):
        assert text not in everything
    assert "****zz9q" in outputs[1]  # masked: the last 4 characters at most
    db_text = "\n".join(str(row) for table in ("job_logs", "jobs", "companies", "orders", "shipments")
                        for row in h.query(f"SELECT * FROM {table}"))  # fmt: skip
    assert KEY not in db_text and KEY[::-1] not in db_text
    # stored encrypted: the key is not in the database's bytes (any row of any table on PostgreSQL),
    # and it decrypts to the key
    assert KEY.encode() not in _stored(h.db_target)
    from host.records import secrets
    from host.store.db import connect

    db = connect(h.db_target)
    (stored,) = db.execute("SELECT value FROM cart_settings WHERE is_secret = 1").fetchone()
    assert secrets.is_sealed(stored) and secrets.unseal(db, stored) == KEY
    db.close()


def _stored(target: Path | str) -> bytes:
    """A SQLite file's bytes, or every row of every table of a PostgreSQL database."""
    if isinstance(target, Path):
        return target.read_bytes()
    from host.store.db import connect

    db = connect(target)
    try:
        tables = [name for (name,) in db.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )]  # fmt: skip
        return "\n".join(str(row) for table in tables for row in db.execute(f'SELECT * FROM "{table}"')).encode()
    finally:
        db.close()


def test_a_plugin_that_puts_the_secret_in_its_messages_is_shown_masked_in_the_host_output_and_job_log(
    run, db_target, caplog
):
    import logging
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal

    from spy_plugin import SpyChannel

    from host.channel import plugins
    from plugin_spec import BadOrder, ChannelOrder, OrderLine, TestResult, UploadResult, hookimpl

    token = "tok-LEAKY-secret-7788"
    masked = "****7788"

    class Careless(SpyChannel):
        """Echoes the settings' token in every message, as a careless plugin might."""

        crash = False

        @hookimpl
        def cartplugin_test_settings(self, settings):
            return TestResult(ok=True, message=f"connected with {settings.token.get_secret_value()}")

        @hookimpl
        def cartplugin_download_orders(self, settings, since, unfulfilled_only):
            secret = settings.token.get_secret_value()
            if self.crash:
                raise RuntimeError(f"socket closed while sending key={secret}")
            when = datetime.now(UTC) - timedelta(hours=1)
            line = OrderLine(source_line_id="1", sku="A", title="A", quantity=1, unit_price=Decimal("1.00"))
            good = ChannelOrder(source_order_id="GOOD-1", created_at=when, updated_at=when, currency="EUR",
                                subtotal=Decimal("1.00"), tax_total=Decimal("0"), grand_total=Decimal("1.00"),
                                lines=[line])  # fmt: skip
            return iter([BadOrder(source_order_id="BAD-1", updated_at=when, message=f"refused for {secret}"), good])

        @hookimpl
        def cartplugin_upload_tracking(self, settings, shipments):
            secret = settings.token.get_secret_value()
            return [
                UploadResult(shipment_id=s.shipment_id, ok=False, message=f"422 for key {secret}") for s in shipments
            ]

    channel = Careless(name="careless_channel")
    plugins.register(channel, name="careless")
    caplog.set_level(logging.DEBUG)
    try:
        run("companies", "add", "Leaky Co")
        run("website-settings", "Leaky Co", "--store-plugin", "careless_channel", "--allow-order-download",
            "--allow-tracking-upload")  # fmt: skip
        run("cart-settings", "Leaky Co", "--set", f"token={token}")
        tested = run("test-settings", "Leaky Co").output
        imported = run("import-orders", "Leaky Co", "--json").output  # the BadOrder's message
        (order,) = run.json("orders", "list")
        run("orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", "1Z999AA10000000051")
        run("worker", "--once", "--download-every", "3600")  # the upload result's message
        channel.crash = True
        crashed = run("import-orders", "Leaky Co", "--json", ok=False).output  # the exception's text
        jobs_shown = [run("jobs", "show", str(job["id"]), "--json").output for job in run.json("jobs", "list")]
        order_shown = run("orders", "show", str(order["id"]), "--json").output
    finally:
        plugins.unregister(channel)
    outputs = {"test-settings": tested, "import-orders": imported, "crashed import": crashed,
               "jobs show": "\n".join(jobs_shown), "orders show": order_shown, "log": caplog.text}  # fmt: skip
    for name, text in outputs.items():
        assert token not in text, f"the secret shows in {name}"
        assert masked in text, f"{name} does not show the masked secret: {text[:500]}"
