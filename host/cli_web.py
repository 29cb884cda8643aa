"""``cartplugin serve`` (the web admin) and ``cartplugin users`` (its staff accounts)."""

from __future__ import annotations

import ipaddress

import click

from . import users
from .db import connect

LOOPBACK_NAMES = {"localhost"}


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command(name="serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--allow-remote", is_flag=True, help="Required to listen on an address other than loopback.")
@click.option("--secure-cookies", is_flag=True, help="Send the session cookie over HTTPS only (behind a TLS proxy).")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, allow_remote: bool, secure_cookies: bool) -> None:
    """The web admin for support staff (add a user first: cartplugin users add NAME --role admin)."""
    from werkzeug.serving import make_server

    from .web import create_app

    if not _is_loopback(host):
        if not allow_remote:
            raise click.ClickException(f"{host} is not a loopback address; pass --allow-remote to listen on it")
        click.echo(
            f"Warning: listening on {host}: put it behind a TLS proxy (HTTPS) and pass --secure-cookies, "
            "or passwords and sessions travel in clear",
            err=True,
        )
    db = connect(ctx.obj["db_path"])
    if not users.list_users(db):
        click.echo("Warning: no users yet; add one: cartplugin users add NAME --role admin", err=True)
    db.close()
    app = create_app(ctx.obj["db_path"], secure_cookies=secure_cookies)
    server = make_server(host, port, app, threaded=True)
    click.echo(f"cartplugin web admin on http://{host}:{server.server_port}/ (Ctrl-C stops it)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@click.group(name="users")
def users_group() -> None:
    """Staff accounts of the web admin: admin, support, warehouse, read-only."""


@users_group.command(name="add")
@click.argument("name")
@click.option("--role", type=click.Choice(users.ROLES), required=True, help="What the user may change.")
@click.pass_context
def users_add(ctx: click.Context, name: str, role: str) -> None:
    """Add a user; the password is asked at a hidden prompt (or read from stdin when piped)."""
    password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    db = connect(ctx.find_root().obj["db_path"])
    user = users.add_user(db, name, role, password)
    db.close()
    click.echo(f"Added user {user.name!r} ({user.role})")


@users_group.command(name="password")
@click.argument("name")
@click.pass_context
def users_password(ctx: click.Context, name: str) -> None:
    """Set a new password (hidden prompt); the user's open sessions end."""
    password = click.prompt("New password", hide_input=True, confirmation_prompt=True, err=True)
    db = connect(ctx.find_root().obj["db_path"])
    users.set_password(db, name, password)
    db.close()
    click.echo(f"Password of {name!r} changed")


@users_group.command(name="list")
@click.pass_context
def users_list(ctx: click.Context) -> None:
    """List users and their roles."""
    db = connect(ctx.find_root().obj["db_path"])
    rows = users.list_users(db)
    db.close()
    for row in rows:
        click.echo(f"{row['name']}  {row['role']}  last login {row['last_login_at'] or '-'}")
    if not rows:
        click.echo("No users: cartplugin users add NAME --role admin")


def register(cli: click.Group) -> None:
    cli.add_command(serve)
    cli.add_command(users_group)
