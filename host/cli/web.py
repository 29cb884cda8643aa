"""``cartplugin serve`` (the web admin) and ``cartplugin users`` (its staff accounts)."""

from __future__ import annotations

import ipaddress
import sys
from collections.abc import Callable
from typing import TypeVar

import click

from host.records import audit, employees, users
from host.store.api import Store
from host.store.db import connect, open_existing

LOOPBACK_NAMES = {"localhost"}
T = TypeVar("T")


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command(name="serve")
@click.option("--host", help="Address to listen on (config web_host, default 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (config web_port, default 8000).")
@click.option(
    "--threads", type=click.IntRange(1, 256), help="Requests answered at once (config web_threads, default 8)."
)
@click.option(
    "--timeout",
    type=click.FloatRange(1, 3600),
    help="Seconds before a silent or slow client is cut off (config web_timeout, default 30).",
)
@click.option("--allow-remote", is_flag=True, help="Required to listen on an address other than loopback.")
@click.option(
    "--secure-cookies",
    is_flag=True,
    default=None,
    help="HTTPS in front (a TLS proxy): cookies over HTTPS only, and HSTS (config web_secure_cookies).",
)
@click.option(
    "--trusted-proxy",
    metavar="ADDRESS",
    help="Believe X-Forwarded-For / -Proto from this proxy address only (config web_trusted_proxy).",
)
@click.pass_context
def serve(
    ctx: click.Context,
    host: str | None,
    port: int | None,
    threads: int | None,
    timeout: float | None,
    allow_remote: bool,
    secure_cookies: bool | None,
    trusted_proxy: str | None,
) -> None:
    """The web admin for support staff (add a user first: cartplugin users add NAME --role admin).

    Served by waitress: slow clients are cut off after the timeout, no Server banner, one access
    line a request on stderr. A non-loopback address needs --allow-remote and HTTPS in front.
    """
    from host import logs
    from host.web import create_app
    from host.web.server import ServerOptions, build, port_of

    settings = ctx.obj["settings"]
    host = host or settings.web_host
    secure = settings.web_secure_cookies if secure_cookies is None else secure_cookies
    if not _is_loopback(host):
        if not allow_remote:
            raise click.ClickException(f"{host} is not a loopback address; pass --allow-remote to listen on it")
        if not secure:
            raise click.ClickException(
                f"listening on {host} needs HTTPS in front: put a TLS proxy before it and pass --secure-cookies "
                "(and --trusted-proxy ADDRESS), or passwords and sessions would travel in clear"
            )
    options = ServerOptions(
        host=host,
        port=port or settings.web_port,
        threads=threads or settings.web_threads,
        timeout=timeout or settings.web_timeout,
        trusted_proxy=trusted_proxy or settings.web_trusted_proxy,
        trusted_proxy_count=settings.web_trusted_proxy_count,
        access_log=settings.web_access_log,
    )
    db = connect(ctx.obj["db_path"])
    if not users.list_users(db):
        click.echo("Warning: no users yet; add one: cartplugin users add NAME --role admin", err=True)
    db.close()
    app = create_app(
        ctx.obj["db_path"],
        secure_cookies=secure,
        session_hours=settings.web_session_hours,
        idle_minutes=settings.web_idle_minutes,
    )
    if options.access_log:
        logs.access_log(settings.log_format)
    try:
        server = build(app, options)
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{options.port}: {exc.strerror or exc}") from None
    scheme = "https (TLS in front)" if secure else "http"
    click.echo(
        f"cartplugin web admin on http://{host}:{port_of(server)}/ ({scheme}; {options.threads} threads, "
        f"clients cut off after {options.timeout:g} s; Ctrl-C stops it)"
    )
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


@click.group(name="users")
def users_group() -> None:
    """Staff accounts of the web admin: admin, support, warehouse, read-only."""


@users_group.command(name="add")
@click.argument("name")
@click.option("--role", type=click.Choice(users.ROLES), required=True, help="What the user may change.")
@click.pass_context
def users_add(ctx: click.Context, name: str, role: str) -> None:
    """Add a user; the password is asked at a hidden prompt, twice (or read once from stdin when piped)."""
    db = open_existing(ctx.find_root().obj["db_path"])  # `companies add` creates the database
    try:
        users.check_new_user(db, name, role)  # a taken name is said before any password is typed
        user = employees.add(db, audit.cli_actor(), name, role, _password("Password"))
    finally:
        db.close()
    click.echo(f"Added user {user.name!r} ({user.role})")


