"""HTTP client of the Back Market seller API: headers, timeouts, retries, page-number paging.

Every path, query parameter and header of the contract lives here (body field names live in
``mapping.py``). The token is set once, as a session header, and is never formatted into a
URL, a log record or an exception; requests' exceptions hold the prepared request (headers
included), so they are translated ``from None``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from plugin_spec import AuthError, BadData, ChannelError, RateLimited, TransientError

from . import __version__
from .mapping import error_code, error_detail, format_filter_time
from .settings import BackMarketSettings

log = logging.getLogger(__name__)

ORDERS_PATH = "/ws/orders"
PAGE_SIZE_MAX = 50
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Back Market asks integrators for a User-Agent that names the integration
USER_AGENT = f"cartplugin-backmarket/{__version__} (cartplugin order-management host)"


@dataclass(frozen=True)
class ClientOptions:
    """Timeouts, retries and page size (tests shrink them)."""

    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    retries: int = 5
    backoff_factor: float = 0.5
    backoff_jitter: float = 0.5
    backoff_max: float = 30.0
    #: about 200 requests per 10 s: a longer Retry-After is cut to this
    retry_after_max: int = 60
    page_size: int = PAGE_SIZE_MAX


class Rejected(ChannelError):
    """The API refused one request for a reason a repeat will not fix (400, 404...)."""

    def __init__(self, message: str, status: int, code: str | None, detail: str = ""):
        super().__init__(message)
        self.status, self.code, self.detail = status, code, detail


class BackMarketClient:
    """One seller account's connection (a requests.Session); use it as a context manager."""

    def __init__(self, settings: BackMarketSettings, options: ClientOptions = ClientOptions()):
        if not 1 <= options.page_size <= PAGE_SIZE_MAX:
            raise ValueError(f"page_size must be between 1 and {PAGE_SIZE_MAX}")
        self.base_url = settings.base_url.rstrip("/")
        self.options = options
        self.timeout = (options.connect_timeout, options.read_timeout)
        retry = Retry(
            total=options.retries,
            connect=options.retries,
            read=options.retries,
            status=options.retries,
            other=0,
            redirect=0,
            # POST ships an order: a repeat of one that landed answers "already shipped", which
            # the plugin turns into already_recorded, so retrying it is safe
            allowed_methods=frozenset({"GET", "POST"}),
            status_forcelist=RETRY_STATUSES,
            backoff_factor=options.backoff_factor,
            backoff_jitter=options.backoff_jitter,
            backoff_max=options.backoff_max,
            respect_retry_after_header=True,
            retry_after_max=options.retry_after_max,
            raise_on_status=False,
        )
        self.session = requests.Session()
        adapter = HTTPAdapter(max_retries=retry, pool_connections=1, pool_maxsize=4)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.trust_env = False  # no proxy or .netrc credentials from the environment
        self.session.headers.update(
            {
                "Authorization": f"Basic {settings.token.get_secret_value()}",
                "Accept": "application/json",
                "Accept-Language": settings.country_code,
                "User-Agent": USER_AGENT,
            }
        )

    def __enter__(self) -> BackMarketClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.session.close()

    # --- endpoints ----------------------------------------------------------------------------

    def probe(self) -> int:
        """``GET /ws/orders?page-size=1``: the cheap authenticated call of Test Settings; the count."""
        body = self._request("GET", self.base_url + ORDERS_PATH, params={"page-size": "1"})
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise BadData(self._unexpected("an order listing", body))
        count = body.get("count")
        return count if isinstance(count, int) else len(body["results"])

    def iter_orders(self, *, state: int | None, modified_since: datetime | None) -> Iterator[Any]:
        """Yield raw orders of ``GET /ws/orders``, one page in memory at a time, following ``next``."""
        params = {"page": "1", "page-size": str(self.options.page_size)}
        if state is not None:
            params["state"] = str(state)
        if modified_since is not None:
            params["date_modification"] = format_filter_time(modified_since)
        url: str | None = self.base_url + ORDERS_PATH
        request_params: dict[str, str] | None = params
        seen: set[str] = set()
        while url:
            body = self._request("GET", url, params=request_params)
            if not isinstance(body, dict) or not isinstance(body.get("results"), list):
                raise BadData(self._unexpected("an order listing page", body))
            yield from body["results"]
            url = self._next_url(body.get("next"), seen)
            request_params = None  # the next link carries every filter itself

    def get_order(self, order_id: str) -> dict[str, Any]:
        body = self._request("GET", f"{self.base_url}{ORDERS_PATH}/{_segment(order_id)}")
        if not isinstance(body, dict):
            raise BadData(self._unexpected(f"order {order_id}", body))
        return body

    def ship(self, order_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /ws/orders/{id}`` with ``new_state`` 3; raises Rejected on 400/404."""
        answer = self._request("POST", f"{self.base_url}{ORDERS_PATH}/{_segment(order_id)}", json=body)
        return answer if isinstance(answer, dict) else {}

    # --- plumbing -----------------------------------------------------------------------------

    def _request(self, method: str, url: str, **kwargs: Any) -> Any:
        where = urlsplit(url).path  # never the query: keep messages short and cursor-free
        tries = 1 + self.options.retries
        try:
            response = self.session.request(method, url, timeout=self.timeout, allow_redirects=False, **kwargs)
        except requests.exceptions.ConnectTimeout:
            raise TransientError(
                f"Could not connect to {self.base_url} within {self.timeout[0]:g} s (tried {tries} times). "
                "Check the region / API URL and this server's network."
            ) from None
        except requests.exceptions.ReadTimeout:
            raise TransientError(f"Back Market did not answer {where} in time (tried {tries} times); try again later.") from None
        except requests.exceptions.ConnectionError:
            raise TransientError(
                f"Could not reach Back Market at {self.base_url} for {where} (tried {tries} times). "
                "Check the region / API URL and this server's network."
            ) from None
        except (requests.exceptions.InvalidHeader, UnicodeEncodeError):
            # requests quotes the offending header value, i.e. the token: never pass it on
            raise AuthError("The API token contains characters that cannot be sent; re-enter it.") from None
        except requests.exceptions.RequestException as exc:
            raise TransientError(f"Request to Back Market {where} failed: {type(exc).__name__}") from None
        with response:
            return self._parse(response, where)

    def _parse(self, response: requests.Response, where: str) -> Any:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = _NOT_JSON
        if 200 <= status < 300:
            if body is _NOT_JSON:
                raise BadData(
                    f"{self.base_url} answered {where} with HTTP {status} but not with JSON: this does not "
                    "look like the Back Market API. Check the region / API URL."
                )
            return body
        detail = error_detail(body)
        suffix = f": {detail}" if detail else ""
        if status in (401, 403):
            raise AuthError(
                f"Back Market refused the API token (HTTP {status}{suffix}). Check the token in Cart "
                "General (it is the one from the Back Market seller portal, API section), and the region."
            )
        if status == 429:
            retry_after = _retry_after(response)
            wait = f" Wait {retry_after:g} s before trying again." if retry_after is not None else ""
            raise RateLimited(
                f"Back Market kept answering 429 Too Many Requests to {where} after {self.options.retries} "
                f"retries (the limit is about 200 requests per 10 s).{wait}",
                retry_after=retry_after,
            )
        if status >= 500:
            raise TransientError(
                f"Back Market had a server error (HTTP {status}) on {where} after {self.options.retries} retries; "
                "try again later."
            )
        if 300 <= status < 400 or (status == 404 and body is _NOT_JSON):
            raise BadData(
                f"{self.base_url} has no Back Market API at {where} (HTTP {status}). Check the region / API URL."
            )
        raise Rejected(
            f"Back Market rejected {where} (HTTP {status}){suffix or '.'}",
            status=status,
            code=error_code(body),
            detail=detail,
        )

    def _next_url(self, raw: Any, seen: set[str]) -> str | None:
        if raw is None:
            return None
        if not isinstance(raw, str) or not raw:
            raise BadData("Back Market sent an order page whose next link is not a URL.")
        url = urljoin(self.base_url + ORDERS_PATH, raw)
        base, target = urlsplit(self.base_url), urlsplit(url)
        # the session would send the token wherever `next` points: only follow it home
        if (target.scheme, target.netloc) != (base.scheme, base.netloc):
            raise BadData(f"Back Market sent a next link to another host ({target.netloc}); refusing to follow it.")
        if url in seen:
            raise BadData("Back Market sent the same next link twice; stopping to avoid an endless loop.")
        seen.add(url)
        return url

    def _unexpected(self, what: str, body: Any) -> str:
        return (
            f"Back Market answered with JSON that is not {what} (got {type(body).__name__}); "
            "check the region / API URL."
        )


_NOT_JSON = object()


def _segment(order_id: str) -> str:
    if not order_id or not order_id.isdigit():
        raise Rejected(f"{order_id!r:.40} is not a Back Market order id (they are numbers).", status=404, code="not_found")
    return order_id


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
