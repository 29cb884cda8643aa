"""The scheduler: decides which automatic work is due, queues it, and runs the queue.

A tick uses two indexed queries (companies whose download is due, companies with Fully
Shipped orders not yet updated on the channel), so it costs the same with ten companies or
ten thousand when nothing is due.
"""

from __future__ import annotations

import logging
import signal
import sqlite3
import threading
from pathlib import Path
from typing import Any

import sqlite_utils

from . import clock, jobs
from .db import connect, write
from .runner import LocalPool

log = logging.getLogger("cartplugin.worker")

#: seconds between two automatic downloads of one company
DOWNLOAD_EVERY_SECONDS = 300.0

_DUE_DOWNLOADS = (
    "SELECT c.id FROM companies c INDEXED BY companies_download_due "
    "JOIN website_settings w ON w.company_id = c.id "
    "WHERE c.connection_status = 'established' AND c.next_download_at <= ? AND w.allow_order_download = 1"
)
_DUE_UPLOADS = (
    "SELECT DISTINCT o.company_id FROM orders o INDEXED BY orders_awaiting_upload "
    "JOIN companies c ON c.id = o.company_id JOIN website_settings w ON w.company_id = o.company_id "
    "WHERE o.shipping_status = 'Fully Shipped' AND o.source_updated_for_shipping = 0 "
    "AND c.connection_status = 'established' AND w.allow_tracking_upload = 1 "
    "AND EXISTS (SELECT 1 FROM shipments s WHERE s.order_id = o.id AND s.upload_state != 'accepted' "
    "AND (s.next_upload_at IS NULL OR s.next_upload_at <= ?))"
)


def tick(db: sqlite_utils.Database, *, download_every: float = DOWNLOAD_EVERY_SECONDS) -> dict[str, int]:
    """Queue the automatic work that is due now; returns how many jobs of each kind were queued."""
    queued = {"download_orders": 0, "upload_tracking": 0}
    jobs.recover_orphans(db)
    now = clock.now_iso()
    for (company_id,) in db.execute(_DUE_DOWNLOADS, [now]).fetchall():
        _, created = jobs.enqueue(db, company_id, "download_orders")
        queued["download_orders"] += created
        with write(db):
            db.execute(
                "UPDATE companies SET next_download_at = ? WHERE id = ?", [clock.now_iso(download_every), company_id]
            )
    for (company_id,) in db.execute(_DUE_UPLOADS, [now]).fetchall():
        _, created = jobs.enqueue(db, company_id, "upload_tracking")
        queued["upload_tracking"] += created
    return queued


def run(
    db_path: str | Path,
    *,
    once: bool = False,
    interval: float = 30.0,
    max_workers: int = 4,
    download_every: float = DOWNLOAD_EVERY_SECONDS,
    echo: Any = None,
) -> None:
    """Tick and drain the queue; with ``once`` a single round, else until SIGINT/SIGTERM."""
    stop = threading.Event()
    if not once and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    pool = LocalPool(db_path, max_workers=max_workers)
    db = connect(db_path)
    try:
        while True:
            try:
                queued = tick(db, download_every=download_every)
                ran = pool.drain(
                    on_finish=(lambda job, status: echo(f"job {job.id} {job.kind}: {status}")) if echo else None,
                    stop=stop,
                )
            except sqlite3.Error as exc:  # e.g. locked past the busy timeout: try again next round
                if once:
                    raise
                log.error("worker round failed: %s; next round in %s s", exc, interval)
            else:
                if echo:
                    echo(f"tick: queued {queued['download_orders']} download(s), {queued['upload_tracking']} upload(s); ran {ran} job(s)")
            if once or stop.wait(interval):
                break
    finally:
        db.close()
