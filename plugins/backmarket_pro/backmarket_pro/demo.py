"""``cartplugin backmarket-pro demo``: the Back Market Pro setup of the support guide, step by step.

Each step prints the command a support person would type and runs that very command through
the ``cartplugin`` group the host hands to the plugin, on a temporary SQLite database (or the
new, empty database ``--db`` names: a path or a ``postgresql://`` URL), against this plugin's
sandbox started on a free loopback port. The plugin never imports the host.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import click

from plugin_spec.demo import Demo

from .sandbox import Sandbox

COMPANY = "Refurb Traders GmbH"
COMMISSION = "12.5"


def run_demo(cli: click.Group, order_count: int = 25, target: str | None = None) -> None:
    """Run each step through ``cli``, the root ``cartplugin`` group, on ``target`` (a new, empty
    database) or a temporary SQLite file."""
    with Demo(cli, target) as demo, Sandbox(orders=order_count, seed=7) as sandbox:
        run = demo.run
        click.secho(f"Back Market Pro sandbox at {sandbox.base_url}; database {demo.shown_db}", bold=True)
        demo.step("1. Add the company designated for this integration")
        run("companies", "add", COMPANY)
        demo.step("2. Website General Settings: Store Plugin, Allow Order Download, Allow Tracking Upload")
        run("website-settings", COMPANY, "--store-plugin", "backmarket_pro",
             "--allow-order-download", "--allow-tracking-upload")  # fmt: skip
        demo.step("3. Cart General: Website URL, x-api-key, Order Import: Commission (%)")
        # the key from a file, as staff should give it: a value on the command line shows in `ps`
        key_file = demo.secret_file("bmp-key.txt", sandbox.api_key)
        run("cart-settings", COMPANY, "--set", f"website_url={sandbox.base_url}",
             "--set-file", f"x_api_key={key_file}", "--set", f"commission_percent={COMMISSION}")  # fmt: skip
        demo.step("4. Test Settings (required to establish the connection)")
        run("test-settings", COMPANY)
        demo.step("5. Actions > Import Orders (a Queued Job)")
        run("import-orders", COMPANY)
        imported = demo.orders(COMPANY)
        click.echo(f"{len(imported)} orders imported")
        demo.step("6. Ship two orders in the host")
        shippable = [o for o in imported if not o["channel_cancelled"]][:2]
        for n, order in enumerate(shippable, 1):
            number = ("1Z999AA10123456784", "1Z12345E6605272234")[n - 1]  # UPS numbers, check digits and all
            run("orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", number,
                 "--tracking-url", f"https://www.ups.com/track?tracknum={number}")  # fmt: skip
        demo.step("7. The worker: automatic download and tracking upload")
        run("worker", "--once")
        _summary(demo.orders(COMPANY), sandbox, [o["source_order_id"] for o in shippable])


def _summary(final: list[dict[str, Any]], sandbox: Sandbox, shipped_ids: list[str]) -> None:
    channel_orders = {o["id"]: o for o in sandbox.orders()}
    accepted = [sid for sid in shipped_ids if channel_orders.get(sid, {}).get("shipments")]
    commission: dict[str, Decimal] = {}
    for o in final:
        commission[o["currency"]] = commission.get(o["currency"], Decimal("0")) + Decimal(o["commission"])
    flagged = sum(1 for o in final if o["needs_attention"])
    click.secho("\nSummary", bold=True)
    click.echo(f"  orders imported:                 {len(final)}")
    click.echo(f"  Fully Charged:                   {sum(o['payment_status'] == 'Fully Charged' for o in final)}")
    click.echo(f"  payment method imported:         {sum(o['payment_method'] is not None for o in final)}")
    by_currency = ", ".join(f"{amount} {currency}" for currency, amount in sorted(commission.items()))
    click.echo(f"  commission ({COMMISSION}%) added:        {by_currency}")
    click.echo(f"  cancelled on channel (flagged):  {flagged}")
    click.echo(f"  tracking accepted by channel:    {len(accepted)} of {len(shipped_ids)}")
    click.echo(f"  Source Updated for Shipping:     {sum(o['source_updated_for_shipping'] for o in final)}")
