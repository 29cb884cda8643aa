"""A JSON API session for channel plugins: the HTTP plumbing every channel needs, once.

A plugin's ``client.py`` keeps only its paths, query parameters, headers and messages; this
module does the rest, the way Airbyte's ``HttpStream`` lets a connector write only its path,
params, paging and parsing:

* a hardened ``requests`` session: no proxy or ``.netrc`` credentials from the environment,
  no redirect followed (a redirect to another origin would carry the key), urllib3 ``Retry``
  with exponential backoff and jitter honouring ``Retry-After`` for 429 and 5xx;
* connect and read timeouts, and a total deadline per answer, so a server that trickles one
  byte at a time cannot hold a job forever;
* bodies streamed with a size cap: an answer larger than ``max_body`` is refused without
  being held in memory;
* one mapping of status and body to ``AuthError``, ``RateLimited``, ``TransientError``,
  ``BadData`` or ``Rejected``; an error answer whose body is cut off or unreadable is
  transient, never a definitive refusal;
* a ``next``-link follower that compares normalised origins and requires progress, and
  fetches the next page on a thread of its own while the caller works on the current one;
  other ways of paging (offset, page token, keyset) are the pagers of ``plugin_spec.paging``;
* an optional reader of a page's bytes (e.g. pydantic's ``validate_json`` into the channel's
  models), so a page can be parsed and validated in one pass, with the plain JSON path as
  its fallback.

Secrets: the credential is a session header, never part of a URL, a log record or an
exception. requests' exceptions hold the prepared request (headers included), so every one
is translated ``from None``.
"""

from __future__ import annotations

import contextvars
import http.cookiejar
import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields
from types import TracebackType
from typing import Any, Self
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ReadTimeoutError,
    ResponseError,
    SSLError,
)
from urllib3.util.retry import Retry

from . import stopping
from .auth import Auth
from .errors import AuthError, BadData, ChannelError, RateLimited, TransientError
from .paging import Listing, NextLink, Pager, _hashable, dig
from .progress import page_read
from .ratelimit import Limiter, Rate, Window, group_limiter, limiter_for

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
DEFAULT_PORTS = {"http": 80, "https": 443}
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class HttpOptions:
    """Timeouts, retries, limits and paging bounds of a :class:`JsonApi` (tests shrink them)."""

    connect_timeout: float = 5.0
    #: seconds one socket read may wait for the next byte
    read_timeout: float = 30.0
    #: seconds one answer may take in all, body included (a trickling server is cut off)
    deadline: float = 120.0
    #: attempts after the first one, shared by connect errors, read errors and 429/5xx answers
    retries: int = 5
    #: exponential backoff: backoff_factor * 2 ** (retry - 1) seconds, plus random jitter
    backoff_factor: float = 0.5
    backoff_jitter: float = 0.5
    backoff_max: float = 30.0
    #: a Retry-After longer than this is cut down, so a job never sleeps for hours
    retry_after_max: int = 60
    #: the largest answer read, in bytes; a larger one is refused, not held in memory
    max_body: int = 32 * 1024 * 1024
    #: the most pages one listing may follow before it is taken for a loop
    max_pages: int = 20_000
    #: 1: fetch a listing's next page on a thread while the caller works on this one; 0: don't
    prefetch_pages: int = 1
    #: requests per ``rate_window`` seconds per API key, shared by every process of one host
    rate_limit: int = 180
    rate_window: float = 10.0
    #: requests in flight at once where a plugin sends many (``wire.upload_each``); the
    #: connection pool holds as many. 8 x (1 / 150 ms) = 53 requests/s, three times the limit's
    #: 18/s, so the limit, not latency, bounds an upload up to about 450 ms a request
    concurrency: int = 8

    @classmethod
    def from_env(cls, prefix: str, environ: Mapping[str, str] | None = None) -> Self:
        """Defaults, overridden by ``<prefix><FIELD>`` variables (e.g. CARTPLUGIN_BMP_READ_TIMEOUT=5)."""
        environ = os.environ if environ is None else environ
        changes: dict[str, Any] = {}
        for field in fields(cls):
            name = f"{prefix}{field.name.upper()}"
            raw = environ.get(name)
            if raw is not None:
                kind = int if field.type in ("int", int) else float
                try:
                    changes[field.name] = kind(raw)
                except ValueError:
                    raise ValueError(f"{name} must be a number") from None
        return cls(**changes)


