"""Website General's other options: which orders a download imports, and when tracking is sent.

- **Allow Download Shipped Orders** (off): an order the channel says is shipped already is not
  imported; on, it is, as Fully Shipped with Source Updated for Shipping (nothing to send).
- **Allow Unpaid Orders** (off): an order the channel says is unpaid (``No Payment``) is skipped
  and counted; on, it is imported with that payment status.
- **Enable Order Download Limit** + **Order Download Limit Date**: an order created before that
  date (UTC) is not imported.
- **Delay Tracking Time**, **Min Hours to Wait**, **Skip on Saturday**, **Skip on Sunday**: a
  shipment's tracking is sent only once that many hours have passed since it was shipped, hours
  of a skipped day (UTC) not counted, and never on a skipped day.

The gate applies to orders the host does not have yet: an order imported earlier keeps
receiving the channel's changes (a cancellation above all) whatever these options say now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from host.errors import HostError
from plugin_spec import ChannelOrder
from plugin_spec.models import NO_PAYMENT

#: the most hours a tracking upload may wait (a month); more is a typing error
MAX_DELAY_HOURS = 720
SATURDAY, SUNDAY = 5, 6

#: column -> label staff see, in the order of the screen
LABELS = {
    "allow_download_shipped": "Allow Download Shipped Orders",
    "allow_unpaid_orders": "Allow Unpaid Orders",
    "order_download_limit": "Enable Order Download Limit",
    "order_download_limit_date": "Order Download Limit Date",
    "delay_tracking": "Delay Tracking Time",
    "delay_min_hours": "Min Hours to Wait",
    "delay_skip_saturday": "Skip on Saturday",
    "delay_skip_sunday": "Skip on Sunday",
}
FLAGS = (
    "allow_download_shipped",
    "allow_unpaid_orders",
    "order_download_limit",
    "delay_tracking",
    "delay_skip_saturday",
    "delay_skip_sunday",
)
#: what a job's summary counts for each reason an order was skipped
SKIPPED_KEYS = ("skipped_shipped", "skipped_unpaid", "skipped_before_limit")


def parse_limit_date(value: str | date | None) -> str | None:
    """``YYYY-MM-DD`` as stored; empty clears it; anything else is one readable refusal."""
    if value is None or isinstance(value, date):
        return value.isoformat() if value is not None else None
    text = value.strip()
    if not text:
        return None
    try:
        parsed = date.fromisoformat(text)
    except ValueError:
        raise HostError(f"{LABELS['order_download_limit_date']} must be a date written YYYY-MM-DD") from None
    if not 1970 <= parsed.year < 2200:
        raise HostError(f"{LABELS['order_download_limit_date']} must be between 1970 and 2199")
    return parsed.isoformat()


def parse_hours(value: str | int | None) -> int | None:
    if value is None:
        return None
    text = str(value).strip() or "0"
    if not text.isdecimal() or int(text) > MAX_DELAY_HOURS:
        raise HostError(f"{LABELS['delay_min_hours']} must be a whole number of hours from 0 to {MAX_DELAY_HOURS}")
    return int(text)


def clean(options: dict[str, Any]) -> dict[str, Any]:
    """The stored form of the options given (None: left as they are); refuses bad values."""
    cleaned: dict[str, Any] = {}
    for key, value in options.items():
        if key not in LABELS:
            raise HostError(f"unknown Website General option {key!r}")
        if value is None:
            continue
        if key in FLAGS:
            cleaned[key] = int(bool(value))
        elif key == "delay_min_hours":
            cleaned[key] = parse_hours(value)
        else:
            cleaned[key] = parse_limit_date(value) or ""
    return cleaned


def changed(current: dict[str, Any], typed: dict[str, Any]) -> dict[str, Any]:
    """The options of a whole form (``typed``, by column) that differ from ``current``, cleaned."""
    cleaned = clean({key: typed[key] if typed[key] is not None else "" for key in LABELS})
    stored = {key: int(bool(current[key])) if key in FLAGS else current[key] for key in LABELS}
    return {
        key: bool(value) if key in FLAGS else value
        for key, value in cleaned.items()
        if value != (stored[key] if stored[key] is not None else "")
    }


def check(settings: dict[str, Any]) -> None:
    """The options as they would be stored, taken together."""
    if settings.get("order_download_limit") and not settings.get("order_download_limit_date"):
        raise HostError(f"{LABELS['order_download_limit']} needs an {LABELS['order_download_limit_date']} (YYYY-MM-DD)")


def widens(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """True when a download would now import orders the old options skipped: those orders lie
    behind the saved cursor, so the next Import Orders must read its whole window again."""
    if after["allow_download_shipped"] and not before["allow_download_shipped"]:
        return True
    if after["allow_unpaid_orders"] and not before["allow_unpaid_orders"]:
        return True
    if not before["order_download_limit"]:
        return False
    if not after["order_download_limit"]:
        return True
    return (after["order_download_limit_date"] or "") < (before["order_download_limit_date"] or "")


@dataclass(frozen=True)
class DownloadGate:
    """Which new orders a download keeps, from the company's Website General options."""

    allow_shipped: bool = False
    allow_unpaid: bool = False
    created_from: datetime | None = None

    @classmethod
    def of(cls, settings: dict[str, Any]) -> DownloadGate:
        limit = settings.get("order_download_limit_date") if settings.get("order_download_limit") else None
        return cls(
            allow_shipped=bool(settings.get("allow_download_shipped")),
            allow_unpaid=bool(settings.get("allow_unpaid_orders")),
            created_from=datetime.fromisoformat(limit).replace(tzinfo=UTC) if limit else None,
        )

    @property
    def unfulfilled_only(self) -> bool:
        """What the download hook is asked for: shipped orders too only when they are wanted."""
        return not self.allow_shipped

    def skipped(self, order: ChannelOrder) -> str | None:
        """The summary key of the reason ``order`` is not imported (a new order), or None."""
        if order.channel_shipped and not self.allow_shipped:
            return "skipped_shipped"
        if order.payment_status == NO_PAYMENT and not self.allow_unpaid:
            return "skipped_unpaid"
        if self.created_from is not None and order.created_at < self.created_from:
            return "skipped_before_limit"
        return None


def upload_due(shipped_at: datetime, settings: dict[str, Any]) -> datetime:
    """When a shipment's tracking may be sent: at once without Delay Tracking Time, else after
    Min Hours to Wait counted on days that are not skipped (UTC), and never on a skipped day."""
    if not settings.get("delay_tracking"):
        return shipped_at
    skipped = {
        day for day, key in ((SATURDAY, "delay_skip_saturday"), (SUNDAY, "delay_skip_sunday")) if settings.get(key)
    }
    remaining = timedelta(hours=int(settings.get("delay_min_hours") or 0))
    at = shipped_at.astimezone(UTC)
    for _ in range(MAX_DELAY_HOURS):  # at most one step per day: a month and its weekends
        midnight = at.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        if at.weekday() in skipped:
            at = midnight
            continue
        if at + remaining < midnight or (not remaining and at < midnight):
            return at + remaining
        remaining -= midnight - at
        at = midnight
    return at  # pragma: no cover - the loop ends long before
