"""The ``cartplugin`` command line: the support-staff surface of the host.

Every error is one readable line on stderr and a non-zero exit, never a traceback; every
listing takes ``--json``. Secrets are shown masked.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import click

from host import clock, config, logs
from host.channel import connection_test, cursors, gate, plugins
from host.cli import tables
from host.cli import website_options as cli_website_options
from host.cli.common import echo, emit, open_db
from host.cli.newplugin import AUTH_CHOICES, PAGING_CHOICES
from host.cli.terminal import clean_json
from host.errors import HostError
from host.jobs import pool as process_pool
from host.jobs import queue as jobs
from host.jobs import runner, worker
from host.records import audit, companies, money, orders
from host.store.api import Error as StoreError
from host.store.db import open_existing, rate_limit_target
from plugin_spec import ChannelError


class CartGroup(click.Group):
    """A group that turns host errors into one-line CLI errors and adds plugins' commands."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HostError as exc:
            raise click.ClickException(exc.for_cli()) from None
        except ChannelError as exc:
            raise click.ClickException(str(exc)) from None
        except StoreError as exc:
            raise click.ClickException(f"database error: {exc}") from None
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, BrokenPipeError):
            raise
        except Exception as exc:
            if config.current().debug:
                raise
            raise click.ClickException(
                f"internal error {type(exc).__name__}: {str(exc)[:200]} (set CARTPLUGIN_DEBUG=1 for the traceback)"
            ) from None

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Like click's, but every error, usage errors included, is one line on stderr."""
        if self is not cli or not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:  # a bare group: show its help
            click.echo(exc.ctx.get_help())
            sys.exit(0)
        except click.exceptions.UsageError as exc:
            hint = f" (see: {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
            echo(f"Error: {exc.format_message()}{hint}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            echo(f"Error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        except BrokenPipeError:
            # the reader (`| head`) has all it wanted; the rest of the output goes nowhere
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(0)
        sys.exit(rv if isinstance(rv, int) else 0)

    def _with_plugin_commands(self, cmd_name: str | None = None) -> None:
        # install/uninstall must work even when the installed plugins do not load
        if self is not cli or cmd_name in ("install", "uninstall"):
            return
        try:
            plugins.load_plugins()
        except Exception as exc:
            raise click.ClickException(f"plugins failed to load: {exc}") from None
        for name, reason in plugins.broken.items():
            if name not in _warned:
                _warned.add(name)
                echo(f"Warning: plugin {name!r} is not loaded: {reason}", err=True)
        for plugin in plugins.pm.get_plugins():
            name = plugins.pm.get_name(plugin) or repr(plugin)
            if name in _commands_from or not hasattr(plugin, "cartplugin_register_commands"):
                continue
            _commands_from.add(name)
            others = [p for p in plugins.pm.get_plugins() if p is not plugin]
            plugins.pm.subset_hook_caller("cartplugin_register_commands", remove_plugins=others)(cli=self)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._with_plugin_commands(cmd_name)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._with_plugin_commands()
        return super().list_commands(ctx)


_commands_from: set[str] = set()
_warned: set[str] = set()


def _parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    return cursors.parse_start_date(value, "--start-date (--since)")


@click.group(cls=CartGroup)
@click.version_option(package_name="cartplugin")
@click.option("--config", "config_file", metavar="PATH", help="Config file (default: see `cartplugin config show`).")
@click.option(
    "--db",
    "db_option",
    metavar="PATH|URL",
    help="SQLite database file (default ./cartplugin.db, made absolute), or a postgresql:// URL.",
)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    help="Write log records of this level and above to stderr (default WARNING).",
)
@click.option(
    "--log-format", type=click.Choice(["text", "json"]), help="Log records as text or JSON lines (default text)."
)
@click.pass_context
def cli(
    ctx: click.Context, config_file: str | None, db_option: str | None, log_level: str | None, log_format: str | None
) -> None:
    """cartplugin: companies, orders and Queued Jobs; sales channels are plugins.

    Settings come from flags, CARTPLUGIN_* variables and a config file, in that order
    (cartplugin config show lists them and where each came from).
    """
    ctx.ensure_object(dict)
    loaded = config.load(
        config_file, db=db_option, log_level=log_level.upper() if log_level else None, log_format=log_format
    )
    settings = loaded.settings
    # what host.config.current() answers while the command runs; put back when it ends
    previous_settings = config.use(settings)
    ctx.call_on_close(lambda: config.use(previous_settings))
    logs.setup(settings.log_level, settings.log_format)
    ctx.obj["config"] = loaded
    ctx.obj["settings"] = settings
    ctx.obj["db_path"] = settings.db
    # every process working on one database shares each API key's rate limit (plugin_spec.ratelimit);
    # restored when the command ends, so an in-process caller (tests) keeps its own setting
    previous = os.environ.get("CARTPLUGIN_RATE_LIMIT_DB")
    db = str(ctx.obj["db_path"])
    os.environ["CARTPLUGIN_RATE_LIMIT_DB"] = rate_limit_target(db)
    ctx.call_on_close(lambda: _restore_env("CARTPLUGIN_RATE_LIMIT_DB", previous))