@users_group.command(name="password")
@click.argument("name")
@click.pass_context
def users_password(ctx: click.Context, name: str) -> None:
    """Set a new password (hidden prompt, or read once from stdin when piped); the user's open sessions end."""
    db = open_existing(ctx.find_root().obj["db_path"])
    try:
        users.get_user_by_name(db, name)  # an unknown name is said before any password is typed
        employees.reset_password(db, audit.cli_actor(), name, _password("New password"))
    finally:
        db.close()
    click.echo(f"Password of {name!r} changed")


@users_group.command(name="unlock")
@click.argument("name")
@click.pass_context
def users_unlock(ctx: click.Context, name: str) -> None:
    """Let NAME sign in again at once: forget its failed sign-ins from every address."""
    db = open_existing(ctx.find_root().obj["db_path"])
    try:
        user = users.get_user_by_name(db, name)
        forgotten = users.unlock(db, name)
        audit.record(db, audit.cli_actor(), "employee unlocked", target=user.name,
                     details={"failed sign-ins forgotten": forgotten})  # fmt: skip
    finally:
        db.close()
    click.echo(f"{name!r} may sign in again ({forgotten} failed sign-in{'s' if forgotten != 1 else ''} forgotten)")


def _change(ctx: click.Context, change: Callable[[Store], T]) -> T:
    db = open_existing(ctx.find_root().obj["db_path"])
    try:
        return change(db)
    finally:
        db.close()


@users_group.command(name="disable")
@click.argument("name")
@click.pass_context
def users_disable(ctx: click.Context, name: str) -> None:
    """NAME cannot sign in any more (same answer as a wrong password); their open sessions end."""
    user = _change(ctx, lambda db: employees.set_disabled(db, audit.cli_actor(), name, True))
    click.echo(f"Disabled {user.name!r}: cannot sign in; open sessions ended")


@users_group.command(name="enable")
@click.argument("name")
@click.pass_context
def users_enable(ctx: click.Context, name: str) -> None:
    """Let a disabled NAME sign in again."""
    user = _change(ctx, lambda db: employees.set_disabled(db, audit.cli_actor(), name, False))
    click.echo(f"Enabled {user.name!r}: may sign in again")


@users_group.command(name="remove")
@click.argument("name")
@click.pass_context
def users_remove(ctx: click.Context, name: str) -> None:
    """Remove NAME for good (never the last admin); their open sessions end."""
    _change(ctx, lambda db: employees.remove(db, audit.cli_actor(), name))
    click.echo(f"Removed {name.strip()!r}; open sessions ended")


@users_group.command(name="role")
@click.argument("name")
@click.argument("role", type=click.Choice(users.ROLES))
@click.pass_context
def users_role(ctx: click.Context, name: str, role: str) -> None:
    """Give NAME another ROLE (never the last admin's); their open sessions end."""
    user = _change(ctx, lambda db: employees.set_role(db, audit.cli_actor(), name, role))
    click.echo(f"{user.name!r} is now {user.role}; open sessions ended")


def _password(label: str) -> str:
    """Typed twice at a terminal; from a pipe (a script, a secret store), its first line once."""
    stdin = sys.stdin
    if stdin.isatty():
        return str(click.prompt(label, hide_input=True, confirmation_prompt=True, err=True))
    line = stdin.readline()
    if not line.strip():
        raise click.ClickException(f"{label.lower()}: none on stdin (pipe one line, or run at a terminal)")
    return line.rstrip("\r\n")


@users_group.command(name="list")
@click.pass_context
def users_list(ctx: click.Context) -> None:
    """List users and their roles."""
    db = connect(ctx.find_root().obj["db_path"])
    rows = users.list_users(db)
    db.close()
    for row in rows:
        state = "  disabled" if row["disabled"] else ""
        click.echo(f"{row['name']}  {row['role']}{state}  last login {row['last_login_at'] or '-'}")
    if not rows:
        click.echo("No users: cartplugin users add NAME --role admin")


def register(cli: click.Group) -> None:
    cli.add_command(serve)
    cli.add_command(users_group)
