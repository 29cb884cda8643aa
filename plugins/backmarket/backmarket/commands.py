"""CLI commands the plugin adds to ``cartplugin``: ``cartplugin backmarket sandbox``."""

from __future__ import annotations

import click

from plugin_spec.sandbox import run_in_foreground
from plugin_spec.wire import mask

from .sandbox import DEFAULT_TOKEN, Sandbox


def register(cli: click.Group) -> None:
    @cli.group("backmarket")
    def backmarket() -> None:
        """Back Market (regular seller API) channel tools."""

    @backmarket.command("sandbox")
    @click.option("--port", default=8766, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port.")
    @click.option("--token", default=DEFAULT_TOKEN, show_default=True, help="The seller's API token.")
    @click.option(
        "--orders", default=20, show_default=True, type=click.IntRange(0, 100_000), help="Orders to generate."
    )
    @click.option("--seed", default=1, show_default=True, type=int, help="Same seed, same orders.")
    @click.option(
        "--rate-limit", default=200, show_default=True, type=click.IntRange(1), help="Requests per 10 s before 429."
    )
    def sandbox(port: int, token: str, orders: int, seed: int, rate_limit: int) -> None:
        """Run a fake Back Market seller API on 127.0.0.1 until Ctrl-C.

        Put the printed API URL and the token into the company's Cart General settings, with
        a company_name and contact_email (the sandbox, like Back Market's firewall, refuses a
        User-Agent that is not BM-{Company}-{Integration};{email}).
        """
        server = Sandbox(port=port, token=token, orders=orders, seed=seed, rate_limit=rate_limit)
        try:
            server.start()
        except OSError as exc:
            raise click.ClickException(f"Cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
        lines = ["Back Market sandbox running", f"API URL: {server.base_url}", f"Token:   {mask(token)}",
                 f"Inspect: {server.control_url}/"]  # fmt: skip
        run_in_foreground(server, lines, click.echo)
