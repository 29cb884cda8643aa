"""Cart General settings of an Amazon company: region, marketplaces, Login with Amazon credentials."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, field_validator

from plugin_spec import CartSettings, validators

#: the Selling Partner API endpoint of each region (Amazon's "SP-API endpoints" page)
SP_API_URLS = {
    "na": "https://sellingpartnerapi-na.amazon.com",
    "eu": "https://sellingpartnerapi-eu.amazon.com",
    "fe": "https://sellingpartnerapi-fe.amazon.com",
}
#: the Login with Amazon token endpoint of each region
LWA_TOKEN_URLS = {
    "na": "https://api.amazon.com/auth/o2/token",
    "eu": "https://api.amazon.co.uk/auth/o2/token",
    "fe": "https://api.amazon.co.jp/auth/o2/token",
}
#: the path of the token endpoint, also served by the sandbox beside the API
TOKEN_PATH = "/auth/o2/token"
#: names staff may know a region by (a marketplace's country)
_ALIASES = {"us": "na", "ca": "na", "mx": "na", "br": "na", "uk": "eu", "gb": "eu", "de": "eu", "fr": "eu",
            "it": "eu", "es": "eu", "jp": "fe", "au": "fe", "sg": "fe"}  # fmt: skip
#: a marketplace id as Amazon publishes them (e.g. ATVPDKIKX0DER, A1PA6795UKMFR9)
_MARKETPLACE_ID = re.compile(r"^[A-Z0-9]{8,20}$")
#: the model's searchOrders ``marketplaceIds`` takes at most 50
MAX_MARKETPLACES = 50


class AmazonSettings(CartSettings):
    """What staff fill in on the Cart General screen of an Amazon company."""

    region: Literal["na", "eu", "fe"] = Field(
        default="eu", title="Marketplace region (na, eu or fe: the seller's Selling Partner API endpoint)"
    )
    marketplace_ids: str = Field(
        title="Marketplace IDs (comma-separated, e.g. A1PA6795UKMFR9 for Amazon.de)", max_length=1100
    )
    lwa_client_id: str = Field(
        title="LWA client identifier (of the app, amzn1.application-oa2-client....)", min_length=8, max_length=256
    )
    lwa_client_secret: SecretStr = Field(title="LWA client secret", min_length=8, max_length=512)
    refresh_token: SecretStr = Field(
        title="Refresh token (Atzr|..., from authorizing the app)", min_length=8, max_length=2048
    )
    api_url: str | None = Field(
        default=None,
        title="API URL (leave empty: the region's; set it only for a sandbox)",
        max_length=2000,
    )
    lwa_token_url: str | None = Field(
        default=None,
        title="LWA token URL (leave empty: the region's, or the sandbox's beside API URL)",
        max_length=2000,
    )

    @property
    def base_url(self) -> str:
        """Where ``/orders/...`` lives: ``api_url`` when set, else the region's endpoint."""
        return self.api_url or SP_API_URLS[self.region]

    @property
    def token_url(self) -> str:
        """Where access tokens are minted: ``lwa_token_url``, else the sandbox's beside ``api_url``
        (a sandbox serves both), else the region's Login with Amazon endpoint."""
        if self.lwa_token_url:
            return self.lwa_token_url
        return self.api_url + TOKEN_PATH if self.api_url else LWA_TOKEN_URLS[self.region]

    @property
    def marketplaces(self) -> list[str]:
        return self.marketplace_ids.split(",")

    @field_validator("region", mode="before")
    @classmethod
    def _region(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().lower()
            return _ALIASES.get(value, value)
        return value

    @field_validator("marketplace_ids", mode="before")
    @classmethod
    def _marketplaces(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        ids: list[str] = []
        for part in re.split(r"[\s,;]+", value.strip()):
            if part and part.upper() not in ids:
                ids.append(part.upper())
        if not ids:
            raise ValueError("name at least one marketplace id, e.g. A1PA6795UKMFR9")
        if len(ids) > MAX_MARKETPLACES:
            raise ValueError(f"at most {MAX_MARKETPLACES} marketplace ids")
        bad = [i for i in ids if not _MARKETPLACE_ID.match(i)]
        if bad:
            raise ValueError("a marketplace id is letters and digits only, e.g. A1PA6795UKMFR9")
        return ",".join(ids)

    @field_validator("lwa_client_id")
    @classmethod
    def _client_id(cls, value: str) -> str:
        value = value.strip()
        validators.header_safe_secret(value)  # it travels in a form body: printable ASCII, no spaces
        return value

    @field_validator("api_url", "lwa_token_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return validators.api_url(value, SP_API_URLS["eu"])

    @field_validator("lwa_client_secret", "refresh_token")
    @classmethod
    def _check_secret(cls, value: SecretStr) -> SecretStr:
        validators.header_safe_secret(value.get_secret_value())
        return value
