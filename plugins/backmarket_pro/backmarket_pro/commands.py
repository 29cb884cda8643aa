"""CLI commands the plugin adds to ``cartplugin``: ``cartplugin backmarket-pro sandbox`` and ``demo``."""

from __future__ import annotations

import click

from plugin_spec import validators
from plugin_spec.sandbox import run_in_foreground

from .sandbox import DEFAULT_API_KEY, Sandbox


def register(cli: click.Group) -> None:
    """Add the ``backmarket-pro`` group to the root CLI group."""

    @cli.group("backmarket-pro")
    def backmarket_pro() -> None:
        """Back Market Pro channel tools."""

    @backmarket_pro.command("sandbox")
    @click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
    @click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535), help="0 picks a free port.")
    @click.option("--api-key", default=DEFAULT_API_KEY, show_default=True, help="The seller account's x-api-key.")
    @click.option(
        "--orders", default=25, show_default=True, type=click.IntRange(0, 1_000_000), help="Orders to generate."
    )
    @click.option("--seed", default=1, show_default=True, type=int, help="Same seed, same orders.")
    @click.option(
        "--latency",
        default=0.0,
        show_default=True,
        type=click.FloatRange(0),
        help="Seconds added to every API request.",
    )
    @click.option("--rate-limit", default=None, type=click.IntRange(1), help="Requests per 10 s per key before 429.")
    @click.option(
        "--account",
        "accounts",
        multiple=True,
        metavar="KEY[:NAME]",
        help="Another seller account with its own orders (repeatable): one per company that shares this sandbox.",
    )
    def sandbox(
        host: str,
        port: int,
        api_key: str,
        orders: int,
        seed: int,
        latency: float,
        rate_limit: int | None,
        accounts: tuple[str, ...],
    ) -> None:
        """Run a fake Back Market Pro API in the foreground until Ctrl-C.

        Put the printed Website URL and the key into the company's Cart General settings.
        Inspect and drive it under /_sandbox/ (orders, requests, faults).
        """
        if not validators.is_loopback(host):
            click.echo(
                f"Warning: {host} is not a loopback address; anyone who can reach it can use the sandbox.", err=True
            )
        server = Sandbox(host=host, port=port, api_key=api_key, orders=orders, seed=seed, latency=latency)
        if rate_limit:
            server.set_faults(rate_limit=rate_limit)
        extra: list[tuple[str, str]] = []
        for i, spec in enumerate(accounts, start=2):
            key, _, name = spec.partition(":")
            if not key.strip() or key.strip() == api_key or key.strip() in [k for k, _ in extra]:
                raise click.BadParameter(
                    f"each account needs its own key (KEY or KEY:NAME), not {spec[:40]!r}", param_hint="--account"
                )
            extra.append((key.strip(), name.strip() or f"Seller {i}"))
        try:
            server.start()
        except OSError as exc:
            raise click.ClickException(f"Cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        for i, (key, name) in enumerate(extra, start=2):
            server.add_account(key, name=name, orders=orders, seed=seed + i - 1)
        # a sandbox key opens nothing but this local fake, so it is shown whole, to be pasted
        lines = ["Back Market Pro sandbox running", f"Website URL: {server.base_url}", f"x-api-key:   {api_key}"]
        lines += [f"x-api-key:   {key}  ({name})" for key, name in extra]
        lines.append(f"Inspect:     {server.control_url}/  (the index of the sandbox's control endpoints)")
        run_in_foreground(server, lines, click.echo)

    @backmarket_pro.command("demo")
    @click.option("--orders", "order_count", type=click.IntRange(1, 100000), default=25, show_default=True)
    @click.option(
        "--db",
        "target",
        metavar="PATH|URL",
        default=None,
        help="Run on this new, empty database (a SQLite path or a postgresql:// URL) instead of a temporary file.",
    )
    def demo(order_count: int, target: str | None) -> None:
        """Walk the Back Market Pro setup of the support guide against a sandbox, on a temporary
        SQLite database or the one given."""
        from .demo import run_demo

        run_demo(cli, order_count, target)
