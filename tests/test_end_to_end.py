"""The whole integration driven through the CLI as a subprocess, against a sandbox on 127.0.0.1.

The help page's flow runs on SQLite and on PostgreSQL (``db_target``)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from backmarket_pro.sandbox import Sandbox

KEY = "e2e-key-9c1b7d3f20aa"
COMPANY = "Müller Refurb GmbH"


class Cartplugin:
    def __init__(self, db: Path | str):
        self.db = db

    def __call__(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "host", "--db", str(self.db), *args],
            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if ok:
            assert result.returncode == 0, f"{args}: {result.stdout}{result.stderr}"
        return result

    def json(self, *args: str):
        return json.loads(self(*args, "--json").stdout)


@pytest.fixture
def cart(tmp_path):
    return Cartplugin(tmp_path / "e2e.db")


@pytest.fixture
def channel():
    with Sandbox(api_key=KEY, orders=30, seed=11) as server:
        yield server


def calls(sandbox, method):
    return [r for r in sandbox.request_log() if r["method"] == method and r["key_ok"]]


@pytest.fixture
def cart_any(db_target):
    return Cartplugin(db_target)


def _key_copies(cart: Cartplugin) -> int:
    """How often the key appears in the stored database: its bytes on SQLite, every text
    column of every table on PostgreSQL."""
    if isinstance(cart.db, Path):
        return cart.db.read_bytes().count(KEY.encode())
    import psycopg

    with psycopg.connect(cart.db) as conn:
        columns = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND data_type IN ('text', 'USER-DEFINED')"
        ).fetchall()
        return sum(
            conn.execute(f'SELECT COUNT(*) FROM "{t}" WHERE "{c}"::text LIKE %s', [f"%{KEY}%"]).fetchone()[0]
            for t, c in columns
        )


def test_the_help_page_end_to_end(cart_any, channel):
    cart = cart_any
    # Settings screens
    cart("companies", "add", COMPANY)
    cart(
        "website-settings",
        COMPANY,
        "--store-plugin",
        "backmarket_pro",
        "--allow-order-download",
        "--allow-tracking-upload",
    )
    shown = cart("cart-settings", COMPANY, "--set", f"website_url={channel.base_url}", "--set", f"x_api_key={KEY}",
                 "--set", "commission_percent=7.5")  # fmt: skip
    assert KEY not in shown.stdout + shown.stderr
    # Test Settings
    assert "Connection established" in cart("test-settings", COMPANY).stdout
    # Import Orders
    job = cart.json("import-orders", COMPANY)
    assert job["kind"] == "import_orders" and job["status"] == "Completed"
    unfulfilled = {o["id"] for o in channel.orders() if o["fulfillment_status"] == "unfulfilled"}
    listed = cart.json("orders", "list", "--company", COMPANY)
    assert {o["source_order_id"] for o in listed} == unfulfilled
    assert all(o["payment_status"] == "Fully Charged" and o["payment_method"] is None for o in listed)
    flagged = [o for o in listed if o["channel_cancelled"]]
    assert flagged and all(o["status"] == "In Process" for o in flagged)
    # Staff edits, then a re-import
    a, b = [o for o in listed if not o["channel_cancelled"]][:2]
    cart("orders", "set-status", str(a["id"]), "On Hold")
    sku = cart.json("orders", "show", str(b["id"]))["lines"][0]["sku"]
    cart("orders", "ship", str(b["id"]), "--carrier", "DHL Express", "--tracking", "JJD0003900070001",
         "--serial", f"{sku}=356938035643809")  # fmt: skip
    again = cart.json("import-orders", COMPANY)
    assert again["summary"]["inserted"] == 0
    relisted = {o["id"]: o for o in cart.json("orders", "list")}
    assert len(relisted) == len(listed)
    assert relisted[a["id"]]["status"] == "On Hold" and relisted[b["id"]]["shipping_status"] == "Fully Shipped"
    # Toggles off: no request reaches the sandbox for that work
    cart("website-settings", COMPANY, "--no-allow-tracking-upload", "--no-allow-order-download")
    channel.add_orders(2)
    channel.clear_request_log()
    cart("worker", "--once", "--download-every", "0")
    assert channel.request_log() == []
    # Toggles on: the worker downloads the new orders and uploads the tracking exactly once
    cart("website-settings", COMPANY, "--allow-tracking-upload", "--allow-order-download")
    cart("worker", "--once", "--download-every", "0")
    cart("worker", "--once", "--download-every", "0")
    posts = calls(channel, "POST")
    assert len(posts) == 1 and b["source_order_id"] in posts[0]["path"]
    on_channel = {o["id"]: o for o in channel.orders()}
    shipment = on_channel[b["source_order_id"]]["shipments"]
    assert [s["tracking_number"] for s in shipment] == ["JJD0003900070001"]
    assert "356938035643809" in json.dumps(shipment)  # the IMEI travelled with its line
    assert cart.json("orders", "show", str(b["id"]))["source_updated_for_shipping"] is True
    assert len(cart.json("orders", "list")) == len(listed) + 2
    # A cancellation on the channel is flagged, not applied
    channel.cancel_order(a["source_order_id"])
    cart("worker", "--once", "--download-every", "0")
    attention = cart.json("orders", "list", "--needs-attention")
    assert a["id"] in {o["id"] for o in attention}
    assert cart.json("orders", "show", str(a["id"]))["status"] == "On Hold"
    # Jobs and their logs, with no secret anywhere
    jobs = cart.json("jobs", "list")
    assert {j["kind"] for j in jobs} == {"test_settings", "import_orders", "download_orders", "upload_tracking"}
    for job in jobs:
        assert KEY not in cart("jobs", "show", str(job["id"]), "--json").stdout
    assert _key_copies(cart) <= 1  # stored once at most, in Cart General (sealed: not at all)


def test_a_bad_command_is_one_line_on_stderr_and_a_non_zero_exit(cart):
    cart("companies", "add", "X")
    for args in (
        ["orders", "show", "abc"],
        ["orders", "show", "999"],
        ["jobs", "show", "1"],
        ["orders", "set-status", "1", "Lost"],
    ):
        result = cart(*args, ok=False)
        assert result.returncode != 0 and result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("Error: "), result.stderr


def test_import_shows_a_progress_bar_on_a_terminal_only(cart, channel):
    cart("companies", "add", COMPANY)
    cart("website-settings", COMPANY, "--store-plugin", "backmarket_pro", "--allow-order-download")
    cart("cart-settings", COMPANY, "--set", f"website_url={channel.base_url}", "--set", f"x_api_key={KEY}")
    cart("test-settings", COMPANY)
    quiet = cart("import-orders", COMPANY)
    assert "Importing orders" not in quiet.stdout + quiet.stderr
    cart("orders", "list")
    primary, replica = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "host", "--db", str(cart.db), "import-orders", COMPANY, "--since", "2020-01-01"],
        stdout=replica, stderr=replica, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(replica)
    output = b""
    while True:
        try:
            chunk = os.read(primary, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    proc.wait(timeout=60)
    os.close(primary)
    assert proc.returncode == 0 and b"Importing orders" in output