def _restore_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


# -- plugins -------------------------------------------------------------------------------------


# -- companies and settings ----------------------------------------------------------------------


@cli.group(name="companies", cls=CartGroup)
def companies_group() -> None:
    """Companies (each one sells through one store plugin)."""


@companies_group.command(name="add")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def companies_add(ctx: click.Context, name: str, as_json: bool) -> None:
    """Add a company."""
    company = companies.add_company(open_db(ctx, create=True), name, actor=audit.cli_actor())
    emit({"id": company.id, "name": company.name}, as_json, f"Added company {company.name!r} (id {company.id})")


@companies_group.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def companies_list(ctx: click.Context, as_json: bool) -> None:
    """List companies with their store plugin, toggles and connection."""
    rows = companies.list_companies(open_db(ctx))
    text = tables.render(
        ("Id", "Company", "Store plugin", "Download", "Upload", "Connection"),
        [[r["id"], r["name"], r["store_plugin"], "on" if r["allow_order_download"] else "off",
          "on" if r["allow_tracking_upload"] else "off",
          "plugin missing" if r["plugin_missing"] else r["connection_status"]] for r in rows],
    )  # fmt: skip
    emit(rows, as_json, text if rows else "No companies yet: cartplugin companies add NAME")


@cli.command(name="website-settings")
@click.argument("company")
@click.option("--store-plugin", metavar="NAME", help="The channel plugin this company sells through.")
@click.option("--allow-order-download/--no-allow-order-download", default=None, help="Allow Order Download.")
@click.option("--allow-tracking-upload/--no-allow-tracking-upload", default=None, help="Allow Tracking Upload.")
@cli_website_options.option_flags
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def website_settings(
    ctx: click.Context, /, company, store_plugin, allow_order_download, allow_tracking_upload, as_json, **more
) -> None:
    """Show or change Website General Settings (no options: show)."""
    db = open_db(ctx)
    target = companies.get_company(db, company)
    options = cli_website_options.options_given(more)
    if store_plugin is None and allow_order_download is None and allow_tracking_upload is None and not options:
        shown = companies.website_settings(db, target)
    else:
        shown = companies.update_website_settings(
            db,
            target,
            store_plugin=store_plugin,
            allow_order_download=allow_order_download,
            allow_tracking_upload=allow_tracking_upload,
            options=options,
            actor=audit.cli_actor(),
        )
    text = "\n".join(
        f"{label}: {value}"
        for label, value in [
            ("Company", shown["company"]),
            ("Store Type", shown["store_type"]),
            ("Store Plugin", shown["store_plugin"] or "-"),
            ("Allow Order Download", "on" if shown["allow_order_download"] else "off"),
            ("Allow Tracking Upload", "on" if shown["allow_tracking_upload"] else "off"),
            *cli_website_options.option_lines(shown),
            ("Connection", "plugin missing" if shown["plugin_missing"] else shown["connection_status"]),
        ]
    )
    emit(shown, as_json, text)


def _parse_pairs(
    pairs: tuple[str, ...], option: str = "--set", example: str = "commission_percent=12.5"
) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            # nothing of what was typed is echoed: it may be a key pasted in the wrong place
            raise HostError(
                f"{option} takes KEY={'PATH' if option == '--set-file' else 'VALUE'} (for example {option} {example})"
            )
        parsed[key.strip()] = value
    return parsed


