"""Checks of what people type: ids and free text. Each failure is one line naming the field."""

from __future__ import annotations

from typing import Literal, overload

from host.errors import HostError, NotFound

MAX_ID = 2**63 - 1  # SQLite's INTEGER


def parse_id(value: object, what: str) -> int:
    """A positive integer id; anything else is "unknown <what>", as no such row can exist."""
    text = str(value).strip()
    if not text.isdecimal() or not text.isascii():
        raise NotFound(f"{what} id must be a number, not {text[:40]!r}")
    number = int(text)
    if not 0 < number <= MAX_ID:
        raise NotFound(f"unknown {what} {text[:40]}")
    return number


@overload
def check_text(label: str, value: str | None, *, required: Literal[True] = True, limit: int = 200) -> str: ...


@overload
def check_text(label: str, value: str | None, *, required: bool, limit: int = 200) -> str | None: ...


def check_text(label: str, value: str | None, *, required: bool = True, limit: int = 200) -> str | None:
    """Stripped printable text of at most ``limit`` characters (None when empty and optional)."""
    if value is None or value.strip() == "":
        if required:
            raise HostError(f"{label} must not be empty")
        return None
    value = value.strip()
    if len(value) > limit or not value.isprintable():
        raise HostError(f"{label} must be at most {limit} printable characters")
    return value
