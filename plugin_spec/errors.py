"""Errors a channel plugin raises; each carries a message meant for the person who reads it.

The host turns them into job log lines and one-line CLI errors, so the message must be
actionable and must never contain a secret (an API key, a token, a password).
"""

from __future__ import annotations

from datetime import datetime


class ChannelError(Exception):
    """Base class: something went wrong talking to the channel."""

    #: whether running the same work again later may succeed
    retryable: bool = False

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class AuthError(ChannelError):
    """The channel refused the credentials (wrong or revoked key, missing permission)."""


class RateLimited(ChannelError):
    """The channel kept answering 429 after the client's own retries."""

    retryable = True

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class RateLimitWait(ChannelError):
    """The rate limit's next slot is later than the job may wait: the request was not sent.

    Raised by the limiter before sending, so nothing is lost: the host commits what it has and
    makes the next run due at ``until`` (an aware UTC instant), when the limit allows a request.
    """

    retryable = True

    def __init__(self, message: str, until: datetime):
        super().__init__(message)
        self.until = until


class TransientError(ChannelError):
    """Network trouble or a 5xx answer: the same call may succeed later."""

    retryable = True


class BadData(ChannelError):
    """The channel sent something the plugin cannot understand (malformed body or order)."""
