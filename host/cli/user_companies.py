"""``cartplugin users companies``: which companies a staff account reaches in the web admin."""

from __future__ import annotations

import click

from host.records import access, audit, users
from host.store.db import open_existing


@click.command(name="companies")
@click.argument("name")
@click.option("--add", "add", multiple=True, metavar="COMPANY", help="Give this company (name or id); repeatable.")
@click.option("--remove", "remove", multiple=True, metavar="COMPANY", help="Take this company away; repeatable.")
@click.option("--all", "every", flag_value=True, default=None, help="Reach every company (the default).")
@click.option("--only-given", "every", flag_value=False, help="Reach only the companies given (none: sees none).")
@click.pass_context
def users_companies(
    ctx: click.Context, name: str, add: tuple[str, ...], remove: tuple[str, ...], every: bool | None
) -> None:
    """Show or change the companies NAME sees in the web admin. A user reaches every company
    until given some with --add; admins always reach all. The CLI itself sees every company.

    \b
    cartplugin users companies sue --add "Acme Refurb" --add "Beta Phones"
    cartplugin users companies sue --remove "Beta Phones"
    cartplugin users companies sue --all
    """
    db = open_existing(ctx.find_root().obj["db_path"])
    try:
        if add or remove or every is not None:
            access.set_companies(db, name, add=add, remove=remove, every=every, actor=audit.cli_actor())
        user = users.get_user_by_name(db, name)
        names = access.company_names(db).get(user.id)
    finally:
        db.close()
    click.echo(f"{user.name} ({user.role}) sees: {access.describe(names, user.role)}")


def register(group: click.Group) -> None:
    group.add_command(users_companies)
