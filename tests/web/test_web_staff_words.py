"""What the web admin says is in staff words: screens and buttons, never a shell command; job
kinds, counts and Change Log details as a person reads them."""

from __future__ import annotations

import re
from html import unescape

from support import API_KEY
from web_support import after_test_settings, signed_in

from host.errors import HostError
from host.records import companies
from host.store.db import connect


def _main(html: str) -> str:
    """The page's own content (the header carries the brand name ``cartplugin``), as text."""
    return unescape(html.split("<main>", 1)[1].split("</main>", 1)[0])


def _without_operator_notes(text: str) -> str:
    return re.sub(r"<details class=\"operator\">.*?</details>", "", text, flags=re.S)


def test_a_refusal_names_the_screen_on_the_web_and_the_command_on_the_cli(web, run):
    run("companies", "add", "Acme Refurb")
    run("website-settings", "Acme Refurb", "--store-plugin", "backmarket_pro", "--allow-order-download")
    http, token = signed_in(web, "sue")
    page = _main(http.post(f"{web.url}/companies/1/import-orders", data={"csrf_token": token}, timeout=10).text)
    assert "run Test Settings first, in Cart General" in page
    assert "cartplugin" not in page
    assert "cartplugin test-settings 'Acme Refurb'" in run("import-orders", "Acme Refurb", ok=False).output


def test_a_missing_plugin_asks_for_an_operator_or_another_store_plugin_on_the_web(web, run, company, bmp):
    from host.channel import plugins

    http, token = signed_in(web, "sue")
    plugins.unregister(bmp)
    try:
        page = _main(http.post(f"{web.url}/companies/1/import-orders", data={"csrf_token": token}, timeout=10).text)
    finally:
        plugins.register(bmp, name="backmarket_pro")
    assert "ask an operator to install it again, or choose another Store Plugin in Website General Settings" in page
    assert "cartplugin" not in page and "--store-plugin" not in page


def test_a_company_without_a_store_plugin_is_told_the_screen_and_the_cli_the_command(run, db_target):
    run("companies", "add", "Bare Co")
    db = connect(db_target)
    try:
        companies.store_plugin(db, companies.get_company(db, "Bare Co"))
    except HostError as exc:
        assert str(exc).endswith("choose a Store Plugin in Website General Settings")
        assert "cartplugin" not in str(exc)
        assert "cartplugin website-settings 'Bare Co' --store-plugin NAME" in exc.for_cli()
    else:
        raise AssertionError("a company without a store plugin has no store plugin to give")
    finally:
        db.close()
    assert "cartplugin website-settings 'Bare Co'" in run("import-orders", "Bare Co", ok=False).output


def test_cart_general_asks_for_the_key_again_in_words_when_the_url_moves_to_another_host(web, run, company):
    http, token = signed_in(web, "sue")
    form = {"csrf_token": token, "website_url": "https://api.pro.backmarket.com/sellers-prod", "x_api_key": "",
            "commission_percent": "10"}  # fmt: skip
    answer = http.post(f"{web.url}/companies/1/cart-general", data=form, timeout=10)
    page = _main(answer.text)
    assert answer.status_code == 422 and "this change sends x-api-key to another host: type it again" in page
    assert "--set" not in page and "cartplugin" not in page
    refused = run(
        "cart-settings", company, "--set", "website_url=https://api.pro.backmarket.com/sellers-prod", ok=False
    )
    assert "--set x_api_key=- asks for it at a hidden prompt" in refused.output


def test_the_employees_page_manages_staff_itself_and_names_no_command(web):
    http, _ = signed_in(web, "ann")
    page = _main(http.get(f"{web.url}/users", timeout=10).text)
    assert "Add Employee" in page and "ask an operator" not in page
    assert "cartplugin" not in page


def test_queued_jobs_show_kinds_and_counts_in_words(web, run, company):
    run("import-orders", company)
    run("worker", "--once", "--download-every", "0")
    http, _ = signed_in(web, "rita")
    grid = _main(http.get(f"{web.url}/jobs", timeout=10).text)
    for name in ("Test Settings", "Import Orders", "Download Orders"):
        assert f"<td>{name}</td>" in grid
    assert not re.search(r"<td>[a-z]+_[a-z_]+</td>", grid)
    assert '<option value="upload_tracking" >Upload Tracking</option>' in grid
    assert re.search(r"\d+ new, 0 updated, 0 unchanged", grid)
    assert "inserted" not in grid and "ok True" not in grid and "seen " not in grid
    assert "Connected to Back Market Pro as" in grid  # Test Settings: its message, not "ok True, message ..."
    jobs = run.json("jobs", "list")
    download = next(j for j in jobs if j["kind"] == "download_orders")
    page = _main(http.get(f"{web.url}/jobs/{download['id']}", timeout=10).text)
    assert f"Job {download['id']} · Download Orders · Acme Refurb" in page
    assert "queued Download Orders" in page
    assert "))" not in page and "=" not in re.sub(r"<[^>]*>", "", page)  # no "(x (y))", no "inserted=3"


def test_the_change_log_says_what_happened_in_words(web, run, sandbox):
    run("companies", "add", "Acme Refurb")
    http, token = signed_in(web, "sue")
    http.post(f"{web.url}/companies/1/website-general-settings",
              data={"csrf_token": token, "store_type": "Custom", "store_plugin": "backmarket_pro",
                    "allow_order_download": "y"}, timeout=10)  # fmt: skip
    http.post(f"{web.url}/companies/1/cart-general",
              data={"csrf_token": token, "website_url": sandbox.base_url, "x_api_key": API_KEY,
                    "commission_percent": "10"}, timeout=10)  # fmt: skip
    http.post(f"{web.url}/companies/1/test-settings", data={"csrf_token": token}, timeout=10)
    after_test_settings(http, web)
    http.post(f"{web.url}/companies/1/import-orders", data={"csrf_token": token}, timeout=10)
    admin, _ = signed_in(web, "ann")
    log = _main(admin.get(f"{web.url}/companies/1/change-log", timeout=10).text)
    assert "Store Plugin: (none) → BackMarketForBusiness WebsiteCartPlugin" in log
    assert "Allow Order Download: Off → On" in log
    assert "x-api-key: replaced" in log and "Order Import: Commission (%): 10" in log
    assert "Connection established" in log and "Created" in log
    assert "created: True" not in log and "ok: True" not in log and "allow_order_download" not in log
    assert API_KEY not in log


def test_a_refused_key_is_said_in_one_sentence_without_doubled_punctuation(web, run, sandbox):
    run("companies", "add", "Acme Refurb")
    run("website-settings", "Acme Refurb", "--store-plugin", "backmarket_pro")
    run("cart-settings", "Acme Refurb", "--set", f"website_url={sandbox.base_url}",
        "--set", "x_api_key=wrong-key-5678abcd")  # fmt: skip
    http, token = signed_in(web, "sue")
    http.post(f"{web.url}/companies/1/test-settings", data={"csrf_token": token}, timeout=10)
    page = _main(after_test_settings(http, web))
    assert "Test Settings failed: Back Market Pro refused the x-api-key (HTTP 401: " in page
    assert ".)." not in page and ".)" not in page
