"""Stopping a job between two requests: the host says when, the toolkit asks before each send.

The upload hook has no ``stop`` argument, so the host runs it inside ``stop_when(stop)``;
``wire.upload_each`` asks before posting each shipment and the rate limiter asks while it
waits for a slot (raising :class:`Stopped` instead of sending). A shipment not sent is named
in ``Halt.unsent``, so the host leaves it pending as it was instead of recording a failure.
Outside ``stop_when`` nothing ever stops (a plugin's own tests, a script).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class Stopped(Exception):
    """The job is stopping: this request was not sent (never a ChannelError: nothing failed)."""


class Halt:
    """One ``stop_when`` scope: its stop question and the shipments it kept from being sent."""

    def __init__(self, stop: Callable[[], bool] | None):
        self._stop = stop
        self._lock = threading.Lock()
        self._fired = False
        self.unsent: set[int] = set()

    def __call__(self) -> bool:
        if not self._fired and self._stop is not None and self._stop():
            self._fired = True  # once stopping, always stopping: a budget does not come back
        return self._fired

    @property
    def fired(self) -> bool:
        return self._fired

    def not_sent(self, shipment_id: int) -> None:
        with self._lock:
            self.unsent.add(shipment_id)


_current: ContextVar[Halt | None] = ContextVar("cartplugin_halt", default=None)


@contextmanager
def stop_when(stop: Callable[[], bool] | None) -> Iterator[Halt]:
    """Within the block, sends stop once ``stop()`` is true (asked before each request)."""
    halt = Halt(stop)
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


def check() -> None:
    """Raise :class:`Stopped` when the scope in force says stop."""
    if stopping():
        raise Stopped("the job is stopping; not sent")
