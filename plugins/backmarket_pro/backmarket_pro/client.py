"""HTTP client of the Back Market Pro seller API: auth header, timeouts, retries, pagination.

Every path and query parameter of the assumed contract lives here (field names of the bodies
live in ``mapping.py``); ``docs/backmarket-pro-api.md`` is the human-readable copy.

Secrets: the x-api-key is set once, as a session header, and is never formatted into a URL, a
log record or an exception. Errors are raised ``from None`` because the requests exceptions we
translate hold the prepared request, headers included; a traceback printer must not reach it.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    NameResolutionError,
    NewConnectionError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.util.retry import Retry

from plugin_spec import AuthError, BadData, ChannelError, RateLimited, TransientError

from . import __version__
from .mapping import error_code, error_message, format_timestamp
from .settings import DEFAULT_WEBSITE_URL, BackMarketProSettings

log = logging.getLogger(__name__)

API_VERSION = "2024-03"
SELLER_ACCOUNT_PATH = f"/{API_VERSION}/seller-account"
ORDERS_PATH = f"/{API_VERSION}/orders"
PAGE_SIZE_MAX = 200
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
TRACKING_ALREADY_RECORDED = "tracking_already_recorded"


@dataclass(frozen=True)
class ClientOptions:
    """Timeouts, retry and paging knobs of :class:`BackMarketProClient` (tests shrink them)."""

    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    #: attempts after the first one, shared by connect errors, read errors and 429/5xx answers
    retries: int = 5
    #: exponential backoff: backoff_factor * 2 ** (retry - 1) seconds, plus random jitter
    backoff_factor: float = 0.5
    backoff_jitter: float = 0.5
    backoff_max: float = 30.0
    #: a Retry-After longer than this is cut down, so a job never sleeps for hours
    retry_after_max: int = 60
    #: the API maximum: fewest requests against the rate limit, still one small page in memory
    page_size: int = 200
    #: client-side limit per API key and process: at most this many requests per ``rate_window``
    #: seconds (Back Market allows about 200 per 10 s; stay under it rather than live on 429s)
    rate_limit: int = 180
    rate_window: float = 10.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ClientOptions:
        """Defaults, overridden by ``CARTPLUGIN_BMP_<FIELD>`` variables (e.g. CARTPLUGIN_BMP_READ_TIMEOUT=5)."""
        environ = os.environ if environ is None else environ
        changes: dict[str, Any] = {}
        for field in fields(cls):
            raw = environ.get(f"CARTPLUGIN_BMP_{field.name.upper()}")
            if raw is not None:
                kind = int if field.type in ("int", int) else float
                try:
                    changes[field.name] = kind(raw)
                except ValueError:
                    raise ValueError(f"CARTPLUGIN_BMP_{field.name.upper()} must be a number") from None
        return cls(**changes)


class RateLimiter:
    """A sliding window shared by every client of one API key in this process.

    ``acquire`` blocks until sending one more request keeps the key within ``limit`` requests
    in any ``window`` seconds: the same rule the channel enforces, so a busy company waits a
    little instead of being answered 429.
    """

    def __init__(self, limit: int, window: float):
        self.limit, self.window = limit, window
        # the channel counts arrivals, we count departures: a little extra span absorbs the
        # difference so a burst at the window's edge is not counted into the previous window
        self._span = window + min(0.25, window * 0.05)
        self._sent: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take a slot; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = time.monotonic()
                while self._sent and self._sent[0] <= now - self._span:
                    self._sent.popleft()
                if len(self._sent) < self.limit:
                    self._sent.append(now)
                    return waited
                pause = self._sent[0] + self._span - now
            time.sleep(pause)
            waited += pause


_limiters: dict[tuple[str, str], RateLimiter] = {}
_limiters_lock = threading.Lock()


def limiter_for(base_url: str, api_key: str, limit: int, window: float) -> RateLimiter:
    """The process-wide limiter of one (API, key); keyed by a digest, not the key itself."""
    ident = (base_url, hashlib.sha256(api_key.encode()).hexdigest())
    with _limiters_lock:
        limiter = _limiters.get(ident)
        if limiter is None or (limiter.limit, limiter.window) != (limit, window):
            limiter = _limiters[ident] = RateLimiter(limit, window)
        return limiter


class Rejected(ChannelError):
    """The API refused one request for a reason that repeating it will not fix (404, 422...)."""

    def __init__(self, message: str, status: int, code: str | None, api_message: str = ""):
        super().__init__(message)
        self.status = status
        self.code = code
        #: the API's own ``error.message`` (may be empty)
        self.api_message = api_message


class BackMarketProClient:
    """One seller account's connection: a requests.Session that belongs to one settings object.

    Use it as a context manager (or call :meth:`close`) so pooled connections are released.
    """

    def __init__(
        self,
        settings: BackMarketProSettings,
        *,
        connect_timeout: float = ClientOptions.connect_timeout,
        read_timeout: float = ClientOptions.read_timeout,
        retries: int = ClientOptions.retries,
        backoff_factor: float = ClientOptions.backoff_factor,
        backoff_jitter: float = ClientOptions.backoff_jitter,
        backoff_max: float = ClientOptions.backoff_max,
        retry_after_max: int = ClientOptions.retry_after_max,
        page_size: int = ClientOptions.page_size,
        rate_limit: int = ClientOptions.rate_limit,
        rate_window: float = ClientOptions.rate_window,
    ):
        if not 1 <= page_size <= PAGE_SIZE_MAX:
            raise ValueError(f"page_size must be between 1 and {PAGE_SIZE_MAX}")
        self.base_url = settings.website_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.page_size = page_size
        self.retries = retries
        self.limiter = limiter_for(self.base_url, settings.x_api_key.get_secret_value(), rate_limit, rate_window)
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            redirect=0,
            # POST is safe to repeat: the only POST creates a shipment, and a repeat of one that
            # did land answers 409 tracking_already_recorded, which counts as success.
            allowed_methods=frozenset({"GET", "POST"}),
            status_forcelist=RETRY_STATUSES,
            backoff_factor=backoff_factor,
            backoff_jitter=backoff_jitter,
            backoff_max=backoff_max,
            respect_retry_after_header=True,
            retry_after_max=retry_after_max,
            # hand back the last 429/5xx response instead of raising, so we can read its body
            # and Retry-After and translate it ourselves
            raise_on_status=False,
        )
        self.session = requests.Session()
        adapter = HTTPAdapter(max_retries=retry, pool_connections=1, pool_maxsize=4)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        # a proxy or .netrc from the environment must not add or replace credentials
        self.session.trust_env = False
        self.session.headers.update(
            {
                "x-api-key": settings.x_api_key.get_secret_value(),
                "Accept": "application/json",
                "User-Agent": f"cartplugin-backmarket-pro/{__version__}",
            }
        )

    @classmethod
    def from_options(cls, settings: BackMarketProSettings, options: ClientOptions) -> BackMarketProClient:
        """Build a client from a :class:`ClientOptions` bundle."""
        return cls(settings, **asdict(options))

    def __enter__(self) -> BackMarketProClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Release pooled connections."""
        self.session.close()

    # -----------------------------------------------------------------------------------------
    # endpoints

    def seller_account(self) -> dict[str, Any]:
        """``GET /2024-03/seller-account``: the cheap authenticated call behind Test Settings."""
        body = self._request("GET", self.base_url + SELLER_ACCOUNT_PATH)
        if not isinstance(body, dict):
            raise BadData(self._unexpected("the seller account", body))
        return body

    def iter_orders(
        self, *, updated_at_min: datetime | None = None, fulfillment_status: str = "unfulfilled"
    ) -> Iterator[Any]:
        """Yield raw orders of ``GET /2024-03/orders``, one page in memory at a time.

        Follows the ``next`` link the API returns (a keyset cursor, see the docs) until it is
        null; orders come sorted by (``updated_at``, ``id``) ascending.
        """
        params: dict[str, str] = {
            "fulfillment_status": fulfillment_status,
            "financial_status": "any",
            "page-size": str(self.page_size),
        }
        if updated_at_min is not None:
            params["updated_at_min"] = format_timestamp(updated_at_min)
        url: str | None = self.base_url + ORDERS_PATH
        request_params: dict[str, str] | None = params
        seen: set[str] = set()
        page = 0
        while url:
            page += 1
            body = self._request("GET", url, params=request_params)
            if not isinstance(body, dict) or not isinstance(body.get("results"), list):
                raise BadData(self._unexpected("an order listing page", body))
            log.debug("Back Market Pro orders page %d: %d orders", page, len(body["results"]))
            yield from body["results"]
            url = self._next_url(body.get("next"), seen)
            request_params = None  # the next link carries every filter itself

    def get_order(self, order_id: str) -> dict[str, Any]:
        """``GET /2024-03/orders/{id}``: one order (raises :class:`Rejected` with 404)."""
        body = self._request("GET", f"{self.base_url}{ORDERS_PATH}/{_segment(order_id)}")
        if not isinstance(body, dict):
            raise BadData(self._unexpected(f"order {order_id}", body))
        return body

    def post_shipment(self, order_id: str, body: dict[str, Any]) -> bool:
        """``POST /2024-03/orders/{id}/shipments``.

        :return: True when the channel recorded the tracking now, False when it already had it
            (409 ``tracking_already_recorded``).
        :raises Rejected: 404 unknown order, 422 invalid shipment, other 4xx.
        """
        url = f"{self.base_url}{ORDERS_PATH}/{_segment(order_id)}/shipments"
        try:
            # a 2xx means the channel recorded it, whatever the body says (it may be cut off)
            self._request("POST", url, json=body, body_needed=False)
        except Rejected as exc:
            if exc.status == 409 and exc.code == TRACKING_ALREADY_RECORDED:
                return False
            raise
        return True

    # -----------------------------------------------------------------------------------------
    # plumbing

    def _request(self, method: str, url: str, *, body_needed: bool = True, **kwargs: Any) -> Any:
        """Send one request (urllib3 retries inside) and return the parsed JSON body.

        With ``body_needed=False`` a 2xx answer is success even when its body is not JSON.
        """
        where = self._where(url)
        waited = self.limiter.acquire()
        if waited:
            log.debug("waited %.2f s to stay under the rate limit of this API key", waited)
        try:
            response = self.session.request(method, url, timeout=self.timeout, allow_redirects=False, **kwargs)
        except requests.exceptions.ConnectTimeout:
            raise TransientError(
                f"Could not connect to {self.base_url} within {self.timeout[0]:g} s (tried "
                f"{1 + self._retries()} times). Check the Website URL and this server's network."
            ) from None
        except requests.exceptions.ReadTimeout:
            raise TransientError(
                f"Back Market Pro did not answer {where} within {self.timeout[1]:g} s "
                f"(tried {1 + self._retries()} times); try again later."
            ) from None
        except requests.exceptions.ConnectionError as exc:
            raise TransientError(self._connection_message(exc, where)) from None
        except requests.exceptions.InvalidHeader:
            # requests quotes the offending header value, i.e. the key: never pass it on
            raise AuthError("The x-api-key contains characters that cannot be sent; re-enter it.") from None
        except UnicodeEncodeError:
            raise AuthError("The x-api-key contains non-ASCII characters; re-enter it.") from None
        except requests.exceptions.RequestException as exc:
            raise TransientError(f"Request to Back Market Pro {where} failed: {type(exc).__name__}") from None
        with response:
            return self._parse(response, where, body_needed)

    def _parse(self, response: requests.Response, where: str, body_needed: bool = True) -> Any:
        status = response.status_code
        content_type = response.headers.get("Content-Type", "unknown content type")
        try:
            body = response.json()
        except ValueError:
            body = _NOT_JSON
        if 200 <= status < 300:
            if body is _NOT_JSON and not body_needed:
                return None
            if body is _NOT_JSON and "json" in content_type.lower():
                raise BadData(
                    f"Back Market Pro answered {where} with HTTP {status} and a malformed JSON body "
                    "(cut off or corrupted on the way); try again later."
                )
            if body is _NOT_JSON:
                raise BadData(
                    f"{self.base_url} answered {where} with HTTP {status} but not with JSON "
                    f"({content_type.split(';')[0]}): this does not look like the Back Market Pro "
                    f"API. Check the Website URL (normally {DEFAULT_WEBSITE_URL})."
                )
            return body
        api_message = error_message(body, fallback="")
        detail = f": {api_message}" if api_message else ""
        if status in (401, 403):
            raise AuthError(
                f"Back Market Pro refused the x-api-key (HTTP {status}{detail}). Check the key in "
                "Cart General, or ask Back Market Pro for a new one if it was revoked."
            )
        if status == 429:
            retry_after = _retry_after(response)
            wait = f" Wait {retry_after:g} s before trying again." if retry_after is not None else ""
            raise RateLimited(
                f"Back Market Pro kept answering 429 Too Many Requests to {where} after "
                f"{self._retries()} retries.{wait}",
                retry_after=retry_after,
            )
        if status >= 500:
            raise TransientError(
                f"Back Market Pro had a server error (HTTP {status}) on {where} after "
                f"{self._retries()} retries{detail}; try again later."
            )
        if body is _NOT_JSON and status == 404:
            raise BadData(
                f"{self.base_url} has no Back Market Pro API at {where} (HTTP 404, not JSON). "
                f"Check the Website URL (normally {DEFAULT_WEBSITE_URL})."
            )
        if 300 <= status < 400:
            raise BadData(
                f"{self.base_url} redirected {where} (HTTP {status}); the Website URL is probably "
                f"wrong (normally {DEFAULT_WEBSITE_URL})."
            )
        raise Rejected(
            f"Back Market Pro rejected {where} (HTTP {status}){detail or '.'}",
            status=status,
            code=error_code(body),
            api_message=api_message,
        )

    def _next_url(self, raw: Any, seen: set[str]) -> str | None:
        if raw is None:
            return None
        if not isinstance(raw, str) or not raw:
            raise BadData("Back Market Pro sent an order page whose next link is not a URL.")
        url = urljoin(self.base_url + ORDERS_PATH, raw)
        base, target = urlsplit(self.base_url), urlsplit(url)
        # the session would send the key wherever `next` points: only follow it home
        if (target.scheme, target.netloc) != (base.scheme, base.netloc):
            raise BadData(f"Back Market Pro sent a next link to another host ({target.netloc}); refusing to follow it.")
        if url in seen:
            raise BadData("Back Market Pro sent the same next link twice; stopping to avoid an endless loop.")
        seen.add(url)
        return url

    def _where(self, url: str) -> str:
        """The request's path for messages (never a query string: it may carry a cursor)."""
        return urlsplit(url).path

    def _retries(self) -> int:
        return self.retries

    def _unexpected(self, what: str, body: Any) -> str:
        return (
            f"Back Market Pro answered with JSON that is not {what} (got {type(body).__name__}); "
            f"check the Website URL (normally {DEFAULT_WEBSITE_URL})."
        )

    def _connection_message(self, exc: requests.exceptions.ConnectionError, where: str) -> str:
        # after the retries, requests wraps urllib3's MaxRetryError; its reason is the last error
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        tries = 1 + self._retries()
        if isinstance(reason, ReadTimeoutError):
            return (
                f"Back Market Pro did not answer {where} within {self.timeout[1]:g} s (tried {tries} "
                "times); try again later."
            )
        # NewConnectionError subclasses ConnectTimeoutError: test the specific ones first
        if isinstance(reason, NameResolutionError):
            return (
                f"Could not reach {self.base_url}: the host name does not resolve. Check the Website "
                f"URL (normally {DEFAULT_WEBSITE_URL})."
            )
        if isinstance(reason, NewConnectionError):
            return (
                f"Could not reach {self.base_url}: nothing accepts connections there. Check the Website "
                f"URL (normally {DEFAULT_WEBSITE_URL}) and that this server can reach it."
            )
        if isinstance(reason, ConnectTimeoutError):
            return (
                f"Could not connect to {self.base_url} within {self.timeout[0]:g} s (tried {tries} "
                "times). Check the Website URL and this server's network."
            )
        if isinstance(reason, SSLError) or isinstance(exc, requests.exceptions.SSLError):
            return f"Could not open a secure connection to {self.base_url}: TLS/certificate problem."
        return f"The connection to Back Market Pro broke during {where} (tried {tries} times); try again later."


_NOT_JSON = object()


def _segment(value: str) -> str:
    """Quote an id for use as one path segment."""
    return quote(str(value), safe="")


def _retry_after(response: requests.Response) -> float | None:
    raw = response.headers.get("Retry-After", "").strip()
    return float(raw) if raw.isdigit() else None
