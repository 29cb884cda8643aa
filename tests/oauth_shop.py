"""A small OAuth 2.0 channel for tests of the toolkit's auth: a sandbox whose API wants bearer
tokens from its own token endpoint, and a client of it built only on ``plugin_spec``.
``oauth_channel`` is a channel plugin over both, for the host's tests."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from plugin_spec.auth import OAuth2ClientCredentials, OAuth2RefreshToken
from plugin_spec.credentials import CredentialStore
from plugin_spec.http import ApiProfile, HttpOptions, JsonApi
from plugin_spec.sandbox import Reply
from plugin_spec.sandbox.api import ApiSandbox, Request
from plugin_spec.sandbox.auth import OAuthTokens

CLIENT_ID = "shop-client-0001"
CLIENT_SECRET = "shop-client-secret-0001"
REFRESH_TOKEN = "shop-refresh-token-0001"

PROFILE = ApiProfile(
    name="OAuth Shop",
    check_url="Check the API URL.",
    key_name="access token",
    auth_hint="Check the client id, client secret and refresh token in Cart General.",
)
FAST = HttpOptions(connect_timeout=1, read_timeout=2, deadline=5, retries=1, backoff_factor=0.01, backoff_jitter=0.01)


#: the orders were placed over the last days (an import reads the recent ones)
_START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)


def _order(n: int) -> dict[str, Any]:
    stamp = (_START + timedelta(minutes=n)).isoformat()
    quantity, unit = 1 + n % 2, Decimal("100.00")
    line_total = unit * quantity
    shipping = Decimal("4.90") if n % 3 == 0 else Decimal("0.00")
    discount = Decimal("5.00") if n % 4 == 0 else Decimal("0.00")
    tax = ((line_total - discount + shipping) * Decimal("0.20")).quantize(Decimal("0.01"))
    return {
        "id": n, "updated_at": stamp, "created_at": stamp, "currency": "EUR", "status": "unfulfilled",
        "lines": [{"id": f"{n}-1", "sku": f"SKU-{n}", "title": "Refurbished phone", "quantity": quantity,
                   "price": str(unit), "total": str(line_total)}],
        "subtotal": str(line_total), "shipping": str(shipping), "discount": str(discount), "tax": str(tax),
        "total": str(line_total + shipping - discount + tax),
    }  # fmt: skip


class OAuthShop(ApiSandbox):
    prefix = "/v1"
    routes = [("GET", "/me", "me"), ("GET", "/orders", "orders"), ("POST", "/orders/{id}/shipments", "ship")]

    def __init__(self, *, orders: int = 12, **tokens: Any):
        self._token_options = tokens
        super().__init__()
        self.orders_held = [_order(n) for n in range(orders)]
        self.shipments: dict[str, list[str]] = {}
        self._ship_lock = threading.Lock()

    def make_auth(self) -> OAuthTokens:
        return OAuthTokens(
            clients={CLIENT_ID: CLIENT_SECRET}, refresh_tokens={REFRESH_TOKEN: CLIENT_ID}, **self._token_options
        )

    @property
    def tokens(self) -> OAuthTokens:
        assert isinstance(self.auth, OAuthTokens)
        return self.auth

    def me(self, request: Request) -> Reply:
        return Reply(200, {"name": "The OAuth Shop"})

    def orders(self, request: Request) -> Reply:
        since = request.query.get("updated_since")
        # "open": still to ship, or cancelled (so a client can tell its staff)
        wanted = ("unfulfilled", "cancelled") if request.query.get("status") == "open" else None
        held = [
            o for o in self.orders_held
            if (since is None or o["updated_at"] >= since) and (wanted is None or o["status"] in wanted)
        ]  # fmt: skip
        style = "offset" if request.query.get("paging") == "offset" else "keyset"
        return self.page(request, held, key=lambda o: (o["updated_at"], o["id"]), default_size=5, style=style)

    def bump(self, item: dict[str, Any]) -> None:
        """A change on the channel's side during a download (``touch_during_download``)."""
        item["updated_at"] = _now()

    def ship(self, request: Request) -> Reply:
        body = request.json() or {}
        order = self.order(request.params["id"])
        if order is None:
            return self.error(404, "not_found", f"No order {request.params['id']}.")
        with self._ship_lock:
            held = self.shipments.setdefault(request.params["id"], [])
            if body.get("tracking") in held:
                return self.error(409, "already_recorded", "This tracking number is recorded already.")
            held.append(str(body.get("tracking")))
            order.update(status="fulfilled", updated_at=_now())
        return Reply(201, {"ok": True})

    def order(self, order_id: str) -> dict[str, Any] | None:
        return next((o for o in self.orders_held if str(o["id"]) == order_id), None)

    def add_order(self) -> str:
        with self._ship_lock:
            order = _order(len(self.orders_held)) | {"updated_at": _now()}
            self.orders_held.append(order)
            return str(order["id"])

    def cancel(self, order_id: str) -> None:
        order = self.order(order_id)
        assert order is not None
        order.update(status="cancelled", updated_at=_now())


_last = [datetime.now(UTC)]


def _now() -> str:
    """A modification stamp later than every earlier one (clocks may tie)."""
    _last[0] = max(datetime.now(UTC), _last[0] + timedelta(microseconds=1))
    return _last[0].isoformat()


def refresh_auth(
    shop: OAuthShop, store: CredentialStore | None, *, refresh_token: str = REFRESH_TOKEN, **kwargs: Any
) -> OAuth2RefreshToken:
    return OAuth2RefreshToken(
        shop.token_url, CLIENT_ID, kwargs.pop("client_secret", CLIENT_SECRET), refresh_token,
        store=store, channel="OAuth Shop", **kwargs,
    )  # fmt: skip


def client_credentials_auth(shop: OAuthShop, store: CredentialStore | None, **kwargs: Any) -> OAuth2ClientCredentials:
    return OAuth2ClientCredentials(
        shop.token_url, CLIENT_ID, kwargs.pop("client_secret", CLIENT_SECRET), store=store, channel="OAuth Shop",
        **kwargs,
    )  # fmt: skip


def api(shop: OAuthShop, auth: Any, options: HttpOptions = FAST) -> JsonApi:
    return JsonApi(shop.base_url, PROFILE, options, auth=auth)


def all_ids(client: JsonApi) -> list[int]:
    return [item["id"] for page in client.pages("/orders", {"page-size": "5"}) for item in page]
