"""Cart General settings of a Back Market Pro company."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from plugin_spec import CartSettings, validators

DEFAULT_WEBSITE_URL = "https://api.pro.backmarket.com/sellers-prod"


class BackMarketProSettings(CartSettings):
    """Website URL, x-api-key and the host's commission, as on the Cart General screen."""

    website_url: str = Field(default=DEFAULT_WEBSITE_URL, title="Website URL", max_length=2000)
    x_api_key: SecretStr = Field(title="x-api-key", min_length=8, max_length=512)

    @field_validator("website_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        # https required except for loopback hosts (the sandbox), so a key never travels in clear
        return validators.api_url(value, DEFAULT_WEBSITE_URL)

    @field_validator("x_api_key")
    @classmethod
    def _check_key(cls, value: SecretStr) -> SecretStr:
        validators.header_safe_secret(value.get_secret_value())
        return value
