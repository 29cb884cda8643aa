"""The CLI side of Website General's other options and of Queued Job priority.

``website-settings`` takes one flag per option (``option_flags``); ``jobs priority ID LEVEL``
raises (or lowers) a pending job's priority and writes it to the Change Log.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from host.cli.common import emit, open_db
from host.jobs import queue as jobs
from host.records import audit, website_options

_FLAGS: list[tuple[str, Any, str]] = [
    (
        "allow_download_shipped",
        "--allow-download-shipped/--no-allow-download-shipped",
        "Allow Download Shipped Orders.",
    ),
    ("allow_unpaid_orders", "--allow-unpaid-orders/--no-allow-unpaid-orders", "Allow Unpaid Orders."),
    ("order_download_limit", "--order-download-limit/--no-order-download-limit", "Enable Order Download Limit."),
    ("order_download_limit_date", "--order-download-limit-date", "Order Download Limit Date, YYYY-MM-DD ('' clears)."),
    ("delay_tracking", "--delay-tracking/--no-delay-tracking", "Delay Tracking Time."),
    ("delay_min_hours", "--min-hours-to-wait", "Min Hours to Wait before tracking is sent (0 to 720)."),
    ("delay_skip_saturday", "--skip-saturday/--no-skip-saturday", "Skip on Saturday (its hours do not count)."),
    ("delay_skip_sunday", "--skip-sunday/--no-skip-sunday", "Skip on Sunday (its hours do not count)."),
]


def option_flags(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add one flag per option to ``command``; it receives them as keyword arguments by column."""
    for column, flag, help_text in reversed(_FLAGS):
        if "/" in flag:
            command = click.option(flag, column, default=None, help=help_text)(command)
        else:
            metavar = "DATE" if "date" in column else "HOURS"
            command = click.option(flag, column, default=None, metavar=metavar, help=help_text)(command)
    return command


def options_given(values: dict[str, Any]) -> dict[str, Any]:
    return {column: values[column] for column in website_options.LABELS if values.get(column) is not None}


def option_lines(shown: dict[str, Any]) -> list[tuple[str, str]]:
    """Each option as ``(label, value)`` for the settings' text output."""
    rows = []
    for column, label in website_options.LABELS.items():
        value = shown[column]
        if column in website_options.FLAGS:
            rows.append((label, "on" if value else "off"))
        else:
            rows.append((label, str(value) if value not in (None, "") else "-"))
    return rows


def register(jobs_group: click.Group) -> None:
    @jobs_group.command(name="priority")
    @click.argument("job_id")
    @click.argument("level", type=click.Choice([name.lower() for name in jobs.PRIORITY_LEVELS], case_sensitive=False))
    @click.option("--json", "as_json", is_flag=True, help="Output JSON.")
    @click.pass_context
    def jobs_priority(ctx: click.Context, job_id: str, level: str, as_json: bool) -> None:
        """Give a Queued or Processing job the priority LEVEL: normal, high or critical.

        A job of a higher level is claimed before every job of a lower one; the change is
        written to the company's Change Log.
        """
        db = open_db(ctx)
        job, before = jobs.set_priority(db, job_id, level)
        now = jobs.priority_name(jobs.show_job(db, job.id)["priority"])
        if before != now:
            audit.record(db, audit.cli_actor(), "Queued Job priority changed", company_id=job.company_id,
                         target=f"job {job.id} ({jobs.kind_name(job.kind)})",
                         details={"priority": {"from": before, "to": now}})  # fmt: skip
        shown = jobs.show_job(db, job.id)
        shown.pop("log", None)
        emit(shown, as_json, f"Job {job.id} {jobs.kind_name(job.kind)}: priority {now} (was {before})")
