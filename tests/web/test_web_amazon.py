"""An Amazon company set up in the web admin, over real HTTP against the Amazon sandbox: the Cart
General form of an OAuth channel, Test Settings, Import Orders run by the worker, and the
access token's renewal shown to staff without the token."""

from __future__ import annotations

import html
import re

import pytest
from support import registered
from web_support import Walk, WebServer, after_test_settings, signed_in

import amazon_sp.plugin
from amazon_sp.sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN, Sandbox


@pytest.fixture
def amazon():
    with registered(amazon_sp.plugin, "amazon_sp") as plugin:
        yield plugin


def test_support_sets_up_an_amazon_company_and_its_orders_import(db_target, run, amazon) -> None:
    run("companies", "add", "Amazon Traders")
    run("website-settings", "Amazon Traders", "--store-plugin", "amazon_sp", "--allow-order-download")
    with Sandbox(orders=15, seed=4) as sandbox, WebServer(db_target) as web:
        http, token = signed_in(web, "sue")
        url = f"{web.url}/companies/1/cart-general"
        form = http.get(url + "?edit=1", timeout=10).text
        for field in ("region", "marketplace_ids", "lwa_client_id", "lwa_client_secret", "refresh_token", "api_url"):
            assert f'id="{field}"' in form, field
        saved = http.post(url, data={
            "csrf_token": token, "region": "eu", "marketplace_ids": ",".join(sandbox.marketplaces),
            "lwa_client_id": DEFAULT_CLIENT_ID, "lwa_client_secret": DEFAULT_CLIENT_SECRET,
            "refresh_token": DEFAULT_REFRESH_TOKEN, "api_url": sandbox.base_url, "lwa_token_url": "",
            "commission_percent": "15",
        }, timeout=10)  # fmt: skip
        assert "Cart General saved" in saved.text, saved.text[-2000:]
        http.post(f"{web.url}/companies/1/test-settings", data={"csrf_token": token}, timeout=30)
        tested = after_test_settings(http, web)
        assert "Connected to Amazon EU" in html.unescape(tested)
        queued = http.post(f"{web.url}/companies/1/import-orders", data={"csrf_token": token}, timeout=10)
        assert queued.status_code == 200 and "Queued Job" in queued.text
        run("worker", "--once")
        imported = run.json("orders", "list", "--company", "Amazon Traders")
        assert {o["source_order_id"] for o in imported} >= sandbox.unfulfilled_order_ids()
        page = http.get(url, timeout=10).text
        assert re.search(r"Access token:\s+renewed", page), page[-3000:]
        assert sandbox.lwa.mints == 1
        for secret in (DEFAULT_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN, *sandbox.lwa._access):
            assert secret not in page and secret not in tested


def test_an_amazon_company_s_cart_general_in_a_real_browser(browser, db_target, run, amazon, tmp_path) -> None:
    """Staff see the OAuth channel's fields, the secrets masked, and when the access token was
    renewed and until when it is valid: never the token."""
    with Sandbox(orders=6, seed=2) as sandbox, WebServer(db_target) as web:
        run("companies", "add", "Amazon Traders")
        run("website-settings", "Amazon Traders", "--store-plugin", "amazon_sp", "--allow-order-download")
        (tmp_path / "secret").write_text(DEFAULT_CLIENT_SECRET)
        (tmp_path / "refresh").write_text(DEFAULT_REFRESH_TOKEN)
        run("cart-settings", "Amazon Traders", "--set", "region=eu",
            "--set", f"marketplace_ids={sandbox.marketplaces[0]}", "--set", f"lwa_client_id={DEFAULT_CLIENT_ID}",
            "--set-file", f"lwa_client_secret={tmp_path / 'secret'}",
            "--set-file", f"refresh_token={tmp_path / 'refresh'}", "--set", f"api_url={sandbox.base_url}",
            "--set", "commission_percent=15")  # fmt: skip
        walk = Walk(browser, web)
        walk.sign_in("sue")
        walk.go("/companies/1/cart-general")
        walk.page.click("summary[title='Options']")
        walk.page.click("button:has-text('Test Settings')")
        # the token line can show before the test's result does (the job renews the token first)
        walk.page.wait_for_selector("text=Connected to Amazon EU")
        walk.page.wait_for_selector(".token")
        assert "Connected to Amazon EU" in walk.page.content()
        token_line = walk.text(".token")
        assert token_line.startswith("Access token: renewed") and "valid until" in token_line
        walk.shot("22-amazon-cart-general")
        shown = "\n".join(walk.bodies)
        for secret in (DEFAULT_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN, *sandbox.lwa._access):
            assert secret not in shown
        walk.context.close()
