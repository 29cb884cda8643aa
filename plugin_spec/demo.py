"""What a plugin's ``demo`` command needs: run the support guide's steps through the host's CLI.

Each step prints the command a support person would type and runs that very command through the
``cartplugin`` group the host hands to the plugin (``cartplugin_register_commands``), on a
temporary SQLite database or the new, empty database the person names (a path or a
``postgresql://`` URL). A plugin never imports the host; its demo module keeps only its steps::

    with Demo(cli, target) as demo:
        demo.step("1. Add the company")
        demo.run("companies", "add", "Acme")
"""

from __future__ import annotations

import json
import os
import shlex
import tempfile
from pathlib import Path
from typing import Any, Self

import click
from click.testing import CliRunner

from . import pgurl

#: the host's variable naming the file that keeps the key of sealed secrets
KEY_FILE_ENV = "CARTPLUGIN_SECRET_KEY_FILE"


class Demo:
    """A temporary folder, the database and the runner of one demo; use it as a context manager."""

    def __init__(self, cli: click.Group, target: str | None = None, *, prefix: str = "cartplugin-demo-"):
        self.cli, self.target, self.prefix = cli, target, prefix
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.env: dict[str, str] = {}

    def __enter__(self) -> Self:
        self._tmp = tempfile.TemporaryDirectory(prefix=self.prefix)
        if pgurl.is_url(self.target) and not os.environ.get(KEY_FILE_ENV):
            # a server database keeps its secrets' key in a file it names: one for this run
            self.env[KEY_FILE_ENV] = str(self.folder / "demo.key")
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()

    @property
    def folder(self) -> Path:
        if self._tmp is None:
            raise RuntimeError("use Demo as a context manager")
        return Path(self._tmp.name)

    @property
    def db(self) -> str:
        return self.target or str(self.folder / "demo.db")

    @property
    def shown_db(self) -> str:
        """The database as the demo may print it (a URL's password masked)."""
        return pgurl.display(self.db)

    def step(self, title: str) -> None:
        click.secho(f"\n{title}", bold=True)

    def secret_file(self, name: str, value: str) -> Path:
        """A file holding a secret, readable by its owner only: secrets never go on a command line."""
        path = self.folder / name
        path.write_text(value + "\n")
        path.chmod(0o600)
        return path

    def run(self, *args: str, show: bool = True) -> str:
        """Print ``cartplugin ARGS`` and run it; a failing step ends the demo with its output."""
        click.secho("$ cartplugin " + " ".join(shlex.quote(a) for a in args), fg="cyan")
        result = CliRunner().invoke(self.cli, ["--db", self.db, *args], catch_exceptions=False, env=self.env)
        if result.exit_code != 0:
            raise click.ClickException(f"demo step failed: cartplugin {' '.join(args)}: {result.output.strip()}")
        if show:
            click.echo(result.output.rstrip())
        return result.output

    def orders(self, company: str) -> list[dict[str, Any]]:
        """The company's orders as ``orders list --json`` gives them (not printed)."""
        rows: list[dict[str, Any]] = json.loads(self.run("orders", "list", "--company", company, "--json", show=False))
        return rows
