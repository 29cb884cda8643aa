"""``cartplugin db backup``, ``db status`` and ``db copy``: the operator's view of the database."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from host.errors import HostError
from host.records import secrets
from host.store import maintenance
from host.store.db import connect_postgresql, display, open_existing


@click.group(name="db")
def db_group() -> None:
    """The database: backup, status, copy to PostgreSQL."""


@db_group.command(name="backup")
@click.argument("target", metavar="PATH")
@click.option("--force", is_flag=True, help="Replace PATH if it exists.")
@click.option(
    "--key-to",
    metavar="KEY_PATH",
    help="Also copy the key file that encrypts the secrets there (keep it apart from the backup).",
)
@click.pass_context
def db_backup(ctx: click.Context, target: str, force: bool, key_to: str | None) -> None:
    """Copy the database to PATH while it is in use (SQLite's online backup API).

    The worker and the web admin may keep running: the copy is one consistent moment. The
    secrets in the copy (x-api-keys, tokens) are encrypted with the key file: back it up too,
    kept apart (--key-to KEY_PATH copies it); without it they cannot be read.
    """
    source_path = ctx.find_root().obj["db_path"]
    maintenance.check_backup(source_path, target)
    dest = Path(target).expanduser().absolute()
    if dest == Path(source_path):
        raise HostError("the backup must not be the database itself")
    if dest.exists() and not force:
        raise HostError(f"{str(dest)!r} exists; pass --force to replace it")
    if not dest.parent.is_dir():
        raise HostError(f"folder {str(dest.parent)!r} does not exist")
    key_dest = Path(key_to).expanduser().absolute() if key_to else None
    if key_dest is not None and key_dest.exists() and not force:
        raise HostError(f"{str(key_dest)!r} exists; pass --force to replace it")
    if key_dest is not None and key_dest in (dest, Path(source_path)):
        raise HostError("the key's copy must be a file of its own")
    db = open_existing(source_path)
    key_file = secrets.key_path(db)
    if key_dest is not None and not key_dest.parent.is_dir():
        db.close()
        raise HostError(f"folder {str(key_dest.parent)!r} does not exist")
    partial = dest.with_name(dest.name + ".partial")
    try:
        fd = os.open(partial, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)  # a copy holds the same secrets
        os.close(fd)
        maintenance.backup_into(db, partial)
        os.replace(partial, dest)
    finally:
        db.close()
        if partial.exists():
            partial.unlink()
    click.echo(f"Backed up {source_path} to {dest} ({dest.stat().st_size} bytes)")
    if not key_file.exists():
        click.echo("No key file yet: the database holds no secret.")
    elif key_dest is not None:
        _copy_private(key_file, key_dest)
        click.echo(f"Copied the key file {key_file} to {key_dest}: keep it apart from the backup.")
    else:
        click.echo(
            f"The secrets in the backup are encrypted with {key_file}: back that file up too, kept apart "
            "(--key-to KEY_PATH); without it they cannot be read."
        )


def _copy_private(source: Path, dest: Path) -> None:
    """Copy a key readable by its owner only, whole or not at all."""
    partial = dest.with_name(dest.name + ".partial")
    fd = os.open(partial, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
    try:
        os.write(fd, source.read_bytes())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(partial, dest)


@db_group.command(name="status")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def db_status(ctx: click.Context, as_json: bool) -> None:
    """Path, size, schema version and SQLite's integrity check; exit 1 if the check fails."""
    status = maintenance.status(ctx.find_root().obj["db_path"])
    if as_json:
        click.echo(json.dumps(status, indent=2))
    else:
        click.echo(_status_words(status))
    if maintenance.integrity_failed(status):
        ctx.exit(1)


def _status_words(status: dict[str, Any]) -> str:
    version, expected = status["schema_version"], status["schema_expected"]
    server = f" (PostgreSQL {status['server_version']})" if status.get("server_version") else ""
    integrity = status["integrity"]
    return (
        f"Database: {status['path']}{server}\nSize: {status['size_bytes'] / 1024:.1f} KiB\n"
        f"Schema version: {version} (this cartplugin: {expected}"
        f"{'; the next command that opens it upgrades it' if version < expected else ''})\n"
        f"Integrity: {integrity if isinstance(integrity, str) else '; '.join(integrity)}\n"
        f"Companies: {status['companies']}, orders: {status['orders']}, jobs: {status['jobs']}"
    )


@db_group.command(name="copy")
@click.option("--to", "to", required=True, metavar="URL", help="The PostgreSQL database to fill (must be empty).")
@click.pass_context
def db_copy(ctx: click.Context, to: str) -> None:
    """Copy this SQLite database into an empty PostgreSQL database, ids and sealed secrets as they are.

    Stop the worker and the web admin first (what they write during the copy would not be in
    it). The copy is one transaction: if it fails, the target stays empty. Afterwards point
    every process at the URL (db = "postgresql://..." in the config file) and set
    secret_key_file to the key file this database uses, which the command prints.
    """
    from host.store import pg_copy

    source_path = ctx.find_root().obj["db_path"]
    pg_copy.check_targets(str(source_path), to)
    source = open_existing(source_path)
    try:
        target = connect_postgresql(to)
        try:
            report = pg_copy.copy(source, target)
            sealed = secrets.count_sealed(target)
            key_file = secrets.key_path(source) if sealed else None
        finally:
            target.close()
    finally:
        source.close()
    total = sum(report.rows.values())
    click.echo(f"Copied {total} rows in {len(report.rows)} tables from {source_path} to {display(to)}:")
    for table, count in report.rows.items():
        if count:
            click.echo(f"  {table}: {count}")
    if sealed:
        click.echo(
            f"{sealed} secret(s) stay sealed with the key file {key_file}: set "
            f"secret_key_file (or CARTPLUGIN_SECRET_KEY_FILE) to that file for {display(to)}"
        )


def register(cli: click.Group) -> None:
    cli.add_command(db_group)
