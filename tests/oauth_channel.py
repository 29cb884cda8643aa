"""A channel plugin over ``oauth_shop``'s sandbox, for the host's tests of shared tokens: its
hooks take the host's ``credentials`` and hand them to the toolkit's OAuth 2.0 auth, as a real
OAuth channel's plugin does. Worker processes load it through an entry point a test writes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from oauth_shop import FAST, PROFILE
from pydantic import Field, SecretStr

from plugin_spec import (
    CartSettings,
    ChannelError,
    ChannelInfo,
    ChannelOrder,
    OrderLine,
    Shipment,
    TestResult,
    UploadResult,
    hookimpl,
)
from plugin_spec.auth import OAuth2RefreshToken
from plugin_spec.credentials import CredentialStore
from plugin_spec.http import JsonApi, Rejected
from plugin_spec.paging import Offset
from plugin_spec.wire import settings_as, upload_each

NAME = "oauth_shop"
#: defects a test switches on, each one a real author could make (tests/test_oauth_channel_kit.py)
BREAKS: set[str] = set()


class OAuthShopSettings(CartSettings):
    api_url: str = Field(title="API URL")
    token_url: str = Field(title="Token URL")
    client_id: str = Field(title="Client id")
    client_secret: SecretStr = Field(title="Client secret")
    refresh_token: SecretStr = Field(title="Refresh token")


class _NeverRenews(OAuth2RefreshToken):
    def renew_after_refusal(self, api: JsonApi, sent: Any) -> bool:
        return False


def _client(settings: Any, credentials: CredentialStore) -> JsonApi:
    s = settings_as(OAuthShopSettings, settings)
    kind = _NeverRenews if "never_renews" in BREAKS else OAuth2RefreshToken
    auth = kind(
        s.token_url, s.client_id, s.client_secret.get_secret_value(), s.refresh_token.get_secret_value(),
        store=None if "own_store" in BREAKS else credentials, channel="OAuth Shop",
    )  # fmt: skip
    return JsonApi(s.api_url, PROFILE, FAST, auth=auth)


def _token(client: JsonApi) -> str:
    """The access token in use (only the broken variants ever look at it)."""
    return str(client.auth.request_headers(client)["Authorization"])


@hookimpl
def cartplugin_channel_info() -> ChannelInfo:
    return ChannelInfo(name=NAME, display_name="OAuth Shop", version="1.0", settings_model=OAuthShopSettings)


@hookimpl
def cartplugin_test_settings(settings: Any, credentials: CredentialStore) -> TestResult:
    try:
        with _client(settings, credentials) as client:
            name = client.request("GET", "/me")["name"]
    except ChannelError as exc:
        return TestResult(ok=False, message=exc.message)
    return TestResult(ok=True, account_name=name, message=f"Connected to the OAuth Shop as {name}")


@hookimpl
def cartplugin_download_orders(
    settings: Any, since: datetime | None, unfulfilled_only: bool, credentials: CredentialStore
) -> Iterator[ChannelOrder]:
    with _client(settings, credentials) as client:
        params = {"page-size": "5", "status": "open" if unfulfilled_only else "any"}
        if since:
            params["updated_since"] = since.isoformat()
        pages: Iterable[list[Any]]
        if "offset_pages" in BREAKS:  # DEFECT: plain offsets over a list that changes while it is read
            pages = client.pages("/orders", params | {"paging": "offset"}, pager=Offset("page-size", page_size=5))
        else:
            pages = client.pages("/orders", params)
        if "token_in_error" in BREAKS:
            try:
                pages = list(pages)
            except ChannelError as exc:
                record = credentials.load("oauth2")
                if record is not None and record.version > 1:  # DEFECT: after a renewal, the token in the error
                    raise ChannelError(f"{exc.message} (with {_token(client)})") from None
                raise
        for page in pages:
            for raw in page:
                subtotal, shipping, discount = (
                    Decimal(raw["subtotal"]),
                    Decimal(raw["shipping"]),
                    Decimal(raw["discount"]),
                )
                grand_total = Decimal(raw["total"])
                if "grand_total_without_tax" in BREAKS:  # DEFECT: the total worked out, and tax left out
                    grand_total = subtotal + shipping - discount
                yield ChannelOrder(
                    source_order_id=str(raw["id"]),
                    created_at=datetime.fromisoformat(raw["created_at"]),
                    updated_at=datetime.fromisoformat(raw["updated_at"]),
                    currency=raw["currency"],
                    subtotal=subtotal,
                    shipping_total=shipping,
                    discount_total=discount,
                    tax_total=Decimal(raw["tax"]),
                    grand_total=grand_total,
                    channel_cancelled=raw["status"] == "cancelled" and "cancel_unflagged" not in BREAKS,
                    lines=[_line(line) for line in raw["lines"]],
                )  # fmt: skip


def _line(raw: dict[str, Any]) -> OrderLine:
    if "unit_price_is_line_total" in BREAKS:  # DEFECT: the channel's line total taken for a unit price
        price = {"unit_price": Decimal(raw["total"])}
    else:
        price = {"unit_price": Decimal(raw["price"]), "line_total": Decimal(raw["total"])}
    return OrderLine(source_line_id=raw["id"], sku=raw["sku"], title=raw["title"], quantity=raw["quantity"], **price)


@hookimpl
def cartplugin_upload_tracking(
    settings: Any, shipments: list[Shipment], credentials: CredentialStore
) -> list[UploadResult]:
    with _client(settings, credentials) as client:

        def send(shipment: Shipment) -> UploadResult:
            path = f"/orders/{shipment.source_order_id}/shipments"
            try:
                client.request("POST", path, json={"tracking": shipment.tracking_number}, body_needed=False)
            except Rejected as exc:
                if exc.status == 409:
                    return UploadResult(shipment_id=shipment.shipment_id, ok=True, already_recorded=True)
                if "token_in_upload_error" in BREAKS:  # DEFECT
                    return UploadResult(shipment_id=shipment.shipment_id, ok=False, message=f"{exc} ({_token(client)})")
                raise
            return UploadResult(shipment_id=shipment.shipment_id, ok=True, message="recorded")

        return upload_each(shipments, send, label="OAuth Shop", concurrency=2)
