"""A real HTTP server that behaves like the Back Market seller API (``/ws/``), for tests and demos.

It serves the published orders API (``reference/``, summed up in this plugin's README; stdlib
only): ``Authorization: Basic <token>``, a mandatory ``Accept-Language``, a firewall that refuses
a User-Agent not of the form ``BM-{Company}-{Integration};{email}`` (HTML 403), page-number
listings with ``next`` links (at most 50 per page) that never show states 0 and 8, accepting
(``new_state`` 2) or cancelling (4) paid lines by ``sku`` before shipping (3) by
``POST /ws/orders/{id}``, errors in the ``{"error", "requestId"}`` envelope, and about 200
requests per 10 s before an HTML 429 with ``Retry-After``. ``lose_answer`` applies a change and
answers 502. Inspection needs no token: ``/_sandbox/``.

    with Sandbox(orders=20) as sandbox:
        settings = BackMarketSettings(api_url=sandbox.base_url, token=sandbox.token,
                                      company_name="Shop", contact_email="ops@shop.example")
"""

from __future__ import annotations

import collections
import copy
import json
import logging
import re
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from plugin_spec.sandbox import Reply, SandboxServer
from plugin_spec.sandbox.faults import over_limit, truncated

from .sandbox_data import OrderFactory, wire_time

log = logging.getLogger(__name__)

DEFAULT_TOKEN = "c2FuZGJveDpiYWNrbWFya2V0LTAwMDE="
PAGE_SIZE_MAX = 50
DEFAULT_PAGE_SIZE = 10
CONTROL_PREFIX = "/_sandbox"
_LANGUAGE = re.compile(r"^[a-z]{2}-[a-z]{2}$", re.IGNORECASE)
_ORDER_PATH = re.compile(r"^/ws/orders/(\d+)/?$")
_SHIPPER_MAX = 100
#: BM-{Company}-{Integration};{contact email}
_USER_AGENT = re.compile(r"^BM-[^-;\s]+-[^;\s]+;[^@\s;]+@[^@\s;]+\.[^@\s;]+$")
#: order states the listing never shows: 0 (payment being verified) and 8 (not paid)
HIDDEN_STATES = (0, 8)


_FIREWALL_PAGE = (
    b"<!DOCTYPE html><html><head><title>Attention Required! | Cloudflare</title></head><body>blocked</body></html>"
)
_HTML = {"Content-Type": "text/html; charset=UTF-8", "server": "cloudflare"}


class Html(bytes):
    """A Cloudflare page (403 firewall, 429 rate limit): HTML, not the API's error body."""


def error(code: str, message: str) -> dict[str, Any]:
    """The API's error envelope."""
    return {"error": {"code": code, "message": message}, "requestId": uuid.uuid4().hex}


