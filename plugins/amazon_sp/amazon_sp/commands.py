"""CLI commands the plugin adds to ``cartplugin``: ``cartplugin amazon-sp sandbox`` and ``demo``."""

from __future__ import annotations

import click

from plugin_spec import validators
from plugin_spec.sandbox import run_in_foreground

from .sandbox import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN, Sandbox
from .sandbox_data import DEFAULT_MARKETPLACE, MARKETPLACES


def register(cli: click.Group) -> None:
    """Add the ``amazon-sp`` group to the root CLI group."""

    @cli.group("amazon-sp")
    def amazon_sp() -> None:
        """Amazon (Selling Partner API) channel tools."""

    @amazon_sp.command("sandbox")
    @click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
    @click.option("--port", default=8775, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port.")
    @click.option("--orders", default=40, show_default=True, type=click.IntRange(0, 100_000), help="Orders to make.")
    @click.option("--seed", default=1, show_default=True, type=int, help="Same seed, same orders.")
    @click.option(
        "--marketplace", "marketplaces", multiple=True, type=click.Choice(sorted(MARKETPLACES)),
        help="A marketplace the seller sells on (repeatable; default Amazon.de).",
    )  # fmt: skip
    @click.option("--rate-limits", is_flag=True, help="Answer 429 past each operation's usage plan, as Amazon does.")
    def sandbox(host: str, port: int, orders: int, seed: int, marketplaces: tuple[str, ...], rate_limits: bool) -> None:
        """Run a fake Selling Partner API (and its Login with Amazon token endpoint) until Ctrl-C.

        Put the printed values into the company's Cart General settings. Inspect and drive it
        under /_sandbox/ (orders, requests, faults, tokens).
        """
        if not validators.is_loopback(host):
            click.echo(
                f"Warning: {host} is not a loopback address; anyone who can reach it can use the sandbox.", err=True
            )
        server = Sandbox(
            host=host, port=port, orders=orders, seed=seed, marketplaces=marketplaces or (DEFAULT_MARKETPLACE,)
        )
        if rate_limits:
            server.set_faults(rate_limits=True)
        try:
            server.start()
        except OSError as exc:
            raise click.ClickException(f"Cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        # sandbox credentials open nothing but this local fake, so they are shown whole, to be pasted
        lines = [
            "Amazon Selling Partner API sandbox running",
            f"API URL:            {server.base_url}",
            f"LWA token URL:      {server.token_url}",
            f"Marketplace IDs:    {','.join(server.marketplaces)}",
            f"LWA client id:      {DEFAULT_CLIENT_ID}",
            f"LWA client secret:  {DEFAULT_CLIENT_SECRET}",
            f"Refresh token:      {DEFAULT_REFRESH_TOKEN}",
            f"Inspect:            {server.control_url}/  (the index of the sandbox's control endpoints)",
        ]
        run_in_foreground(server, lines, click.echo)

    @amazon_sp.command("demo")
    @click.option("--orders", "order_count", type=click.IntRange(1, 100000), default=40, show_default=True)
    @click.option(
        "--db", "target", metavar="PATH|URL", default=None,
        help="Run on this new, empty database (a SQLite path or a postgresql:// URL) instead of a temporary file.",
    )  # fmt: skip
    def demo(order_count: int, target: str | None) -> None:
        """Walk the Amazon setup against a sandbox: Login with Amazon credentials, Test Settings,
        Import Orders, shipping and the automatic tracking upload."""
        from .demo import run_demo

        run_demo(cli, order_count, target)