@dataclass(frozen=True)
class ApiProfile:
    """How messages name a channel and read its error bodies (the only per-channel part)."""

    #: the channel's name in messages, e.g. "Back Market Pro"
    name: str
    #: the sentence that tells staff where the URL is set, e.g. "Check the Website URL."
    check_url: str
    #: the credential's name as staff see it, e.g. "x-api-key"
    key_name: str
    #: what to do when the key is refused
    auth_hint: str
    #: appended to the 429 message, e.g. " (the limit is about 200 requests per 10 s)"
    rate_hint: str = ""
    #: the API's own error text from a parsed error body ('' when none)
    error_detail: Callable[[Any], str] = lambda body: ""
    #: the API's machine-readable error code from a parsed error body
    error_code: Callable[[Any], str | None] = lambda body: None
    #: the id the channel gives an error answer so its support can trace it (``requestId``)
    request_id: Callable[[Any], str | None] = lambda body: _default_request_id(body)
    #: headers that trace an answer when its body cannot: a firewall's HTML page has only these
    trace_headers: tuple[str, ...] = ("cf-ray", "x-request-id")


class _BoundedRetry(Retry):
    """urllib3's ``Retry`` within the deadline of the ``stopping`` scope in force (Test Settings):
    no attempt is made once the pause before it (a backoff, or the answer's Retry-After) would
    end past the deadline, so no pause lasts past it. Outside such a scope it is urllib3's own."""

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: TracebackType | None = None,
    ) -> Self:
        new = super().increment(method, url, response, error, _pool, _stacktrace)
        left = stopping.time_left()
        if left is not None and (left <= 0 or new._pause(response) >= left):
            # as urllib3 gives up when the retries are used up: the last error, or the last answer
            reason = error or ResponseError(f"no time left before the deadline for another attempt ({left:.1f} s)")
            raise MaxRetryError(_pool, url, reason) from reason
        return new

    def _pause(self, response: Any) -> float:
        """Seconds ``sleep(response)`` would wait before the next attempt."""
        if self.respect_retry_after_header and response is not None:
            wanted = self.get_retry_after(response)
            if wanted is not None:
                return wanted
        return self.get_backoff_time()


class Rejected(ChannelError):
    """The API refused one request for a reason a repeat will not fix (404, 409, 422...)."""

    def __init__(self, message: str, status: int, code: str | None, detail: str = "", request_id: str | None = None):
        super().__init__(message)
        self.status, self.code, self.detail, self.request_id = status, code, detail, request_id


def _default_request_id(body: Any) -> str | None:
    value = body.get("requestId", body.get("request_id")) if isinstance(body, dict) else None
    return value[:100] if isinstance(value, str) and value.isprintable() and value else None


def origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, lowercase host and port with the default filled in: ``HTTP://A.com:80`` is ``http://a.com``."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        raise BadData(f"{url[:80]!r} has an invalid port.") from None
    return scheme, (parts.hostname or "").lower(), port or DEFAULT_PORTS.get(scheme)


class _Unreadable(Exception):
    """The body could not be read whole (cut off, reset, timed out)."""


_NOT_JSON = object()


