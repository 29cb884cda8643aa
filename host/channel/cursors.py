"""Where a download starts: the saved cursors, the recent window, and a Start Date staff type.

A company's download asks the channel for orders with ``updated_at >= cursor``; the cursor is
saved in the transaction of the batch it follows and never moves backwards. A second row,
``orders_covered_from``, remembers from where every order up to the cursor has been read, so
Import Orders without a Start Date need not read the recent window again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from host import clock, config
from host.channel import plugins
from host.errors import HostError
from host.records import companies
from host.records.companies import Company
from host.store.api import Store

CURSOR_NAME = "orders_updated_at"
#: the earliest ``updated_at`` from which every order up to the cursor has been read
COVERED_FROM = companies.COVERED_FROM


def recent_days() -> int:
    """How far back Import Orders looks without a Start Date: ``recent_days`` as set now."""
    return config.current().recent_days


def recent_since(days: int | None = None) -> datetime:
    """The start of the recent window: ``recent_days`` as set now (a default argument would
    keep the value of the moment this module was imported, before a config file was read)."""
    return clock.now() - timedelta(days=recent_days() if days is None else days)


def get_cursor(db: Store, company_id: int, channel: str, name: str = CURSOR_NAME) -> datetime | None:
    row = db.execute(
        "SELECT value FROM cursors WHERE company_id = :company_id AND channel = :channel AND name = :name",
        {"company_id": company_id, "channel": channel, "name": name},
    ).fetchone()
    return clock.parse(row[0]) if row else None


def _upsert(db: Store, company_id: int, channel: str, name: str, value: datetime, keep: str) -> None:
    """Set the company's ``name`` cursor to ``value`` unless the stored one is already ``keep``
    (``>=``: later, ``<=``: earlier) than it, inside the caller's write transaction."""
    db.execute(
        "INSERT INTO cursors (company_id, channel, name, value, updated_at) "
        "VALUES (:company_id, :channel, :name, :value, :now) "
        "ON CONFLICT (company_id, channel, name) DO UPDATE SET "
        f"value = CASE WHEN cursors.value {keep} excluded.value THEN cursors.value ELSE excluded.value END, "
        "updated_at = excluded.updated_at",
        {"company_id": company_id, "channel": channel, "name": name, "value": clock.iso(value),
         "now": clock.now_iso()},
    )  # fmt: skip


def save_cursor(db: Store, company_id: int, channel: str, value: datetime) -> None:
    """Move the company's cursor to ``value``, inside the caller's write transaction.

    Never moves backwards: a concurrent or older run cannot undo a newer cursor."""
    _upsert(db, company_id, channel, CURSOR_NAME, value, ">=")


def extend_coverage(db: Store, company_id: int, channel: str, since: datetime) -> None:
    """After a complete run from ``since`` that joined the cursor it found: everything from
    ``since`` to the cursor has been read (inside the caller's write transaction)."""
    _upsert(db, company_id, channel, COVERED_FROM, since, "<=")


def import_since(db: Store, company: Company, requested: datetime | None) -> tuple[datetime, str]:
    """Where Import Orders starts, and why.

    A Start Date (the web dialog always sends one; the CLI's ``--start-date``) is read from as
    it is. Without one it asks for the last ``recent_days``; when every order of that window
    up to the cursor has been read already (and nothing changed there since, or its
    ``updated_at`` would be past the cursor) it starts at the cursor instead of reading the
    window again.
    """
    if requested is not None:
        return requested, "the Start Date"
    days = recent_days()
    window = recent_since(days)
    channel = companies.store_plugin(db, company)
    cursor = get_cursor(db, company.id, channel)
    covered = get_cursor(db, company.id, channel, COVERED_FROM)
    if cursor is not None and covered is not None and covered <= window < cursor:
        return cursor, f"the last {days} days were read up to there already"
    return window, f"the last {days} days"


def download_since(db: Store, company: Company, channel: str) -> tuple[datetime, str]:
    """Where the automatic download starts, and why: the saved cursor, else the recent window."""
    since = get_cursor(db, company.id, channel)
    if since is not None:
        return since, "the saved cursor"
    days = recent_days()
    return recent_since(days), f"the last {days} days: nothing downloaded before"


def behind_the_cursor(db: Store, company: Company, channel: str, since: datetime, why: str) -> tuple[datetime, str]:
    """``since``, moved back by the channel's ``cursor_lag_seconds`` when it is at or after the
    saved cursor less that lag: an order the channel's listing shows late is not passed."""
    lag = timedelta(seconds=plugins.channel_info(channel).cursor_lag_seconds)
    cursor = get_cursor(db, company.id, channel)
    if not lag or cursor is None or since < cursor - lag:
        return since, why
    return cursor - lag, f"{why}, less the {lag.total_seconds():g} s the channel's listing may lag"


def parse_start_date(value: str, name: str = "Start Date") -> datetime:
    """The Start Date of Import Orders as staff type it (``2026-11-01``, or an instant such as
    ``2026-11-01T08:00:00Z``; without a zone, UTC); ``name`` is the field in the message."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise HostError(f"{name} must be a date like 2026-11-01 or 2026-11-01T08:00:00Z, not {value[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    if parsed > clock.now():
        raise HostError(f"{name} must not be in the future")
    if parsed.year < 2000:
        raise HostError(f"{name} must be in the year 2000 or later")
    return parsed
