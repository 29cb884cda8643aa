"""``cartplugin plugins``, ``install`` and ``uninstall``: plugins in the host's own environment.

``install`` and ``uninstall`` run pip in the interpreter that runs cartplugin (as ``llm
install`` does), so a plugin lands where the host finds it. ``uninstall`` refuses to remove a
plugin that a company sells through unless ``--force``; those companies then show "plugin
missing" and the worker skips them, saying why.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import click

from host.channel import plugins
from host.cli.terminal import clean, clean_json
from host.errors import HostError
from host.store.api import in_list
from host.store.db import connect, may_exist


def _pip(*args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args], stdin=subprocess.DEVNULL
    )
    if result.returncode != 0:
        raise HostError(f"pip {args[0]} failed (exit {result.returncode}); its messages are above")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _channels_of(package: str) -> set[str]:
    """The channels an installed distribution provides (its ``cartplugin`` entry points)."""
    wanted = _canonical(package)
    names: set[str] = set()
    for dist in metadata.distributions():
        if _canonical(dist.metadata["name"] or "") != wanted:
            continue
        names |= {ep.name for ep in dist.entry_points if ep.group == plugins.ENTRY_POINT_GROUP}
    channels = set()
    for name in names:
        plugin = plugins.pm.get_plugin(name)
        found = [ch for ch, (obj, _) in plugins._channels.items() if obj is plugin] if plugin is not None else []
        channels |= set(found) or {name}
    return channels


def _companies_using(db_path: Path, channels: set[str]) -> list[tuple[str, str]]:
    if not channels or not may_exist(db_path):
        return []
    db = connect(db_path, create=False)
    try:
        marks, params = in_list("channel", sorted(channels))
        return db.execute(
            "SELECT c.name, w.store_plugin FROM companies c JOIN website_settings w ON w.company_id = c.id "
            f"WHERE w.store_plugin IN {marks} ORDER BY c.id",
            params,
        ).fetchall()
    finally:
        db.close()


@click.command(name="plugins")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
def plugins_command(as_json: bool) -> None:
    """List installed plugins: name, version, the hooks they implement."""
    rows = plugins.plugin_listing()
    if as_json or not rows:
        click.echo(clean_json(json.dumps(rows, indent=2, ensure_ascii=False)))
        return
    for row in rows:
        click.echo(
            clean(
                f"{row['name']} {row.get('version') or ''}  {row.get('display_name') or row.get('error') or ''}\n"
                f"  hooks: {', '.join(row.get('hooks', []))}"
            )
        )


@click.command()
@click.argument("packages", nargs=-1)
@click.option("-U", "--upgrade", is_flag=True, help="Upgrade packages to the latest version.")
@click.option(
    "-e",
    "--editable",
    "editables",
    multiple=True,
    metavar="PATH",
    help="Install a project in editable mode from PATH (repeatable).",
)
def install(packages: tuple[str, ...], upgrade: bool, editables: tuple[str, ...]) -> None:
    """Install plugin packages into cartplugin's own environment (pip).

    \b
    cartplugin install cartplugin-backmarket-pro
    cartplugin install -e plugins/backmarket_pro -e plugins/backmarket
    """
    if not packages and not editables:
        raise HostError("name a package, or a project folder with -e PATH")
    for path in editables:
        if not Path(path).is_dir():
            raise HostError(f"-e {path[:200]!r}: no such folder")
    args = ["install", *(["--upgrade"] if upgrade else [])]
    for path in editables:
        args += ["--editable", path]
    _pip(*args, *packages)


@click.command()
@click.argument("packages", nargs=-1, required=True)
@click.option("-y", "--yes", is_flag=True, help="Don't ask for confirmation.")
@click.option("--force", is_flag=True, help="Uninstall even if companies use the plugin (they show 'plugin missing').")
@click.pass_context
def uninstall(ctx: click.Context, packages: tuple[str, ...], yes: bool, force: bool) -> None:
    """Uninstall plugin packages from cartplugin's environment."""
    try:
        plugins.load_plugins()
    except Exception:  # a plugin that does not load can still be uninstalled
        pass
    channels = set().union(*(_channels_of(p) for p in packages))
    users = _companies_using(ctx.find_root().obj["db_path"], channels)
    if users:
        named = ", ".join(f"{name!r} ({channel})" for name, channel in users[:10])
        more = f" and {len(users) - 10} more" if len(users) > 10 else ""
        if not force:
            raise HostError(
                f"companies sell through this plugin: {named}{more}; choose another store plugin for them, "
                "or pass --force (they then show 'plugin missing' and nothing automatic runs for them)"
            )
        click.echo(
            clean(f"Warning: {named}{more} will show 'plugin missing' until the plugin is installed again"), err=True
        )
    if not yes:
        if not sys.stdin.isatty():
            raise HostError("uninstall asks before it removes anything; pass --yes (-y) when not at a terminal")
        click.confirm(f"Uninstall {', '.join(packages)}?", abort=True, err=True)
    _pip("uninstall", "--yes", *packages)


def register(cli: click.Group) -> None:
    for command in (plugins_command, install, uninstall):
        cli.add_command(command)