def _read_value_file(path: str) -> str:
    """A value kept in a file, without its final newline; the file's contents are never echoed."""
    try:
        with open(path, encoding="utf-8") as handle:
            value = handle.read(64 * 1024 + 1)
    except (OSError, UnicodeDecodeError) as exc:
        raise HostError(f"cannot read {path[:200]!r}: {type(exc).__name__}") from None
    if len(value) > 64 * 1024:
        raise HostError(f"{path[:200]!r} is larger than 64 KiB: not a setting")
    return value.rstrip("\r\n")


@cli.command(name="cart-settings")
@click.argument("company")
@click.option(
    "--set",
    "pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set a Cart General field (repeatable; empty value clears; KEY=- asks for the value without echoing it).",
)
@click.option(
    "--set-file",
    "file_pairs",
    multiple=True,
    metavar="KEY=PATH",
    help="Set a Cart General field to the contents of a file (for secrets: never on the command line).",
)
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def cart_settings(
    ctx: click.Context, company: str, pairs: tuple[str, ...], file_pairs: tuple[str, ...], as_json: bool
) -> None:
    """Show or change Cart General settings (no --set: show; secrets are masked).

    Give a secret at a hidden prompt (--set x_api_key=-) or from a file (--set-file
    x_api_key=PATH), never as --set x_api_key=VALUE: a value on the command line is visible
    to every user of the machine in `ps` and stays in the shell history.
    """
    db = open_db(ctx)
    target = companies.get_company(db, company)
    if pairs or file_pairs:
        values = _parse_pairs(pairs)
        for key, value in values.items():
            if value == "-":  # typed at a hidden prompt: not in shell history nor in `ps`
                values[key] = click.prompt(key, hide_input=True, err=True)
        for key, path in _parse_pairs(
            file_pairs, option="--set-file", example="x_api_key=/run/secrets/bmp-key"
        ).items():
            values[key] = _read_value_file(path)
        shown = companies.update_cart_settings(db, target, values, actor=audit.cli_actor())
        _warn_shared_account(db, target)
    else:
        shown = companies.show_cart_settings(db, target)
    text = "\n".join(
        [f"Cart General of {shown['company']} ({shown['store_plugin']})"]
        + [f"  {f['label']} [{f['key']}]: {'' if f['value'] is None else f['value']}" for f in shown["fields"]]
        + [
            f"  Access token ({t['name']}): renewed {t['refreshed_at']}"
            + (f", valid until {t['expires_at']}" if t["expires_at"] else "")
            for t in shown.get("tokens", [])
        ]
    )
    emit(shown, as_json, text)


@cli.command(name="test-settings")
@click.argument("company")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def test_settings(ctx: click.Context, company: str, as_json: bool) -> None:
    """Test Settings: check the connection; required before anything automatic runs.

    Runs at once, bounded in all (retries included) by the test_settings_seconds setting.
    """
    db = open_db(ctx)
    target = companies.get_company(db, company)
    seconds = ctx.obj["settings"].test_settings_seconds
    job, _, claimed = jobs.enqueue_and_claim(
        db,
        target.id,
        "test_settings",
        runner.worker_id(),
        connection_test.params(seconds=seconds, requested_by=audit.cli_actor()),
    )
    if claimed is None:
        raise HostError(f"Test Settings job {job.id} is already running")
    runner.execute(db, claimed)
    shown = jobs.show_job(db, job.id)
    summary = shown["summary"] or {}
    ok = bool(summary.get("ok"))
    message = summary.get("message") or summary.get("error") or summary.get("reason") or shown["status"]
    emit({"ok": ok, "message": message, "job": job.id}, as_json, connection_test.answer(shown["status"], summary))
    if ok:
        _warn_shared_account(db, target)
    if not ok:
        ctx.exit(1)


def _warn_shared_account(db, company: companies.Company) -> None:
    others = companies.shared_account(db, company)
    if others:
        names = ", ".join(repr(n) for n in others)
        echo(
            f"Warning: company {company.name!r} reaches the same channel account (same store plugin, Website URL "
            f"and key) as {names}: each would import the same orders",
            err=True,
        )


# -- import orders, worker -------------------------------------------------------------------------


