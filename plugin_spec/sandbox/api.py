"""``ApiSandbox``: everything a channel sandbox needs but its routes and its data.

A subclass declares ``prefix``, ``key_header`` and ``routes`` (method, path pattern with
``{name}`` parts, handler method name) and writes one method per route taking a
:class:`Request`. The base checks the key (401), keeps the request log, serves keyset pages
with ``next`` links, offset pages and page-token pages (:meth:`ApiSandbox.page`), applies the fault switches and answers
``GET /_sandbox/`` with the list of its endpoints.
"""

from __future__ import annotations

import base64
import collections
import json
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from .auth import KeyHeader, SandboxAuth
from .faults import KIT_FAULTS, TRIGGERS, Trigger, cut_body, endless_body, huge_body, over_limit, trickle, truncated
from .server import Reply, SandboxServer

CONTROL_PREFIX = "/_sandbox"
_SECRET_PARAM = re.compile(r"key|token|secret|password|signature", re.IGNORECASE)
#: the page tokens a sandbox remembers; an older one is answered as not valid
_TOKENS_KEPT = 10_000
_NUMBERS = ("latency", "slow_seconds", "trickle_seconds", "rate_window", "token_ttl")


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Reply:
    """The sandbox's error body: ``{"error": {"code": ..., "message": ...}}``."""
    return Reply(status, {"error": {"code": code, "message": message}}, headers or {})


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    headers: Mapping[str, str]
    body: bytes
    host: str

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None


@dataclass
class Switches:
    latency: float = 0.0
    slow_seconds: float = 3.0
    trickle_seconds: float = 10.0
    rate_limit: int | None = None
    rate_window: float = 10.0
    #: seconds a page token stays valid (0: forever)
    token_ttl: float = 0.0
    #: enforce each route's ``operation_limits`` (a channel's usage plans per operation)
    operation_limits: bool = False
    #: how many times faster than published the operation buckets refill
    rate_time_scale: float = 1.0
    #: after serving this many pages, change one order served and one not served yet (0: off)
    touch_during_download: int = 0
    pages_served: int = 0
    #: ids served since ``touch_during_download`` was set, in the order served
    served: dict[Any, None] = field(default_factory=dict)
    triggers: dict[str, Trigger] = field(default_factory=lambda: {name: Trigger() for name in TRIGGERS})

    def describe(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            name: getattr(self, name)
            for name in (*_NUMBERS, "rate_limit", "touch_during_download", "operation_limits", "rate_time_scale")
        }
        data.update({name: t.describe() for name, t in self.triggers.items()})
        return data


