"""``cartplugin demo``: the help page's Back Market Pro setup, step by step, on a sandbox.

Each step prints the command a support person would type and runs that very command, on a
temporary database, against the Back Market Pro sandbox started on a free loopback port.
"""

from __future__ import annotations

import json
import shlex
import tempfile
from decimal import Decimal
from pathlib import Path

import click

from .errors import HostError

COMPANY = "Refurb Traders GmbH"
COMMISSION = "12.5"


def _run(db: Path, *args: str, show: bool = True) -> str:
    from .cli import cli

    shown = " ".join(shlex.quote(a) for a in args)
    click.secho("$ cartplugin " + shown, fg="cyan")
    runner_args = ["--db", str(db), *args]
    from click.testing import CliRunner

    result = CliRunner().invoke(cli, runner_args, catch_exceptions=False)
    if result.exit_code != 0:
        raise HostError(f"demo step failed: cartplugin {' '.join(args)}: {result.output.strip()}")
    if show:
        click.echo(result.output.rstrip())
    return result.output


def run_demo(order_count: int = 25) -> None:
    try:
        from backmarket_pro.sandbox import Sandbox
    except ImportError:
        raise HostError(
            "the demo needs the Back Market Pro plugin: cartplugin install -e plugins/backmarket_pro"
        ) from None

    with tempfile.TemporaryDirectory(prefix="cartplugin-demo-") as tmp, Sandbox(orders=order_count, seed=7) as sandbox:
        db = Path(tmp) / "demo.db"
        click.secho(f"Back Market Pro sandbox at {sandbox.base_url}; database {db}\n", bold=True)
        click.secho("1. Add the company designated for this integration", bold=True)
        _run(db, "companies", "add", COMPANY)
        click.secho(
            "\n2. Website General Settings: Store Plugin, Allow Order Download, Allow Tracking Upload", bold=True
        )
        _run(db, "website-settings", COMPANY, "--store-plugin", "backmarket_pro",
             "--allow-order-download", "--allow-tracking-upload")  # fmt: skip
        click.secho("\n3. Cart General: Website URL, x-api-key, Order Import: Commission (%)", bold=True)
        # the key from a file, as staff should give it: a value on the command line shows in `ps`
        key_file = Path(tmp) / "bmp-key.txt"
        key_file.write_text(sandbox.api_key + "\n")
        key_file.chmod(0o600)
        _run(db, "cart-settings", COMPANY, "--set", f"website_url={sandbox.base_url}",
             "--set-file", f"x_api_key={key_file}", "--set", f"commission_percent={COMMISSION}")  # fmt: skip
        click.secho("\n4. Test Settings (required to establish the connection)", bold=True)
        _run(db, "test-settings", COMPANY)
        click.secho("\n5. Actions > Import Orders (a Queued Job)", bold=True)
        _run(db, "import-orders", COMPANY)
        imported = json.loads(_run(db, "orders", "list", "--company", COMPANY, "--json", show=False))
        click.echo(f"{len(imported)} orders imported")
        click.secho("\n6. Ship two orders in the host", bold=True)
        shippable = [o for o in imported if not o["channel_cancelled"]][:2]
        for n, order in enumerate(shippable, 1):
            _run(db, "orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", f"1Z999AA1012345678{n}",
                 "--tracking-url", f"https://www.ups.com/track?tracknum=1Z999AA1012345678{n}")  # fmt: skip
        click.secho("\n7. The worker: automatic download and tracking upload", bold=True)
        _run(db, "worker", "--once")
        final = json.loads(_run(db, "orders", "list", "--company", COMPANY, "--json", show=False))
        _summary(final, sandbox, [o["source_order_id"] for o in shippable])


def _summary(final: list[dict], sandbox, shipped_ids: list[str]) -> None:
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