@cli.command(name="import-orders")
@click.argument("company")
@click.option(
    "--start-date",
    "--since",
    "since",
    metavar="DATE",
    help="Start Date: read again every unfulfilled order updated since this date, e.g. 2026-11-01 "
    "(default: the last recent_days days, 30 unless set, from the saved cursor when they were read already).",
)
@click.option("--wait/--no-wait", default=True, show_default=True, help="Run the job now, or leave it to the worker.")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def import_orders(ctx: click.Context, company: str, since: str | None, wait: bool, as_json: bool) -> None:
    """Import Orders: a Queued Job that brings in all recent unfulfilled orders."""
    db = open_db(ctx)
    target = companies.get_company(db, company)
    since_dt = _parse_since(since)
    gate.check_allowed(db, target, "import_orders")
    jobs.recover_orphans(db)  # e.g. an earlier import-orders stopped with Ctrl-C
    params = {"since": clock.iso(since_dt) if since_dt else None}
    asked = {**params, **audit.to_params(audit.cli_actor())}  # its counts go to the Change Log under this user
    if wait:  # queued and claimed at once, so no worker takes it in between
        job, created, claimed = jobs.enqueue_and_claim(db, target.id, "import_orders", runner.worker_id(), asked)
    else:
        (job, created), claimed = jobs.enqueue(db, target.id, "import_orders", asked), None
    if not created:
        differs = (
            " (with its own Start Date; yours was not applied)" if job.params.get("since") != params["since"] else ""
        )
        echo(f"Import Orders job {job.id} is already {job.status}{differs}", err=True)
    ran = False
    if wait:
        if claimed is not None:
            _run_with_progress(db, claimed, as_json)
            ran = True
    shown = jobs.show_job(db, job.id)
    if ran and shown["status"] == jobs.QUEUED:
        # the attempt failed and was put back: saying "Queued" with exit 0 would read as success
        warnings = [line["message"] for line in shown["log"] if line["level"] != "info"]
        why = warnings[-1] if warnings else "no reason recorded"
        emit(
            shown,
            as_json,
            f"Job {job.id} Import Orders: attempt {shown['attempts']} of {shown['max_attempts']} "
            f"failed: {why}; it stays queued and runs again at {shown['run_after']} "
            "(cartplugin worker, or cartplugin jobs run)",
        )
        ctx.exit(1)
    emit(shown, as_json, f"Job {job.id} Import Orders: {shown['status']}: {_summary(shown['summary'])}"
          + _window_hint(shown, since_dt))  # fmt: skip
    if shown["status"] == jobs.FAILED or (ran and shown["status"] == jobs.CANCELLED):
        ctx.exit(1)


def _window_hint(shown: dict[str, Any], since: datetime | None) -> str:
    """Say so when nothing came in because of the date the import started from."""
    summary = shown["summary"] or {}
    if shown["status"] != jobs.COMPLETED or summary.get("seen", 1) != 0 or not summary.get("since"):
        return ""
    if since is not None:
        return f"\n0 orders updated since {summary['since'][:10]} on the channel."
    return (
        f"\n0 orders updated since {summary['since'][:10]} (the last {cursors.recent_days()} days); "
        "the channel's orders may be older: use --start-date DATE"
    )


def _summary(summary: dict[str, Any] | None) -> str:
    """A job's counts as staff read them in the web admin: ``12 new, 0 updated, 0 unchanged``."""
    return jobs.summary_words(summary, when=tables.short_date) or "-"


def _run_with_progress(db, job, quiet: bool) -> None:
    if quiet or not sys.stdout.isatty():
        runner.execute(db, job)
        return
    counter = _Counter("Importing orders")
    try:
        runner.execute(db, job, progress=counter.update)
    finally:
        counter.close()


class _Counter:
    """A progress line for a stream of unknown length, redrawn at most 10 times a second."""

    def __init__(self, label: str):
        self.label, self.count, self.shown_at, self.started = label, 0, 0.0, time.monotonic()

    def update(self, n: int) -> None:
        self.count += n
        now = time.monotonic()
        if now - self.shown_at >= 0.1:
            self.shown_at = now
            click.echo(f"\r{self.label}: {self.count}", nl=False)

    def close(self) -> None:
        rate = self.count / max(time.monotonic() - self.started, 1e-6)
        click.echo(f"\r{self.label}: {self.count} ({rate:.0f}/s)")


PROCESSES_OPTION = click.option(
    "--processes",
    type=click.IntRange(1, 64),
    default=None,
    help=f"Job processes, each running --workers jobs (default: the number of cores, at most "
    f"{process_pool.MAX_DEFAULT_PROCESSES}; 1: threads of this process only).",
)


