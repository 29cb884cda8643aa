"""``cartplugin db backup``, ``db status`` and ``db copy``: the operator's view of the database."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import click

from host.errors import HostError
from host.records import secrets
from host.store import migrations, pg_migrations
from host.store.db import connect, connect_postgresql, display, is_postgresql, open_existing


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
    if is_postgresql(source_path):
        raise HostError(
            "a PostgreSQL database is backed up with PostgreSQL's own tools, e.g. "
            f"pg_dump --format=custom --file={target} '{display(source_path)}' (restore with pg_restore); "
            "keep the key file (secret_key_file) apart from the dump"
        )
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
        copy = sqlite3.connect(partial)
        try:
            db.conn.backup(copy, pages=1024)
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        finally:
            copy.close()
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
    if is_postgresql(ctx.find_root().obj["db_path"]):
        _pg_status(ctx, str(ctx.find_root().obj["db_path"]), as_json)
        return
    path = Path(ctx.find_root().obj["db_path"])
    db = connect(path, create=False, migrate=False)  # status only looks: an old database stays as it is
    try:
        applied = migrations._applied(db)
        version = db.execute("PRAGMA user_version").fetchone()[0]
        integrity = [row[0] for row in db.execute("PRAGMA integrity_check").fetchall()]
        counts = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("companies", "orders", "jobs")}
    finally:
        db.close()
    size = sum(p.stat().st_size for p in (path, path.with_name(path.name + "-wal")) if p.exists())
    status = {
        "path": str(path),
        "size_bytes": size,
        "schema_version": version,
        "schema_expected": migrations.SCHEMA_VERSION,
        "migrations": applied,
        "integrity": "ok" if integrity == ["ok"] else integrity[:20],
        **counts,
    }
    if as_json:
        click.echo(json.dumps(status, indent=2))
    else:
        click.echo(
            f"Database: {status['path']}\nSize: {size / 1024:.1f} KiB\n"
            f"Schema version: {version} (this cartplugin: {status['schema_expected']}"
            f"{'; the next command that opens it upgrades it' if version < status['schema_expected'] else ''})\n"
            f"Integrity: {status['integrity'] if status['integrity'] == 'ok' else '; '.join(status['integrity'])}\n"
            f"Companies: {counts['companies']}, orders: {counts['orders']}, jobs: {counts['jobs']}"
        )
    if status["integrity"] != "ok":
        ctx.exit(1)


def _pg_status(ctx: click.Context, url: str, as_json: bool) -> None:
    db = connect_postgresql(url, migrate=False)  # status only looks
    try:
        applied = pg_migrations.applied(db)
        server = db.execute("SHOW server_version").fetchone()[0]
        size = db.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        counts = (
            {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("companies", "orders", "jobs")}
            if db["companies"].exists()
            else dict.fromkeys(("companies", "orders", "jobs"), 0)
        )
    finally:
        db.close()
    status = {
        "path": display(url),
        "backend": "postgresql",
        "server_version": server,
        "size_bytes": size,
        "schema_version": pg_migrations.version(applied),
        "schema_expected": pg_migrations.SCHEMA_VERSION,
        "migrations": applied,
        "integrity": "not checked (PostgreSQL checks its own pages; pg_amcheck for more)",
        **counts,
    }
    if as_json:
        click.echo(json.dumps(status, indent=2))
        return
    version, expected = status["schema_version"], status["schema_expected"]
    click.echo(
        f"Database: {status['path']} (PostgreSQL {server})\nSize: {size / 1024:.1f} KiB\n"
        f"Schema version: {version} (this cartplugin: {expected}"
        f"{'; the next command that opens it upgrades it' if version < expected else ''})\n"
        f"Integrity: {status['integrity']}\n"
        f"Companies: {counts['companies']}, orders: {counts['orders']}, jobs: {counts['jobs']}"
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
    if is_postgresql(source_path):
        raise HostError("db copy reads a SQLite database: pass --db PATH of the SQLite file to copy")
    if not is_postgresql(to):
        raise HostError(f"--to must be a postgresql:// URL, not {to[:60]!r}")
    source = open_existing(source_path)
    try:
        target = connect_postgresql(to)
        try:
            report = pg_copy.copy(source, target)
        finally:
            target.close()
    finally:
        source.close()
    total = sum(report.rows.values())
    click.echo(f"Copied {total} rows in {len(report.rows)} tables from {source_path} to {display(to)}:")
    for table, count in report.rows.items():
        if count:
            click.echo(f"  {table}: {count}")
    if report.sealed_secrets:
        click.echo(
            f"{report.sealed_secrets} secret(s) stay sealed with the key file {report.key_file}: set "
            f"secret_key_file (or CARTPLUGIN_SECRET_KEY_FILE) to that file for {display(to)}"
        )


def register(cli: click.Group) -> None:
    cli.add_command(db_group)
