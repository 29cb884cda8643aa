"""Cart General settings of a Back Market company: platform, API token, country code, identity."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from plugin_spec import CartSettings, validators

#: the host of each Back Market platform, production and preprod (the paths all start with /ws/);
#: the EU platform serves every European country, en-gb included
PLATFORM_URLS = {
    "eu": "https://www.backmarket.fr",
    "na": "https://www.backmarket.com",
    "ap": "https://www.backmarket.co.jp",
}
PREPROD_URLS = {
    "eu": "https://preprod.backmarket.fr",
    "na": "https://preprod.backmarket.com",
    "ap": "https://preprod.backmarket.co.jp",
}
#: names staff may know a platform by
_ALIASES = {"uk": "eu", "gb": "eu", "fr": "eu", "us": "na", "jp": "ap", "au": "ap"}


class BackMarketSettings(CartSettings):
    """What staff fill in on the Cart General screen of a Back Market company."""

    region: Literal["eu", "na", "ap"] = Field(default="eu", title="Platform (eu, na or ap; en-gb is eu)")
    preprod: bool = Field(default=False, title="Use the platform's preprod host")
    token: SecretStr = Field(title="API token", min_length=8, max_length=512)
    country_code: str = Field(
        default="fr-fr",
        title="Country code (Accept-Language, e.g. fr-fr, de-de, en-gb)",
        pattern=r"^[a-z]{2}-[a-z]{2}$",
    )
    company_name: str = Field(
        title="Company name (in the User-Agent Back Market requires)", pattern=r"^[A-Za-z0-9]{1,50}$"
    )
    contact_email: str = Field(
        title="Contact email (in the User-Agent)", pattern=r"^[^@\s;]{1,64}@[^@\s;]{1,190}\.[^@\s;]{2,}$"
    )
    accept_on_download: bool = Field(
        default=True,
        title="Accept new orders on download",
        description="Off: new orders wait as Awaiting acceptance until staff accept them (cartplugin orders accept).",
    )
    api_url: str | None = Field(
        default=None,
        title="API URL (leave empty: the platform's; set it only for a sandbox)",
        max_length=2000,
    )

    @property
    def base_url(self) -> str:
        """Where ``/ws/...`` lives: ``api_url`` when set, else the platform's host."""
        return self.api_url or (PREPROD_URLS if self.preprod else PLATFORM_URLS)[self.region]

    @field_validator("region", mode="before")
    @classmethod
    def _platform(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().lower()
            return _ALIASES.get(value, value)
        return value

    @field_validator("company_name", mode="before")
    @classmethod
    def _compact(cls, value: object) -> object:
        # the User-Agent separates its parts with "-" and ";": keep letters and digits only
        return "".join(ch for ch in value if ch.isascii() and ch.isalnum()) if isinstance(value, str) else value

    @field_validator("country_code", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower().replace("_", "-") if isinstance(value, str) else value

    @field_validator("api_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return validators.api_url(value, PLATFORM_URLS["eu"])

    @field_validator("token")
    @classmethod
    def _check_token(cls, value: SecretStr) -> SecretStr:
        validators.header_safe_secret(value.get_secret_value())
        return value
