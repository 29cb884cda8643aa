"""How a sandbox checks the credential of each request: a key header, or OAuth 2.0 bearer tokens
minted by a token endpoint of its own.

``ApiSandbox.auth`` holds one of these. :class:`KeyHeader` is a fixed key in one header.
:class:`OAuthTokens` serves a token endpoint (``refresh_token`` and ``client_credentials``
grants, client authentication by HTTP Basic or in the form body), mints access tokens that
expire, can rotate the refresh token at every refresh (the old one then fails with
``invalid_grant``), counts its mints and can revoke every access token at once, so a test can
check that a client renews once, keeps a rotated refresh token and shares one token between
processes.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote_plus

from .server import Reply

#: an error answer in the sandbox's envelope: (status, code, message, headers) -> Reply
ErrorReply = Callable[[int, str, str, dict[str, str] | None], Reply]


class SandboxAuth:
    """The base: every request passes."""

    #: the path of the token endpoint (None: the sandbox has none)
    token_path: str | None = None

    def check(self, headers: Mapping[str, str], error: ErrorReply) -> Reply | None:
        """None when the request's credential is good, else the refusal to send."""
        return None

    def token(self, method: str, headers: Mapping[str, str], body: bytes) -> Reply:
        return Reply(404, {"error": "not_found"})

    def describe(self) -> dict[str, Any]:
        return {}


class KeyHeader(SandboxAuth):
    """One fixed key in one header (``x-api-key``; or ``Authorization`` with a prefix)."""

    def __init__(self, header: str, key: str, *, prefix: str = ""):
        self.header, self.key, self.prefix = header, key, prefix

    def check(self, headers: Mapping[str, str], error: ErrorReply) -> Reply | None:
        if headers.get(self.header) == self.prefix + self.key:
            return None
        return error(401, "unauthorized", f"The {self.header} header is missing or not valid.", None)


@dataclass
class _Issued:
    client_id: str
    expires: float


@dataclass
class TokenStats:
    #: token requests answered with a token, by grant
    minted: dict[str, int] = field(default_factory=lambda: {"refresh_token": 0, "client_credentials": 0})
    #: token requests refused (a wrong client, a used or unknown refresh token)
    refused: int = 0
    #: API requests refused because their access token had expired or was revoked
    expired_refusals: int = 0