@cli.command(name="worker")
@click.option("--once", is_flag=True, help="One round: queue what is due, run the queue, exit.")
@click.option(
    "--interval", type=click.FloatRange(0.1, 86400), default=30.0, show_default=True, help="Seconds between rounds."
)
@click.option(
    "--workers", type=click.IntRange(1, 64), default=4, show_default=True, help="Jobs run at once (in each process)."
)
@PROCESSES_OPTION
@click.option(
    "--download-every",
    type=click.FloatRange(0, 86400),
    default=None,
    help="Seconds between two automatic downloads of a company (default 300; 0: every round).",
)
@click.pass_context
def worker_command(
    ctx: click.Context, once: bool, interval: float, workers: int, processes: int | None, download_every: float | None
) -> None:
    """Automatic work: incremental order download and tracking upload for every company."""
    if download_every is None:
        download_every = ctx.obj["settings"].download_every
    open_existing(ctx.obj["db_path"]).close()
    worker.run(
        ctx.obj["db_path"], once=once, interval=interval, max_workers=workers,
        processes=processes or process_pool.default_processes(), download_every=download_every, echo=echo,
    )  # fmt: skip


# -- orders ----------------------------------------------------------------------------------------


@cli.group(name="orders", cls=CartGroup)
def orders_group() -> None:
    """Orders: list, show, ship, change status."""


ORDER_HEADERS = (
    "Order",
    "Company",
    "Channel order",
    "Date",
    "Buyer",
    "Status",
    "Payment",
    "Shipping",
    "Total",
    "Uploaded",
)


def _order_cells(o: dict[str, Any]) -> list[Any]:
    status = o["status"] + (" [CANCELLED ON CHANNEL]" if o["needs_attention"] else "")
    return [
        o["id"], o["company"], o["source_order_id"], tables.short_date(o["order_date"]), o.get("buyer"), status,
        o["payment_status"], o["shipping_status"], f"{o['grand_total']} {o['currency']}",
        "yes" if o["source_updated_for_shipping"] else "no",
    ]  # fmt: skip


def _order_line(o: dict[str, Any]) -> str:
    flags = (" [CANCELLED ON CHANNEL]" if o["needs_attention"] else "") + (
        " [AWAITING ACCEPTANCE]" if o.get("awaiting_acceptance") else ""
    )
    return (
        f"{o['id']:>6}  {o['company']}  {o['source_order_id']}  {o['status']} / {o['payment_status']} / "
        f"{o['shipping_status']}  {o['grand_total']} {o['currency']}  total cost {o['total_cost']}"
        f"  source updated: {'yes' if o['source_updated_for_shipping'] else 'no'}{flags}"
    )


def _totals_line(o: dict[str, Any]) -> str:
    """The channel's totals; a discount is shown as the amount taken off (with a minus)."""
    parts = [f"subtotal {o['subtotal']}"]
    if not money.is_zero(o["discount_total"]):
        parts.append(f"discount -{o['discount_total']}")
    parts += [f"shipping {o['shipping_total']}", f"tax {o['tax']}"]
    if not money.is_zero(o["adjustment_total"]):
        parts.append(f"adjustment {o['adjustment_total']}")
    parts += [f"grand total {o['grand_total']} {o['currency']}", f"commission {o['commission']}"]
    return "    " + ", ".join(parts)


def _line_price(line: dict[str, Any]) -> str:
    """``@ unit = line total``, either part left out when the channel did not give it."""
    unit = f"@ {line['unit_price']} " if line["unit_price"] is not None else ""
    text = f"{unit}= {orders.line_amount(line) or '-'}"
    if not money.is_zero(line["discount"]):
        text += f" - discount {line['discount']}"
    return text


