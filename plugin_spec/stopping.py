"""Stopping a job between two requests: the host says when, the toolkit asks before each send.

The upload hook has no ``stop`` argument, so the host runs it inside ``stop_when(stop)``;
``wire.upload_each`` asks before posting each shipment and the rate limiter asks while it
waits for a slot (raising :class:`Stopped` instead of sending). A shipment not sent is named
in ``Halt.unsent``, so the host leaves it pending as it was instead of recording a failure.
Outside ``stop_when`` nothing ever stops (a plugin's own tests, a script).

A scope may also say how long a request may wait for the rate limit (``wait_until``, the job's
budget): a slot later than that is not waited for, the limiter raises ``RateLimitWait``
instead and the host makes the next run due when the slot frees. A scope inside another keeps
the earlier of the two instants.

A scope may also take ``on_result``: ``wire.upload_each`` hands it each shipment's result as it
comes back (on the thread that called ``upload_each``), so the host stores it at once and an
outage costs at most the requests in flight, not the batch. Should storing fail (the database
went away), the scope says stop: nothing more is sent, and ``Halt.error`` holds the failure.

A scope may also set a ``deadline`` for everything sent in it, retries and their pauses
included (Test Settings: a person is waiting for the answer). ``time_left()`` tells the HTTP
session how long a request, its timeouts and its retries may still take; past the deadline
the scope says stop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plugin_spec.models import UploadResult


class Stopped(Exception):
    """The job is stopping: this request was not sent (never a ChannelError: nothing failed)."""


class Halt:
    """One ``stop_when`` scope: its stop question and the shipments it kept from being sent."""

    def __init__(
        self,
        stop: Callable[[], bool] | None,
        wait_until: datetime | None = None,
        deadline: float | None = None,
        on_result: Callable[[UploadResult], None] | None = None,
    ):
        self._stop = stop
        self._on_result = on_result
        #: what ``on_result`` raised, once it did (the scope stopped then); None while all went well
        self.error: BaseException | None = None
        #: the ``time.monotonic()`` instant after which nothing more is sent (None: no deadline)
        self.deadline = deadline
        #: the latest instant a request of this scope may wait for the rate limit (None: no limit)
        self.wait_until = wait_until
        self._lock = threading.Lock()
        self._fired = False
        self.unsent: set[int] = set()
        #: when a request refused for the rate limit (``RateLimitWait``) may go, the earliest if several
        self.waiting_until: datetime | None = None

    def __call__(self) -> bool:
        if not self._fired and (
            (self._stop is not None and self._stop())
            or (self.deadline is not None and time.monotonic() >= self.deadline)
        ):
            self._fired = True  # once stopping, always stopping: a budget does not come back
        return self._fired

    @property
    def fired(self) -> bool:
        return self._fired

    def not_sent(self, shipment_id: int) -> None:
        with self._lock:
            self.unsent.add(shipment_id)

    def answered(self, result: UploadResult) -> None:
        """One shipment's result, as it came back: handed to ``on_result`` (the host stores it).
        If that fails, the scope says stop and later results are left to the caller's list."""
        if self._on_result is None or self.error is not None:
            return
        try:
            self._on_result(result)
        except Exception as exc:  # the store is away: send nothing more, keep what failed for the host
            self.error = exc
            self._fired = True

    def waiting(self, until: datetime) -> None:
        """A request was not sent because the rate limit's next slot, at ``until``, is past ``wait_until``."""
        with self._lock:
            if self.waiting_until is None or until < self.waiting_until:
                self.waiting_until = until


_current: ContextVar[Halt | None] = ContextVar("cartplugin_halt", default=None)


@contextmanager
def stop_when(
    stop: Callable[[], bool] | None,
    *,
    wait_until: datetime | None = None,
    deadline: float | None = None,
    on_result: Callable[[UploadResult], None] | None = None,
) -> Iterator[Halt]:
    """Within the block, sends stop once ``stop()`` is true (asked before each request), and no
    request waits for the rate limit past ``wait_until`` (nor past the enclosing scope's); with
    ``deadline`` (a ``time.monotonic()`` instant), sends stop then too, and ``time_left()`` bounds
    each request's timeouts and retries; with ``on_result``, each upload result is handed to it
    as it comes back (``Halt.answered``)."""
    outer = _current.get()
    if outer is not None and outer.wait_until is not None:
        wait_until = outer.wait_until if wait_until is None else min(wait_until, outer.wait_until)
    if outer is not None and outer.deadline is not None:
        deadline = outer.deadline if deadline is None else min(deadline, outer.deadline)
    halt = Halt(stop, wait_until, deadline, on_result)
    token = _current.set(halt)
    try:
        yield halt
    finally:
        _current.reset(token)


def current() -> Halt | None:
    """The ``stop_when`` scope in force in this context, if any."""
    return _current.get()


def stopping() -> bool:
    """True once the scope in force says stop."""
    halt = _current.get()
    return halt is not None and halt()


def wait_until() -> datetime | None:
    """The latest instant a request may wait for the rate limit in this context (None: no limit)."""
    halt = _current.get()
    return None if halt is None else halt.wait_until


def time_left() -> float | None:
    """Seconds until the deadline of the scope in force (0 once past it; None: no deadline)."""
    halt = _current.get()
    if halt is None or halt.deadline is None:
        return None
    return max(0.0, halt.deadline - time.monotonic())


def check() -> None:
    """Raise :class:`Stopped` when the scope in force says stop."""
    if stopping():
        raise Stopped("the job is stopping; not sent")
