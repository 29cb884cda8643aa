"""HTTP client of the Selling Partner API: its paths, parameters, limits and messages.

* **Auth:** Login with Amazon access tokens minted from the seller's refresh token
  (``plugin_spec.auth.OAuth2RefreshToken``, client id and secret in the form body), sent in
  ``x-amz-access-token``, kept in the company's credential store and renewed once when the API
  answers 403 (how the SP-API refuses an expired token) or 401.
* **Limits:** each operation's usage plan from the models (rate per second, burst), counted per
  seller account by every process of the host; the token endpoint has a bucket of its own.
* **Paging:** searchOrders sorted by ``lastUpdatedTime`` with ``lastUpdatedAfter``, read as
  keyset pages (``plugin_spec.paging.Keyset``): each page asks again from the last stamp read,
  so an order changed during the download is read again later, never skipped; within one
  second the ``paginationToken`` goes on.

``reference/`` holds the models; ``mapping.py`` the field names of the bodies.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Self

from plugin_spec import BadData
from plugin_spec.auth import OAuth2RefreshToken
from plugin_spec.credentials import CredentialStore
from plugin_spec.http import ApiProfile, HttpOptions, JsonApi, Rejected
from plugin_spec.paging import Keyset, PageToken
from plugin_spec.ratelimit import Rate
from plugin_spec.wire import safe_segment, timestamp

from . import __version__
from .mapping import error_code, error_detail, format_time
from .settings import AmazonSettings

SEARCH_PATH = "/orders/2026-01-01/orders"
ORDER_PATH = "/orders/2026-01-01/orders/{id}"
CONFIRM_PATH = "/orders/v0/orders/{id}/shipmentConfirmation"
ACCESS_TOKEN_HEADER = "x-amz-access-token"
PAGE_SIZE_MAX = 100
#: what each order must bring: the buyer's e-mail, the address, amounts, the fulfilment state
INCLUDED_DATA = "BUYER,RECIPIENT,PROCEEDS,FULFILLMENT,CANCELLATION"
#: the orders the seller ships: Amazon's own (AFN) are not theirs; PENDING ones wait for
#: payment and come once UNSHIPPED; CANCELLED ones come so staff hear of them
UNFULFILLED_STATUSES = "UNSHIPPED,PARTIALLY_SHIPPED,CANCELLED"
#: every order with prices (PENDING ones have none yet)
ALL_STATUSES = "UNSHIPPED,PARTIALLY_SHIPPED,SHIPPED,CANCELLED"
ENV_PREFIX = "CARTPLUGIN_AMAZON_"
#: each operation's usage plan (requests per second, burst), from its description in the models
USAGE_PLANS = {
    "searchOrders": Rate(0.0056, 20),
    "getOrder": Rate(0.5, 30),
    "confirmShipment": Rate(2, 10),
}
#: Login with Amazon publishes no limit; a renewal an hour never comes near this one
TOKEN_PLAN = Rate(1, 10)

__all__ = ["AmazonClient", "ClientOptions", "Rejected", "PROFILE"]

PROFILE = ApiProfile(
    name="Amazon",
    check_url="Check the Marketplace region (and, for a sandbox, the API URL).",
    key_name="access token",
    auth_hint=(
        "Check the LWA client identifier, client secret and refresh token in Cart General, and that the "
        "seller authorised the app for this region."
    ),
    rate_hint=" (each operation has its own usage plan)",
    error_detail=error_detail,
    error_code=error_code,
    request_id=lambda body: None,
    trace_headers=("x-amzn-RequestId", "x-amz-rid"),
)


@dataclass(frozen=True)
class ClientOptions(HttpOptions):
    """The toolkit's options plus the page size and how much faster than Amazon's usage plans
    the limits run (a sandbox whose plans are sped up by the same factor)."""

    page_size: int = PAGE_SIZE_MAX
    rate_time_scale: float = 1.0

    @classmethod
    def from_env(cls, prefix: str = ENV_PREFIX, environ: Mapping[str, str] | None = None) -> Self:
        """Defaults, overridden by ``CARTPLUGIN_AMAZON_<FIELD>`` variables."""
        return super().from_env(prefix, environ)


def _scaled(rate: Rate, scale: float) -> Rate:
    if scale == 1:
        return rate
    return Rate(Decimal(str(rate.per_second)) * Decimal(str(scale)), rate.burst)


class AmazonClient(JsonApi):
    """One seller account's connection in one region; use it as a context manager."""

    def __init__(
        self,
        settings: AmazonSettings,
        credentials: CredentialStore | None,
        options: ClientOptions | None = None,
        **changes: Any,
    ):
        options = ClientOptions(**{**asdict(options or ClientOptions()), **changes})
        if not 1 <= options.page_size <= PAGE_SIZE_MAX:
            raise ValueError(f"page_size must be between 1 and {PAGE_SIZE_MAX}")
        self.settings = settings
        auth = OAuth2RefreshToken(
            settings.token_url, settings.lwa_client_id, settings.lwa_client_secret.get_secret_value(),
            settings.refresh_token.get_secret_value(), store=credentials, header=ACCESS_TOKEN_HEADER, scheme=None,
            client_auth="body", renew_on=frozenset({401, 403}), channel="Amazon",
            hint=PROFILE.auth_hint, token_rate=_scaled(TOKEN_PLAN, options.rate_time_scale),
        )  # fmt: skip
        plans = {op: _scaled(rate, options.rate_time_scale) for op, rate in USAGE_PLANS.items()}
        # a repeat of a confirmShipment that landed is refused and then read back (plugin.py)
        super().__init__(
            settings.base_url, PROFILE, options, auth=auth, rate_limits=plans, retry_post=True,
            headers={"User-Agent": f"cartplugin-amazon-sp/{__version__} (Language=Python)"},
        )  # fmt: skip
        self.page_size = options.page_size

    def search_orders(self, *, updated_after: datetime, statuses: str = UNFULFILLED_STATUSES) -> Iterator[Any]:
        """Every merchant-fulfilled order changed at or after ``updated_after``, oldest change first."""
        params = {
            "lastUpdatedAfter": format_time(updated_after),
            "marketplaceIds": self.settings.marketplace_ids,
            "fulfilledBy": "MERCHANT",
            "includedData": INCLUDED_DATA,
            "maxResultsPerPage": str(self.page_size),
            "fulfillmentStatuses": statuses,
        }
        pager = Keyset(
            PageToken("pagination.nextToken", "paginationToken", expired_codes=frozenset({"InvalidInput"})),
            key=_stamp_and_id, filter_param="lastUpdatedAfter", format_stamp=format_time,
        )  # fmt: skip
        for page in self.pages(SEARCH_PATH, params, results="orders", pager=pager, operation="searchOrders",
                               id_of=_order_id, what="a searchOrders page"):  # fmt: skip
            yield from page

    def get_order(self, order_id: str, included: str = "PACKAGES") -> dict[str, Any]:
        """getOrder: one order, with ``included`` sections (raises :class:`Rejected` with 404)."""
        path = ORDER_PATH.format(id=safe_segment(order_id, "order id"))
        body = self.request("GET", path, params={"includedData": included}, operation="getOrder")
        order = body.get("order") if isinstance(body, dict) else None
        if not isinstance(order, dict):
            raise BadData(self.unexpected("a getOrder answer", body))
        return order

    def confirm_shipment(self, order_id: str, body: dict[str, Any]) -> None:
        """confirmShipment (204 on success); raises :class:`Rejected` for the API's refusals."""
        path = CONFIRM_PATH.format(id=safe_segment(order_id, "order id"))
        self.request("POST", path, json=body, body_needed=False, operation="confirmShipment")

    def probe(self, since: datetime) -> int:
        """Test Settings' call: one searchOrders page of one order (how many came back)."""
        params = {"lastUpdatedAfter": format_time(since), "marketplaceIds": self.settings.marketplace_ids,
                  "maxResultsPerPage": "1"}  # fmt: skip
        body = self.request("GET", SEARCH_PATH, params=params, operation="searchOrders")
        orders = body.get("orders") if isinstance(body, dict) else None
        if not isinstance(orders, list):
            raise BadData(self.unexpected("a searchOrders answer", body))
        return len(orders)


def _stamp_and_id(order: Any) -> tuple[Any, Any]:
    # compared as instants: the API may write a stamp with fractions or an offset
    return timestamp(order["lastUpdatedTime"], "lastUpdatedTime"), order["orderId"]


def _order_id(item: Any) -> Any:
    return item.get("orderId") if isinstance(item, dict) else None
