"""A plugin call within a time bound, its retries and pauses included (Test Settings).

The call runs on a thread of its own inside a ``stopping`` scope whose deadline comes a little
before the bound: the toolkit's HTTP session cuts its timeouts and gives up retrying there
(``plugin_spec.http``), so a plugin built on it still answers in time with what it saw (the
refused connection, the refused key). A plugin that does not listen is not waited for past the
bound: its thread is left to end by itself, and what it returns then is dropped.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from plugin_spec import stopping

log = logging.getLogger("cartplugin.bounded")

#: the plugin is told to stop this much before the bound (at most), so its own answer arrives in time
MARGIN_SECONDS = 0.5


@dataclass
class Outcome:
    """How a bounded call ended: in time (``value`` or ``error``), or ``out_of_time``."""

    value: Any = None
    error: BaseException | None = None
    #: the bound passed before the call came back, or the deadline stopped its requests
    out_of_time: bool = False


def call_within(call: Callable[[], Any], seconds: float, *, after: Callable[[], None] | None = None) -> Outcome:
    """Run ``call()`` and wait for it at most ``seconds``; ``after()`` runs on the call's thread
    once it ends, however late (to close what the call opened)."""
    deadline = time.monotonic() + seconds
    soft = deadline - min(MARGIN_SECONDS, seconds * 0.1)
    outcome = Outcome()
    ended = threading.Event()
    fired: list[bool] = []

    def run() -> None:
        try:
            with stopping.stop_when(None, deadline=soft) as halt:
                try:
                    outcome.value = call()
                except BaseException as exc:  # handed to the caller, as if raised there
                    outcome.error = exc
                fired.append(halt.fired or time.monotonic() >= soft)
        finally:
            if after is not None:
                try:
                    after()
                except Exception:  # a thread nobody waits for any more must not die noisily
                    log.warning("closing after a bounded call failed", exc_info=True)
            ended.set()

    context = contextvars.copy_context()  # an enclosing stop (the worker stopping) still applies
    thread = threading.Thread(target=context.run, args=(run,), name="cartplugin-bounded", daemon=True)
    thread.start()
    if not ended.wait(max(0.0, deadline - time.monotonic())):
        return Outcome(out_of_time=True)
    outcome.out_of_time = bool(fired and fired[0])
    return outcome
