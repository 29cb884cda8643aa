"""HTTP client of the Back Market Pro seller API: its paths, query parameters and messages.

Every path and query parameter of the assumed contract lives here (field names of the bodies
live in ``mapping.py``); ``docs/backmarket-pro-api.md`` is the human-readable copy. The HTTP
plumbing (timeouts, deadline, retries, size cap, rate limit, error mapping, paging) is
``plugin_spec.http``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Self

from plugin_spec import BadData, ChannelOrder
from plugin_spec.http import ApiProfile, HttpOptions, JsonApi, Rejected
from plugin_spec.wire import safe_segment

from . import __version__
from .mapping import error_code, error_message, format_timestamp, read_page
from .settings import DEFAULT_WEBSITE_URL, BackMarketProSettings

API_VERSION = "2024-03"
SELLER_ACCOUNT_PATH = f"/{API_VERSION}/seller-account"
ORDERS_PATH = f"/{API_VERSION}/orders"
PAGE_SIZE_MAX = 200
TRACKING_ALREADY_RECORDED = "tracking_already_recorded"
ENV_PREFIX = "CARTPLUGIN_BMP_"

__all__ = ["BackMarketProClient", "ClientOptions", "Rejected", "PROFILE"]

PROFILE = ApiProfile(
    name="Back Market Pro",
    check_url=f"Check the Website URL (normally {DEFAULT_WEBSITE_URL}).",
    key_name="x-api-key",
    auth_hint="Check the key in Cart General, or ask Back Market Pro for a new one if it was revoked.",
    error_detail=lambda body: error_message(body, fallback=""),
    error_code=error_code,
)


@dataclass(frozen=True)
class ClientOptions(HttpOptions):
    """The toolkit's options plus the page size (the API maximum: fewest requests, one small page)."""

    page_size: int = 200

    @classmethod
    def from_env(cls, prefix: str = ENV_PREFIX, environ: Mapping[str, str] | None = None) -> Self:
        """Defaults, overridden by ``CARTPLUGIN_BMP_<FIELD>`` variables (e.g. CARTPLUGIN_BMP_READ_TIMEOUT=5)."""
        return super().from_env(prefix, environ)


class BackMarketProClient(JsonApi):
    """One seller account's connection; use it as a context manager so connections are released."""

    def __init__(self, settings: BackMarketProSettings, options: ClientOptions | None = None, **changes: Any):
        options = ClientOptions(**{**asdict(options or ClientOptions()), **changes})
        if not 1 <= options.page_size <= PAGE_SIZE_MAX:
            raise ValueError(f"page_size must be between 1 and {PAGE_SIZE_MAX}")
        key = settings.x_api_key.get_secret_value()
        # POST is safe to repeat: the only POST creates a shipment, and a repeat of one that
        # did land answers 409 tracking_already_recorded, which counts as success
        super().__init__(
            settings.website_url, PROFILE, options, limit_key=key, retry_post=True,
            headers={"x-api-key": key, "User-Agent": f"cartplugin-backmarket-pro/{__version__}"},
        )  # fmt: skip
        self.page_size = options.page_size

    @classmethod
    def from_options(cls, settings: BackMarketProSettings, options: ClientOptions) -> BackMarketProClient:
        return cls(settings, options)

    def seller_account(self) -> dict[str, Any]:
        """``GET /2024-03/seller-account``: the cheap authenticated call behind Test Settings."""
        return self._object(self.request("GET", SELLER_ACCOUNT_PATH), "the seller account")

    def iter_orders(
        self, *, updated_at_min: datetime | None = None, fulfillment_status: str = "unfulfilled"
    ) -> Iterator[Any]:
        """Yield the orders of ``GET /2024-03/orders``, one page in memory at a time (and the
        next one on its way).

        Follows the ``next`` link (a keyset cursor) until it is null; orders come sorted by
        (``updated_at``, ``id``) ascending. A page whose orders are all valid is read from its
        bytes straight into ChannelOrders (``mapping.read_page``); the orders of any other page
        come as raw dicts, for ``mapping.order_or_bad`` to read one by one.
        """
        params = {"fulfillment_status": fulfillment_status, "financial_status": "any", "page-size": str(self.page_size)}
        if updated_at_min is not None:
            params["updated_at_min"] = format_timestamp(updated_at_min)
        for page in self.pages(ORDERS_PATH, params, id_of=_order_id, read_page=read_page):
            yield from page

    def get_order(self, order_id: str) -> dict[str, Any]:
        """``GET /2024-03/orders/{id}``: one order (raises :class:`Rejected` with 404)."""
        return self._object(
            self.request("GET", f"{ORDERS_PATH}/{safe_segment(order_id, 'order id')}"), f"order {order_id}"
        )

    def post_shipment(self, order_id: str, body: dict[str, Any]) -> bool:
        """``POST /2024-03/orders/{id}/shipments``.

        :return: True when the channel recorded the tracking now, False when it already had it
            (409 ``tracking_already_recorded``).
        :raises Rejected: 404 unknown order, 422 invalid shipment, other 4xx.
        """
        path = f"{ORDERS_PATH}/{safe_segment(order_id, 'order id')}/shipments"
        try:
            # a 2xx means the channel recorded it, whatever the body says (it may be cut off)
            self.request("POST", path, json=body, body_needed=False)
        except Rejected as exc:
            if exc.status == 409 and exc.code == TRACKING_ALREADY_RECORDED:
                return False
            raise
        return True

    def _object(self, body: Any, what: str) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise BadData(self.unexpected(what, body))
        return body


def _order_id(item: Any) -> Any:
    """The id of a listed order, raw or already read (the paging checks that pages progress)."""
    if isinstance(item, ChannelOrder):
        return item.source_order_id
    return item.get("id") if isinstance(item, dict) else None
