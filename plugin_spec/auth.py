"""How a :class:`~plugin_spec.http.JsonApi` authenticates its requests: a strategy per channel.

* :class:`ApiKeyHeader`: a key typed into Cart General, sent as one header on every request
  (Back Market Pro's ``x-api-key``, Back Market's ``Authorization: Basic ...``).
* :class:`OAuth2RefreshToken`: OAuth 2.0 access tokens minted from a refresh token the seller
  authorised once (eBay user tokens, Amazon's Login with Amazon); a channel that rotates the
  refresh token at each refresh has the new one kept.
* :class:`OAuth2ClientCredentials`: access tokens minted from a client id and secret alone.

The OAuth 2.0 grants build their token requests and read the token endpoint's answers with
oauthlib. An access token is kept in the company's :class:`~plugin_spec.credentials.CredentialStore`
(shared by every process of the host) and used until shortly before it expires; a 401 from
the API (``renew_on``: Amazon's SP-API refuses an expired token with 403) renews it once, inside
the same request (paging and uploads included), and sends the request again. A renewed token
refused again is final for that client: the refusal is then not about the token's age. Two
processes that find it expired at once mint one token: one claims the refresh in the store,
the other waits for its result. A refresh token the channel refuses
(``invalid_grant``) or a client it does not know (``invalid_client``) is an ``AuthError`` that
tells staff what to do; tokens never appear in a message.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

from . import stopping, validators
from .credentials import Credential, CredentialStore, MemoryCredentialStore
from .errors import AuthError, BadData, TransientError
from .ratelimit import Limiter, Rate, group_limiter, limiter_for
from .wire import mask_text, without_secrets

if TYPE_CHECKING:
    from oauthlib.oauth2.rfc6749 import errors as oauth_errors

    from .http import JsonApi

log = logging.getLogger(__name__)

#: the longest access or refresh token taken from a token endpoint (real ones are < 2 kB)
MAX_TOKEN_LENGTH = 8192
#: the longest lifetime believed; a larger ``expires_in`` is cut down to it
MAX_LIFETIME_SECONDS = 366 * 24 * 3600
_NAP = 0.05


class Auth:
    """No authentication; the base of every strategy.

    A strategy gives the headers of each request, and may renew its credential once when the
    API answers 401 (``renew_after_refusal``). ``limit_key`` names the account for the rate
    limiter (the channel counts requests per account, whichever process sends them).
    """

    #: the credential's name in messages (e.g. "x-api-key", "access token")
    key_name: str = "credentials"
    #: the answers that may mean the credential expired (the SP-API answers 403, not 401)
    renew_on: frozenset[int] = frozenset({401})

    @property
    def limit_key(self) -> str:
        return ""

    def static_headers(self) -> dict[str, str]:
        """Headers set once on the session (a key that never changes)."""
        return {}

    def request_headers(self, api: JsonApi) -> dict[str, str]:
        """Headers of one request (a token that may have been renewed since the last one)."""
        return {}

    def renew_after_refusal(self, api: JsonApi, sent: Mapping[str, str]) -> bool:
        """The API answered 401 to a request sent with ``sent``: renew the credential and
        return True to send the request once more, or False to report the refusal."""
        return False

    def secrets(self) -> list[str]:
        """Every secret value this strategy holds or obtained (to keep out of messages)."""
        return []


class ApiKeyHeader(Auth):
    """A key sent as one header, e.g. ``ApiKeyHeader("x-api-key", key)`` or
    ``ApiKeyHeader("Authorization", token, prefix="Basic ")``."""

    def __init__(self, header: str, key: str, *, prefix: str = "", key_name: str | None = None):
        self.header, self.key, self.prefix = header, key, prefix
        self.key_name = key_name or header

    @property
    def limit_key(self) -> str:
        return self.key

    def static_headers(self) -> dict[str, str]:
        return {self.header: self.prefix + self.key}

    def secrets(self) -> list[str]:
        return [self.key]


class OAuth2(Auth):
    """What the OAuth 2.0 grants share: the token endpoint, the header the token travels in,
    the store that keeps it. Subclasses give the grant's request body."""

    key_name = "access token"

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        store: CredentialStore | None = None,
        header: str = "Authorization",
        scheme: str | None = "Bearer",
        client_auth: str = "basic",
        scope: str | None = None,
        record: str = "oauth2",
        channel: str = "The channel",
        hint: str = "Check the client id, client secret and refresh token in Cart General.",
        renew_on: frozenset[int] = frozenset({401}),
        token_rate: Rate | None = None,
        renew_before_seconds: float = 60.0,
        lease_seconds: float = 120.0,
        patience_seconds: float = 45.0,
    ):
        """
        :param token_url: the token endpoint (``https://api.amazon.com/auth/o2/token``).
        :param store: where tokens are kept; the host passes the hook's ``credentials``. None:
            a store of this object only (a token per JsonApi: fine for a script, wasteful in a job).
        :param header: the request header the access token travels in; ``scheme`` its prefix
            (``Authorization: Bearer <token>``; Amazon: header ``x-amz-access-token``, no scheme).
        :param client_auth: ``"basic"`` sends the client id and secret as HTTP Basic auth
            (RFC 6749's preferred way, eBay), ``"body"`` in the form body (Login with Amazon).
        :param record: the record's name in the store (two grants of one channel: two names).
        :param channel: the channel's name in messages; ``hint`` says what staff should do
            when the token endpoint refuses the grant or the client.
        :param scope: the scopes to ask for, space-separated (None: the grant's own).
        :param renew_on: the API's answers that renew the token once and send the request again
            (401; Amazon's SP-API answers an expired token with 403).
        :param token_rate: the token endpoint's own limit (None: the API's default window).
        :param renew_before_seconds: an access token this close to its expiry is renewed first.
        :param lease_seconds: how long a claim to refresh holds against other processes at least:
            past it, a claimer that died mid-renewal is taken over. It is stretched to the longest
            a token request can take with the client's retries, so a live claimer never is.
        :param patience_seconds: how long to wait for another process's refresh.
        """
        if client_auth not in ("basic", "body"):
            raise ValueError("client_auth must be 'basic' or 'body'")
        validators.api_url(token_url, "https://auth.example.com/oauth2/token")
        self.token_url, self.client_id, self.client_secret = token_url, client_id, client_secret
        self.store: CredentialStore = store if store is not None else MemoryCredentialStore()
        self.header, self.scheme, self.client_auth, self.scope = header, scheme, client_auth, scope
        self.record, self.channel, self.hint = record, channel, hint
        self.renew_before, self.lease, self.patience = renew_before_seconds, lease_seconds, patience_seconds
        self.renew_on = frozenset(renew_on)
        self.token_rate = token_rate
        self._lock = threading.RLock()  # secrets() is asked while a renewal holds it
        self._cached: Credential | None = None
        self._limiter: Limiter | None = None
        #: the tokens (as sent) taken up after a refusal: one of them refused again is final
        self._renewed: set[str] = set()

    # --- what subclasses say ----------------------------------------------------------------

    def grant_body(self, refresh_token: str | None) -> str:
        """The form body of a token request (``refresh_token``: the one to use, when the grant has one)."""
        raise NotImplementedError

    def origin_parts(self) -> tuple[str, ...]:
        """What a stored record must have been minted from to be used (a new key: a new record)."""
        return (self.token_url, self.client_id)

    def settings_refresh_token(self) -> str | None:
        return None

    # --- Auth -------------------------------------------------------------------------------

    @property
    def limit_key(self) -> str:
        return self.client_id + "\0" + self.origin

    @property
    def origin(self) -> str:
        return hashlib.sha256("\0".join(self.origin_parts()).encode()).hexdigest()

    def request_headers(self, api: JsonApi) -> dict[str, str]:
        return {self.header: self._format(self._access_token(api))}

    def renew_after_refusal(self, api: JsonApi, sent: Mapping[str, str]) -> bool:
        refused = sent.get(self.header)
        with self._lock:
            if refused in self._renewed:
                # a token renewed after a refusal was refused too: the refusal is not about the
                # token's age (a missing permission, a marketplace not authorised), so no more
                # tokens are minted for this client; the caller reports it
                return False
            stored = self.store.load(self.record)
            record = self._usable(stored)
            if record is not None and self._format(record.values["access_token"]) != refused:
                self._cached = record  # another process renewed it meanwhile: use that one
            else:
                log.info("%s refused the access token; renewing it once", self.channel)
                self._cached = self._renew(api, stored)
            self._renewed.add(self._format(self._cached.values["access_token"]))
            return True

    def secrets(self) -> list[str]:
        values = [self.client_secret, *(v for v in [self.settings_refresh_token()] if v)]
        with self._lock:
            if self._cached is not None:
                values += [v for v in self._cached.values.values() if v]
        return values

    # --- the token --------------------------------------------------------------------------

    def _format(self, token: str) -> str:
        return f"{self.scheme} {token}" if self.scheme else token

    def _usable(self, record: Credential | None) -> Credential | None:
        """``record`` when it was minted from these settings and holds an access token."""
        if record is None or record.origin != self.origin or not record.values.get("access_token"):
            return None
        return record

    def _expiring(self, record: Credential) -> bool:
        """Renew ``renew_before`` seconds ahead, or a quarter of the token's life ahead when it
        lives shorter than that (a token of 60 s is not renewed at every request)."""
        ahead = self.renew_before
        if record.expires_at is not None and record.refreshed_at is not None:
            ahead = min(ahead, (record.expires_at - record.refreshed_at).total_seconds() / 4)
        return record.expires_within(ahead)

    def _access_token(self, api: JsonApi) -> str:
        with self._lock:
            record = self._cached
            if record is None or self._expiring(record):
                stored = self.store.load(self.record)
                record = self._usable(stored)
                if record is None or self._expiring(record):
                    record = self._renew(api, stored)
                self._cached = record
            return record.values["access_token"]

    def _renew(self, api: JsonApi, seen: Credential | None) -> Credential:
        """Mint a token, unless another process does it at the same time: then wait for its."""
        deadline = time.monotonic() + self.patience
        options = api.options
        # the claim outlasts the longest a token request may take, retries and backoff included,
        # so a slow but live holder is never taken over (two mints of one rotating refresh token)
        lease = max(self.lease, (options.retries + 1) * options.deadline + options.retries * options.backoff_max)
        while True:
            version = seen.version if seen is not None else 0
            if self.store.begin_refresh(self.record, version, lease):
                try:
                    values, expires_at = self._mint(api, seen)
                except BaseException:
                    self.store.abandon_refresh(self.record, version)
                    raise
                return self.store.finish_refresh(self.record, version, values, expires_at, self.origin)
            stopping.check()
            if time.monotonic() > deadline:
                raise TransientError(
                    f"another process has been renewing the {self.channel} access token for more than "
                    f"{self.patience:g} s; try again later."
                )
            time.sleep(_NAP)
            current = self.store.load(self.record)
            if current is not None and current.version != version:
                usable = self._usable(current)
                if usable is not None and not usable.expires_within(0):
                    return usable  # just minted by another process
            seen = current

    def _mint(self, api: JsonApi, seen: Credential | None) -> tuple[dict[str, str], datetime | None]:
        """One token request; the values to keep and when the access token expires."""
        previous = self._usable(seen) or (seen if seen is not None and seen.origin == self.origin else None)
        rotated = previous.values.get("refresh_token") if previous is not None else None
        refresh_token = rotated or self.settings_refresh_token()
        headers = {"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"}
        body = self.grant_body(refresh_token)
        if self.client_auth == "basic":
            pair = f"{_form_quote(self.client_id)}:{_form_quote(self.client_secret)}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        if self._limiter is None:
            options = api.options
            if self.token_rate is not None:
                self._limiter = group_limiter(self.token_url, self.limit_key, "token", self.token_rate)
            else:
                self._limiter = limiter_for(self.token_url, self.limit_key, options.rate_limit, options.rate_window)
        response, raw, where = api._exchange(
            "POST", self.token_url, authenticate=False, limiter=self._limiter, data=body, headers=headers
        )
        status = response.status_code
        if status in (400, 401, 403) or 200 <= status < 300:
            params = self._read_token_answer(raw, status)
        else:
            api._parse(response, raw, where, True)  # 429, 5xx, 3xx...: the toolkit's usual errors
            raise BadData(f"{self.channel}'s token endpoint answered HTTP {status}, which is not a token answer.")
        values = {"access_token": params["access_token"]}
        new_refresh = params.get("refresh_token")
        if new_refresh:
            values["refresh_token"] = new_refresh
        elif rotated:
            values["refresh_token"] = rotated
        log.info("%s: a new access token was obtained", self.channel)
        return values, params["expires_at"]

    def _read_token_answer(self, raw: bytes, status: int) -> dict[str, Any]:
        """A token endpoint's answer, checked: the token and its expiry, or an AuthError."""
        # oauthlib only where a token is read: API-key plugins never import it
        from oauthlib.oauth2.rfc6749 import errors as oauth_errors
        from oauthlib.oauth2.rfc6749.parameters import parse_token_response

        try:
            text = raw.decode("utf-8")
            # oauthlib would also read a form-encoded body; RFC 6749 5.1 answers are JSON objects
            if not isinstance(json.loads(text), dict):
                raise ValueError("not a JSON object")
            params = parse_token_response(text)
        except oauth_errors.OAuth2Error as exc:
            raise self._refusal(exc, status) from None
        except (ValueError, Warning, TypeError, RecursionError):
            # oauthlib raises ValueError for a body that is not JSON, Warning for a changed scope
            if status in (401, 403):
                raise AuthError(f"{self.channel} refused the token request (HTTP {status}). {self.hint}") from None
            raise BadData(
                f"{self.channel}'s token endpoint answered HTTP {status} with something that is not a "
                f"token answer. Check its URL. {self.hint}"
            ) from None
        if not 200 <= status < 300:
            raise AuthError(f"{self.channel} refused the token request (HTTP {status}). {self.hint}")
        access = params.get("access_token")
        refresh = params.get("refresh_token")
        for name, value in (("access token", access), ("refresh token", refresh)):
            if value is None and name == "refresh token":
                continue
            if not isinstance(value, str) or not 0 < len(value) <= MAX_TOKEN_LENGTH or _unsafe(value):
                raise BadData(f"{self.channel}'s token endpoint sent an {name} that cannot be used in a request.")
        return {"access_token": access, "refresh_token": refresh, "expires_at": _expiry(params.get("expires_in"))}

    def _refusal(self, exc: oauth_errors.OAuth2Error, status: int) -> Exception:
        from oauthlib.oauth2.rfc6749 import errors as oauth_errors

        code = exc.error if isinstance(exc.error, str) else "error"
        detail = self._scrub(str(exc.description or ""))
        detail = f": {detail}" if detail and detail != code else ""
        if isinstance(exc, oauth_errors.TemporarilyUnavailableError | oauth_errors.ServerError):
            return TransientError(f"{self.channel}'s token endpoint is unavailable ({code}); try again later.")
        if isinstance(exc, oauth_errors.InvalidGrantError):
            return AuthError(
                f"{self.channel} refused the refresh token ({code}{detail}): it was revoked, has expired or "
                f"belongs to another app. Authorise the app again and enter the new refresh token in Cart General."
            )
        if isinstance(exc, oauth_errors.InvalidClientError | oauth_errors.UnauthorizedClientError):
            return AuthError(f"{self.channel} refused the client id or client secret ({code}{detail}). {self.hint}")
        if isinstance(exc, oauth_errors.MissingTokenError):
            return BadData(f"{self.channel}'s token endpoint answered HTTP {status} without an access token.")
        return AuthError(f"{self.channel} refused the token request ({code}{detail}). {self.hint}")

    def _scrub(self, text: str) -> str:
        return mask_text(without_secrets(text, self.secrets(), lambda _secret: "****"), 200)