class JsonApi:
    """One account's connection to one JSON API; use it as a context manager.

    Rate limits: every request takes a slot first, shared by every process of the host
    (``plugin_spec.ratelimit``), counted per ``limit_key``: the string the channel counts
    requests by, usually the API key or the account id (only its digest is stored). A request
    without ``operation`` takes one from the key's window (``HttpOptions.rate_limit`` per
    ``rate_window``); ``rate_limits`` declares limits per operation group instead, e.g.
    ``{"orders": Rate(0.0056, 20), "shipments": Rate(2, 10)}``, and ``request(...,
    operation="orders")`` or ``pages(..., operation="orders")`` takes its slot from that group's
    bucket only. ``secret`` is the old name of ``limit_key`` (deprecated).
    """

    def __init__(
        self,
        base_url: str,
        profile: ApiProfile,
        options: HttpOptions,
        *,
        headers: Mapping[str, str] | None = None,
        auth: Auth | None = None,
        limit_key: str | None = None,
        rate_limits: Mapping[str, Rate | Window] | None = None,
        secret: str | None = None,
        retry_post: bool = False,
    ):
        """
        :param headers: sent with every request (a User-Agent, an API version...).
        :param auth: how requests authenticate (``plugin_spec.auth``): a key header, or OAuth
            2.0 tokens renewed once inside a request the API answers with 401.
        :param limit_key: what the channel counts requests by, when ``auth`` does not say (a key
            put in ``headers`` by hand); only its digest is kept. ``secret`` is its old name.
        :param rate_limits: limits per operation group (``request(..., operation=...)``).
        """
        self.base_url = base_url.rstrip("/")
        self.profile, self.options = profile, options
        self.auth = auth if auth is not None else Auth()
        limit_key = _limit_key(limit_key, secret, self.auth)
        self.limiter = limiter_for(self.base_url, limit_key, options.rate_limit, options.rate_window)
        self.limiters = {
            op: group_limiter(self.base_url, limit_key, op, lim) for op, lim in (rate_limits or {}).items()
        }
        methods = {"GET", "POST"} if retry_post else {"GET"}
        retry = _BoundedRetry(
            total=options.retries, connect=options.retries, read=options.retries, status=options.retries,
            other=0, redirect=0, allowed_methods=frozenset(methods), status_forcelist=RETRY_STATUSES,
            backoff_factor=options.backoff_factor, backoff_jitter=options.backoff_jitter,
            backoff_max=options.backoff_max, respect_retry_after_header=True,
            retry_after_max=options.retry_after_max,
            # hand back the last 429/5xx answer, so its body and Retry-After are translated here
            raise_on_status=False,
        )  # fmt: skip
        self.session = requests.Session()
        # one connection per thread of an upload (``concurrency``): the session is shared by its threads,
        # urllib3's pool is thread-safe, and a pool smaller than the threads would reconnect each time
        adapter = HTTPAdapter(max_retries=retry, pool_connections=1, pool_maxsize=max(4, options.concurrency))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.trust_env = False  # a proxy or .netrc from the environment must not add credentials
        # no cookies kept: the key authenticates every request, and a jar that answers write into
        # while other threads copy it into their requests is the one part of a Session not thread-safe
        self.session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        self.session.headers.update({"Accept": "application/json", **self.auth.static_headers(), **(headers or {})})

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    def url(self, path: str) -> str:
        return self.base_url + path

    def limiter_of(self, operation: str | None) -> Limiter:
        """The limiter a request of ``operation`` takes its slot from (None: the key's window)."""
        if operation is None:
            return self.limiter
        try:
            return self.limiters[operation]
        except KeyError:
            raise ValueError(f"no rate limit is declared for the operation {operation!r} (rate_limits)") from None

    # --- one request ----------------------------------------------------------------------------

    def request(
        self, method: str, path_or_url: str, *, body_needed: bool = True, operation: str | None = None, **kwargs: Any
    ) -> Any:
        """Send one request (urllib3 retries inside) and return its parsed JSON body.

        With ``body_needed=False`` a 2xx answer is success even when its body is not JSON.
        ``operation`` names the rate-limit group the request counts against (``rate_limits``).
        """
        response, raw, where = self._exchange(method, path_or_url, operation=operation, **kwargs)
        return self._parse(response, raw, where, body_needed)

    def _exchange(
        self,
        method: str,
        path_or_url: str,
        *,
        operation: str | None = None,
        authenticate: bool = True,
        limiter: Limiter | None = None,
        **kwargs: Any,
    ) -> tuple[requests.Response, bytes, str]:
        """Send one request and read its whole body (within the deadline and the size cap),
        without parsing it: the answer, its bytes and the path to name in messages.

        A 401 answer (``auth.renew_on``) makes ``auth`` renew its credential once (an OAuth 2.0
        access token that expired or was revoked early) and the request is sent again with it.
        ``authenticate=False`` sends no credential (a token request); ``limiter`` counts the
        request elsewhere than this API's own limit (a token endpoint's).
        """
        url = path_or_url if "://" in path_or_url else self.url(path_or_url)
        where = urlsplit(url).path  # never the query: it may carry a cursor
        extra_headers = dict(kwargs.pop("headers", None) or {})
        for attempt in (1, 2):
            waited = (limiter or self.limiter_of(operation)).acquire()
            if waited:
                log.debug("waited %.2f s to stay under the rate limit of this API key", waited)
            # after the wait, which may be longer than the token has left to live
            sent = self.auth.request_headers(self) if authenticate else {}
            started = time.monotonic()
            try:
                response = self.session.request(
                    method, url, timeout=self._timeouts(),
                    allow_redirects=False, stream=True, headers={**extra_headers, **sent}, **kwargs,
                )  # fmt: skip
            except requests.exceptions.RequestException as exc:
                raise self._network_error(exc, where, url) from None
            except UnicodeEncodeError:
                raise AuthError(f"The {self.profile.key_name} contains non-ASCII characters; re-enter it.") from None
            if attempt == 1 and sent and response.status_code in self.auth.renew_on:
                try:
                    renewed = self.auth.renew_after_refusal(self, sent)
                except BaseException:
                    response.close()  # the refused answer's connection goes back to the pool
                    raise
                if renewed:
                    response.close()
                    continue
            break
        with response:
            try:
                raw = self._read(response, started, where)
            except _Unreadable as exc:
                response.raw.close()  # never hand a half-read connection back to the pool
                raise TransientError(
                    f"{self.profile.name} answered {where} with HTTP {response.status_code} but the "
                    f"answer {exc}; try again later."
                ) from None
        return response, raw, where

    def _timeouts(self) -> tuple[float, float]:
        """Connect and read timeouts, cut to the time left before the scope's deadline, if any."""
        connect_s, read_s = self.options.connect_timeout, self.options.read_timeout
        left = stopping.time_left()
        if left is not None:
            connect_s, read_s = max(0.01, min(connect_s, left)), max(0.01, min(read_s, left))
        return connect_s, read_s

    def _read(self, response: requests.Response, started: float, where: str) -> bytes:
        cap = self.options.max_body
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > cap:
            response.raw.close()
            raise BadData(self._too_large(where))
        chunks: list[bytes] = []
        size = 0
        try:
            while True:
                if time.monotonic() - started > self.options.deadline:
                    raise _Unreadable(f"did not finish within {self.options.deadline:g} s")
                if stopping.time_left() == 0:
                    raise _Unreadable("did not finish before the deadline")
                # read1 returns what one socket read brings, so the deadline is checked between
                # reads however slowly the bytes arrive
                chunk = response.raw.read1(_CHUNK, decode_content=True)
                if not chunk:
                    return b"".join(chunks)
                size += len(chunk)
                if size > cap:
                    response.raw.close()
                    raise BadData(self._too_large(where))
                chunks.append(chunk)
        except (requests.exceptions.RequestException, OSError, ValueError) as exc:
            raise _Unreadable(f"was cut off ({type(exc).__name__})") from None
        except Exception as exc:  # urllib3's ProtocolError, ReadTimeoutError, DecodeError...
            if isinstance(exc, (BadData, _Unreadable)):
                raise
            raise _Unreadable(f"was cut off or unreadable ({type(exc).__name__})") from None

    def _too_large(self, where: str) -> str:
        return (
            f"{self.profile.name} answered {where} with more than {self.options.max_body / (1024 * 1024):g} MB; "
            f"refusing to read it. {self.profile.check_url}"
        )

    def _parse(self, response: requests.Response, raw: bytes, where: str, body_needed: bool) -> Any:
        status = response.status_code
        content_type = response.headers.get("Content-Type", "unknown content type")
        says_json = "json" in content_type.lower()
        try:
            body = json.loads(raw) if raw else _NOT_JSON
        except (ValueError, RecursionError):
            body = _NOT_JSON
        name, base, check = self.profile.name, self.base_url, self.profile.check_url
        if 200 <= status < 300:
            if body is _NOT_JSON and not body_needed:
                return None
            if body is _NOT_JSON and says_json:
                raise BadData(
                    f"{name} answered {where} with HTTP {status} and a malformed JSON body "
                    "(cut off or corrupted on the way); try again later."
                )
            if body is _NOT_JSON:
                raise BadData(
                    f"{base} answered {where} with HTTP {status} but not with JSON "
                    f"({content_type.split(';')[0]}): this does not look like the {name} API. {check}"
                )
            return body
        detail = self.profile.error_detail(body) if body is not _NOT_JSON else ""
        reference = self._reference(response, body)
        # the channel's own sentence goes inside this one: its final full stop would double ours
        said = detail.rstrip(" .") if detail else ""
        suffix = (f": {said}" if said else "") + (f" (request id {reference})" if reference else "")
        retries = self.options.retries
        if status == 403 and body is _NOT_JSON and not says_json:
            # a web application firewall answers with an HTML page, not the API's error body
            raise AuthError(
                f"{name} (or its firewall) refused {where} with HTTP 403 and no API error{suffix}. "
                f"{self.profile.auth_hint} If the settings are right, give the request id to the channel's support."
            )
        if status in (401, 403):
            raise AuthError(
                f"{name} refused the {self.profile.key_name} (HTTP {status}{suffix}). {self.profile.auth_hint}"
            )
        if status == 429:
            retry_after = _retry_after(response)
            wait = f" Wait {retry_after:g} s before trying again." if retry_after is not None else ""
            traced = f" (request id {reference})" if reference else ""
            raise RateLimited(
                f"{name} kept answering 429 Too Many Requests to {where} after {retries} retries"
                f"{self.profile.rate_hint}{traced}.{wait}",
                retry_after=retry_after,
            )
        if status >= 500:
            raise TransientError(
                f"{name} had a server error (HTTP {status}) on {where} after {retries} retries{suffix}; "
                "try again later."
            )
        if 300 <= status < 400:
            raise BadData(f"{base} redirected {where} (HTTP {status}); the URL is probably wrong. {check}")
        if body is _NOT_JSON and status == 404 and not says_json:
            raise BadData(f"{base} has no {name} API at {where} (HTTP 404, not JSON). {check}")
        if body is _NOT_JSON:
            # a refusal is only final when it can be read: a cut-off "already recorded" is not a failure
            raise TransientError(
                f"{name} answered {where} with HTTP {status} but its body was cut off or unreadable; try again later."
            )
        raise Rejected(
            f"{name} rejected {where} (HTTP {status}){suffix}.",
            status=status, code=self.profile.error_code(body), detail=detail, request_id=reference,
        )  # fmt: skip

    def _reference(self, response: requests.Response, body: Any) -> str | None:
        """The channel's trace id of an error answer: from its body, else from a trace header."""
        if body is not _NOT_JSON:
            found = self.profile.request_id(body)
            if found:
                return found
        for header in self.profile.trace_headers:
            value = response.headers.get(header, "").strip()
            if value and value.isprintable():
                return value[:100]
        return None

    def _network_error(self, exc: requests.exceptions.RequestException, where: str, url: str) -> ChannelError:
        name, base, check = self.profile.name, self.base_url, self.profile.check_url
        if origin(url) != origin(self.base_url):
            # another host than the API's (a token endpoint): name that one
            parts = urlsplit(url)
            base = f"{parts.scheme}://{parts.netloc}"
        tries = 1 + self.options.retries
        connect_s, read_s = self.options.connect_timeout, self.options.read_timeout
        if isinstance(exc, requests.exceptions.InvalidHeader):
            # requests quotes the offending header value, i.e. the key: never pass it on
            return AuthError(f"The {self.profile.key_name} contains characters that cannot be sent; re-enter it.")
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return TransientError(f"Could not connect to {base} within {connect_s:g} s (tried {tries} times). {check}")
        if isinstance(exc, requests.exceptions.ReadTimeout):
            return TransientError(
                f"{name} did not answer {where} within {read_s:g} s (tried {tries} times); try again later."
            )
        if not isinstance(exc, requests.exceptions.ConnectionError):
            return TransientError(f"Request to {name} {where} failed: {type(exc).__name__}")
        # after the retries, requests wraps urllib3's MaxRetryError; its reason is the last error
        reason = getattr(exc.args[0], "reason", None) if exc.args else None
        if isinstance(reason, ReadTimeoutError):
            return TransientError(
                f"{name} did not answer {where} within {read_s:g} s (tried {tries} times); try again later."
            )
        # NewConnectionError subclasses ConnectTimeoutError: test the specific ones first
        if isinstance(reason, NameResolutionError):
            return TransientError(f"Could not reach {base}: the host name does not resolve. {check}")
        if isinstance(reason, NewConnectionError):
            return TransientError(f"Could not reach {base}: nothing accepts connections there. {check}")
        if isinstance(reason, ConnectTimeoutError):
            return TransientError(f"Could not connect to {base} within {connect_s:g} s (tried {tries} times). {check}")
        if isinstance(reason, SSLError) or isinstance(exc, requests.exceptions.SSLError):
            return TransientError(f"Could not open a secure connection to {base}: TLS/certificate problem.")
        return TransientError(f"The connection to {name} broke during {where} (tried {tries} times); try again later.")

    # --- paging ---------------------------------------------------------------------------------

    def pages(
        self,
        path: str,
        params: Mapping[str, str] | None,
        *,
        results: str = "results",
        next_link: str = "next",
        id_of: Callable[[Any], Any] = lambda item: item.get("id") if isinstance(item, dict) else None,
        what: str = "an order listing page",
        read_page: Callable[[bytes], tuple[list[Any], Any]] | None = None,
        pager: Pager | None = None,
        operation: str | None = None,
    ) -> Iterator[list[Any]]:
        """Yield the ``results`` list of each page, asking for the next one as ``pager`` says
        (``plugin_spec.paging``); by default, following the ``next`` link until it is null.

        ``results`` and the link's field may be dotted paths (``data.orders``). Other pagers
        than :class:`~plugin_spec.paging.NextLink` take no ``read_page`` and do not prefetch;
        what follows is the ``next`` link's way.

        The link is followed only to this API's own origin (compared normalised), never twice,
        and only while pages bring items not seen before: a channel that loops is stopped with
        BadData instead of being read forever. At most ``max_pages`` pages are read.

        With ``read_page``, each page's bytes go to ``read_page(bytes) -> (items, next link)``
        first (a whole page validated at once); a page it refuses (ValueError, pydantic's
        ValidationError, or any other exception) is read as JSON and yields its raw items, for
        the caller to read one by one. ``id_of`` must then know both kinds of item.

        Every page's request counts against the rate-limit group ``operation`` (``rate_limits``).

        Each page is reported to ``plugin_spec.progress.page_read`` before it is yielded, so
        the host can show a running job's pages.

        With ``prefetch_pages`` (the default), the next page is fetched on a thread while the
        caller works on this one; it is asked for only once this page's link has passed the
        checks above, and closing the generator waits for that thread to finish. The thread
        only waits for the page's bytes, which are read on the caller's thread: reading them on
        the thread (validation is CPU work that holds the GIL) made the two threads take turns
        on the GIL and cost more than the overlap saved (docs/benchmarks.md).
        """
        if pager is None or isinstance(pager, NextLink):
            field = next_link if pager is None else pager.field
            return self._next_links(path, params, results, field, id_of, what, read_page, operation)
        if read_page is not None:
            raise TypeError(f"read_page works with NextLink paging only, not {type(pager).__name__}")
        listing = Listing(
            get=lambda query: self.request("GET", path, params=query, operation=operation), results=results,
            id_of=id_of, what=what,
            channel=self.profile.name, max_pages=self.options.max_pages, unexpected=self.unexpected,
            refusal=lambda exc: (exc.status, exc.code) if isinstance(exc, Rejected) else None,
        )  # fmt: skip
        return _counted(pager.walk(listing, dict(params or {})))

    def _next_links(
        self,
        path: str,
        params: Mapping[str, str] | None,
        results: str,
        next_link: str,
        id_of: Callable[[Any], Any],
        what: str,
        read_page: Callable[[bytes], tuple[list[Any], Any]] | None,
        operation: str | None,
    ) -> Iterator[list[Any]]:
        """:meth:`pages` following ``next`` links (see there)."""

        def fetch(url: str, params: Mapping[str, str] | None) -> tuple[requests.Response, bytes, str]:
            return self._exchange("GET", url, params=params, operation=operation)

        def page_of(exchange: tuple[requests.Response, bytes, str]) -> tuple[list[Any], Any]:
            return self._page_of(*exchange, results=results, next_link=next_link, what=what, read_page=read_page)

        url = self.url(path)
        seen_links: set[str] = set()
        seen_ids: set[Any] = set()
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cartplugin-prefetch") if (
            self.options.prefetch_pages > 0
        ) else None  # fmt: skip
        pending: Future[tuple[requests.Response, bytes, str]] | None = None
        try:
            for page in range(1, self.options.max_pages + 1):
                if page == 1:
                    items, raw_next = page_of(fetch(url, params))
                elif pending is not None:
                    items, raw_next = page_of(pending.result())
                    pending = None
                else:
                    items, raw_next = page_of(fetch(url, None))  # the next link carries every filter itself
                log.debug("%s page %d: %d items", self.profile.name, page, len(items))
                ids = {_hashable(id_of(item)) for item in items}
                fresh = ids - seen_ids
                if raw_next is not None and page > 1 and not fresh:
                    raise BadData(
                        f"{self.profile.name} sent a page with no new orders and another next link; "
                        "stopping so the listing cannot loop forever. Try again later."
                    )
                seen_ids |= ids
                refused: BadData | None = None
                if raw_next is not None:
                    try:
                        url = self._follow(raw_next, url, seen_links)
                    except BadData as exc:
                        refused = exc  # raised after this page, as the caller has it by then
                    else:
                        if pool is not None and page < self.options.max_pages:
                            # in this context: the page waits under the job's stop and wait budget
                            pending = pool.submit(contextvars.copy_context().run, fetch, url, None)
                page_read(len(items))
                yield items
                if raw_next is None:
                    return
                if refused is not None:
                    raise refused
        finally:
            if pending is not None:
                pending.cancel()
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        raise BadData(
            f"{self.profile.name} sent more than {self.options.max_pages} pages in one listing; "
            "stopping so the listing cannot loop forever."
        )

    def _page_of(
        self,
        response: requests.Response,
        raw: bytes,
        where: str,
        *,
        results: str,
        next_link: str,
        what: str,
        read_page: Callable[[bytes], tuple[list[Any], Any]] | None,
    ) -> tuple[list[Any], Any]:
        """One listing page as ``(items, raw next link)``: through ``read_page`` when it accepts
        the page, else parsed as JSON (with every check of ``request``) for its ``results``."""
        if read_page is not None and raw and 200 <= response.status_code < 300:
            try:
                read, raw_next = read_page(raw)
            except Exception as exc:  # noqa: BLE001 - the plain way below decides, order by order
                if not isinstance(exc, ValueError):  # a bug in the reader, not a bad page
                    log.warning("%s: the page reader failed (%s); reading the page the plain way",
                                self.profile.name, type(exc).__name__)  # fmt: skip
            else:
                return list(read), raw_next
        body = self._parse(response, raw, where, True)
        items = dig(body, results)
        if not isinstance(items, list):
            raise BadData(self.unexpected(what, body))
        return items, dig(body, next_link)

    def _follow(self, raw: Any, current: str, seen: set[str]) -> str:
        name = self.profile.name
        if not isinstance(raw, str) or not raw:
            raise BadData(f"{name} sent a page whose next link is not a URL.")
        url = urljoin(current, raw)
        # the session would send the key wherever the link points: only follow it home
        if origin(url) != origin(self.base_url):
            target = urlsplit(url)
            raise BadData(
                f"{name} sent a next link to another host ({target.scheme}://{target.hostname}); refusing to follow it."
            )
        if url in seen:
            raise BadData(f"{name} sent the same next link twice; stopping to avoid an endless loop.")
        seen.add(url)
        return url

    def unexpected(self, what: str, body: Any) -> str:
        """The message for JSON of the wrong shape."""
        return (
            f"{self.profile.name} answered with JSON that is not {what} (got {type(body).__name__}); "
            f"{self.profile.check_url[0].lower()}{self.profile.check_url[1:]}"
        )


def _limit_key(limit_key: str | None, secret: str | None, auth: Auth) -> str:
    """What the rate limiter counts by: ``limit_key``, else the auth's account (its key, or the
    OAuth client and refresh token)."""
    if secret is not None:
        if limit_key is not None:
            raise TypeError("give limit_key only (secret is its deprecated name)")
        warnings.warn("JsonApi(secret=...) is deprecated: pass limit_key=...", DeprecationWarning, stacklevel=3)
        return secret
    if limit_key is None:
        limit_key = auth.limit_key
    if not limit_key:
        raise TypeError(
            "JsonApi needs limit_key (what the channel counts requests by, usually the API key) or an auth "
            "that names the account"
        )
    return limit_key


def _retry_after(response: requests.Response) -> float | None:
    raw = response.headers.get("Retry-After", "").strip()
    try:
        return max(0.0, float(raw)) if raw else None
    except ValueError:
        return None


def _counted(pages: Iterator[list[Any]]) -> Iterator[list[Any]]:
    """``pages``, each reported to ``progress.page_read``; closing this closes ``pages``."""
    try:
        for items in pages:
            page_read(len(items))
            yield items
    finally:
        close = getattr(pages, "close", None)
        if close is not None:
            close()
