"""A real HTTP server that behaves like the Amazon Selling Partner API calls the plugin makes.

It serves what the vendored models (``reference/``) describe, for exactly these operations:

* ``GET /orders/2026-01-01/orders`` (searchOrders): ``createdAfter`` / ``lastUpdatedAfter``
  (exactly one, inclusive), their ``...Before`` bounds, ``marketplaceIds``,
  ``fulfillmentStatuses``, ``fulfilledBy``, ``maxResultsPerPage`` (1-100, default 100),
  ``includedData`` and an opaque ``paginationToken`` that holds the other filters: a next page
  asked with different filters is refused. Orders come oldest change first.
* ``GET /orders/2026-01-01/orders/{orderId}`` (getOrder), the read-back after a lost answer;
* ``POST /orders/v0/orders/{orderId}/shipmentConfirmation`` (confirmShipment): 204, or the
  ``{"errors": [...]}`` envelope;
* ``POST /auth/o2/token``: Login with Amazon's refresh-token grant (:class:`_LwaTokens`),
  whose access token every other call carries in ``x-amz-access-token``.

Every answer carries ``x-amzn-RequestId``; the answers the model lists with
``x-amzn-RateLimit-Limit`` carry the operation's documented rate. Switches: the fault triggers
of :class:`plugin_spec.sandbox.api.ApiSandbox`, ``rate_limits`` (each operation's documented
rate and burst, off by default) with ``rate_time_scale`` (10 runs the buckets ten times as
fast), ``lose_answer`` (a confirmShipment applied but answered 502). Inspection and control
need no token: ``/_sandbox/``.

    with Sandbox(orders=20) as sandbox:
        token = requests.post(sandbox.token_url, data=sandbox.token_form()).json()["access_token"]
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import math
import re
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qs

from plugin_spec.sandbox import Reply
from plugin_spec.sandbox.api import CONTROL_PREFIX, ApiSandbox, Request, error
from plugin_spec.sandbox.auth import SandboxAuth

from .sandbox_data import (
    DEFAULT_MARKETPLACE,
    MARKETPLACES,
    OrderFactory,
    cancel,
    cancel_item,
    parse_time,
    ship,
    wire_time,
)
from .settings import TOKEN_PATH

SEARCH_PATH = "/orders/2026-01-01/orders"
ORDER_PATH = "/orders/2026-01-01/orders/{orderId}"
CONFIRM_PATH = "/orders/v0/orders/{orderId}/shipmentConfirmation"
ACCESS_TOKEN_HEADER = "x-amz-access-token"

DEFAULT_CLIENT_ID = "amzn1.application-oa2-client.sandbox0001"
DEFAULT_CLIENT_SECRET = "amzn1.oa2-cs.v1.sandbox-secret-0001"
DEFAULT_REFRESH_TOKEN = "Atzr|sandbox-refresh-token-0001"

#: ``searchOrders`` parameter enums (paths./orders/2026-01-01/orders.get.parameters)
INCLUDED_DATA = (
    "BUYER", "RECIPIENT", "PROCEEDS", "EXPENSE", "PROMOTION", "CANCELLATION", "FULFILLMENT", "PACKAGES",
    "TAX", "PAYMENT", "FULFILLMENT_ORDERS",
)  # fmt: skip
FULFILLMENT_STATUSES = (
    "PENDING_AVAILABILITY", "PENDING", "UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED", "CANCELLED", "UNFULFILLABLE",
)  # fmt: skip
FULFILLED_BY = ("MERCHANT", "AMAZON")
#: the array parameters of searchOrders; Swagger 2.0's default ``collectionFormat`` is csv
ARRAY_PARAMS = {"marketplaceIds": None, "fulfillmentStatuses": FULFILLMENT_STATUSES,
                "fulfilledBy": FULFILLED_BY, "includedData": INCLUDED_DATA}  # fmt: skip
#: what a paginationToken is bound to: every parameter but these may not change between pages
#: (definitions.Pagination.description)
PAGE_FREE_PARAMS = ("maxResultsPerPage", "includedData", "paginationToken")
MAX_MARKETPLACE_IDS = 50
PAGE_SIZE_MAX = 100
#: a ``...Before`` bound must be at least this far before the request
BEFORE_MARGIN = timedelta(minutes=2)
PAGINATION_TOKEN_LIFETIME = timedelta(hours=24)
_ORDER_ID = re.compile(r"^\d{3}-\d{7}-\d{7}$")

#: which parts of an Order (and of its items) each ``includedData`` value brings
ORDER_SECTIONS = {"BUYER": "buyer", "RECIPIENT": "recipient", "PROCEEDS": "proceeds", "FULFILLMENT": "fulfillment",
                  "PACKAGES": "packages", "TAX": "tax", "PAYMENT": "payment",
                  "FULFILLMENT_ORDERS": "fulfillmentOrders"}  # fmt: skip
ITEM_SECTIONS = {"PROCEEDS": "proceeds", "EXPENSE": "expense", "PROMOTION": "promotion",
                 "CANCELLATION": "cancellation", "FULFILLMENT": "fulfillment", "TAX": "tax"}  # fmt: skip


@dataclass(frozen=True)
class UsagePlan:
    """An operation's default rate (requests per second) and burst, from its description."""

    rate: float
    burst: int

    @property
    def header(self) -> str:
        return f"{self.rate:g}"


