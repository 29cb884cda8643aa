"""A real HTTP server that behaves like the Back Market Pro seller API, for tests, demo and bench.

It serves exactly the contract in ``docs/backmarket-pro-api.md`` (stdlib only): every API key
is its own seller account with its own orders, listings page with a keyset ``next`` link,
shipments are recorded, and switches inject the faults a real API shows (latency, 429 with
Retry-After, 5xx bursts, dropped connections, slow answers, malformed bodies and orders).
Inspection and control need no key and live under ``/_sandbox/``.

    with Sandbox(orders=50) as sandbox:
        settings = BackMarketProSettings(website_url=sandbox.base_url, x_api_key=sandbox.api_key)
"""

from __future__ import annotations

import bisect
import collections
import copy
import json
import logging
import random
import re
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from plugin_spec.sandbox.faults import cut_body, endless_body, huge_body, over_limit, trickle, truncated
from plugin_spec.sandbox.server import Reply, SandboxServer, encode_json

from .sandbox_data import LINE_CANCELLED, LINE_TO_SHIP, OrderFactory, wire_time
from .sandbox_faults import TRIGGERS, Faults, Trigger
from .sandbox_rules import (
    decode_cursor,
    encode_cursor,
    json_body,
    same_tracking,
    shipment_lines,
    shipment_problem,
    shipped_quantities,
)

log = logging.getLogger(__name__)

API_PREFIX = "/sellers-prod"
API_VERSION = "2024-03"
CONTROL_PREFIX = "/_sandbox"
DEFAULT_API_KEY = "sandbox-key-0001"
DEFAULT_PAGE_SIZE = 50
FULFILLMENT_FILTERS = {
    "unfulfilled": ("unfulfilled", "partial"),  # what the seller still has to ship
    "partial": ("partial",),
    "fulfilled": ("fulfilled",),
    "any": None,
}
FINANCIAL_FILTERS = {"paid", "pending", "refunded", "voided", "any"}
_SECRET_PARAM = re.compile(r"key|token|secret|password|signature", re.IGNORECASE)


# ---------------------------------------------------------------------------------------------
# state


class _Account:
    """One seller account: its orders by id and an index sorted by (updated_at, id)."""

    def __init__(self, api_key: str, seller_id: str, name: str, factory: OrderFactory):
        self.api_key = api_key
        self.seller_id = seller_id
        self.name = name
        self.factory = factory
        self.orders: dict[str, dict[str, Any]] = {}
        self.index: list[tuple[str, str]] = []
        self.version = 0  # bumps on every change; keys the listing-count cache
        self.count_cache: dict[tuple[Any, ...], tuple[int, int]] = {}
        #: each order's JSON as listed, until it changes: encoding 200 orders on every page
        #: request made the sandbox, not the client, the slowest part of a benchmark
        self.encoded: dict[str, bytes] = {}

    def put(self, order: dict[str, Any]) -> None:
        self.orders[order["id"]] = order
        bisect.insort(self.index, (order["updated_at"], order["id"]))
        self.encoded.pop(order["id"], None)
        self.version += 1

    def json_of(self, order: dict[str, Any]) -> bytes:
        """``order`` encoded as in a listing (every change goes through put or touch)."""
        data = self.encoded.get(order["id"])
        if data is None:
            data = self.encoded[order["id"]] = _encode(order)
        return data

    def touch(self, order: dict[str, Any], updated_at: str) -> None:
        old = (order["updated_at"], order["id"])
        position = bisect.bisect_left(self.index, old)
        if position < len(self.index) and self.index[position] == old:
            del self.index[position]
        order["updated_at"] = updated_at
        bisect.insort(self.index, (updated_at, order["id"]))
        self.encoded.pop(order["id"], None)
        self.version += 1


_Reply = Reply
_encode = encode_json


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> _Reply:
    return _Reply(status, {"error": {"code": code, "message": message}}, headers or {})