class OAuthTokens(SandboxAuth):
    """A token endpoint and the bearer tokens it mints.

    :param clients: client id -> client secret.
    :param refresh_tokens: refresh tokens the seller authorised -> the client id they belong to.
    :param header: the request header the access token arrives in; ``scheme`` its prefix.
    :param lifetime: seconds an access token lives (``expires_in``).
    :param rotate: each refresh answers a new refresh token and retires the one used.
    :param client_auth: ``"basic"``, ``"body"`` or ``"either"``: where the client id and
        secret may come (RFC 6749 2.3.1).
    :param latency: seconds each token request takes before it is answered.
    """

    def __init__(
        self,
        *,
        clients: Mapping[str, str],
        refresh_tokens: Mapping[str, str] | None = None,
        token_path: str = "/oauth2/token",
        header: str = "Authorization",
        scheme: str | None = "Bearer",
        lifetime: float = 3600.0,
        rotate: bool = False,
        client_auth: str = "either",
        grants: tuple[str, ...] = ("refresh_token", "client_credentials"),
        latency: float = 0.0,
    ):
        self.clients = dict(clients)
        self.refresh_tokens = dict(refresh_tokens or {})
        self.token_path, self.header, self.scheme = token_path, header, scheme
        self.lifetime, self.rotate, self.client_auth, self.grants = lifetime, rotate, client_auth, grants
        #: seconds each token request takes (clients that need a token at once then overlap)
        self.latency = latency
        self._open = threading.Event()
        self._open.set()
        self.stats = TokenStats()
        self._issued: dict[str, _Issued] = {}
        self._ever: list[str] = []
        self._lock = threading.Lock()

    # --- control ----------------------------------------------------------------------------

    def revoke_access_tokens(self) -> int:
        """Every access token minted so far stops working (as when a channel revokes them early)."""
        with self._lock:
            count = len(self._issued)
            self._issued.clear()
            return count

    def hold(self) -> None:
        """Token requests wait (up to 30 s) until :meth:`release`: a test can gather every
        client that needs a token before any gets one."""
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    def issued(self) -> list[str]:
        """Every access token issued and refresh token live (for tests that check none is shown)."""
        with self._lock:
            return [*self._ever, *self.refresh_tokens]

    def mints(self) -> int:
        with self._lock:
            return sum(self.stats.minted.values())

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {
                "token_path": self.token_path, "lifetime": self.lifetime, "rotate": self.rotate,
                "minted": dict(self.stats.minted), "refused": self.stats.refused,
                "expired_refusals": self.stats.expired_refusals, "live_access_tokens": len(self._issued),
            }  # fmt: skip

    # --- the API's check --------------------------------------------------------------------

    def check(self, headers: Mapping[str, str], error: ErrorReply) -> Reply | None:
        raw = headers.get(self.header, "")
        prefix = f"{self.scheme} " if self.scheme else ""
        token = raw[len(prefix) :] if raw.startswith(prefix) else None
        with self._lock:
            issued = self._issued.get(token or "")
            if issued is not None and issued.expires > time.monotonic():
                return None
            if issued is not None or (token and token.startswith("at-")):
                self.stats.expired_refusals += 1
        return error(401, "invalid_token", "The access token is missing, expired or revoked.", None)

    # --- the token endpoint -----------------------------------------------------------------

    def token(self, method: str, headers: Mapping[str, str], body: bytes) -> Reply:
        self._open.wait(30)
        if self.latency:
            time.sleep(self.latency)
        if method != "POST":
            return Reply(405, {"error": "invalid_request", "error_description": "Use POST."})
        try:
            form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
        except UnicodeDecodeError:
            form = {}
        client = self._client(headers, form)
        if client is None:
            return self._refuse(401, "invalid_client", "Client authentication failed.")
        grant = form.get("grant_type", "")
        if grant not in self.grants:
            return self._refuse(400, "unsupported_grant_type", f"grant_type {grant[:40]!r} is not supported.")
        answer: dict[str, Any] = {}
        with self._lock:
            if grant == "refresh_token":
                used = form.get("refresh_token", "")
                if self.refresh_tokens.get(used) != client:
                    self.stats.refused += 1
                    return _oauth_error(400, "invalid_grant", "The refresh token is invalid, used or revoked.")
                if self.rotate:
                    del self.refresh_tokens[used]
                    fresh = "rt-" + secrets.token_urlsafe(24)
                    self.refresh_tokens[fresh] = client
                    answer["refresh_token"] = fresh
            access = "at-" + secrets.token_urlsafe(24)
            self._issued[access] = _Issued(client, time.monotonic() + self.lifetime)
            self._ever.append(access)
            self.stats.minted[grant] = self.stats.minted.get(grant, 0) + 1
        expires_in = max(1, int(self.lifetime)) if self.lifetime >= 1 else self.lifetime
        return Reply(200, {"access_token": access, "token_type": "bearer", "expires_in": expires_in, **answer},
                     {"Cache-Control": "no-store"})  # fmt: skip

    def _client(self, headers: Mapping[str, str], form: dict[str, str]) -> str | None:
        """The authenticated client id, or None."""
        pair: tuple[str, str] | None = None
        basic = headers.get("Authorization", "")
        if basic.startswith("Basic ") and self.client_auth in ("basic", "either"):
            try:
                user, _, password = base64.b64decode(basic[6:], validate=True).decode().partition(":")
                pair = (unquote_plus(user), unquote_plus(password))
            except ValueError:
                return None
        elif "client_id" in form and self.client_auth in ("body", "either"):
            pair = (form["client_id"], form.get("client_secret", ""))
        if pair is None or self.clients.get(pair[0]) != pair[1] or not pair[1]:
            return None
        return pair[0]

    def _refuse(self, status: int, code: str, message: str) -> Reply:
        with self._lock:
            self.stats.refused += 1
        return _oauth_error(status, code, message)


def _oauth_error(status: int, code: str, description: str) -> Reply:
    """RFC 6749 5.2: the token endpoint's own error body, whatever the API's envelope."""
    return Reply(status, {"error": code, "error_description": description}, {"Cache-Control": "no-store"})
