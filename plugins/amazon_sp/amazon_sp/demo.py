"""``cartplugin amazon-sp demo``: an Amazon company set up as support staff would, step by step,
against the sandbox (Login with Amazon credentials, Test Settings, Import Orders, shipping, and
the worker confirming the shipments on Amazon)."""

from __future__ import annotations

from typing import Any

import click

from plugin_spec.demo import Demo

from .sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN, Sandbox

COMPANY = "Refurb Traders GmbH (Amazon)"
COMMISSION = "15"
#: tracking numbers a carrier would issue (a DHL Paket number and a UPS one with its check digit)
TRACKING = [("DHL", "00340434161094042557"), ("UPS", "1Z999AA10123456784")]


def run_demo(cli: click.Group, order_count: int = 40, target: str | None = None) -> None:
    with Demo(cli, target, prefix="cartplugin-amazon-demo-") as demo, Sandbox(orders=order_count, seed=7) as sandbox:
        run = demo.run
        click.secho(f"Amazon SP-API sandbox at {sandbox.base_url}; database {demo.shown_db}", bold=True)
        demo.step("1. Add the company designated for this integration")
        run("companies", "add", COMPANY)
        demo.step("2. Website General Settings: Store Plugin, Allow Order Download, Allow Tracking Upload")
        run("website-settings", COMPANY, "--store-plugin", "amazon_sp", "--allow-order-download",
            "--allow-tracking-upload")  # fmt: skip
        demo.step("3. Cart General: region, marketplaces, the app's LWA credentials and the seller's refresh token")
        secret = demo.secret_file("lwa-client-secret.txt", DEFAULT_CLIENT_SECRET)
        refresh = demo.secret_file("lwa-refresh-token.txt", DEFAULT_REFRESH_TOKEN)
        markets = ",".join(sandbox.marketplaces)
        run("cart-settings", COMPANY, "--set", "region=eu", "--set", f"marketplace_ids={markets}",
            "--set", f"lwa_client_id={DEFAULT_CLIENT_ID}", "--set-file", f"lwa_client_secret={secret}",
            "--set-file", f"refresh_token={refresh}", "--set", f"api_url={sandbox.base_url}",
            "--set", f"commission_percent={COMMISSION}")  # fmt: skip
        demo.step("4. Test Settings: an access token from Login with Amazon, and one page of orders")
        run("test-settings", COMPANY)
        demo.step("5. Actions > Import Orders (a Queued Job): merchant-fulfilled orders to ship, and cancellations")
        run("import-orders", COMPANY)
        imported = demo.orders(COMPANY)
        click.echo(f"{len(imported)} orders imported")
        demo.step("6. Ship two orders in the host")
        shippable = [o for o in imported if not o["channel_cancelled"]][:2]
        for order, (carrier, number) in zip(shippable, TRACKING, strict=False):
            run("orders", "ship", str(order["id"]), "--carrier", carrier, "--tracking", number)
        demo.step("7. The worker: automatic download and confirmShipment on Amazon")
        run("worker", "--once")
        run("cart-settings", COMPANY)  # when the access token was renewed, never the token
        _summary(demo.orders(COMPANY), sandbox, [o["source_order_id"] for o in shippable])


def _summary(final: list[dict[str, Any]], sandbox: Sandbox, shipped_ids: list[str]) -> None:
    confirmed = [sid for sid in shipped_ids if sandbox.recorded_tracking(sid)]
    expected = sandbox.unfulfilled_order_ids()
    imported = {o["source_order_id"] for o in final}
    click.secho("\nSummary", bold=True)
    click.echo(f"  orders imported:                  {len(final)}")
    click.echo(f"  merchant orders to ship, missing: {len(expected - imported)}")
    click.echo(f"  cancelled on Amazon (flagged):    {sum(1 for o in final if o['channel_cancelled'])}")
    click.echo(f"  shipments confirmed on Amazon:    {len(confirmed)} of {len(shipped_ids)}")
    click.echo(f"  Source Updated for Shipping:      {sum(o['source_updated_for_shipping'] for o in final)}")
    click.echo(f"  access tokens minted:             {sandbox.lwa.mints}")