class _ControlError(Exception):
    def __init__(self, reply: _Reply):
        self.reply = reply


# ---------------------------------------------------------------------------------------------
# the sandbox


class Sandbox(SandboxServer):
    """The Back Market Pro API on ``host:port`` (``port=0`` picks a free one)."""

    thread_name = "backmarket-pro-sandbox"
    server_version = "BackMarketProSandbox/1.0"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = DEFAULT_API_KEY,
        orders: int = 25,
        seed: int = 1,
        latency: float = 0.0,
        page_size_max: int = 200,
    ):
        super().__init__(host, port)
        self._api_key = api_key
        self.page_size_max = page_size_max
        self._lock = threading.RLock()
        self._clock = datetime.now(UTC)
        self._accounts: dict[str, _Account] = {}
        self._primary_key = api_key
        self._baseline = Faults(latency=latency)
        self._faults = Faults(latency=latency)
        self._fault_rng = random.Random(seed)
        self._rate_hits: dict[str, collections.deque[float]] = {}
        self.add_account(api_key, name="Atelier Réemploi SAS", orders=orders, seed=seed)

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The Website URL to put in the settings, e.g. ``http://127.0.0.1:8123/sellers-prod``."""
        return self.root_url + API_PREFIX

    @property
    def api_key(self) -> str:
        """The key of the first seller account."""
        return self._api_key

    # --- accounts and orders -----------------------------------------------------------------

    def add_account(self, api_key: str, name: str = "Second Seller GmbH", orders: int = 25, seed: int = 2) -> str:
        """Add a seller account reached with ``api_key``, with its own orders; returns its id."""
        with self._lock:
            if api_key in self._accounts:
                raise ValueError("an account with that key exists already")
            seller_id = f"seller-{len(self._accounts) + 1}"
            factory = OrderFactory(seed, id_prefix=f"BMP{len(self._accounts) + 1}" if self._accounts else "BMP")
            account = _Account(api_key, seller_id, name, factory)
            for order in factory.history(orders, self._clock):
                account.put(order)
            self._accounts[api_key] = account
            return seller_id

    def add_orders(self, n: int, api_key: str | None = None, ids: list[str] | None = None) -> list[str]:
        """Create ``n`` new unfulfilled orders, each with an ``updated_at`` newer than any other.

        ``ids`` gives them ids of the caller's choosing (e.g. hostile ones such as ``..``).
        """
        with self._lock:
            account = self._account(api_key)
            chosen = list(ids or [])
            ids = []
            for i in range(n):
                now = self._tick()
                order = account.factory.order(now, now)
                if i < len(chosen):
                    order["id"] = chosen[i]
                account.put(order)
                ids.append(order["id"])
            return ids

    def cancel_order(self, order_id: str, api_key: str | None = None) -> dict[str, Any]:
        """The buyer or Back Market Pro cancels an order in the portal (``updated_at`` bumps)."""
        with self._lock:
            account = self._account(api_key)
            order = account.orders.get(order_id)
            if order is None:
                raise KeyError(order_id)
            if not order["cancelled"]:
                now = wire_time(self._tick())
                self._cancel_whole(order, now)
                account.touch(order, now)
            return copy.deepcopy(order)

    @staticmethod
    def _cancel_whole(order: dict[str, Any], now: str) -> None:
        order["cancelled"] = True
        order["cancelled_at"] = now
        order["financial_status"] = "refunded" if order["financial_status"] == "paid" else "voided"
        shipped = shipped_quantities(order)
        for line in order["line_items"]:
            if not shipped.get(line["id"]):
                line["state"] = LINE_CANCELLED

    def cancel_line(self, order_id: str, line_id: str, api_key: str | None = None) -> dict[str, Any]:
        """The buyer or Back Market Pro cancels one line of an order (its ``state`` becomes 4,
        ``updated_at`` bumps); the order is cancelled once every line is. Raises KeyError for
        an unknown order or line, ValueError for a line already shipped."""
        with self._lock:
            account = self._account(api_key)
            order = account.orders.get(order_id)
            if order is None:
                raise KeyError(order_id)
            line = next((line for line in order["line_items"] if line["id"] == line_id), None)
            if line is None:
                raise KeyError(line_id)
            if shipped_quantities(order).get(line_id):
                raise ValueError(f"line {line_id} is shipped already; it can no longer be cancelled")
            if line.get("state") != LINE_CANCELLED:
                now = wire_time(self._tick())
                line["state"] = LINE_CANCELLED
                if all(other.get("state") == LINE_CANCELLED for other in order["line_items"]):
                    self._cancel_whole(order, now)
                account.touch(order, now)
            return copy.deepcopy(order)

    def edit_order(self, order_id: str, api_key: str | None = None, **fields: Any) -> dict[str, Any]:
        """The channel changes fields of an order as given (``updated_at`` bumps); returns it."""
        with self._lock:
            account = self._account(api_key)
            order = account.orders.get(order_id)
            if order is None:
                raise KeyError(order_id)
            if order["cancelled"] and fields.get("cancelled") is False and "line_items" not in fields:
                # the cancellation undone (as the channel's support would): its lines stand again
                for line in order["line_items"]:
                    if line.get("state") == LINE_CANCELLED:
                        line["state"] = LINE_TO_SHIP
            order.update(copy.deepcopy(fields))
            account.touch(order, wire_time(self._tick()))
            return copy.deepcopy(order)

    def orders(self, api_key: str | None = None) -> list[dict[str, Any]]:
        """Every order of an account (default: the first) with the shipments it received."""
        with self._lock:
            account = self._account(api_key)
            return [copy.deepcopy(account.orders[order_id]) for _, order_id in account.index]

    # --- faults ------------------------------------------------------------------------------

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Change fault switches (merged into the current ones); returns all of them.

        ``latency`` (s per request), ``rate_limit`` (requests per ``rate_window`` s per key, then
        429 + Retry-After), ``fail_5xx`` / ``drop_connection`` / ``slow`` / ``malformed_body``
        (int = the next N API requests, float = probability per request, True = every request),
        ``fail_status`` (default 503), ``slow_seconds`` (default 3), ``malformed_order`` (True =
        the sandbox picks an unfulfilled order of the first account, or an order id; None = off),
        and the hostile answers of ``plugin_spec.sandbox.faults``: ``trickle`` (body one byte
        every ``trickle_seconds``), ``endless_body``, ``huge_body`` (300 MB), ``cut_error_body``
        (half of an error answer's body), ``next_loop`` (listings link to the same orders
        forever) and ``next_link_base`` (``scheme://host:port`` the listing's ``next`` link points to, as a
        compromised or misconfigured API might; None = the sandbox itself).
        """
        with self._lock:
            self._faults = self._apply_faults(copy.deepcopy(self._faults), faults)
            return self._faults.describe()

    def clear_faults(self) -> dict[str, Any]:
        """Back to the constructor's configuration (its latency, no other fault)."""
        with self._lock:
            self._faults = copy.deepcopy(self._baseline)
            self._rate_hits.clear()
            return self._faults.describe()

    def faults(self) -> dict[str, Any]:
        with self._lock:
            return self._faults.describe()

    def _apply_faults(self, target: Faults, changes: Mapping[str, Any]) -> Faults:
        for name, value in changes.items():
            if name in TRIGGERS:
                target.triggers[name] = Trigger.parse(name, value)
            elif name in ("latency", "slow_seconds", "rate_window", "trickle_seconds"):
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise ValueError(f"{name} must be a number of seconds >= 0")
                setattr(target, name, float(value))
            elif name == "rate_limit":
                if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                    raise ValueError("rate_limit must be a positive integer or None")
                target.rate_limit = value
                self._rate_hits.clear()
            elif name == "fail_status":
                if isinstance(value, bool) or not isinstance(value, int) or not 500 <= value <= 599:
                    raise ValueError("fail_status must be a 5xx status")
                target.fail_status = value
            elif name == "malformed_order":
                target.malformed_order = self._pick_malformed(value)
            elif name == "next_link_base":
                if value is not None and not (isinstance(value, str) and "://" in value):
                    raise ValueError("next_link_base must be scheme://host[:port] or None")
                target.next_link_base = value.rstrip("/") if value else None
            else:
                raise ValueError(f"unknown fault {name!r}")
        return target

    def _pick_malformed(self, value: Any) -> str | None:
        if value is None or value is False:
            return None
        if isinstance(value, str):
            if not any(value in account.orders for account in self._accounts.values()):
                raise ValueError(f"no order {value!r}")
            return value
        if value is True:
            account = self._account(None)
            candidates = [
                oid for _, oid in account.index if account.orders[oid]["fulfillment_status"] != "fulfilled"
            ] or [oid for _, oid in account.index]
            if not candidates:
                raise ValueError("the account has no orders to spoil")
            return candidates[len(candidates) // 2]
        raise ValueError("malformed_order must be true, an order id or null")

    # --- helpers -----------------------------------------------------------------------------

    def _account(self, api_key: str | None) -> _Account:
        account = self._accounts.get(api_key or self._primary_key)
        if account is None:
            raise KeyError("no account with that key")
        return account

    def _account_by_id(self, seller_id: str | None) -> _Account:
        if seller_id is None:
            return self._account(None)
        for account in self._accounts.values():
            if account.seller_id == seller_id:
                return account
        raise KeyError(seller_id)

    def _tick(self) -> datetime:
        # strictly increasing: a changed order always sorts after every other order
        self._clock = max(datetime.now(UTC), self._clock + timedelta(microseconds=1))
        return self._clock

    def _sleep(self, seconds: float) -> None:
        self.sleep(seconds)

    def _served(self, order: dict[str, Any], malformed: str | None) -> dict[str, Any]:
        if order["id"] != malformed:
            return order
        spoiled = copy.deepcopy(order)
        spoiled["total_price"] = "1.299,00 €"  # a locale-formatted amount, not a decimal string
        spoiled["line_items"][0]["price"] = float(spoiled["line_items"][0]["price"])
        return spoiled

    # --- request handling (called by the handler threads) ------------------------------------

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes, host: str) -> _Reply:
        split = urlsplit(target)
        path = split.path
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        if path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            try:
                return self._control(method, path[len(CONTROL_PREFIX) :], query, body)
            except _ControlError as exc:
                return exc.reply
        return self._api(method, path, query, headers, body, host)

    def _api(
        self, method: str, path: str, query: dict[str, str], headers: Mapping[str, str], body: bytes, host: str
    ) -> _Reply:
        entry: dict[str, Any] = {
            "at": wire_time(datetime.now(UTC)),
            "method": method,
            "path": path,
            "query": {k: v for k, v in query.items() if not _SECRET_PARAM.search(k)},
            "key_ok": False,
            "account": None,
            "status": None,
            "fault": None,
        }
        with self._lock:
            faults = self._faults
            fired = {
                name: faults.triggers[name].fire(self._fault_rng)
                for name in ("fail_5xx", "drop_connection", "slow", "too_many_requests")
            }
            latency, slow_seconds = faults.latency, faults.slow_seconds
        self._sleep(latency)
        if fired["drop_connection"]:
            entry["fault"] = "drop_connection"
            self.log_request(entry)
            return _Reply(drop=True)
        if fired["slow"]:
            entry["fault"] = "slow"
            self._sleep(slow_seconds)
        if fired["too_many_requests"]:
            entry["fault"], entry["status"] = "too_many_requests", 429
            self.log_request(entry)
            return _error(
                429,
                "rate_limited",
                "Too many requests; wait for the number of seconds in Retry-After.",
                {"Retry-After": "1"},
            )
        reply = self._api_reply(method, path, query, headers, body, host, entry, fired["fail_5xx"])
        entry["status"] = reply.status
        self.log_request(entry)
        return reply

    def _api_reply(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        headers: Mapping[str, str],
        body: bytes,
        host: str,
        entry: dict[str, Any],
        fail: bool,
    ) -> _Reply:
        if fail:
            entry["fault"] = "fail_5xx"
            status = self._faults.fail_status
            return _error(status, "server_error", "The service is temporarily unavailable; retry later.")
        route = _route(method, path)
        if isinstance(route, _Reply):
            return route
        handler, params = route
        key = headers.get("x-api-key")
        with self._lock:
            account = self._accounts.get(key) if key else None
            if account is None:
                what = "missing" if not key else "not valid"
                return _error(401, "unauthorized", f"The x-api-key header is {what}.")
            entry["key_ok"] = True
            entry["account"] = account.seller_id
            limited = self._rate_limited(account.api_key)
            if limited is not None:
                return _error(
                    429,
                    "rate_limited",
                    "Too many requests; wait for the number of seconds in Retry-After.",
                    {"Retry-After": str(limited)},
                )
            reply = handler(self, account, params, query, body, host)
            triggers, rng = self._faults.triggers, self._fault_rng
            if 200 <= reply.status < 300 and triggers["malformed_body"].fire(rng):
                entry["fault"] = "malformed_body"
                reply = _Reply(reply.status, raw=b'{"count": 3, "results": [{"id": ', headers=reply.headers)
            if reply.status >= 400 and triggers["cut_error_body"].fire(rng):
                entry["fault"] = "cut_error_body"
                reply = cut_body(reply)
            if triggers["cut_off_body"].fire(rng):
                entry["fault"] = "cut_off_body"
                reply = truncated(reply)
            elif triggers["huge_body"].fire(rng):
                entry["fault"] = "huge_body"
                reply = huge_body()
            elif triggers["endless_body"].fire(rng):
                entry["fault"] = "endless_body"
                reply = endless_body()
            elif triggers["trickle"].fire(rng):
                entry["fault"] = "trickle"
                reply = trickle(reply, self._faults.trickle_seconds, self.sleep)
            return reply

    def _rate_limited(self, key: str) -> int | None:
        """Sliding window per key; the Retry-After in whole seconds when over the limit."""
        hits = self._rate_hits.setdefault(key, collections.deque())
        return over_limit(hits, self._faults.rate_limit, self._faults.rate_window)

    def _seller_account(self, account: _Account, params: dict[str, str], *_: Any) -> _Reply:
        return _Reply(
            200,
            {
                "id": account.seller_id,
                "name": account.name,
                "country_code": "FR",
                "api_version": API_VERSION,
                "rate_limit": {"requests": 200, "per_seconds": 10},
            },
        )

    def _list_orders(
        self, account: _Account, params: dict[str, str], query: dict[str, str], body: bytes, host: str
    ) -> _Reply:
        fulfillment = query.get("fulfillment_status", "any")
        financial = query.get("financial_status", "any")
        if fulfillment not in FULFILLMENT_FILTERS:
            return _error(
                422, "validation_error", f"fulfillment_status must be one of {', '.join(FULFILLMENT_FILTERS)}."
            )
        if financial not in FINANCIAL_FILTERS:
            return _error(
                422, "validation_error", f"financial_status must be one of {', '.join(sorted(FINANCIAL_FILTERS))}."
            )
        try:
            page_size = int(query.get("page-size", DEFAULT_PAGE_SIZE))
        except ValueError:
            page_size = -1
        if not 1 <= page_size <= self.page_size_max:
            return _error(422, "validation_error", f"page-size must be an integer from 1 to {self.page_size_max}.")
        min_key = ""
        if "updated_at_min" in query:
            try:
                parsed = datetime.fromisoformat(query["updated_at_min"])
            except ValueError:
                parsed = None
            if parsed is None or parsed.tzinfo is None:
                return _error(422, "validation_error", "updated_at_min must be an ISO-8601 timestamp with a time zone.")
            min_key = wire_time(parsed.astimezone(UTC))
        start = bisect.bisect_left(account.index, (min_key, ""))
        if "cursor" in query:
            after = decode_cursor(query["cursor"])
            if after is None:
                return _error(422, "validation_error", "cursor is not valid; follow the next link as given.")
            start = max(start, bisect.bisect_right(account.index, after))

        wanted = FULFILLMENT_FILTERS[fulfillment]

        def matches(order: dict[str, Any]) -> bool:
            return (wanted is None or order["fulfillment_status"] in wanted) and (
                financial == "any" or order["financial_status"] == financial
            )

        results: list[dict[str, Any]] = []
        encoded: list[bytes] = []
        more = False
        malformed = self._faults.malformed_order
        index = account.index
        for position in range(start, len(index)):
            order = account.orders[index[position][1]]
            if not matches(order):
                continue
            if len(results) == page_size:
                more = True
                break
            results.append(order)
            encoded.append(
                _encode(self._served(order, malformed)) if order["id"] == malformed else account.json_of(order)
            )

        next_url = None
        if self._faults.triggers["next_loop"].fire(self._fault_rng):
            # a fresh next link on every page, always to the same orders: a client must notice
            loop = int(query.get("loop", "0")) + 1
            next_url = f"http://{host}{API_PREFIX}/{API_VERSION}/orders?{urlencode({**query, 'loop': str(loop)})}"
        elif more:
            last = results[-1]
            forwarded: dict[str, str] = {
                k: query[k]
                for k in ("fulfillment_status", "financial_status", "updated_at_min", "page-size")
                if k in query
            }
            forwarded["cursor"] = encode_cursor(last["updated_at"], last["id"])
            base = self._faults.next_link_base or f"http://{host}"
            next_url = f"{base}{API_PREFIX}/{API_VERSION}/orders?{urlencode(forwarded)}"
        count = self._count(account, (fulfillment, financial, min_key), matches, min_key)
        # the bytes of {"count": ..., "next": ..., "results": [...]}, from each order's cached JSON
        raw = b'{"count":%d,"next":%s,"results":[%s]}' % (count, _encode(next_url), b",".join(encoded))
        return _Reply(200, raw=raw)

    def _count(
        self, account: _Account, key: tuple[Any, ...], matches: Callable[[dict[str, Any]], bool], min_key: str
    ) -> int:
        cached = account.count_cache.get(key)
        if cached is not None and cached[0] == account.version:
            return cached[1]
        start = bisect.bisect_left(account.index, (min_key, ""))
        count = sum(1 for _, oid in account.index[start:] if matches(account.orders[oid]))
        if len(account.count_cache) > 64:
            account.count_cache.clear()
        account.count_cache[key] = (account.version, count)
        return count

    def _get_order(self, account: _Account, params: dict[str, str], *_: Any) -> _Reply:
        order = account.orders.get(params["order_id"])
        if order is None:
            return _error(404, "order_not_found", f"No order {params['order_id']} in this seller account.")
        return _Reply(200, self._served(order, self._faults.malformed_order))

    def _post_shipment(
        self, account: _Account, params: dict[str, str], query: dict[str, str], body: bytes, host: str
    ) -> _Reply:
        try:
            data = json.loads(body.decode("utf-8")) if body else None
        except (UnicodeDecodeError, ValueError):
            data = None
        problem = shipment_problem(data)
        if problem:
            return _error(422, "validation_error", problem)
        assert isinstance(data, dict)
        order = account.orders.get(params["order_id"])
        if order is None:
            return _error(404, "order_not_found", f"No order {params['order_id']} in this seller account.")
        tracking = data["tracking_number"].strip()
        # the duplicate check comes before the quantity check: repeating a whole-order shipment
        # must say "already recorded", not "nothing left to ship"
        if any(same_tracking(s["tracking_number"], tracking) for s in order["shipments"]):
            return _error(
                409,
                "tracking_already_recorded",
                f"Tracking {tracking} is already recorded for order {order['id']}.",
            )
        if order["cancelled"]:
            return _error(422, "order_cancelled", f"Order {order['id']} is cancelled; it cannot be shipped.")
        lines, problem = shipment_lines(order, data.get("lines"))
        if problem:
            return _error(422, "validation_error", problem)
        now = wire_time(self._tick())
        shipment = {
            "id": f"SHP-{order['id']}-{len(order['shipments']) + 1}",
            "tracking_number": tracking,
            "carrier": data["carrier"].strip(),
            "tracking_url": data.get("tracking_url"),
            "shipped_at": data.get("shipped_at") or now,
            "created_at": now,
            "lines": lines,
        }
        order["shipments"].append(shipment)
        shipped = shipped_quantities(order)
        everything = all(
            shipped.get(line["id"], 0) >= line["quantity"] or line.get("state") == LINE_CANCELLED
            for line in order["line_items"]
        )
        order["fulfillment_status"] = "fulfilled" if everything else "partial"
        account.touch(order, now)
        return _Reply(
            201,
            {
                "shipment": shipment,
                "order": {"id": order["id"], "fulfillment_status": order["fulfillment_status"], "updated_at": now},
            },
        )

    # --- /_sandbox/ control endpoints --------------------------------------------------------

    def _control(self, method: str, path: str, query: dict[str, str], body: bytes) -> _Reply:
        data = json_body(body)
        account_id = query.get("account") or (data.get("account") if isinstance(data, dict) else None)
        if method == "GET" and path in ("", "/"):
            return _Reply(200, {"api": API_INDEX, "sandbox": CONTROL_INDEX})
        with self._lock:
            if (method, path) == ("GET", "/orders"):
                account = self._control_account(account_id)
                orders = self.orders(account.api_key)
                return _Reply(200, {"account": account.seller_id, "count": len(orders), "orders": orders})
            if (method, path) == ("POST", "/orders"):
                account = self._control_account(account_id)
                n = data.get("n", 1) if isinstance(data, dict) else None
                if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 100_000:
                    return _error(422, "validation_error", 'body must be {"n": 1..100000}')
                return _Reply(201, {"ids": self.add_orders(n, account.api_key)})
            match = re.fullmatch(r"/orders/([^/]+)/lines/([^/]+)/cancel", path)
            if match and method == "POST":
                account = self._control_account(account_id)
                order_id, line_id = unquote(match.group(1)), unquote(match.group(2))
                try:
                    return _Reply(200, {"order": self.cancel_line(order_id, line_id, account.api_key)})
                except KeyError:
                    return _error(404, "order_not_found", f"No order {order_id} with a line {line_id}.")
                except ValueError as exc:
                    return _error(422, "line_shipped", str(exc))
            match = re.fullmatch(r"/orders/([^/]+)/cancel", path)
            if match and method == "POST":
                account = self._control_account(account_id)
                try:
                    return _Reply(200, {"order": self.cancel_order(unquote(match.group(1)), account.api_key)})
                except KeyError:
                    return _error(404, "order_not_found", f"No order {unquote(match.group(1))}.")
            if (method, path) == ("GET", "/requests"):
                return _Reply(200, {"requests": self.request_log()})
            if (method, path) == ("DELETE", "/requests"):
                self.clear_request_log()
                return _Reply(200, {"requests": []})
            if (method, path) == ("GET", "/faults"):
                return _Reply(200, {"faults": self.faults()})
            if (method, path) == ("POST", "/faults"):
                if not isinstance(data, dict):
                    return _error(422, "validation_error", "body must be a JSON object of fault switches")
                try:
                    return _Reply(200, {"faults": self.set_faults(**data)})
                except ValueError as exc:
                    return _error(422, "validation_error", str(exc))
            if (method, path) == ("DELETE", "/faults"):
                return _Reply(200, {"faults": self.clear_faults()})
            if (method, path) == ("GET", "/accounts"):
                accounts = [
                    {"id": a.seller_id, "name": a.name, "orders": len(a.orders)} for a in self._accounts.values()
                ]
                return _Reply(200, {"accounts": accounts})
            if (method, path) == ("POST", "/accounts"):
                if not isinstance(data, dict) or not isinstance(data.get("api_key"), str):
                    return _error(422, "validation_error", 'body must be {"api_key": "...", "name", "orders", "seed"}')
                try:
                    seller_id = self.add_account(
                        data["api_key"],
                        name=str(data.get("name", "Second Seller GmbH")),
                        orders=int(data.get("orders", 25)),
                        seed=int(data.get("seed", 2)),
                    )
                except (TypeError, ValueError) as exc:
                    return _error(422, "validation_error", str(exc))
                return _Reply(201, {"id": seller_id})
        return _error(404, "no_such_endpoint", f"No sandbox control endpoint {method} {CONTROL_PREFIX}{path}.")

    def _control_account(self, seller_id: Any) -> _Account:
        try:
            return self._account_by_id(seller_id if isinstance(seller_id, str) else None)
        except KeyError:
            raise _ControlError(_error(404, "account_not_found", f"No account {seller_id}.")) from None


