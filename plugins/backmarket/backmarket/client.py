"""HTTP client of the Back Market seller API: its paths, query parameters, headers and messages.

Every path, query parameter and header of the contract lives here (body field names live in
``mapping.py``). The HTTP plumbing (timeouts, deadline, retries, size cap, rate limit, error
mapping, ``next``-link paging) is ``plugin_spec.http``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from plugin_spec import BadData
from plugin_spec.http import ApiProfile, HttpOptions, JsonApi, Rejected
from plugin_spec.wire import safe_segment

from .mapping import error_code, error_detail, format_filter_time
from .settings import BackMarketSettings

ORDERS_PATH = "/ws/orders"
PAGE_SIZE_MAX = 50
#: the integration's name in the User-Agent Back Market requires: BM-{Company}-{Integration};{email}
INTEGRATION = "cartplugin"

__all__ = ["BackMarketClient", "ClientOptions", "Rejected", "PROFILE"]

PROFILE = ApiProfile(
    name="Back Market",
    check_url="Check the region / API URL.",
    key_name="API token",
    auth_hint="Check the token in Cart General (it is the one from the Back Market seller portal, API "
    "section), and the region.",
    rate_hint=" (the limit is about 200 requests per 10 s, then a 10 s block)",
    error_detail=error_detail,
    error_code=error_code,
)


@dataclass(frozen=True)
class ClientOptions(HttpOptions):
    """The toolkit's options plus the page size (tests shrink them)."""

    page_size: int = PAGE_SIZE_MAX


class BackMarketClient(JsonApi):
    """One seller account's connection; use it as a context manager."""

    def __init__(self, settings: BackMarketSettings, options: ClientOptions = ClientOptions()):
        if not 1 <= options.page_size <= PAGE_SIZE_MAX:
            raise ValueError(f"page_size must be between 1 and {PAGE_SIZE_MAX}")
        token = settings.token.get_secret_value()
        # a repeated POST that had landed is refused (the lines moved on); the plugin then reads
        # the order back (send_or_reconcile), so retrying it is safe
        super().__init__(
            settings.base_url, PROFILE, options, limit_key=token, retry_post=True,
            headers={
                "Authorization": f"Basic {token}",
                "Accept-Language": settings.country_code,
                "User-Agent": user_agent(settings),
            },
        )  # fmt: skip
        self.page_size = options.page_size

    def probe(self) -> int:
        """``GET /ws/orders?page-size=1``: the cheap authenticated call of Test Settings; the count."""
        body = self.request("GET", ORDERS_PATH, params={"page-size": "1"})
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise BadData(self.unexpected("an order listing", body))
        count = body.get("count")
        return count if isinstance(count, int) else len(body["results"])

    def iter_orders(self, *, modified_since: datetime | None) -> Iterator[Any]:
        """Yield raw orders of ``GET /ws/orders`` (every state the listing shows), one page in
        memory at a time, following ``next``."""
        params = {"page": "1", "page-size": str(self.page_size)}
        if modified_since is not None:
            params["date_modification"] = format_filter_time(modified_since)
        for page in self.pages(ORDERS_PATH, params, id_of=_order_id):
            yield from page

    def get_order(self, order_id: str) -> dict[str, Any]:
        body = self.request("GET", f"{ORDERS_PATH}/{_segment(order_id)}")
        if not isinstance(body, dict):
            raise BadData(self.unexpected(f"order {order_id}", body))
        return body

    def update(self, order_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /ws/orders/{id}`` (accept, cancel or ship lines); raises Rejected on 400/404."""
        answer = self.request("POST", f"{ORDERS_PATH}/{_segment(order_id)}", json=body)
        return answer if isinstance(answer, dict) else {}


def user_agent(settings: BackMarketSettings) -> str:
    return f"BM-{settings.company_name}-{INTEGRATION};{settings.contact_email}"


def _order_id(raw: Any) -> Any:
    return raw.get("order_id") if isinstance(raw, dict) else None


def _segment(order_id: str) -> str:
    if not order_id or not order_id.isdigit():
        raise Rejected(
            f"{order_id!r:.40} is not a Back Market order id (they are numbers).", status=404, code="not_found"
        )
    return safe_segment(order_id, "order id")