class OAuth2RefreshToken(OAuth2):
    """Access tokens minted from a refresh token (RFC 6749 section 6); a rotated one is kept."""

    def __init__(self, token_url: str, client_id: str, client_secret: str, refresh_token: str, **kwargs: Any):
        super().__init__(token_url, client_id, client_secret, **kwargs)
        self.refresh_token = refresh_token
        from oauthlib.oauth2 import WebApplicationClient

        self._client = WebApplicationClient(client_id)

    def origin_parts(self) -> tuple[str, ...]:
        return (*super().origin_parts(), self.refresh_token)

    def settings_refresh_token(self) -> str | None:
        return self.refresh_token

    def grant_body(self, refresh_token: str | None) -> str:
        extra = {"client_id": self.client_id, "client_secret": self.client_secret} if self.client_auth == "body" else {}
        body: str = self._client.prepare_refresh_body(refresh_token=refresh_token, scope=self.scope, **extra)
        return body


class OAuth2ClientCredentials(OAuth2):
    """Access tokens minted from the client id and secret alone (RFC 6749 section 4.4)."""

    def __init__(self, token_url: str, client_id: str, client_secret: str, **kwargs: Any):
        super().__init__(token_url, client_id, client_secret, **kwargs)
        from oauthlib.oauth2 import BackendApplicationClient

        self._client = BackendApplicationClient(client_id)

    def origin_parts(self) -> tuple[str, ...]:
        return (*super().origin_parts(), hashlib.sha256(self.client_secret.encode()).hexdigest())

    def grant_body(self, refresh_token: str | None) -> str:
        in_body = self.client_auth == "body"
        extra = {"client_secret": self.client_secret} if in_body else {}
        body: str = self._client.prepare_request_body(scope=self.scope, include_client_id=in_body, **extra)
        return body


def _form_quote(value: str) -> str:
    # RFC 6749 2.3.1: the client id and secret are form-encoded before Basic auth joins them
    return quote_plus(value)


def _unsafe(value: str) -> bool:
    return any(ch.isspace() or not ch.isprintable() or not ch.isascii() for ch in value)


def _expiry(raw: Any) -> datetime | None:
    """When a token with ``expires_in`` seconds to live expires (None: not said)."""
    if raw is None or isinstance(raw, bool):
        return None
    try:
        seconds = float(raw)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(seconds) or seconds <= 0:
        return datetime.now(UTC)  # already expired: used for this request, renewed for the next
    return datetime.now(UTC) + timedelta(seconds=min(seconds, MAX_LIFETIME_SECONDS))
