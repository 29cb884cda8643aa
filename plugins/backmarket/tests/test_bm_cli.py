"""A company runs the Back Market channel end to end from the cartplugin CLI: settings, Test
Settings, Import Orders, ship, tracking upload, a channel cancellation flagged for staff."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from bm_helpers import TOKEN
from click.testing import CliRunner

from backmarket import plugin
from backmarket.sandbox import Sandbox
from host import plugins
from host.cli import cli

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

    def __call__(self, *args: str) -> str:
        result = self.runner.invoke(cli, ["--db", str(self.db), *args], catch_exceptions=False)
        assert result.exit_code == 0, f"cartplugin {' '.join(args)}: {result.output}"
        assert TOKEN not in result.output
        return result.stdout  # warnings go to stderr

    def json(self, *args: str):
        return json.loads(self(*args, "--json"))


def test_a_company_runs_back_market_from_the_cli(tmp_path: Path, registered, bm_sandbox: Sandbox) -> None:
    run = Run(tmp_path / "bm.db")
    assert "backmarket" in {row["channel"] for row in run.json("plugins")}
    run("companies", "add", COMPANY)
    run("website-settings", COMPANY, "--store-plugin", "backmarket", "--allow-order-download", "--allow-tracking-upload")
    run("cart-settings", COMPANY, "--set", f"api_url={bm_sandbox.base_url}", "--set", f"token={TOKEN}",
        "--set", "country_code=fr-fr", "--set", "commission_percent=10")  # fmt: skip
    assert "Connection established" in run("test-settings", COMPANY)

    job = run.json("import-orders", COMPANY)
    assert job["status"] == "Completed", job
    listed = {o["source_order_id"]: o for o in run.json("orders", "list", "--company", COMPANY)}
    on_channel = {str(o["order_id"]): o for o in bm_sandbox.orders()}
    assert set(listed) == {i for i, o in on_channel.items() if o["state"] in (1, 3, 8)}
    assert all(o["payment_status"] == "Fully Charged" and o["payment_method"] is None for o in listed.values())
    assert {i for i, o in listed.items() if o["channel_cancelled"]} == {i for i, o in on_channel.items() if o["state"] == 8}

    # ship a single-unit order with its IMEI; the worker uploads the tracking exactly once
    target = next(o for i, o in listed.items() if not o["channel_cancelled"]
                  and len(on_channel[i]["orderlines"]) == 1 and on_channel[i]["orderlines"][0]["quantity"] == 1)  # fmt: skip
    run("orders", "ship", str(target["id"]), "--carrier", "Colissimo", "--tracking", "6A00012345678",
        "--serial", "356938035643809")  # fmt: skip
    bm_sandbox.clear_request_log()
    run("worker", "--once", "--download-every", "0")
    run("worker", "--once", "--download-every", "0")
    posts = [r for r in bm_sandbox.request_log() if r["method"] == "POST"]
    assert [p["path"] for p in posts] == [f"/ws/orders/{target['source_order_id']}"]
    shipped = bm_sandbox.order(target["source_order_id"])
    assert (shipped["state"], shipped["tracking_number"], shipped["shipper"]) == (9, "6A00012345678", "Colissimo")
    assert shipped["orderlines"][0]["imei"] == "356938035643809"
    assert run.json("orders", "show", str(target["id"]))["source_updated_for_shipping"] is True

    # a cancellation on Back Market is flagged for staff, the status is not changed
    other = next(o for o in listed.values() if not o["channel_cancelled"] and o["id"] != target["id"])
    bm_sandbox.cancel_order(other["source_order_id"])
    run("worker", "--once", "--download-every", "0")
    assert other["id"] in {o["id"] for o in run.json("orders", "list", "--needs-attention")}
    assert run.json("orders", "show", str(other["id"]))["status"] == other["status"]
    for job in run.json("jobs", "list"):
        assert job["status"] in ("Completed", "Partial Success"), job
