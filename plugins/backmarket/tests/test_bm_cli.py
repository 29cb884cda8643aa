"""A company runs the Back Market channel end to end from the cartplugin CLI: settings, Test
Settings, Import Orders with the contract's totals, acceptance (on download, or by staff with a
line cancelled), ship, tracking upload (a lost answer reconciled), a buyer cancellation flagged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from bm_helpers import COMPANY_NAME, CONTACT_EMAIL, TOKEN, unfulfilled
from click.testing import CliRunner

from backmarket import plugin
from backmarket.sandbox import Sandbox
from host.channel import plugins
from host.cli.main import cli

COMPANY = "Refurb Boutique SAS"


@pytest.fixture
def registered() -> Iterator[None]:
    """The plugin registered for this test (unless entry points already loaded it)."""
    plugins.load_plugins()
    already = plugins.pm.is_registered(plugin)
    if not already:
        plugins.register(plugin, name="backmarket")
    try:
        yield
    finally:
        if not already:
            plugins.unregister(plugin)


class Run:
    def __init__(self, db: Path):
        self.db, self.runner = db, CliRunner()

    def __call__(self, *args: str, code: int = 0) -> str:
        result = self.runner.invoke(cli, ["--db", str(self.db), *args], catch_exceptions=False)
        assert result.exit_code == code, f"cartplugin {' '.join(args)}: {result.output}"
        assert TOKEN not in result.output
        return result.stdout  # warnings go to stderr

    def json(self, *args: str):
        return json.loads(self(*args, "--json"))


def setup_company(run: Run, sandbox: Sandbox, *extra: str) -> None:
    assert "backmarket" in {row["channel"] for row in run.json("plugins")}
    run("companies", "add", COMPANY)
    run(
        "website-settings", COMPANY, "--store-plugin", "backmarket", "--allow-order-download", "--allow-tracking-upload"
    )
    run("cart-settings", COMPANY, "--set", f"api_url={sandbox.base_url}", "--set", f"token={TOKEN}",
        "--set", "country_code=fr-fr", "--set", "commission_percent=10", "--set", f"company_name={COMPANY_NAME}",
        "--set", f"contact_email={CONTACT_EMAIL}", *extra)  # fmt: skip
    assert "Connection established" in run("test-settings", COMPANY)


def single_unit(raw: dict) -> bool:
    return len(raw["orderlines"]) == 1 and raw["orderlines"][0]["quantity"] == 1


def test_a_company_runs_back_market_from_the_cli(tmp_path: Path, registered, bm_sandbox: Sandbox) -> None:
    run = Run(tmp_path / "bm.db")
    setup_company(run, bm_sandbox)
    to_accept = {str(o["order_id"]) for o in bm_sandbox.orders() if o["state"] == 1}

    job = run.json("import-orders", COMPANY)
    assert job["status"] == "Completed", job
    listed = {o["source_order_id"]: o for o in run.json("orders", "list", "--company", COMPANY)}
    on_channel = {str(o["order_id"]): o for o in bm_sandbox.orders()}
    assert set(listed) == {str(o["order_id"]) for o in unfulfilled(bm_sandbox)}
    assert all(o["payment_status"] == "Fully Charged" and o["payment_method"] is None for o in listed.values())

    # price is the items without shipping: the grand total adds shipping, the commission is on it
    for source_id, order in listed.items():
        raw = on_channel[source_id]
        grand = Decimal(raw["price"]) + Decimal(raw["shipping_price"])
        assert (Decimal(order["subtotal"]), Decimal(order["shipping_total"]), Decimal(order["grand_total"])) == (
            Decimal(raw["price"]),
            Decimal(raw["shipping_price"]),
            grand,
        )
        assert Decimal(order["total_cost"]) == grand + (grand / 10).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    # "Accept new orders on download" is on: every paid line was accepted (new_state 2 with its sku)
    assert to_accept & set(listed)
    for source_id in to_accept & set(listed):
        assert bm_sandbox.order(source_id)["state"] == 3
        assert {x["state"] for x in bm_sandbox.order(source_id)["orderlines"]} == {2}
        assert listed[source_id]["awaiting_acceptance"] is False
    accepts = [r for r in bm_sandbox.request_log() if r["method"] == "POST"]
    assert len(accepts) == sum(len(on_channel[i]["orderlines"]) for i in to_accept & set(listed))

    # ship a single-unit order with its IMEI; the answer is lost (502 after the channel applied
    # it); the upload reads the order back and ends accepted, not failed
    target = next(o for i, o in listed.items() if on_channel[i]["state"] in (1, 3) and single_unit(on_channel[i]))
    run("orders", "ship", str(target["id"]), "--carrier", "Colissimo", "--tracking", "6A00012345678",
        "--serial", "356938035643809")  # fmt: skip
    bm_sandbox.clear_request_log()
    bm_sandbox.set_faults(lose_answer=1)
    run("worker", "--once", "--download-every", "0")
    run("worker", "--once", "--download-every", "0")
    posts = [r for r in bm_sandbox.request_log() if r["method"] == "POST"]
    assert {p["path"] for p in posts} == {f"/ws/orders/{target['source_order_id']}"} and posts[0]["status"] == 502
    shipped = bm_sandbox.order(target["source_order_id"])
    assert (shipped["state"], shipped["tracking_number"], shipped["shipper"]) == (9, "6A00012345678", "Colissimo")
    assert shipped["orderlines"][0]["imei"] == "356938035643809"
    shown = run.json("orders", "show", str(target["id"]))
    assert shown["source_updated_for_shipping"] is True and shown["shipments"][0]["upload_state"] == "accepted"
    assert not run.json("orders", "list", "--upload-failed")

    # the buyer cancels: the lines reach state 5 (refunded before shipping); flagged for staff,
    # the status is not changed
    other = next(o for i, o in listed.items() if o["id"] != target["id"] and bm_sandbox.order(i)["state"] == 3)
    bm_sandbox.cancel_order(other["source_order_id"])
    run("worker", "--once", "--download-every", "0")
    assert other["id"] in {o["id"] for o in run.json("orders", "list", "--needs-attention")}
    assert run.json("orders", "show", str(other["id"]))["status"] == other["status"]
    for job in run.json("jobs", "list"):
        assert job["status"] in ("Completed", "Partial Success"), job


def test_with_accept_on_download_off_staff_accept_and_cancel_a_line_they_cannot_serve(
    tmp_path: Path, registered, bm_sandbox: Sandbox
) -> None:
    run = Run(tmp_path / "bm.db")
    setup_company(run, bm_sandbox, "--set", "accept_on_download=false")
    run.json("import-orders", COMPANY)
    waiting = [o for o in run.json("orders", "list", "--company", COMPANY) if o["awaiting_acceptance"]]
    assert waiting and all(bm_sandbox.order(o["source_order_id"])["state"] == 1 for o in waiting)
    assert "[AWAITING ACCEPTANCE]" in run("orders", "show", str(waiting[0]["id"]))

    # shipped before acceptance: the tracking waits, it is not sent to be refused
    first, second = waiting[0], waiting[1]
    run("orders", "ship", str(first["id"]), "--carrier", "UPS", "--tracking", "1Z999AA10000000079")
    bm_sandbox.clear_request_log()
    run("worker", "--once", "--download-every", "0")
    assert not [r for r in bm_sandbox.request_log() if r["method"] == "POST"]
    assert not [j for j in run.json("jobs", "list") if j["kind"] == "upload_tracking"]  # not even queued

    sku = bm_sandbox.order(second["source_order_id"])["orderlines"][0]["listing"]
    report = run.json("orders", "accept", COMPANY, str(first["id"]), "--cancel", f"{second['id']}={sku}")
    assert {r["id"]: r["ok"] for r in report} == {first["id"]: True, second["id"]: True}
    assert {x["state"] for x in bm_sandbox.order(first["source_order_id"])["orderlines"]} == {2}
    assert bm_sandbox.order(second["source_order_id"])["orderlines"][0]["state"] == 4
    assert run.json("orders", "show", str(first["id"]))["awaiting_acceptance"] is False

    run("worker", "--once", "--download-every", "0")
    assert bm_sandbox.order(first["source_order_id"])["tracking_number"] == "1Z999AA10000000079"
    assert run.json("orders", "show", str(first["id"]))["source_updated_for_shipping"] is True


def test_a_stored_token_never_follows_a_new_host_or_platform_without_being_given_again(
    tmp_path: Path, registered
) -> None:
    run = Run(tmp_path / "bm.db")
    run("companies", "add", COMPANY)
    run("website-settings", COMPANY, "--store-plugin", "backmarket")
    # no api_url: requests go to the EU platform's host
    run("cart-settings", COMPANY, "--set", f"token={TOKEN}", "--set", "country_code=fr-fr",
        "--set", f"company_name={COMPANY_NAME}", "--set", f"contact_email={CONTACT_EMAIL}")  # fmt: skip
    for change in ("api_url=https://collector.example", "region=na", "preprod=true"):
        run("cart-settings", COMPANY, "--set", change, code=1)
    shown = {f["key"]: f["value"] for f in run.json("cart-settings", COMPANY)["fields"]}
    assert (shown["api_url"], shown["region"]) in {(None, "eu"), ("", "eu")}, shown
    run("cart-settings", COMPANY, "--set", "commission_percent=5")  # the host stays: the token stays
    run("cart-settings", COMPANY, "--set", "region=na", "--set", f"token={TOKEN}")  # given again: taken
    assert {f["key"]: f["value"] for f in run.json("cart-settings", COMPANY)["fields"]}["region"] == "na"
