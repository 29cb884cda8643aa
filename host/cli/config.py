"""``cartplugin config show``: the settings in force and where each came from."""

from __future__ import annotations

import json

import click

from host.cli import tables


@click.group(name="config")
def config_group() -> None:
    """The host's settings (flags, CARTPLUGIN_* variables, the config file)."""


@config_group.command(name="show")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def config_show(ctx: click.Context, as_json: bool) -> None:
    """Every setting, its value (secrets masked) and where it came from."""
    loaded = ctx.find_root().obj["config"]
    rows = loaded.rows()
    if as_json:
        click.echo(json.dumps({"config_file": str(loaded.path) if loaded.path else None, "settings": rows}, indent=2))
        return
    click.echo(f"Config file: {loaded.path or 'none (see the search order in docs/operations.md)'}")
    click.echo(tables.render(("Setting", "Value", "From"), [[r["name"], r["value"], r["source"]] for r in rows]))


def register(cli: click.Group) -> None:
    cli.add_command(config_group)
