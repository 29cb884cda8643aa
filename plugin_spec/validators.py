"""Checks most channels' Cart General settings need, for use in pydantic validators.

Each raises ``ValueError`` with a message the host shows next to the field's label (never the
value itself, which may be a secret).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1): where plain http is harmless."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_url(value: str, example: str) -> str:
    """An http(s) base URL without query, fragment or credentials; https unless loopback, so a
    key never travels in clear text. Returns it stripped, without a trailing slash."""
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http(s) URL such as {example}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("must not carry a query, fragment or credentials")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError("must use https (plain http is allowed only for loopback hosts)")
    return value.rstrip("/")


def header_safe_secret(raw: str) -> None:
    """A credential that can travel in an HTTP header: printable ASCII, no spaces."""
    if any(ch.isspace() or not ch.isprintable() or not ch.isascii() for ch in raw):
        raise ValueError("must not contain spaces, control or non-ASCII characters")


def typed_decimal(value: object) -> object:
    """A number a person typed (a percentage, an amount), with a decimal point or a decimal
    comma: ``12,5`` is ``12.5``. Anything else but text is left to the field's own type.

    Thousands separators are not taken: ``1,2,3`` or ``1.234,5`` could mean more than one
    number, so they are refused rather than guessed.
    """
    if not isinstance(value, str) or "," not in value:
        return value
    text = value.strip()
    if text.count(",") > 1 or "." in text:
        raise ValueError("must be a number with one decimal comma or point, like 12,5 or 12.5 (no thousands separator)")
    return text.replace(",", ".")
