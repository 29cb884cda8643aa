"""``cartplugin backmarket-pro demo``: the Back Market Pro setup of the support guide, step by step.

Each step prints the command a support person would type and runs that very command through
the ``cartplugin`` group the host hands to the plugin, on a temporary SQLite database (or the
new, empty database ``--db`` names: a path or a ``postgresql://`` URL), against this plugin's
sandbox started on a free loopback port. The plugin never imports the host.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
from click.testing import CliRunner

from plugin_spec import pgurl

from .sandbox import Sandbox

COMPANY = "Refurb Traders GmbH"
COMMISSION = "12.5"


#: the host's variable naming the file that keeps the key of sealed secrets
KEY_FILE_ENV = "CARTPLUGIN_SECRET_KEY_FILE"


def _run(cli: click.Group, db: Path | str, *args: str, show: bool = True, env: dict[str, str] | None = None) -> str:
    click.secho("$ cartplugin " + " ".join(shlex.quote(a) for a in args), fg="cyan")
    result = CliRunner().invoke(cli, ["--db", str(db), *args], catch_exceptions=False, env=env)
    if result.exit_code != 0:
        raise click.ClickException(f"demo step failed: cartplugin {' '.join(args)}: {result.output.strip()}")
    if show:
        click.echo(result.output.rstrip())
    return result.output


def run_demo(cli: click.Group, order_count: int = 25, target: str | None = None) -> None:
    """Run each step through ``cli``, the root ``cartplugin`` group, on ``target`` (a new, empty
    database) or a temporary SQLite file."""
    with tempfile.TemporaryDirectory(prefix="cartplugin-demo-") as tmp, Sandbox(orders=order_count, seed=7) as sandbox:
        db: Path | str = target or Path(tmp) / "demo.db"
        env: dict[str, str] = {}
        if pgurl.is_url(target) and not os.environ.get(KEY_FILE_ENV):
            # a server database keeps its secrets' key in a file it names: one for this run
            env[KEY_FILE_ENV] = str(Path(tmp) / "demo.key")
        run = functools.partial(_run, cli, db, env=env)
        shown = pgurl.display(str(db))
        click.secho(f"Back Market Pro sandbox at {sandbox.base_url}; database {shown}\n", bold=True)
        click.secho("1. Add the company designated for this integration", bold=True)
        run("companies", "add", COMPANY)
        click.secho(
            "\n2. Website General Settings: Store Plugin, Allow Order Download, Allow Tracking Upload", bold=True
        )
        run("website-settings", COMPANY, "--store-plugin", "backmarket_pro",
             "--allow-order-download", "--allow-tracking-upload")  # fmt: skip
        click.secho("\n3. Cart General: Website URL, x-api-key, Order Import: Commission (%)", bold=True)
        # the key from a file, as staff should give it: a value on the command line shows in `ps`
        key_file = Path(tmp) / "bmp-key.txt"
        key_file.write_text(sandbox.api_key + "\n")
        key_file.chmod(0o600)
        run("cart-settings", COMPANY, "--set", f"website_url={sandbox.base_url}",
             "--set-file", f"x_api_key={key_file}", "--set", f"commission_percent={COMMISSION}")  # fmt: skip
        click.secho("\n4. Test Settings (required to establish the connection)", bold=True)
        run("test-settings", COMPANY)
        click.secho("\n5. Actions > Import Orders (a Queued Job)", bold=True)
        run("import-orders", COMPANY)
        imported = json.loads(run("orders", "list", "--company", COMPANY, "--json", show=False))
        click.echo(f"{len(imported)} orders imported")
        click.secho("\n6. Ship two orders in the host", bold=True)
        shippable = [o for o in imported if not o["channel_cancelled"]][:2]
        for n, order in enumerate(shippable, 1):
            run("orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", f"1Z999AA1012345678{n}",
                 "--tracking-url", f"https://www.ups.com/track?tracknum=1Z999AA1012345678{n}")  # fmt: skip
        click.secho("\n7. The worker: automatic download and tracking upload", bold=True)
        run("worker", "--once")
        final = json.loads(run("orders", "list", "--company", COMPANY, "--json", show=False))
        _summary(final, sandbox, [o["source_order_id"] for o in shippable])


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
