"""Cart General settings of a Back Market Pro company."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from plugin_spec import CartSettings

DEFAULT_WEBSITE_URL = "https://api.pro.backmarket.com/sellers-prod"
LOOPBACK_NAMES = {"localhost"}


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class BackMarketProSettings(CartSettings):
    """Website URL, x-api-key and the host's commission, as on the Cart General screen."""

    website_url: str = Field(default=DEFAULT_WEBSITE_URL, title="Website URL", max_length=2000)
    x_api_key: SecretStr = Field(title="x-api-key", min_length=8, max_length=512)

    @field_validator("website_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        value = value.strip()
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http(s) URL such as " + DEFAULT_WEBSITE_URL)
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("must not carry a query, fragment or credentials")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise ValueError("must use https (plain http is allowed only for loopback hosts)")
        return value.rstrip("/")

    @field_validator("x_api_key")
    @classmethod
    def _check_key(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if raw != raw.strip() or any(ch.isspace() or not ch.isprintable() for ch in raw):
            raise ValueError("must not contain spaces or control characters")
        return value
