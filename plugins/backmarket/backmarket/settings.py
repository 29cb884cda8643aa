"""Cart General settings of a Back Market company: region, API token, country code."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from plugin_spec import CartSettings, validators

#: the API host of each Back Market marketplace region (the paths all start with /ws/)
REGION_URLS = {
    "eu": "https://www.backmarket.fr",
    "uk": "https://www.backmarket.co.uk",
    "us": "https://www.backmarket.com",
}


class BackMarketSettings(CartSettings):
    """What staff fill in on the Cart General screen of a Back Market company."""

    region: Literal["eu", "uk", "us"] = Field(default="eu", title="Region (eu, uk or us)")
    token: SecretStr = Field(title="API token", min_length=8, max_length=512)
    country_code: str = Field(
        default="fr-fr",
        title="Country code (Accept-Language, e.g. fr-fr, de-de, en-gb)",
        pattern=r"^[a-z]{2}-[a-z]{2}$",
    )
    api_url: str | None = Field(
        default=None,
        title="API URL (leave empty: the region's; set it only for a sandbox)",
        max_length=2000,
    )

    @property
    def base_url(self) -> str:
        """Where ``/ws/...`` lives: ``api_url`` when set, else the region's host."""
        return self.api_url or REGION_URLS[self.region]

    @field_validator("country_code", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower().replace("_", "-") if isinstance(value, str) else value

    @field_validator("api_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return validators.api_url(value, REGION_URLS["eu"])

    @field_validator("token")
    @classmethod
    def _check_token(cls, value: SecretStr) -> SecretStr:
        validators.header_safe_secret(value.get_secret_value())
        return value
