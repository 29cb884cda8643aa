"""Fault switches of a sandbox and the hostile answers they produce.

A switch is a :class:`Trigger`: an int fires on the next N requests, a float with that
probability each time, ``True`` on every request. The answers: ``trickle`` (the body one
byte at a time), ``endless_body`` (a chunked body that never ends), ``huge_body`` (an
announced body of hundreds of MB), ``cut_body`` (half an error body), ``truncated``
(announced whole, cut off midway), and the paging fault
``next_loop`` (every page links to a fresh next page of the same orders).
"""

from __future__ import annotations

import collections
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .server import Reply

#: the switches every sandbox built on this base understands
TRIGGERS = (
    "fail_5xx", "too_many_requests", "drop_connection", "slow", "malformed_body",
    "trickle", "endless_body", "huge_body", "cut_error_body", "cut_off_body", "next_loop",
)  # fmt: skip


#: the fault switches behind each kind of trouble ``KitChannel.inject`` names
KIT_FAULTS: dict[str, dict[str, Any]] = {
    "rate_limited": {"too_many_requests": True},
    "server_error": {"fail_5xx": True},
    "timeout": {"slow": True, "slow_seconds": 3.0},
    "cut_off_body": {"cut_off_body": True},
}


@dataclass
class Trigger:
    """A fault that fires on the next ``count`` API requests, or with a probability each time."""

    count: int = 0
    probability: float = 0.0

    @classmethod
    def parse(cls, name: str, value: Any) -> Trigger:
        if value is None or value is False:
            return cls()
        if value is True:
            return cls(probability=1.0)
        if isinstance(value, int) and value >= 0:
            return cls(count=value)
        if isinstance(value, float) and 0.0 <= value <= 1.0:
            return cls(probability=value)
        raise ValueError(f"{name} must be a count (int >= 0), a probability (0.0-1.0) or a bool")

    def fire(self, rng: random.Random) -> bool:
        if self.count > 0:
            self.count -= 1
            return True
        return self.probability > 0.0 and rng.random() < self.probability

    def describe(self) -> int | float:
        return self.probability if self.probability else self.count


def trickle(reply: Reply, interval: float, sleep: Callable[[float], None]) -> Reply:
    """The same answer, its body sent one byte every ``interval`` seconds."""
    payload = reply.encode()

    def chunks() -> Iterator[bytes]:
        for i in range(len(payload)):
            sleep(interval)
            yield payload[i : i + 1]

    return Reply(reply.status, headers=reply.headers, chunks=chunks(), length=len(payload))


def endless_body(status: int = 200) -> Reply:
    """A chunked JSON answer that never ends (until the client hangs up or the sandbox stops)."""

    def chunks() -> Iterator[bytes]:
        yield b'{"count":1,"next":null,"results":["'
        block = b"x" * 65536
        while True:
            yield block

    return Reply(status, chunks=chunks())


def huge_body(size: int = 300 * 1024 * 1024, status: int = 200) -> Reply:
    """An answer that announces and sends ``size`` bytes of JSON-looking padding."""

    def chunks() -> Iterator[bytes]:
        head = b'{"count":1,"next":null,"results":["'
        yield head
        left = size - len(head) - 3
        block = b"x" * 65536
        while left > 0:
            piece = block[: min(left, len(block))]
            left -= len(piece)
            yield piece
        yield b'"]}'

    return Reply(status, chunks=chunks(), length=size)


def cut_body(reply: Reply) -> Reply:
    """The answer with only the first half of its body (announced as complete)."""
    payload = reply.encode()
    return Reply(reply.status, headers=reply.headers, raw=payload[: len(payload) // 2])


def truncated(reply: Reply) -> Reply:
    """The answer announced whole, half of it sent, then the connection closed (cut off on the way)."""
    payload = reply.encode()
    return Reply(reply.status, headers=reply.headers, chunks=iter([payload[: len(payload) // 2]]), length=len(payload))


def over_limit(hits: collections.deque[float], limit: int | None, window: float) -> int | None:
    """A channel's sliding-window rate limit: None when one more request fits (and counts it),
    else the Retry-After in whole seconds. Refused requests do not count, or a client that
    retries would never get in."""
    if limit is None:
        return None
    now = time.monotonic()
    while hits and hits[0] <= now - window:
        hits.popleft()
    if len(hits) >= limit:
        return max(1, math.ceil(hits[0] + window - now))
    hits.append(now)
    return None