# ---------------------------------------------------------------------------------------------
# routing and small helpers

#: what ``GET /_sandbox/`` lists
API_INDEX = [
    f"GET {API_PREFIX}/{API_VERSION}/seller-account",
    f"GET {API_PREFIX}/{API_VERSION}/orders",
    f"GET {API_PREFIX}/{API_VERSION}/orders/{{id}}",
    f"POST {API_PREFIX}/{API_VERSION}/orders/{{id}}/shipments",
]
CONTROL_INDEX = [
    f"GET {CONTROL_PREFIX}/orders",
    f"POST {CONTROL_PREFIX}/orders",
    f"POST {CONTROL_PREFIX}/orders/{{id}}/cancel",
    f"POST {CONTROL_PREFIX}/orders/{{id}}/lines/{{line_id}}/cancel",
    f"GET|DELETE {CONTROL_PREFIX}/requests",
    f"GET|POST|DELETE {CONTROL_PREFIX}/faults",
    f"GET|POST {CONTROL_PREFIX}/accounts",
]
_ORDER_ID = r"(?P<order_id>[^/]+)"
_BASE = re.escape(f"{API_PREFIX}/{API_VERSION}")
ROUTES: tuple[tuple[str, re.Pattern[str], Callable[..., _Reply]], ...] = (
    ("GET", re.compile(rf"{_BASE}/seller-account/?"), Sandbox._seller_account),
    ("GET", re.compile(rf"{_BASE}/orders/?"), Sandbox._list_orders),
    ("GET", re.compile(rf"{_BASE}/orders/{_ORDER_ID}/?"), Sandbox._get_order),
    ("POST", re.compile(rf"{_BASE}/orders/{_ORDER_ID}/shipments/?"), Sandbox._post_shipment),
)


def _route(method: str, path: str) -> tuple[Callable[..., _Reply], dict[str, str]] | _Reply:
    allowed = []
    for route_method, pattern, handler in ROUTES:
        match = pattern.fullmatch(path)
        if match:
            if route_method == method:
                return handler, {k: unquote(v) for k, v in match.groupdict().items()}
            allowed.append(route_method)
    if allowed:
        return _error(405, "method_not_allowed", f"{path} accepts {', '.join(allowed)}.", {"Allow": ", ".join(allowed)})
    return _error(404, "no_such_endpoint", f"No endpoint {method} {path}; see the API version segment /{API_VERSION}/.")