#: the "Usage Plan" table of each operation's description; the token endpoint's limit is not
#: published, so the sandbox assumes one that a client refreshing once an hour never meets
USAGE_PLANS = {
    "search_orders": UsagePlan(0.0056, 20),
    "get_order": UsagePlan(0.5, 30),
    "confirm_shipment": UsagePlan(2.0, 10),
    "token": UsagePlan(1.0, 10),
}
#: the answers whose ``headers`` in the model list ``x-amzn-RateLimit-Limit``
RATE_HEADER_STATUSES = {
    "search_orders": (200, 400, 404),
    "get_order": (200, 400, 404),
    "confirm_shipment": (204, 400, 404),
}


def amazon_error(
    status: int, code: str, message: str, details: str = "", headers: dict[str, str] | None = None
) -> Reply:
    """The SP-API error envelope (``ErrorList`` / ``ConfirmShipmentErrorResponse``)."""
    return Reply(status, {"errors": [{"code": code, "message": message, "details": details}]}, headers or {})


def invalid(message: str, details: str = "") -> Reply:
    return amazon_error(400, "InvalidInput", message, details)


def quota_exceeded() -> Reply:
    # the SP-API sends no Retry-After: a client waits by the operation's usage plan
    return amazon_error(429, "QuotaExceeded", "You exceeded your quota for the requested resource.")


def _parse_time(value: str, name: str) -> datetime:
    """An ISO 8601 date-time with an offset (the model's ``format: date-time``)."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise _Invalid(f"Invalid {name}: {value[:40]!r} is not an ISO 8601 date-time.") from None
    if parsed.tzinfo is None:
        raise _Invalid(f"Invalid {name}: give the offset or Z, e.g. 2025-01-01T00:00:00Z.")
    return parsed.astimezone(UTC)


class _Invalid(ValueError):
    """A request the API refuses with 400 InvalidInput; the text is the error's message."""


# --- Login with Amazon ---------------------------------------------------------------------------


class _LwaTokens(SandboxAuth):
    """Login with Amazon, as far as the sandbox needs it: ``POST /auth/o2/token`` with the
    refresh-token grant, and the ``x-amz-access-token`` check of every API call.

    It is the sandbox's ``auth`` (``plugin_spec.sandbox.auth.SandboxAuth``). Unlike the base's
    ``OAuthTokens`` it refuses a token with the SP-API's 403, tells an expired token from a
    revoked one, and its endpoint is a route of the API (its own usage plan, the faults). Access
    tokens live ``lifetime`` seconds; ``revoke_all`` and ``expire_all`` end those issued so far;
    with ``rotate`` each grant also returns a new refresh token and retires the one used.
    """

    def __init__(self, client_id: str, client_secret: str, refresh_token: str, lifetime: float = 3600.0,
                 rotate: bool = False) -> None:  # fmt: skip
        self.client_id, self._client_secret = client_id, client_secret
        self.refresh_token = refresh_token
        self.lifetime, self.rotate = lifetime, rotate
        self.mints = 0
        self._access: dict[str, float] = {}  # token -> expiry (time.monotonic)
        self._expired: set[str] = set()

    def grant(self, request: Request) -> Reply:
        """The token endpoint: a form (or JSON) body with ``grant_type=refresh_token``."""
        form = self._form(request)
        grant_type = form.get("grant_type")
        if not grant_type or not form.get("client_id"):
            return self._oauth_error(400, "invalid_request", "The request is missing a required parameter : "
                                     + ("grant_type" if not grant_type else "client_id"))  # fmt: skip
        if grant_type != "refresh_token":
            return self._oauth_error(400, "unsupported_grant_type", "The authorization grant type is not supported.")
        if not form.get("refresh_token"):
            return self._oauth_error(
                400, "invalid_request", "The request is missing a required parameter : refresh_token"
            )
        if not (
            hmac.compare_digest(form["client_id"], self.client_id)
            and hmac.compare_digest(form.get("client_secret", ""), self._client_secret)
        ):
            return self._oauth_error(401, "invalid_client", "Client authentication failed")
        if not hmac.compare_digest(form["refresh_token"], self.refresh_token):
            return self._oauth_error(400, "invalid_grant", "The request has an invalid grant parameter : refresh_token")
        token = "Atza|" + secrets.token_urlsafe(48)
        self._access[token] = time.monotonic() + self.lifetime
        self.mints += 1
        body: dict[str, Any] = {"access_token": token, "token_type": "bearer",
                                "expires_in": max(1, math.ceil(self.lifetime))}  # fmt: skip
        if self.rotate:
            self.refresh_token = "Atzr|" + secrets.token_urlsafe(48)
        # LWA returns the refresh token with the access token when the client secret was sent
        body["refresh_token"] = self.refresh_token
        return Reply(200, body, {"Cache-Control": "no-store", "Pragma": "no-cache"})

    def check(self, headers: Any, error: Any = None) -> Reply | None:
        """None when ``x-amz-access-token`` holds a live token; else the SP-API's 403."""
        token = headers.get(ACCESS_TOKEN_HEADER)
        if not token:
            return self._denied("The request has no access token.")
        expiry = self._access.get(token)
        if expiry is not None and expiry > time.monotonic():
            return None
        if expiry is not None or token in self._expired:
            return self._denied("The access token you provided has expired.")
        return self._denied("The access token you provided is revoked, malformed or invalid.")

    def revoke_all(self) -> None:
        self._access.clear()
        self._expired.clear()

    def expire_all(self) -> None:
        self._expired.update(self._access)
        self._access.clear()

    def describe(self) -> dict[str, Any]:
        now = time.monotonic()
        return {"mints": self.mints, "live": sum(1 for e in self._access.values() if e > now),
                "lifetime": self.lifetime, "rotate": self.rotate}  # fmt: skip

    @staticmethod
    def _form(request: Request) -> dict[str, str]:
        if "json" in (request.headers.get("Content-Type") or ""):
            data = request.json()
            return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            return {}
        return {k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()}

    @staticmethod
    def _oauth_error(status: int, code: str, description: str) -> Reply:
        return Reply(status, {"error_description": description, "error": code})

    @staticmethod
    def _denied(details: str) -> Reply:
        # the SP-API answers a missing, expired or revoked token with 403, not 401
        return amazon_error(403, "Unauthorized", "Access to requested resource is denied.", details)