class Sandbox(SandboxServer):
    """The Back Market seller API on ``host:port`` (``port=0`` picks a free one)."""

    thread_name = "backmarket-sandbox"
    server_version = "BackMarketSandbox/1.0"

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        orders: int = 20,
        seed: int = 1,
        latency: float = 0.0,
        rate_limit: int | None = 200,
        rate_window: float = 10.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        super().__init__(host, port)
        self._token = token
        self._lock = threading.RLock()
        self._factory = OrderFactory(seed)
        self._clock = datetime.now(UTC).replace(microsecond=0)
        self._orders: dict[int, dict[str, Any]] = {}
        for order in self._factory.history(orders, self._clock):
            self._orders[order["order_id"]] = order
        self._defaults: dict[str, Any] = {
            "latency": latency, "rate_limit": rate_limit, "rate_window": rate_window,
            "fail_5xx": 0, "too_many_requests": 0, "cut_off_body": 0, "lose_answer": 0,
        }  # fmt: skip
        self._faults = dict(self._defaults)
        self._hits: collections.deque[float] = collections.deque()

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The API URL to put in the settings (``/ws/...`` hangs below it)."""
        return self.root_url

    @property
    def token(self) -> str:
        return self._token

    api_key = token  # the name Back Market Pro's sandbox uses

    def orders(self) -> list[dict[str, Any]]:
        """Every order, oldest modification first, as the API would show it."""
        with self._lock:
            return [copy.deepcopy(o) for o in self._sorted()]

    def order(self, order_id: str | int) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._orders[int(order_id)])

    def add_orders(self, n: int, state: int = 1) -> list[str]:
        """Create ``n`` new paid orders, each modified later than every other; their ids."""
        with self._lock:
            ids = []
            for _ in range(n):
                now = self._tick()
                order = self._factory.order(now - timedelta(minutes=2), now, state)
                self._orders[order["order_id"]] = order
                ids.append(str(order["order_id"]))
            return ids

    def cancel_order(self, order_id: str | int) -> dict[str, Any]:
        """The buyer cancels: paid lines become cancelled (4), accepted ones refunded before
        shipping (5), shipped ones refunded after shipping (6)."""
        with self._lock:
            order = self._orders[int(order_id)]
            for line in order["orderlines"]:
                line["state"] = {1: 4, 2: 5, 3: 6}.get(line["state"], line["state"])
            order["date_modification"] = wire_time(self._tick())
            return copy.deepcopy(order)

    def cancel_line(self, order_id: str | int, line_id: str | int) -> dict[str, Any]:
        """The buyer cancels one line: paid, it becomes cancelled (4); accepted, refunded before
        shipping (5). Raises KeyError for an unknown order or line, ValueError for a line shipped."""
        with self._lock:
            order = self._orders[int(order_id)]
            line = next((x for x in order["orderlines"] if str(x["id"]) == str(line_id)), None)
            if line is None:
                raise KeyError(line_id)
            if line["state"] in (3, 6):
                raise ValueError(f"line {line_id} is shipped already; the buyer asks for a refund instead")
            line["state"] = {1: 4, 2: 5}.get(line["state"], line["state"])
            order["date_modification"] = wire_time(self._tick())
            return copy.deepcopy(order)

    # --- faults ------------------------------------------------------------------------------

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """``latency`` (s per request), ``rate_limit`` (requests per ``rate_window`` s, None =
        unlimited), ``fail_5xx`` / ``too_many_requests`` (answer the next N API requests with 503 /
        429), ``cut_off_body`` (the next N answers stop halfway), ``lose_answer`` (the next N
        changes are applied but answered 502, as when a proxy loses the answer)."""
        with self._lock:
            for name, value in faults.items():
                if name not in self._defaults:
                    raise ValueError(f"unknown fault {name!r}")
                self._faults[name] = value
            self._hits.clear()
            return dict(self._faults)

    def clear_faults(self) -> dict[str, Any]:
        with self._lock:
            self._faults = dict(self._defaults)
            self._hits.clear()
            return dict(self._faults)

    # --- request handling --------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: Any, body: bytes, host: str) -> Reply:
        status, payload, extra = self._handle(method, target, headers, body, host)
        with self._lock:
            cut, self._faults["cut_off_body"] = (
                self._faults["cut_off_body"] > 0,
                max(0, self._faults["cut_off_body"] - 1),
            )
        if isinstance(payload, Html):
            ray = uuid.uuid4().hex[:16] + "-CDG"
            return Reply(status, None, {**_HTML, "cf-ray": ray, **extra}, raw=bytes(payload))
        return truncated(Reply(status, payload, extra)) if cut else Reply(status, payload, extra)

    def _handle(
        self, method: str, target: str, headers: Any, body: bytes, host: str
    ) -> tuple[int, Any, dict[str, str]]:
        split = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        if split.path.startswith(CONTROL_PREFIX):
            return self._control(method, split.path[len(CONTROL_PREFIX) :], body)
        entry: dict[str, Any] = {
            "method": method, "path": split.path, "query": query, "auth_ok": False, "status": None,
            "accept_language": headers.get("Accept-Language"), "user_agent": headers.get("User-Agent"),
        }  # fmt: skip
        with self._lock:
            latency = self._faults["latency"]
        if latency:
            time.sleep(latency)
        status, payload, extra = self._api(method, split.path, query, headers, body, host, entry)
        entry["status"] = status
        self.log_request(entry)
        return status, payload, extra

    def _api(self, method, path, query, headers, body, host, entry) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            if self._faults["fail_5xx"]:
                self._faults["fail_5xx"] -= 1
                return 503, error("service_unavailable", "Service temporarily unavailable."), {}
            if self._faults["too_many_requests"]:
                self._faults["too_many_requests"] -= 1
                return 429, Html(_FIREWALL_PAGE), {"Retry-After": "1"}
            limited = self._rate_limited()
            if limited is not None:
                return 429, Html(_FIREWALL_PAGE), {"Retry-After": str(limited)}
        agent = (headers.get("User-Agent") or "").strip()
        if not _USER_AGENT.match(agent):
            # the firewall refuses agents that do not name the integration, before any auth
            return 403, Html(_FIREWALL_PAGE), {}
        auth = headers.get("Authorization") or ""
        if auth != f"Basic {self._token}":
            return (
                401,
                error("unauthorized", "Invalid token." if auth else "Authentication credentials were not provided."),
                {},
            )
        entry["auth_ok"] = True
        if not _LANGUAGE.match(headers.get("Accept-Language") or ""):
            return 400, error("language_required", "The Accept-Language header is required, e.g. fr-fr."), {}
        with self._lock:
            if path.rstrip("/") == "/ws/orders":
                if method != "GET":
                    return 405, error("method_not_allowed", f'Method "{method}" not allowed.'), {}
                return self._list(query, host)
            match = _ORDER_PATH.match(path)
            if match:
                order = self._orders.get(int(match.group(1)))
                if order is None or order["state"] in HIDDEN_STATES:
                    return 404, error("not_found", "Not found."), {}
                if method == "GET":
                    return 200, copy.deepcopy(order), {}
                if method == "POST":
                    status, answer, extra = self._update(order, body)
                    if status == 200 and self._faults["lose_answer"]:
                        # applied, but the answer is lost on the way back
                        self._faults["lose_answer"] -= 1
                        return 502, Html(b"<html><body>502 Bad Gateway</body></html>"), {}
                    return status, answer, extra
                return 405, error("method_not_allowed", f'Method "{method}" not allowed.'), {}
        return 404, error("not_found", "Not found."), {}

    def _rate_limited(self) -> int | None:
        return over_limit(self._hits, self._faults["rate_limit"], self._faults["rate_window"])

    def _list(self, query: dict[str, str], host: str) -> tuple[int, Any, dict[str, str]]:
        try:
            page = int(query.get("page", "1"))
            size = int(query.get("page-size", str(DEFAULT_PAGE_SIZE)))
            state = int(query["state"]) if "state" in query else None
        except ValueError:
            return 400, error("invalid", "page, page-size and state must be integers."), {}
        if page < 1 or not 1 <= size <= PAGE_SIZE_MAX:
            return 400, error("invalid", f"page must be >= 1 and page-size between 1 and {PAGE_SIZE_MAX}."), {}
        since = None
        if "date_modification" in query:
            try:
                since = datetime.fromisoformat(query["date_modification"])
            except ValueError:
                return 400, error("invalid", "date_modification must be a date, e.g. 2024-05-01T00:00:00Z."), {}
            since = since if since.tzinfo else since.replace(tzinfo=UTC)
        matching = [
            o for o in self._sorted()
            if o["state"] not in HIDDEN_STATES
            and (state is None or o["state"] == state)
            and (since is None or datetime.fromisoformat(o["date_modification"]) >= since)
        ]  # fmt: skip
        start = (page - 1) * size
        results = matching[start : start + size]

        def link(number: int) -> str:
            return f"http://{host}/ws/orders?{urlencode({**query, 'page': str(number)})}"

        return 200, {
            "count": len(matching),
            "next": link(page + 1) if start + size < len(matching) else None,
            "previous": link(page - 1) if page > 1 else None,
            "results": copy.deepcopy(results),
        }, {}  # fmt: skip

    def _update(self, order: dict[str, Any], body: bytes) -> tuple[int, Any, dict[str, str]]:
        """``POST /ws/orders/{id}``: accept (2) or cancel (4) one paid line by ``sku``, or ship (3)."""
        try:
            data = json.loads(body.decode("utf-8")) if body else None
        except (UnicodeDecodeError, ValueError):
            data = None
        if not isinstance(data, dict):
            return 400, error("invalid", "The body must be a JSON object."), {}
        if data.get("order_id") not in (None, order["order_id"]):
            return 400, error("invalid", "order_id in the body differs from the URL."), {}
        new_state = data.get("new_state")
        oid = order["order_id"]
        if new_state in (2, 4):
            sku = data.get("sku")
            line = next((x for x in order["orderlines"] if x["listing"] == sku and x["state"] == 1), None)
            if line is None:
                return 400, error("invalid_state", f"Order {oid} has no orderline {sku!r:.60} in state 1."), {}
            line["state"] = new_state
            if all(x["state"] != 1 for x in order["orderlines"]):
                # every line decided: the order is to ship, or over when all were cancelled
                order["state"] = 3 if any(x["state"] == 2 for x in order["orderlines"]) else 9
            order["date_modification"] = wire_time(self._tick())
            return 200, copy.deepcopy(order), {}
        if new_state != 3:
            return 400, error("invalid_state", "new_state must be 2, 3 or 4."), {}
        return self._ship(order, data)

    def _ship(self, order: dict[str, Any], data: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        for name in ("tracking_number", "shipper"):
            value = data.get(name)
            if not isinstance(value, str) or not value.strip() or len(value) > _SHIPPER_MAX:
                return 400, error("invalid", f"{name} is required (at most {_SHIPPER_MAX} characters)."), {}
        url = data.get("tracking_url")
        if url is not None and (not isinstance(url, str) or not re.match(r"^https?://", url) or len(url) > 300):
            return 400, error("invalid", "tracking_url must be an http(s) URL of at most 300 characters."), {}
        lines = order["orderlines"]
        # a cancelled or refunded line is not in the package
        live = [x for x in lines if x["state"] not in (4, 5, 6, 7)]
        single = len(live) == 1 and live[0]["quantity"] == 1
        serial = {k: data[k] for k in ("imei", "serial_number") if data.get(k) is not None}
        if serial and not single:
            return 400, error("invalid", "imei / serial_number are only for single-line, single-unit orders."), {}
        oid = order["order_id"]
        if order["state"] != 3 or not any(x["state"] == 2 for x in lines):
            # lines must be accepted (state 2) before the package can ship
            return 400, error("invalid_state", f"Order {oid} cannot be shipped: it is in state {order['state']}, "
                              "its orderlines must be accepted (state 2) first."), {}  # fmt: skip
        now = wire_time(self._tick())
        order.update(
            state=9, tracking_number=data["tracking_number"].strip(), shipper=data["shipper"].strip(),
            tracking_url=url, date_shipping=now, date_modification=now,
        )  # fmt: skip
        for line in lines:
            if line["state"] == 2:
                line["state"] = 3
                if single:
                    line.update(imei=serial.get("imei"), serial_number=serial.get("serial_number"))
        return 200, copy.deepcopy(order), {}

    def _control(self, method: str, path: str, body: bytes) -> tuple[int, Any, dict[str, str]]:
        if method == "GET" and path in ("", "/"):
            api = ["GET /ws/orders", "GET /ws/orders/{id}", "POST /ws/orders/{id}"]
            control = [
                f"GET {CONTROL_PREFIX}/orders",
                f"POST {CONTROL_PREFIX}/orders",
                f"GET {CONTROL_PREFIX}/requests",
            ]
            return 200, {"api": api, "sandbox": control}, {}
        if (method, path) == ("GET", "/orders"):
            orders = self.orders()
            return 200, {"count": len(orders), "orders": orders}, {}
        if (method, path) == ("POST", "/orders"):
            try:
                n = int(json.loads(body or b"{}").get("n", 1))
            except (ValueError, AttributeError, TypeError):
                n = 0
            if not 1 <= n <= 10_000:
                return 400, error("invalid", 'body must be {"n": 1..10000}'), {}
            return 201, {"ids": self.add_orders(n)}, {}
        if (method, path) == ("GET", "/requests"):
            return 200, {"requests": self.request_log()}, {}
        return 404, error("not_found", f"No sandbox endpoint {method} {CONTROL_PREFIX}{path}."), {}

    # --- helpers -----------------------------------------------------------------------------

    def _sorted(self) -> list[dict[str, Any]]:
        return sorted(self._orders.values(), key=lambda o: (o["date_modification"], o["order_id"]))

    def _tick(self) -> datetime:
        # whole seconds, strictly increasing: a changed order sorts after every other order
        self._clock = max(datetime.now(UTC).replace(microsecond=0), self._clock + timedelta(seconds=1))
        return self._clock
