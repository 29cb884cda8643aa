"""Failpoints: named places where a test can make this process die as if the power went out.

``CARTPLUGIN_FAILPOINTS="download.item=37,upload.after_channel=1"`` kills the process with
SIGKILL the 37th time it passes ``download.item`` (or the first time it passes
``upload.after_channel``). Unset, a failpoint is one dictionary lookup. The crash-safety tests
use them to stop a worker at exact phases of an import or an upload and check that a restart
reaches the same end state.
"""

from __future__ import annotations

import os
import signal
import threading

NAMES = (
    "job.after_claim",  # a job is Processing, nothing done yet
    "download.item",  # an order was read from the channel, its batch is not committed (mid-page)
    "download.before_cursor",  # inside the batch's transaction: orders written, cursor not yet
    "download.after_cursor",  # inside the batch's transaction: orders and cursor written, not committed
    "download.after_commit",  # a batch and its cursor are committed
    "upload.before_send",  # shipments selected, nothing sent
    "upload.after_channel",  # the channel accepted the tracking, the host has not recorded it
    "upload.after_record",  # results recorded (Source Updated for Shipping set)
    "job.before_finish",  # the work is done, the job is still Processing
)


def _parse(spec: str) -> dict[str, int]:
    points: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, count = part.partition("=")
        if name not in NAMES:
            raise ValueError(f"unknown failpoint {name!r} (known: {', '.join(NAMES)})")
        points[name] = int(count or 1)
    return points


_armed = _parse(os.environ.get("CARTPLUGIN_FAILPOINTS", ""))
_hits: dict[str, int] = {}
_lock = threading.Lock()


def failpoint(name: str) -> None:
    """Die here (SIGKILL, no cleanup, no flush) if this failpoint is armed and its count is reached."""
    if not _armed:
        return
    target = _armed.get(name)
    if target is None:
        return
    with _lock:
        _hits[name] = _hits.get(name, 0) + 1
        if _hits[name] == target:
            os.kill(os.getpid(), signal.SIGKILL)
