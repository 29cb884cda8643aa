"""CLI commands the plugin adds to ``cartplugin``: ``cartplugin backmarket sandbox``."""

from __future__ import annotations

import time

import click

from .sandbox import DEFAULT_TOKEN, Sandbox


def mask(secret: str) -> str:
    """Only the last 4 characters of a token (nothing of a short one)."""
    return "****" + secret[-4:] if len(secret) >= 12 else "****"


def register(cli: click.Group) -> None:
    @cli.group("backmarket")
    def backmarket() -> None:
        """Back Market (regular seller API) channel tools."""

    @backmarket.command("sandbox")
    @click.option("--port", default=8766, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port.")
    @click.option("--token", default=DEFAULT_TOKEN, show_default=True, help="The seller's API token.")
    @click.option("--orders", default=20, show_default=True, type=click.IntRange(0, 100_000), help="Orders to generate.")
    @click.option("--seed", default=1, show_default=True, type=int, help="Same seed, same orders.")
    @click.option("--rate-limit", default=200, show_default=True, type=click.IntRange(1), help="Requests per 10 s before 429.")
    def sandbox(port: int, token: str, orders: int, seed: int, rate_limit: int) -> None:
        """Run a fake Back Market seller API on 127.0.0.1 until Ctrl-C.

        Put the printed API URL and the token into the company's Cart General settings.
        """
        server = Sandbox(port=port, token=token, orders=orders, seed=seed, rate_limit=rate_limit)
        try:
            server.start()
        except OSError as exc:
            raise click.ClickException(f"Cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}") from None
        click.echo("Back Market sandbox running")
        click.echo(f"API URL: {server.base_url}")
        click.echo(f"Token:   {mask(token)}")
        click.echo(f"Inspect: {server.control_url}/orders")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            click.echo("Stopping.")
        finally:
            server.stop()
