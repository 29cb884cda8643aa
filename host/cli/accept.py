"""``cartplugin orders accept``: accept new orders on channels that want each one accepted."""

from __future__ import annotations

import click

from host.channel import acceptance
from host.cli.common import emit, open_db
from host.records import audit, companies


def register(orders_group: click.Group) -> None:
    @orders_group.command(name="accept")
    @click.argument("company")
    @click.argument("order_ids", nargs=-1, type=int)
    @click.option(
        "--cancel",
        "cancels",
        multiple=True,
        metavar="ORDER_ID=SKU",
        help="Cancel this line on the channel instead of accepting it (the seller cannot serve it).",
    )
    @click.option("--json", "as_json", is_flag=True, help="Output JSON.")
    @click.pass_context
    def orders_accept(
        ctx: click.Context, company: str, order_ids: tuple[int, ...], cancels: tuple[str, ...], as_json: bool
    ) -> None:
        """Accept the company's orders Awaiting acceptance (all, or the ORDER_IDS given).

        Back Market, for one, refuses tracking for an order whose lines the seller has not
        accepted; with the Cart General option "Accept new orders on download" on, every
        download does this by itself.
        """
        cancel_lines: dict[int, list[str]] = {}
        for item in cancels:
            order_id, sep, ref = item.partition("=")
            if not sep or not order_id.strip().isdigit() or not ref.strip():
                raise click.BadParameter(f"{item!r} is not ORDER_ID=SKU", param_hint="--cancel")
            cancel_lines.setdefault(int(order_id), []).append(ref.strip())
        wanted = sorted(set(order_ids) | set(cancel_lines)) or None
        db = open_db(ctx)
        report = acceptance.accept_orders(
            db, companies.get_company(db, company), wanted, cancel_lines=cancel_lines, actor=audit.cli_actor()
        )
        lines = [f"{r['id']:>6}  {r['source_order_id']}  {'accepted' if r['ok'] else 'NOT accepted'}: {r['message']}"
                 for r in report] or ["No order is awaiting acceptance."]  # fmt: skip
        emit(report, as_json, "\n".join(lines))
        if any(not r["ok"] for r in report):
            ctx.exit(1)