class ApiSandbox(SandboxServer):
    """A JSON API on ``host:port`` checked by one key header; subclass it per channel."""

    #: the API's path prefix (the Website URL is ``root_url + prefix``)
    prefix: ClassVar[str] = ""
    key_header: ClassVar[str] = "x-api-key"
    #: (method, pattern such as ``/v1/orders/{id}``, name of the handler method)
    routes: ClassVar[list[tuple[str, str, str]]] = []
    #: the channel's usage plan per operation, as it publishes them: handler name -> (requests
    #: per second, burst), a token bucket each; enforced with ``set_faults(operation_limits=True)``
    #: (429 past it), refilled ``rate_time_scale`` times faster than published
    operation_limits: ClassVar[dict[str, tuple[float, int]]] = {}
    #: handlers that need no credential (a token endpoint served as a route of the API)
    public_routes: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, host: str = "127.0.0.1", port: int = 0, api_key: str = "sandbox-key-0001", seed: int = 1):
        super().__init__(host, port)
        self.api_key = api_key
        #: how requests are checked; a subclass or a test may set another (``.auth``)
        self.auth: SandboxAuth = self.make_auth()
        self._lock = threading.RLock()
        self._rng = random.Random(seed)
        self._switches = Switches()
        self._hits: collections.deque[float] = collections.deque()
        #: operation -> (tokens left, when counted) of ``operation_limits``' buckets
        self._buckets: dict[str, tuple[float, float]] = {}
        #: page token -> (the other query parameters, position in the list, when issued)
        self._page_tokens: dict[str, tuple[tuple[tuple[str, str], ...], int, float]] = {}
        #: ids changed by ``touch_during_download``, in order
        self.touched: list[Any] = []
        self._compiled = [
            (method, re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.prefix + pattern))), name)
            for method, pattern, name in self.routes
        ]

    @property
    def base_url(self) -> str:
        return self.root_url + self.prefix

    def make_auth(self) -> SandboxAuth:
        """The credential check of this sandbox: ``key_header`` = ``api_key`` unless overridden."""
        return KeyHeader(self.key_header, self.api_key)

    @property
    def token_url(self) -> str:
        """The token endpoint's URL, when ``auth`` has one."""
        if self.auth.token_path is None:
            raise RuntimeError("this sandbox has no token endpoint")
        return self.root_url + self.auth.token_path

    def error(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Reply:
        """An error answer in the channel's own envelope (override for another shape)."""
        return error(status, code, message, headers)

    # --- fault switches ------------------------------------------------------------------------

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Switch faults on: the triggers of ``plugin_spec.sandbox.faults`` (count, probability
        or True), ``latency``, ``slow_seconds``, ``trickle_seconds``, ``rate_limit`` per ``rate_window``,
        ``token_ttl`` (seconds a page token lasts), ``touch_during_download`` (see :meth:`page`),
        ``operation_limits`` (enforce the class's usage plans) with ``rate_time_scale``."""
        with self._lock:
            for name, value in faults.items():
                if name in TRIGGERS:
                    self._switches.triggers[name] = Trigger.parse(name, value)
                elif name in _NUMBERS:
                    setattr(self._switches, name, float(value))
                elif name == "rate_limit":
                    self._switches.rate_limit = value
                    self._hits.clear()
                elif name == "touch_during_download":
                    self._arm_touch(value)
                elif name == "operation_limits":
                    if not isinstance(value, bool):
                        raise ValueError("operation_limits must be true or false")
                    self._switches.operation_limits = value
                    self._buckets.clear()
                elif name == "rate_time_scale":
                    if not float(value) > 0:
                        raise ValueError("rate_time_scale must be > 0")
                    self._switches.rate_time_scale = float(value)
                else:
                    raise ValueError(f"unknown fault {name!r}")
            return self._switches.describe()

    def _arm_touch(self, value: Any) -> None:
        pages = 0 if value is None or value is False else value
        if not isinstance(pages, int) or isinstance(pages, bool) or pages < 0:
            raise ValueError("touch_during_download must be a page count (int >= 0)")
        if pages and type(self).bump is ApiSandbox.bump:
            raise ValueError("touch_during_download needs a sandbox that can change its orders (bump)")
        self._switches.touch_during_download, self._switches.pages_served = pages, 0
        self._switches.served.clear()

    def clear_faults(self) -> dict[str, Any]:
        with self._lock:
            self._switches = Switches()
            self._hits.clear()
            self._buckets.clear()
            return self._switches.describe()

    def inject(self, fault: str) -> bool:
        """Switch on the trouble ``KitChannel.inject`` names (see ``faults.KIT_FAULTS``)."""
        self.set_faults(**KIT_FAULTS[fault])
        return True

    # --- paging --------------------------------------------------------------------------------

    def page(
        self, request: Request, items: list[dict[str, Any]], *, key: Callable[[dict[str, Any]], Any],
        size_param: str = "page-size", default_size: int = 50, max_size: int = 200, style: str = "keyset",
        offset_param: str = "offset", token_param: str = "nextToken", ident: str = "id",
    ) -> Reply:  # fmt: skip
        """One page of ``items`` (already filtered) sorted by ``key``, paged as ``style`` says:

        * ``"keyset"``: ``{"count", "next", "results"}``; the ``next`` link carries a cursor, the
          key of the last item (safe while items change);
        * ``"offset"``: ``size_param`` items from ``offset_param``; ``{"total", "results"}``;
        * ``"token"``: ``{"results", "pagination": {"nextToken"}}``, the token sent back as
          ``token_param`` with the first request's other parameters (as Amazon SP-API wants;
          400 ``invalid_token`` otherwise). A token stands for a position in the list as it is
          when the token comes back, as many channels' tokens do. With the ``token_ttl`` switch
          a token older than that many seconds is refused: 400 ``expired_token``.

        With ``touch_during_download=K``, after serving its K-th page the sandbox changes
        (:meth:`bump`) the first order it served and the first one it has not served yet: both
        move to the end.
        """
        try:
            size = int(request.query.get(size_param, default_size))
        except ValueError:
            size = -1
        if not 1 <= size <= max_size:
            return self.error(422, "validation_error", f"{size_param} must be an integer from 1 to {max_size}.")
        ordered = sorted(items, key=key)
        if style == "keyset":
            reply = self._keyset_page(request, ordered, key, size)
        elif style == "offset":
            reply = self._offset_page(request, ordered, size, offset_param)
        elif style == "token":
            reply = self._token_page(request, ordered, size, token_param)
        else:
            raise ValueError(f"unknown paging style {style!r}")
        if reply.status == 200:
            self._touch_during_download(ordered, reply.body["results"], ident)
        return reply

    def _keyset_page(
        self, request: Request, ordered: list[dict[str, Any]], key: Callable[[Any], Any], size: int
    ) -> Reply:
        if "cursor" in request.query:
            try:
                after = tuple(json.loads(base64.urlsafe_b64decode(request.query["cursor"])))
            except ValueError:
                return self.error(422, "validation_error", "cursor is not valid; follow the next link as given.")
            ordered = [item for item in ordered if tuple(key(item)) > after]
        results, more = ordered[:size], len(ordered) > size
        query = dict(request.query)
        if self._switches.triggers["next_loop"].fire(self._rng):
            # a fresh next link on every page, always to the same orders: a client must notice
            query["loop"] = str(int(query.get("loop", "0")) + 1)
        elif more:
            query["cursor"] = base64.urlsafe_b64encode(json.dumps(list(key(results[-1]))).encode()).decode()
        else:
            query = {}
        next_url = f"http://{request.host}{request.path}?{urlencode(query)}" if query else None
        return Reply(200, {"count": len(ordered), "next": next_url, "results": _copies(results)})

    def _offset_page(self, request: Request, ordered: list[dict[str, Any]], size: int, offset_param: str) -> Reply:
        raw = request.query.get(offset_param, "0")
        if not raw.isdigit():
            return self.error(422, "validation_error", f"{offset_param} must be an integer from 0.")
        # a channel that ignores the offset answers the first page again and again
        offset = 0 if self._switches.triggers["next_loop"].fire(self._rng) else int(raw)
        return Reply(200, {"total": len(ordered), "results": _copies(ordered[offset : offset + size])})

    def _token_page(self, request: Request, ordered: list[dict[str, Any]], size: int, token_param: str) -> Reply:
        query = tuple(sorted((k, v) for k, v in request.query.items() if k != token_param))
        position = 0
        if token_param in request.query:
            issued = self._page_tokens.get(request.query[token_param])
            if issued is None or issued[0] != query:
                return self.error(400, "invalid_token", f"{token_param} is not valid with these parameters; "
                             "send it with the first request's other parameters.")  # fmt: skip
            ttl = self._switches.token_ttl
            if ttl and time.monotonic() - issued[2] > ttl:
                return self.error(400, "expired_token", f"{token_param} has expired; start the listing again.")
            position = issued[1]
        results = ordered[position : position + size]
        token = None
        if self._switches.triggers["next_loop"].fire(self._rng):
            token = self._issue_token(query, position)  # a fresh token to the same orders
        elif len(ordered) > position + size:
            token = self._issue_token(query, position + size)
        return Reply(200, {"results": _copies(results), "pagination": {"nextToken": token}})

    def _issue_token(self, query: tuple[tuple[str, str], ...], position: int) -> str:
        token = f"t{self._rng.getrandbits(64):016x}"
        self._page_tokens[token] = (query, position, time.monotonic())
        if len(self._page_tokens) > _TOKENS_KEPT:  # a sandbox serving for days forgets its oldest tokens
            del self._page_tokens[next(iter(self._page_tokens))]
        return token

    def bump(self, item: dict[str, Any]) -> None:
        """Change one stored order so it sorts after every other one (a newer ``updated_at``);
        a sandbox that supports ``touch_during_download`` overrides it."""
        raise NotImplementedError("this sandbox cannot change its orders")

    def _touch_during_download(self, ordered: list[dict[str, Any]], results: list[dict[str, Any]], ident: str) -> None:
        switches = self._switches
        if not switches.touch_during_download:
            return
        served = switches.served
        served.update((item[ident], None) for item in results)
        switches.pages_served += 1
        if switches.pages_served < switches.touch_during_download:
            return
        switches.touch_during_download = 0
        old = next((item for item in ordered if item[ident] in served), None)
        new = next((item for item in ordered if item[ident] not in served), None)
        for item in (old, new):
            if item is not None:
                self.bump(item)
                self.touched.append(item[ident])

    # --- dispatch ------------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes, host: str) -> Reply:
        split = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        if split.path.rstrip("/") == CONTROL_PREFIX or split.path.startswith(CONTROL_PREFIX + "/"):
            return self._control(method, split.path[len(CONTROL_PREFIX) :].rstrip("/"), body)
        entry: dict[str, Any] = {
            "method": method, "path": split.path, "status": None, "key_ok": False, "fault": None,
            "query": {k: v for k, v in query.items() if not _SECRET_PARAM.search(k)},
        }  # fmt: skip
        if self.auth.token_path is not None and split.path == self.auth.token_path:
            # its own quota and error shape (RFC 6749), never the API's faults
            reply = self.auth.token(method, headers, body)
            entry.update(status=reply.status, key_ok=reply.status == 200, token_request=True)
            self.log_request(entry)
            return reply
        reply = self._answer(Request(method, split.path, {}, query, headers, body, host), entry)
        entry["status"] = reply.status
        self.log_request(entry)
        return reply

    def _answer(self, request: Request, entry: dict[str, Any]) -> Reply:
        with self._lock:
            switches, fire = self._switches, lambda name: self._switches.triggers[name].fire(self._rng)
            fired = {name: fire(name) for name in ("drop_connection", "slow", "fail_5xx", "too_many_requests")}
        self.sleep(switches.latency)
        if fired["drop_connection"]:
            entry["fault"] = "drop_connection"
            return Reply(drop=True)
        if fired["slow"]:
            entry["fault"] = "slow"
            self.sleep(switches.slow_seconds)
        if fired["fail_5xx"]:
            entry["fault"] = "fail_5xx"
            return self.error(503, "server_error", "The service is temporarily unavailable; retry later.")
        limited = 1 if fired["too_many_requests"] else self._rate_limited()
        if limited is not None:
            return self.error(429, "rate_limited", "Too many requests.", {"Retry-After": str(limited)})
        found = self.match(request)
        if isinstance(found, str) and not self.plan_allows(found):
            return self.quota_exceeded(found)
        if not (isinstance(found, str) and found in self.public_routes):
            refused = self.auth.check(request.headers, self.error)
            if refused is not None:
                return refused
            entry["key_ok"] = True
        if isinstance(found, Reply):
            return found
        with self._lock:
            reply: Reply = getattr(self, found)(request)
            return self._spoil(self.after(found, reply, entry), entry, fire)

    def after(self, operation: str, reply: Reply, entry: dict[str, Any]) -> Reply:
        """The answer of ``operation`` as sent (override to add headers, or to lose an answer);
        ``entry`` is its request log record (set ``entry["fault"]`` for a fault)."""
        return reply

    def plan_allows(self, operation: str) -> bool:
        """Take a token of ``operation``'s bucket (``operation_limits``); False when it is empty.
        Always True while the plans are not enforced, or for an operation without one."""
        with self._lock:
            plan = self.operation_limits.get(operation)
            if not self._switches.operation_limits or plan is None:
                return True
            rate, burst = plan
            now = time.monotonic()
            tokens, last = self._buckets.get(operation, (float(burst), now))
            tokens = min(float(burst), tokens + (now - last) * rate * self._switches.rate_time_scale)
            allowed = tokens >= 1 - 1e-9
            self._buckets[operation] = (tokens - 1 if allowed else tokens, now)
            return allowed

    def quota_exceeded(self, operation: str) -> Reply:
        """The answer past an operation's usage plan (override for the channel's own)."""
        return self.error(429, "quota_exceeded", f"Too many {operation} requests for this account's usage plan.")

    def match(self, request: Request) -> str | Reply:
        """The handler's name for ``request`` (its path's parts put in ``request.params``), or
        the 404 / 405 to answer."""
        allowed = []
        for method, pattern, name in self._compiled:
            match = pattern.fullmatch(request.path)
            if match and method == request.method:
                request.params = {k: unquote(v) for k, v in match.groupdict().items()}
                return name
            if match:
                allowed.append(method)
        if allowed:
            return self.error(405, "method_not_allowed", f"{request.path} accepts {', '.join(allowed)}.")
        return self.error(
            404, "no_such_endpoint", f"No endpoint {request.method} {request.path}; see {CONTROL_PREFIX}/."
        )

    def _spoil(self, reply: Reply, entry: dict[str, Any], fire: Callable[[str], bool]) -> Reply:
        cut_json = b'{"count": 3, "results": [{"id": '
        spoilers: list[tuple[str, bool, Callable[[Reply], Reply]]] = [
            ("malformed_body", 200 <= reply.status < 300, lambda r: Reply(r.status, raw=cut_json)),
            ("cut_error_body", reply.status >= 400, cut_body),
            ("cut_off_body", True, truncated),
            ("huge_body", True, lambda r: huge_body()),
            ("endless_body", True, lambda r: endless_body()),
            ("trickle", True, lambda r: trickle(r, self._switches.trickle_seconds, self.sleep)),
        ]  # fmt: skip
        for name, applies, spoil in spoilers:
            if applies and fire(name):
                entry["fault"] = name
                return spoil(reply)
        return reply

    def _rate_limited(self) -> int | None:
        with self._lock:
            return over_limit(self._hits, self._switches.rate_limit, self._switches.rate_window)

    def _control(self, method: str, path: str, body: bytes) -> Reply:
        if (method, path) == ("GET", ""):
            api = [f"{m} {self.prefix}{p}" for m, p, _ in self.routes]
            control = [
                f"GET {CONTROL_PREFIX}/",
                f"GET|DELETE {CONTROL_PREFIX}/requests",
                f"GET|POST|DELETE {CONTROL_PREFIX}/faults",
            ]
            return Reply(200, {"api": api, "sandbox": control})
        if path == "/requests" and method in ("GET", "DELETE"):
            if method == "DELETE":
                self.clear_request_log()
            return Reply(200, {"requests": self.request_log()})
        if path == "/faults" and method in ("GET", "POST", "DELETE"):
            try:
                if method == "POST":
                    return Reply(200, {"faults": self.set_faults(**(json.loads(body or b"{}")))})
            except (ValueError, TypeError) as exc:
                return error(422, "validation_error", str(exc))
            with self._lock:
                return Reply(200, {"faults": self.clear_faults() if method == "DELETE" else self._switches.describe()})
        return error(404, "no_such_endpoint", f"No sandbox endpoint {method} {CONTROL_PREFIX}{path}.")


def _copies(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Shallow copies, so an order changed after its page was served is not sent changed."""
    return [dict(item) for item in items]