@orders_group.command(name="list")
@click.option("--company", metavar="COMPANY", help="Only this company's orders.")
@click.option("--needs-attention", is_flag=True, help="Only orders the channel cancelled that staff have not.")
@click.option("--upload-failed", is_flag=True, help="Only orders whose tracking upload failed.")
@click.option("--limit", type=click.IntRange(1), help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def orders_list(ctx, company, needs_attention, upload_failed, limit, as_json) -> None:
    """List orders."""
    db = open_db(ctx)
    company_id = companies.get_company(db, company).id if company else None
    rows = orders.list_orders(
        db,
        company_id,
        needs_attention=needs_attention,
        upload_failed=upload_failed,
        limit=limit,
        with_buyer=not as_json,
    )
    if as_json:
        click.echo("[")
        for i, row in enumerate(rows):
            click.echo(clean_json(("," if i else "") + json.dumps(row, ensure_ascii=False)))
        click.echo("]")
        return
    cells = [_order_cells(row) for row in rows]
    click.echo(tables.render(ORDER_HEADERS, cells) if cells else "No orders.")


@orders_group.command(name="show")
@click.argument("order_id")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def orders_show(ctx: click.Context, order_id: str, as_json: bool) -> None:
    """Show one order (by number, or by the channel's order id) with its lines and shipments."""
    order = orders.show_order(open_db(ctx), order_id)
    if as_json:
        emit(order, True)
        return
    order["buyer"] = orders.buyer(order)
    text = "\n".join(
        [
            _order_line(order),
            f"    ordered {tables.short_date(order['order_date'])} by {order['buyer'] or '-'}",
            _totals_line(order),
        ]
        + [
            f"    line {line['sku']} x{line['quantity']} {_line_price(line)} (tax {line['tax']}) "
            f"shipped {line['quantity_shipped']}  {line['title']}"
            + ("  [CANCELLED ON THE CHANNEL: not shipped]" if line["channel_cancelled"] else "")
            for line in order["lines"]
        ]
        + [
            f"    shipment {s['tracking_number']} via {s['carrier']}: "
            f"upload {s['upload_state']} {s['upload_message'] or ''}"
            for s in order["shipments"]
        ]
    )
    emit(order, as_json, text)


@orders_group.command(name="ship")
@click.argument("order_id")
@click.option("--carrier", required=True, help="Carrier (free text, e.g. UPS, DHL Express).")
@click.option("--tracking", "tracking_number", required=True, help="Tracking number.")
@click.option("--tracking-url", help="Tracking URL.")
@click.option("--serial", "serials", multiple=True, help="Serial number or IMEI (SKU=SERIAL with several lines).")
@click.option(
    "--confirm-cancelled",
    is_flag=True,
    help="Ship even what the channel cancelled (the order, its cancelled lines); the Change Log records who confirmed.",
)
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def orders_ship(ctx, order_id, carrier, tracking_number, tracking_url, serials, confirm_cancelled, as_json) -> None:
    """Ship every unshipped line in one package: the order becomes Fully Shipped.

    Lines the channel cancelled are left out (Fully Shipped does not wait for them); an order
    the channel cancelled is refused unless --confirm-cancelled is given.
    """
    db = open_db(ctx)
    order = orders.ship_order(
        db, order_id, carrier=carrier, tracking_number=tracking_number, tracking_url=tracking_url, serials=serials,
        confirmed_by=audit.cli_actor() if confirm_cancelled else None, actor=audit.cli_actor(),
    )  # fmt: skip
    emit(order, as_json, f"Order {order['id']} is {order['shipping_status']}; {_upload_outlook(db, order['company'])}")


def _upload_outlook(db, company_name: str) -> str:
    """What will happen to the tracking, as the company's settings stand now."""
    company = companies.get_company(db, company_name)
    try:
        gate.check_allowed(db, company, "upload_tracking")
    except gate.NotAllowed as exc:
        return f"the tracking is not uploaded while {exc} (it is kept and sent once that changes)"
    return "the worker uploads the tracking to the channel on its next round"


@orders_group.command(name="set-status")
@click.argument("order_id")
@click.argument("status")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def orders_set_status(ctx: click.Context, order_id: str, status: str, as_json: bool) -> None:
    """Change an order's status by hand (e.g. Cancelled after a cancellation in the channel)."""
    order = orders.set_status(open_db(ctx), order_id, status, actor=audit.cli_actor())
    emit(order, as_json, f"Order {order['id']} is now {order['status']}")


# -- jobs ------------------------------------------------------------------------------------------


@cli.group(name="jobs", cls=CartGroup)
def jobs_group() -> None:
    """Queued Jobs: list, show, run, cancel."""


@jobs_group.command(name="list")
@click.option("--company", metavar="COMPANY", help="Only this company's jobs.")
@click.option("--limit", type=click.IntRange(1, 10000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def jobs_list(ctx: click.Context, company: str | None, limit: int, as_json: bool) -> None:
    """List Queued Jobs, newest first."""
    db = open_db(ctx)
    company_id = companies.get_company(db, company).id if company else None
    rows = jobs.list_jobs(db, company_id, limit)
    text = tables.render(
        ("Job", "Company", "Kind", "Status", "Attempts", "Created", "Summary"),
        [[r["id"], r["company"], r["kind"], r["status"], f"{r['attempts']}/{r['max_attempts']}",
          tables.short_date(r["created_at"]), _summary(r["summary"])] for r in rows],
    )  # fmt: skip
    emit(rows, as_json, text if rows else "No jobs.")


@jobs_group.command(name="show")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Output JSON.")
@click.pass_context
def jobs_show(ctx: click.Context, job_id: str, as_json: bool) -> None:
    """Show one job with its log."""
    job = jobs.show_job(open_db(ctx), job_id)
    progress = jobs.progress_words(job["progress"], running=job["status"] in jobs.PENDING)
    text = "\n".join(
        [f"Job {job['id']} {jobs.kind_name(job['kind'])} for {job['company']}: {job['status']} "
         f"(attempts {job['attempts']})"]
        + ([f"  Progress: {progress}"] if progress else [])
        + ([f"  Counts: {_summary(job['summary'])}"] if job["summary"] else [])
        + [f"  {line['at']} {line['level']:<7} {line['message']}" for line in job["log"]]
    )  # fmt: skip
    emit(job, as_json, text)


@jobs_group.command(name="run")
@click.option(
    "--workers", type=click.IntRange(1, 64), default=4, show_default=True, help="Jobs run at once (in each process)."
)
@PROCESSES_OPTION
@click.pass_context
def jobs_run(ctx: click.Context, workers: int, processes: int | None) -> None:
    """Run every queued job that is due now, then exit."""
    open_existing(ctx.obj["db_path"]).close()
    pool = process_pool.make_pool(
        ctx.obj["db_path"], max_workers=workers, processes=processes or process_pool.default_processes()
    )
    ran = pool.drain(on_finish=lambda job, status: echo(f"job {job.id} {job.kind}: {status}"))
    click.echo(f"ran {ran} job(s)")


@jobs_group.command(name="cancel")
@click.argument("job_id")
@click.pass_context
def jobs_cancel(ctx: click.Context, job_id: str) -> None:
    """Cancel a Queued job."""
    job = jobs.cancel(open_db(ctx), job_id, actor=audit.cli_actor())
    echo(f"Job {job.id} {job.kind}: {job.status}")


@cli.command(name="new-plugin")
@click.argument("name")
@click.option(
    "--directory", type=click.Path(file_okay=False), default=".", show_default=True, help="Where to create it."
)
@click.option(
    "--auth", type=click.Choice(AUTH_CHOICES), default="api-key", show_default=True,
    help="How the channel's API authenticates: one key header, or OAuth 2.0 tokens from a refresh token.",
)  # fmt: skip
@click.option(
    "--paging", type=click.Choice(PAGING_CHOICES), default="next", show_default=True,
    help="How the API pages orders: a next link with a keyset cursor, page tokens, or limit/offset "
    "(the last two read safely through a keyset over the modification date).",
)  # fmt: skip
@click.option("--display-name", default=None, help="The channel's name as people write it (default: from NAME).")
def new_plugin(name: str, directory: str, auth: str, paging: str, display_name: str | None) -> None:
    """Write a ready-to-install channel plugin package NAME (see docs/writing-a-plugin.md)."""
    from pathlib import Path

    from host.cli.newplugin import generate

    root = generate(name, Path(directory), auth=auth, paging=paging, display_name=display_name).resolve()
    click.echo(f"Created {root}\nNext: pip install -e '{root}[test]' && cartplugin plugins && python -m pytest {root}")


from host.cli import accept as cli_accept  # noqa: E402
from host.cli import config as cli_config  # noqa: E402
from host.cli import db as cli_db  # noqa: E402
from host.cli import plugins as cli_plugins  # noqa: E402
from host.cli import shipments as cli_shipments  # noqa: E402
from host.cli import web as cli_web  # noqa: E402

for _module in (cli_plugins, cli_config, cli_db, cli_web):
    _module.register(cli)
cli_accept.register(orders_group)
cli_shipments.register(orders_group)
cli_website_options.register(jobs_group)

from host.cli import user_companies as cli_user_companies  # noqa: E402

cli_user_companies.register(cli_web.users_group)
