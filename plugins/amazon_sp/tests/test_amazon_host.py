"""The Amazon channel in the host, as support staff run it: the CLI as a subprocess with the
installed plugin, against the sandbox on 127.0.0.1 (Test Settings, Import Orders, shipping, the
worker's download and confirmShipment), and the plugin's demo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from amazon_sp.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN, Sandbox

COMPANY = "Refurb Traders (Amazon)"
#: timeouts, retries and a small page, for every client the subprocesses make
FAST_ENV = {
    "CARTPLUGIN_AMAZON_CONNECT_TIMEOUT": "0.5", "CARTPLUGIN_AMAZON_READ_TIMEOUT": "2",
    "CARTPLUGIN_AMAZON_RETRIES": "2", "CARTPLUGIN_AMAZON_BACKOFF_FACTOR": "0.02",
    "CARTPLUGIN_AMAZON_PAGE_SIZE": "7",
}  # fmt: skip


class Cartplugin:
    def __init__(self, db: Path, env: dict[str, str] | None = None):
        self.db = db
        self.env = {**os.environ, **FAST_ENV, **(env or {})}
        self.env.pop("CARTPLUGIN_LOAD_PLUGINS", None)

    def __call__(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "host", "--db", str(self.db), *args],
            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, env=self.env,
        )  # fmt: skip
        if ok:
            assert result.returncode == 0, f"{args}: {result.stdout}{result.stderr}"
        return result

    def json(self, *args: str):
        return json.loads(self(*args, "--json").stdout)


@pytest.fixture
def cart(tmp_path: Path) -> Cartplugin:
    return Cartplugin(tmp_path / "amazon.db")


def set_up(cart: Cartplugin, sandbox: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "secret").write_text(DEFAULT_CLIENT_SECRET)
    (tmp_path / "refresh").write_text(DEFAULT_REFRESH_TOKEN)
    cart("companies", "add", COMPANY)
    cart("website-settings", COMPANY, "--store-plugin", "amazon_sp", "--allow-order-download",
         "--allow-tracking-upload")  # fmt: skip
    cart("cart-settings", COMPANY, "--set", "region=eu", "--set", f"marketplace_ids={','.join(sandbox.marketplaces)}",
         "--set", f"lwa_client_id={DEFAULT_CLIENT_ID}", "--set-file", f"lwa_client_secret={tmp_path / 'secret'}",
         "--set-file", f"refresh_token={tmp_path / 'refresh'}", "--set", f"api_url={sandbox.base_url}",
         "--set", "commission_percent=15")  # fmt: skip


def merchant_cancelled(sandbox: Sandbox) -> set[str]:
    return {
        o["orderId"] for o in sandbox.orders()
        if o["fulfillment"]["fulfilledBy"] == "MERCHANT" and o["fulfillment"]["fulfillmentStatus"] == "CANCELLED"
    }  # fmt: skip


def test_the_whole_setup_imports_the_sellers_orders_and_confirms_their_shipments(cart, tmp_path) -> None:
    with Sandbox(orders=40, seed=5) as sandbox:
        set_up(cart, sandbox, tmp_path)
        tested = cart("test-settings", COMPANY)
        assert "Connection established: Connected to Amazon EU" in tested.stdout
        cart("import-orders", COMPANY)
        imported = {o["source_order_id"]: o for o in cart.json("orders", "list", "--company", COMPANY)}
        # the seller's orders to ship, and the cancelled ones flagged; none Amazon fulfils, none pending
        assert set(imported) == sandbox.unfulfilled_order_ids() | merchant_cancelled(sandbox)
        assert {i for i, o in imported.items() if o["channel_cancelled"]} == merchant_cancelled(sandbox)
        assert all(o["payment_status"] == "Fully Charged" for o in imported.values())
        shown = cart.json("orders", "show", str(next(iter(imported.values()))["id"]))
        held = sandbox.order(shown["source_order_id"])
        assert shown["grand_total"] == held["proceeds"]["grandTotal"]["amount"]
        unshipped = [
            i for i, o in imported.items() if sandbox.order(i)["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
        ]
        to_ship = [imported[i] for i in unshipped[:2]]
        tracking = [("UPS", "1Z999AA10123456784"), ("DHL", "00340434161094042557")]
        for order, (carrier, number) in zip(to_ship, tracking, strict=True):
            cart("orders", "ship", str(order["id"]), "--carrier", carrier, "--tracking", number)
        cart("worker", "--once")
        for order, number in zip(to_ship, ["1Z999AA10123456784", "00340434161094042557"], strict=True):
            assert number in sandbox.recorded_tracking(order["source_order_id"])
            body = sandbox.shipments(order["source_order_id"])[0]["body"]
            assert body["packageDetail"]["carrierCode"] in ("UPS", "DHL")
        after = {o["source_order_id"]: o for o in cart.json("orders", "list", "--company", COMPANY)}
        assert all(after[o["source_order_id"]]["source_updated_for_shipping"] for o in to_ship)
        # one access token served Test Settings, the import and the worker's jobs (separate processes)
        assert sandbox.lwa.mints == 1
        settings = cart("cart-settings", COMPANY).stdout
        assert "Access token (oauth2): renewed" in settings
        for text in (settings, tested.stdout):
            assert DEFAULT_CLIENT_SECRET not in text and DEFAULT_REFRESH_TOKEN not in text
            assert not any(token in text for token in sandbox.lwa._access)


def test_a_pending_order_comes_once_payment_is_authorised_and_an_expired_token_is_renewed(cart, tmp_path) -> None:
    with Sandbox(orders=12, seed=3) as sandbox:
        set_up(cart, sandbox, tmp_path)
        cart("test-settings", COMPANY)
        pending = sandbox.add_order(status="PENDING")
        cart("import-orders", COMPANY)
        assert pending not in {o["source_order_id"] for o in cart.json("orders", "list", "--company", COMPANY)}
        sandbox.set_status(pending, "UNSHIPPED")
        sandbox.lwa.expire_all()  # Amazon answers 403 for an expired token: renewed once, then read
        cart("worker", "--once")
        assert pending in {o["source_order_id"] for o in cart.json("orders", "list", "--company", COMPANY)}
        assert sandbox.lwa.mints == 2


def test_an_order_amazon_lists_late_is_imported_by_the_next_download(cart, tmp_path) -> None:
    with Sandbox(orders=12, seed=9) as sandbox:
        set_up(cart, sandbox, tmp_path)
        cart("test-settings", COMPANY)
        cart("import-orders", COMPANY)
        newest = max(sandbox.unfulfilled_order_ids() | merchant_cancelled(sandbox),
                     key=lambda i: sandbox.order(i)["lastUpdatedTime"])  # where the host's cursor is  # fmt: skip
        late = sandbox.add_late_order(before=newest, seconds=60)
        cart("worker", "--once")
        assert late in {o["source_order_id"] for o in cart.json("orders", "list", "--company", COMPANY)}


def test_a_revoked_refresh_token_fails_test_settings_with_what_to_do(cart, tmp_path) -> None:
    with Sandbox(orders=3, refresh_token="Atzr|another-refresh-token-0001") as sandbox:
        set_up(cart, sandbox, tmp_path)
        result = cart("test-settings", COMPANY, ok=False)
        assert result.returncode == 1
        assert "Amazon refused the refresh token (invalid_grant" in result.stdout + result.stderr
        assert DEFAULT_REFRESH_TOKEN not in result.stdout + result.stderr


def test_the_demo_walks_the_setup_against_the_sandbox(cart) -> None:
    result = cart("amazon-sp", "demo", "--orders", "20")
    assert "shipments confirmed on Amazon:    2 of 2" in result.stdout, result.stdout[-2000:]
    assert "merchant orders to ship, missing: 0" in result.stdout
    assert "Source Updated for Shipping:      2" in result.stdout
    assert DEFAULT_CLIENT_SECRET not in result.stdout and DEFAULT_REFRESH_TOKEN not in result.stdout