# --- rate limits -----------------------------------------------------------------------------------


@dataclass
class _AmazonSwitches:
    lose_answer: int = 0
    #: after the next searchOrders page, change its first order and the first one after it
    change_during_download: bool = False

    def describe(self) -> dict[str, Any]:
        return {"lose_answer": self.lose_answer, "change_during_download": self.change_during_download}


# --- the sandbox -------------------------------------------------------------------------------------


class Sandbox(ApiSandbox):
    """The Selling Partner API's Orders calls and Login with Amazon on ``host:port``."""

    thread_name = "amazon-sp-sandbox"
    server_version = "AmazonSpSandbox/1.0"
    prefix: ClassVar[str] = ""
    key_header: ClassVar[str] = ACCESS_TOKEN_HEADER
    routes: ClassVar[list[tuple[str, str, str]]] = [
        ("GET", SEARCH_PATH, "search_orders"),
        ("GET", ORDER_PATH, "get_order"),
        ("POST", CONFIRM_PATH, "confirm_shipment"),
        ("POST", TOKEN_PATH, "token"),
    ]
    #: Login with Amazon's token endpoint is a route of its own (its usage plan, its faults)
    public_routes: ClassVar[frozenset[str]] = frozenset({"token"})
    #: each operation's usage plan, enforced by the base with ``rate_limits`` on
    operation_limits: ClassVar[dict[str, tuple[float, int]]] = {
        name: (plan.rate, plan.burst) for name, plan in USAGE_PLANS.items()
    }

    def __init__(
        self, *, client_id: str = DEFAULT_CLIENT_ID, client_secret: str = DEFAULT_CLIENT_SECRET,
        refresh_token: str = DEFAULT_REFRESH_TOKEN, orders: int = 20, seed: int = 1,
        marketplaces: tuple[str, ...] = (DEFAULT_MARKETPLACE,), token_lifetime: float = 3600.0,
        rotate_refresh_token: bool = False, host: str = "127.0.0.1", port: int = 0,
    ) -> None:  # fmt: skip
        unknown = [m for m in marketplaces if m not in MARKETPLACES]
        if unknown or not marketplaces:
            raise ValueError(f"marketplaces must be among {sorted(MARKETPLACES)}")
        # the access token is checked by _LwaTokens, never compared with api_key
        super().__init__(host, port, api_key=secrets.token_hex(16), seed=seed)
        self.lwa = _LwaTokens(client_id, client_secret, refresh_token, token_lifetime, rotate_refresh_token)
        self.auth = self.lwa  # every route but the token endpoint's (public_routes) checks the token
        self.marketplaces = tuple(marketplaces)
        self._factory = OrderFactory(seed, self.marketplaces)
        self._clock = datetime.now(UTC).replace(microsecond=0)
        self._orders: dict[str, dict[str, Any]] = {}
        for order in self._factory.history(orders, self._clock):
            self._orders[order["orderId"]] = order
        self._confirmations: list[dict[str, Any]] = []
        self._amazon = _AmazonSwitches()
        self._page_key = secrets.token_bytes(32)

    # --- what tests and the kit read -------------------------------------------------------------

    @property
    def token_url(self) -> str:
        return self.root_url + TOKEN_PATH

    def token_form(self) -> dict[str, str]:
        """The form body of a good refresh-token grant."""
        return {"grant_type": "refresh_token", "refresh_token": self.lwa.refresh_token,
                "client_id": self.lwa.client_id, "client_secret": self.lwa._client_secret}  # fmt: skip

    def orders(self) -> list[dict[str, Any]]:
        """Every order whole (every includedData section), oldest change first."""
        with self._lock:
            return [copy.deepcopy(o) for o in self._sorted("lastUpdatedTime")]

    def order(self, order_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._orders[order_id])

    def add_order(self, status: str = "UNSHIPPED", fulfilled_by: str = "MERCHANT",
                  marketplace_id: str | None = None) -> str:  # fmt: skip
        """A new order whose ``lastUpdatedTime`` is later than every other order's; its id."""
        if status not in ("PENDING", "UNSHIPPED", "PARTIALLY_SHIPPED", "SHIPPED", "CANCELLED"):
            raise ValueError(f"cannot seed an order in status {status!r}")
        if fulfilled_by not in FULFILLED_BY:
            raise ValueError(f"fulfilled_by must be one of {FULFILLED_BY}")
        market = marketplace_id or self.marketplaces[0]
        if market not in self.marketplaces:
            raise ValueError(f"the seller sells on {self.marketplaces}, not {market}")
        if fulfilled_by == "AMAZON" and status in ("PARTIALLY_SHIPPED", "CANCELLED"):
            raise ValueError("the sandbox seeds FBA orders as PENDING, UNSHIPPED or SHIPPED")
        with self._lock:
            now = self._tick()
            order = self._factory.order(now - timedelta(minutes=3), now, status, fulfilled_by, market)
            self._orders[order["orderId"]] = order
            return str(order["orderId"])

    def add_past_orders(self, n: int, status: str = "UNSHIPPED") -> list[str]:
        """``n`` merchant-fulfilled orders changed over the last ``n`` seconds, oldest first (a
        bulk seed for benchmarks: ``add_order`` stamps each one a second later than the last)."""
        with self._lock:
            now = self._tick()
            ids = []
            for i in range(n):
                updated = now - timedelta(seconds=n - i)
                order = self._factory.order(updated - timedelta(minutes=3), updated, status, "MERCHANT",
                                            self.marketplaces[0])  # fmt: skip
                self._orders[order["orderId"]] = order
                ids.append(str(order["orderId"]))
            return ids

    def add_late_order(self, before: str, seconds: float) -> str:
        """An order stamped ``seconds`` before order ``before``'s stamp, shown only now: how an
        order looks that Amazon's search index took a while to pick up."""
        with self._lock:
            updated = parse_time(self._orders[before]["lastUpdatedTime"]) - timedelta(seconds=seconds)
            order = self._factory.order(updated - timedelta(minutes=3), updated, "UNSHIPPED", "MERCHANT",
                                        self.marketplaces[0])  # fmt: skip
            self._orders[order["orderId"]] = order
            return str(order["orderId"])

    def touch(self, order_id: str) -> dict[str, Any]:
        """A change on Amazon's side: the order's ``lastUpdatedTime`` becomes the newest."""
        with self._lock:
            order = self._orders[order_id]
            order["lastUpdatedTime"] = wire_time(self._tick())
            return copy.deepcopy(order)

    def set_status(self, order_id: str, status: str) -> dict[str, Any]:
        """What happens on Amazon's side: payment authorised (PENDING to UNSHIPPED) or the buyer
        cancels (PENDING or UNSHIPPED to CANCELLED)."""
        with self._lock:
            order = self._orders[order_id]
            now_status = order["fulfillment"]["fulfillmentStatus"]
            if (now_status, status) == ("PENDING", "UNSHIPPED"):
                order["fulfillment"]["fulfillmentStatus"] = "UNSHIPPED"
            elif now_status in ("PENDING", "UNSHIPPED") and status == "CANCELLED":
                cancel(order, "BUYER")
            else:
                raise ValueError(f"order {order_id} cannot go from {now_status} to {status}")
            order["lastUpdatedTime"] = wire_time(self._tick())
            return copy.deepcopy(order)

    def cancel_item(self, order_id: str, item_id: str) -> dict[str, Any]:
        """The buyer cancels one item of an order not shipped yet (its ``cancellation`` is
        executed); the order is CANCELLED once every item is. KeyError: no such order or item;
        ValueError: the item is shipped already, or the order cannot change."""
        with self._lock:
            order = self._orders[order_id]
            item = next((i for i in order["orderItems"] if i["orderItemId"] == item_id), None)
            if item is None:
                raise KeyError(item_id)
            status = order["fulfillment"]["fulfillmentStatus"]
            if status not in ("PENDING", "UNSHIPPED", "PARTIALLY_SHIPPED") or item["fulfillment"]["quantityFulfilled"]:
                raise ValueError(f"item {item_id} of order {order_id} cannot be cancelled any more ({status})")
            cancel_item(item, "BUYER")
            if all("cancellation" in i for i in order["orderItems"]):
                order["fulfillment"]["fulfillmentStatus"] = "CANCELLED"
            elif not sum(i["fulfillment"]["quantityUnfulfilled"] for i in order["orderItems"]):
                order["fulfillment"]["fulfillmentStatus"] = "SHIPPED"  # the rest had shipped
            order["lastUpdatedTime"] = wire_time(self._tick())
            return copy.deepcopy(order)

    def unfulfilled_order_ids(self) -> set[str]:
        """Orders the seller must ship: merchant-fulfilled, UNSHIPPED or PARTIALLY_SHIPPED (not
        PENDING, which waits for payment, nor those Amazon fulfils)."""
        with self._lock:
            return {
                o["orderId"] for o in self._orders.values()
                if o["fulfillment"]["fulfilledBy"] == "MERCHANT"
                and o["fulfillment"]["fulfillmentStatus"] in ("UNSHIPPED", "PARTIALLY_SHIPPED")
            }  # fmt: skip

    def recorded_tracking(self, order_id: str) -> list[str]:
        """The tracking numbers of the order's packages (empty when none or unknown)."""
        with self._lock:
            order = self._orders.get(order_id)
            return [p["trackingNumber"] for p in (order or {}).get("packages", []) if p.get("trackingNumber")]

    def shipments(self, order_id: str | None = None) -> list[dict[str, Any]]:
        """Every confirmShipment the sandbox accepted (order id, body, when), oldest first."""
        with self._lock:
            return [copy.deepcopy(s) for s in self._confirmations if order_id in (None, s["orderId"])]

    def unknown_order_id(self) -> str:
        return "999-0000000-0000000"

    def lose_next_answer(self) -> bool:
        self.set_faults(lose_answer=1)
        return True

    # --- switches ------------------------------------------------------------------------------

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Besides the base's switches: ``rate_limits`` (bool: each operation's usage plan),
        ``rate_time_scale`` (> 0: how many times faster the buckets refill), ``lose_answer``
        (the next N confirmShipments are applied but answered 502), ``change_during_download``
        (after the next searchOrders page with more to come, its first order and the next one
        not served yet change: both move to the end)."""
        with self._lock:
            own = {k: faults.pop(k) for k in ("lose_answer", "change_during_download") if k in faults}
            if "change_during_download" in own:
                self._amazon.change_during_download = bool(own["change_during_download"])
            if "rate_limits" in faults:  # the usage plans: the base's operation limits
                faults["operation_limits"] = faults.pop("rate_limits")
            if "lose_answer" in own:
                if not isinstance(own["lose_answer"], int) or own["lose_answer"] < 0:
                    raise ValueError("lose_answer must be a count (int >= 0)")
                self._amazon.lose_answer = own["lose_answer"]
            described = super().set_faults(**faults)
            return {**described, "rate_limits": described["operation_limits"], **self._amazon.describe()}

    def clear_faults(self) -> dict[str, Any]:
        with self._lock:
            self._amazon = _AmazonSwitches()
            described = super().clear_faults()
            return {**described, "rate_limits": described["operation_limits"], **self._amazon.describe()}

    # --- dispatch ------------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: Any, body: bytes, host: str) -> Reply:
        reply = super().handle(method, target, headers, body, host)
        reply.headers.setdefault("x-amzn-RequestId", str(uuid.uuid4()))
        return reply

    def error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Reply:
        """The base's errors in the SP-API's envelope and codes."""
        codes = {"server_error": "ServiceUnavailable", "no_such_endpoint": "NotFound",
                 "method_not_allowed": "MethodNotAllowed", "rate_limited": "QuotaExceeded"}  # fmt: skip
        if status == 503:
            message = "Service temporarily unavailable. Try again later."
        if status == 429:
            return quota_exceeded()  # the SP-API sends no Retry-After
        if status == 404 and code == "no_such_endpoint":
            return amazon_error(404, "NotFound", "The requested resource was not found.", f"See {CONTROL_PREFIX}/.")
        return amazon_error(status, codes.get(code, code), message, "", headers)

    def quota_exceeded(self, operation: str) -> Reply:
        return quota_exceeded()

    def after(self, operation: str, reply: Reply, entry: dict[str, Any]) -> Reply:
        if operation == "confirm_shipment" and reply.status == 204 and self._amazon.lose_answer > 0:
            # applied, but a proxy on the way back loses the answer
            self._amazon.lose_answer -= 1
            entry["fault"] = "lose_answer"
            return Reply(502, raw=b"<html><body>502 Bad Gateway</body></html>", headers={"Content-Type": "text/html"})
        if reply.status in RATE_HEADER_STATUSES.get(operation, ()):
            reply.headers["x-amzn-RateLimit-Limit"] = USAGE_PLANS[operation].header
        return reply

    # --- the operations ------------------------------------------------------------------------

    def token(self, request: Request) -> Reply:
        return self.lwa.grant(request)

    def search_orders(self, request: Request) -> Reply:
        try:
            query = self._search_query(request.query)
        except _Invalid as exc:
            return invalid(str(exc))
        field_name, after, before, echo = query["field"], query["after"], query["before"], query["echo"]
        markets, statuses, by = query["marketplaceIds"], query["fulfillmentStatuses"], query["fulfilledBy"]
        matching = [
            o for o in self._sorted(field_name)
            if (not markets or o["salesChannel"]["marketplaceId"] in markets)
            and (not statuses or o["fulfillment"]["fulfillmentStatus"] in statuses)
            and (not by or o["fulfillment"]["fulfilledBy"] in by)
            and after <= parse_time(o[field_name]) <= before
        ]  # fmt: skip
        if query["last"] is not None:
            matching = [o for o in matching if (o[field_name], o["orderId"]) > query["last"]]
        page, more = matching[: query["size"]], len(matching) > query["size"]
        body: dict[str, Any] = {"orders": [self._render(o, query["includedData"]) for o in page]}
        if self._amazon.change_during_download and page and more:
            # one order already served and one not yet change on Amazon's side: both move to the end
            self._amazon.change_during_download = False
            for changed in (page[0], matching[query["size"]]):
                changed["lastUpdatedTime"] = wire_time(self._tick())
        if more:
            last = (page[-1][field_name], page[-1]["orderId"])
            body["pagination"] = {"nextToken": self._page_token(query["fingerprint"], last, before)}
        body[echo] = wire_time(before)
        return Reply(200, body)

    def get_order(self, request: Request) -> Reply:
        order_id = request.params["orderId"]
        try:
            included = self._array(request.query, "includedData")
        except _Invalid as exc:
            return invalid(str(exc))
        if not _ORDER_ID.match(order_id):
            return invalid("Invalid Input", f"orderId {order_id[:40]!r} is not in 3-7-7 format.")
        order = self._orders.get(order_id)
        if order is None:
            return amazon_error(404, "NotFound", f"Order {order_id} was not found.")
        return Reply(200, {"order": self._render(order, included)})

    def confirm_shipment(self, request: Request) -> Reply:
        order_id = request.params["orderId"]
        if not _ORDER_ID.match(order_id):
            return invalid("Invalid Input", f"orderId {order_id[:40]!r} is not in 3-7-7 format.")
        order = self._orders.get(order_id)
        if order is None:
            return amazon_error(404, "NotFound", f"Order {order_id} was not found.")
        try:
            package, lines = self._package(order, request.json())
        except _Invalid as exc:
            return invalid(str(exc))
        status = order["fulfillment"]["fulfillmentStatus"]
        if order["fulfillment"]["fulfilledBy"] != "MERCHANT":
            return invalid(f"Order {order_id} is fulfilled by Amazon; only merchant-fulfilled orders are confirmed.")
        if status in ("PENDING", "PENDING_AVAILABILITY"):
            return invalid(f"Order {order_id} is {status}: it cannot ship before payment is authorized.")
        if status in ("SHIPPED", "CANCELLED"):
            return invalid("Failed to create package due to not finding a matching package or order already fulfilled.",
                           f"Order {order_id} is {status}.")  # fmt: skip
        if any(p["packageReferenceId"] == package["packageReferenceId"] for p in order["packages"]):
            return invalid(f"PackageReferenceId {package['packageReferenceId']} is already used in order {order_id}.")
        items = {i["orderItemId"]: i for i in order["orderItems"]}
        for item_id, quantity in lines:
            left = items[item_id]["fulfillment"]["quantityUnfulfilled"]
            if quantity > left:
                return invalid(f"Quantity {quantity} of OrderItemId {item_id} exceeds the {left} left to ship.")
        when = self._tick()
        carrier = str(package["carrierName"] if package["carrierCode"] == "Other" else package["carrierCode"])
        ship(order, package["packageReferenceId"], carrier, package.get("shippingMethod"), package["trackingNumber"],
             when, lines)  # fmt: skip
        # the package's ship time is the seller's, as sent
        order["packages"][-1]["shipTime"] = wire_time(_parse_time(package["shipDate"], "shipDate"))
        order["lastUpdatedTime"] = wire_time(when)
        self._confirmations.append({"orderId": order_id, "body": request.json(), "at": wire_time(when)})
        return Reply(204)

    # --- helpers -------------------------------------------------------------------------------

    def _search_query(self, q: dict[str, str]) -> dict[str, Any]:
        created, updated = "createdAfter" in q, "lastUpdatedAfter" in q
        if created == updated:
            raise _Invalid("Exactly one of createdAfter and lastUpdatedAfter must be provided.")
        field_name, prefix = ("createdTime", "created") if created else ("lastUpdatedTime", "lastUpdated")
        other = "lastUpdated" if created else "created"
        for name in (f"{other}After", f"{other}Before"):
            if name in q:
                raise _Invalid(f"{name} may not be provided with {prefix}After.")
        after = _parse_time(q[f"{prefix}After"], f"{prefix}After")
        now = datetime.now(UTC)
        if f"{prefix}Before" in q:
            before = _parse_time(q[f"{prefix}Before"], f"{prefix}Before")
            if before < after or before > now - BEFORE_MARGIN:
                raise _Invalid(f"{prefix}Before must be at or after {prefix}After and at least two minutes "
                               "before the time of the request.")  # fmt: skip
        else:
            # orders changed in the same second as the request are already shown
            before = max(now.replace(microsecond=0), self._clock)
        arrays = {name: self._array(q, name) for name in ARRAY_PARAMS}
        if len(arrays["marketplaceIds"]) > MAX_MARKETPLACE_IDS:
            raise _Invalid(f"marketplaceIds takes at most {MAX_MARKETPLACE_IDS} values.")
        for market in arrays["marketplaceIds"]:
            if market not in self.marketplaces:
                raise _Invalid(f"Invalid marketplaceIds: the seller does not sell on {market[:20]}.")
        try:
            size = int(q.get("maxResultsPerPage", str(PAGE_SIZE_MAX)))
        except ValueError:
            size = 0
        if not 1 <= size <= PAGE_SIZE_MAX:
            raise _Invalid(f"maxResultsPerPage must be between 1 and {PAGE_SIZE_MAX}.")
        fingerprint = hashlib.sha256(
            json.dumps(sorted((k, v) for k, v in q.items() if k not in PAGE_FREE_PARAMS)).encode()
        ).hexdigest()
        last = None
        if "paginationToken" in q:
            last, before = self._read_page_token(q["paginationToken"], fingerprint)
        return {"field": field_name, "after": after, "before": before, "echo": f"{prefix}Before", "size": size,
                "last": last, "fingerprint": fingerprint, **arrays}  # fmt: skip

    @staticmethod
    def _array(q: dict[str, str], name: str) -> list[str]:
        if name not in q:
            return []
        values = [v.strip() for v in q[name].split(",")]
        if not all(values):
            raise _Invalid(f"Invalid {name}: an empty value.")
        allowed = ARRAY_PARAMS[name]
        for value in values:
            if allowed is not None and value not in allowed:
                raise _Invalid(f"Invalid {name} value {value[:40]!r}; allowed: {', '.join(allowed)}.")
        return values

    def _page_token(self, fingerprint: str, last: tuple[str, str], before: datetime) -> str:
        expires = (datetime.now(UTC) + PAGINATION_TOKEN_LIFETIME).timestamp()
        payload = json.dumps({"f": fingerprint, "k": list(last), "b": wire_time(before), "e": expires}).encode()
        mac = hmac.new(self._page_key, payload, hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(mac + payload).decode().rstrip("=")

    def _read_page_token(self, token: str, fingerprint: str) -> tuple[tuple[str, str], datetime]:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            mac, payload = raw[:16], raw[16:]
            if not hmac.compare_digest(mac, hmac.new(self._page_key, payload, hashlib.sha256).digest()[:16]):
                raise ValueError
            data = json.loads(payload)
        except ValueError:
            raise _Invalid("Invalid paginationToken: pass the nextToken of the previous page as given.") from None
        if data["e"] < datetime.now(UTC).timestamp():
            raise _Invalid("The paginationToken has expired (tokens live 24 hours).")
        if data["f"] != fingerprint:
            raise _Invalid("With paginationToken, every parameter but maxResultsPerPage and includedData must "
                           "have the values of the request that returned the token.")  # fmt: skip
        return (data["k"][0], data["k"][1]), parse_time(data["b"])

    def _package(self, order: dict[str, Any], body: Any) -> tuple[dict[str, Any], list[tuple[str, int]]]:
        """The request body checked as ``ConfirmShipmentRequest``; the package and its lines."""
        if not isinstance(body, dict):
            raise _Invalid("The request body must be a JSON object (ConfirmShipmentRequest).")
        _only(body, {"marketplaceId", "packageDetail", "codCollectionMethod"}, "")
        market = body.get("marketplaceId")
        if not isinstance(market, str) or not market:
            raise _Invalid("Missing request parameter: marketplaceId.")
        if market != order["salesChannel"]["marketplaceId"]:
            raise _Invalid(
                "Marketplace ID is not defined", f"The order was placed on {order['salesChannel']['marketplaceId']}."
            )
        if body.get("codCollectionMethod", "DirectPayment") != "DirectPayment":
            raise _Invalid("codCollectionMethod must be DirectPayment.")
        package = body.get("packageDetail")
        if not isinstance(package, dict):
            raise _Invalid("Missing request parameter: packageDetail.")
        _only(package, {"packageReferenceId", "carrierCode", "carrierName", "shippingMethod", "trackingNumber",
                        "shipDate", "shipFromSupplySourceId", "orderItems"}, "packageDetail.")  # fmt: skip
        for name in ("packageReferenceId", "carrierCode", "trackingNumber", "shipDate", "orderItems"):
            if name not in package:
                raise _Invalid(f"Missing request parameter: packageDetail.{name}.")
        for name in ("packageReferenceId", "carrierCode", "carrierName", "shippingMethod", "trackingNumber",
                     "shipDate", "shipFromSupplySourceId"):  # fmt: skip
            if name in package and not isinstance(package[name], str):
                raise _Invalid("The input you have submitted is not valid. Please check the fields with invalid "
                               f"type [packageDetail.{name}].")  # fmt: skip
        if not re.fullmatch(r"[1-9]\d{0,17}", package["packageReferenceId"]):
            raise _Invalid("PackageReferenceId: is invalid, must be a positive numeric value.")
        if not package["carrierCode"].strip():
            raise _Invalid("carrierCode is required for all marketplaces.")
        if package["carrierCode"] == "Other" and not (package.get("carrierName") or "").strip():
            raise _Invalid("carrierName is required when carrierCode is Other.")
        if not package["trackingNumber"].strip():
            raise _Invalid("trackingNumber must not be empty.")
        _parse_time(package["shipDate"], "packageDetail.shipDate")
        lines = package["orderItems"]
        if not isinstance(lines, list) or not lines:
            raise _Invalid("packageDetail.orderItems must list at least one order item.")
        items = {i["orderItemId"] for i in order["orderItems"]}
        seen: list[tuple[str, int]] = []
        for line in lines:
            if not isinstance(line, dict):
                raise _Invalid("Each of packageDetail.orderItems must be an object (ConfirmShipmentOrderItem).")
            _only(line, {"orderItemId", "quantity", "transparencyCodes"}, "packageDetail.orderItems[].")
            item_id, quantity = line.get("orderItemId"), line.get("quantity")
            if not isinstance(item_id, str) or item_id not in items:
                raise _Invalid("OrderItemId  is invalid, please obtain the value through the getOrderItems API or "
                               "Manage Orders page")  # fmt: skip
            if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
                raise _Invalid(f"Quantity of OrderItemId {item_id} must be a positive integer.")
            codes = line.get("transparencyCodes", [])
            if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes):
                raise _Invalid("transparencyCodes must be a list of strings.")
            if any(item_id == i for i, _ in seen):
                raise _Invalid(f"OrderItemId {item_id} is listed twice in one package.")
            seen.append((item_id, quantity))
        return package, seen

    def _render(self, order: dict[str, Any], included: list[str]) -> dict[str, Any]:
        """The order as a request with these ``includedData`` sees it."""
        wanted = set(included)
        shown = {k: copy.deepcopy(v) for k, v in order.items() if k not in ORDER_SECTIONS.values()}
        for name, key in ORDER_SECTIONS.items():
            if name in wanted and key in order:
                shown[key] = copy.deepcopy(order[key])
        # packages are shown for merchant-fulfilled orders only (definitions.Order.properties.packages)
        pending = order["fulfillment"]["fulfillmentStatus"] in ("PENDING", "PENDING_AVAILABILITY")
        items = []
        for item in order["orderItems"]:
            one = {k: copy.deepcopy(v) for k, v in item.items() if k not in ITEM_SECTIONS.values()}
            for name, key in ITEM_SECTIONS.items():
                if name in wanted and key in item:
                    one[key] = copy.deepcopy(item[key])
            if pending:
                # before payment is authorized there are no prices, taxes or promotions yet
                # (ordersV0.json, getOrderItems' description); the 2026 model says nothing else
                one["product"].pop("price", None)
                for key in ("proceeds", "promotion", "tax"):
                    one.pop(key, None)
            items.append(one)
        shown["orderItems"] = items
        if pending:
            shown.pop("proceeds", None)
        return shown

    def _sorted(self, field_name: str) -> list[dict[str, Any]]:
        return sorted(self._orders.values(), key=lambda o: (o[field_name], o["orderId"]))

    def _tick(self) -> datetime:
        # whole seconds, strictly increasing: a changed order sorts after every other order
        self._clock = max(datetime.now(UTC).replace(microsecond=0), self._clock + timedelta(seconds=1))
        return self._clock

    # --- control endpoints -----------------------------------------------------------------------

    def _control(self, method: str, path: str, body: bytes) -> Reply:
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            data = None
        if method == "POST" and not isinstance(data, dict):
            return error(422, "validation_error", "The body must be a JSON object.")
        data = data or {}
        if (method, path) == ("GET", ""):
            reply = super()._control(method, path, body)
            reply.body["sandbox"] += [
                f"GET|POST {CONTROL_PREFIX}/orders",
                f"POST {CONTROL_PREFIX}/orders/{{orderId}}/touch",
                f"POST {CONTROL_PREFIX}/orders/{{orderId}}/status",
                f"GET {CONTROL_PREFIX}/shipments",
                f"GET|POST {CONTROL_PREFIX}/tokens",
                f"POST {CONTROL_PREFIX}/tokens/revoke",
                f"POST {CONTROL_PREFIX}/tokens/expire",
            ]
            return reply
        try:
            return self._control_action(method, path, data) or super()._control(method, path, body)
        except (ValueError, TypeError) as exc:
            return error(422, "validation_error", str(exc))
        except KeyError:
            return error(404, "not_found", "No such order.")

    def _control_action(self, method: str, path: str, data: dict[str, Any]) -> Reply | None:
        if (method, path) == ("GET", "/orders"):
            orders = self.orders()
            return Reply(200, {"count": len(orders), "orders": orders})
        if (method, path) == ("POST", "/orders"):
            n = data.get("n", 1)
            if not isinstance(n, int) or not 1 <= n <= 10_000:
                raise ValueError("n must be 1..10000")
            ids = [self.add_order(data.get("status", "UNSHIPPED"), data.get("fulfilledBy", "MERCHANT"),
                                  data.get("marketplaceId")) for _ in range(n)]  # fmt: skip
            return Reply(201, {"orderIds": ids})
        match = re.fullmatch(r"/orders/([^/]+)/(touch|status)", path)
        if match and method == "POST":
            order_id, action = match.groups()
            if action == "touch":
                return Reply(200, {"order": self.touch(order_id)})
            return Reply(200, {"order": self.set_status(order_id, str(data.get("status")))})
        if (method, path) == ("GET", "/shipments"):
            return Reply(200, {"shipments": self.shipments()})
        if path == "/tokens" and method in ("GET", "POST"):
            with self._lock:
                if method == "POST":
                    if "lifetime" in data:
                        lifetime = float(data["lifetime"])
                        if not lifetime > 0:
                            raise ValueError("lifetime must be > 0 seconds")
                        self.lwa.lifetime = lifetime
                    if "rotate" in data:
                        self.lwa.rotate = bool(data["rotate"])
                return Reply(200, {"tokens": self.lwa.describe()})
        if method == "POST" and path in ("/tokens/revoke", "/tokens/expire"):
            with self._lock:
                if path.endswith("revoke"):
                    self.lwa.revoke_all()
                else:
                    self.lwa.expire_all()
                return Reply(200, {"tokens": self.lwa.describe()})
        return None


def _only(data: dict[str, Any], allowed: set[str], where: str) -> None:
    """Fields the model does not define are refused, so the plugin never relies on one."""
    extra = sorted(set(data) - allowed)
    if extra:
        raise _Invalid(f"Unknown field {where}{extra[0][:40]} (not in the model).")
