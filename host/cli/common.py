"""What every ``cartplugin`` command module shares: the database a command works on, and output.

``host.cli.main`` holds the ``cartplugin`` group and registers the command groups of the other
modules; they import this module, never ``main``, so no two CLI modules import each other.
"""

from __future__ import annotations

import json
from typing import Any

import click

from host.cli.terminal import clean, clean_json
from host.store.api import Store
from host.store.db import connect, open_existing


def echo(text: str, **kwargs: Any) -> None:
    """``click.echo`` for text that may carry what a channel or a person typed."""
    click.echo(clean(text), **kwargs)


def emit(data: Any, as_json: bool, text: str | None = None) -> None:
    """``data`` as JSON with ``--json``, else ``text`` (when there is one)."""
    if as_json:
        click.echo(clean_json(json.dumps(data, indent=2, ensure_ascii=False, default=str)))
    elif text is not None:
        echo(text)


def open_db(ctx: click.Context, *, create: bool = False) -> Store:
    """The command's database (``--db``, or the settings'), closed when the command ends; only
    ``create`` makes a new one."""
    path = ctx.find_root().obj["db_path"]
    db = connect(path) if create else open_existing(path)
    ctx.call_on_close(db.close)
    return db
