"""Timestamps as the host stores them: ISO-8601 UTC strings of one fixed width, so they sort."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

# strftime's %Y writes year 999 as "999" on some platforms: that would sort above "2026"
_STORED = re.compile(r"(-?\d{1,4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?(Z|[+-]\d\d:?\d\d)?")


def now() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` in UTC, always 27 characters (the year zero-padded)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    v = value.astimezone(UTC)
    return f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}Z"


def now_iso(delta_seconds: float = 0) -> str:
    return iso(now() + timedelta(seconds=delta_seconds))


def parse(value: str) -> datetime:
    """Read a stored timestamp, also one written with an unpadded year by an older version."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        match = _STORED.fullmatch(value.strip())
        if match is None:
            raise ValueError(f"not a timestamp: {value[:40]!r}") from None
        year, month, day, hour, minute, second, fraction, zone = match.groups()
        parsed = datetime(
            max(int(year), 1), int(month), int(day), int(hour), int(minute), int(second),
            int((fraction or "0").ljust(6, "0")), tzinfo=UTC,
        )  # fmt: skip
        if zone and zone != "Z":
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            parsed -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
