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
import time
from pathlib import Path
from typing import Any

import sqlite_utils

from host import clock, config
from host.channel import plugins
from host.errors import HostError
from host.jobs import queue as jobs
from host.jobs.pool import make_pool
from host.records import audit
from host.store.db import connect, file_identity, is_postgresql, write

log = logging.getLogger("cartplugin.worker")

#: seconds between two automatic downloads of one company
DOWNLOAD_EVERY_SECONDS = config.Settings.model_fields["download_every"].default

_DUE_DOWNLOADS = (
    "SELECT c.id, c.name, w.store_plugin FROM companies c INDEXED BY companies_download_due "
    "JOIN website_settings w ON w.company_id = c.id "
    "WHERE c.connection_status = 'established' AND c.next_download_at <= ? AND w.allow_order_download = 1"
)
_DUE_UPLOADS = (
    "SELECT DISTINCT o.company_id, c.name, w.store_plugin FROM orders o INDEXED BY orders_awaiting_upload "
    "JOIN companies c ON c.id = o.company_id JOIN website_settings w ON w.company_id = o.company_id "
    "WHERE o.shipping_status = 'Fully Shipped' AND o.source_updated_for_shipping = 0 AND o.awaiting_acceptance = 0 "
    "AND c.connection_status = 'established' AND w.allow_tracking_upload = 1 "
    "AND EXISTS (SELECT 1 FROM shipments s WHERE s.order_id = o.id AND s.upload_state = 'pending' "
    "AND (s.next_upload_at IS NULL OR s.next_upload_at <= ?))"
)


_reported_missing: set[tuple[int, str]] = set()


def _plugin_missing(company_id: int, name: str, channel: str | None, installed: set[str]) -> bool:
    """True when the company's store plugin is not installed: the company is skipped, which is
    said once per worker process. Asked only of the companies that are due, so a tick reads no
    more rows than the work it queues (bench row 5)."""
    if channel is None or channel in installed:
        return False
    if (company_id, channel) not in _reported_missing:
        _reported_missing.add((company_id, channel))
        log.warning("company %r skipped: plugin missing (store plugin %r is not installed)", name, channel)
    return True


#: seconds between two removals of old Queued Jobs by one worker process
PURGE_EVERY_SECONDS = 3600.0
#: ``time.monotonic()`` after which this process removes old jobs again (0: at its first tick)
_next_purge_at = 0.0


def purge_if_due(db: sqlite_utils.Database) -> int | None:
    """Delete the finished jobs older than ``job_retention_days`` (the config), at most once
    per ``PURGE_EVERY_SECONDS`` in this process; how many, or None when it was not due."""
    global _next_purge_at
    if time.monotonic() < _next_purge_at:
        return None
    _next_purge_at = time.monotonic() + PURGE_EVERY_SECONDS
    settings = config.current()
    removed = jobs.purge_finished(db, settings.job_retention_days)
    if removed:
        log.info("removed %d finished job(s) past their retention", removed)
    forgotten = audit.purge(db, settings.change_log_retention_days)
    if forgotten:
        log.info("removed %d Change Log entr%s past their retention", forgotten, "y" if forgotten == 1 else "ies")
    return removed


def tick(db: sqlite_utils.Database, *, download_every: float = DOWNLOAD_EVERY_SECONDS) -> dict[str, int]:
    """Queue the automatic work that is due now; returns how many jobs of each kind were queued."""
    queued = {"download_orders": 0, "upload_tracking": 0}
    jobs.recover_orphans(db)
    purge_if_due(db)
    now = clock.now_iso()
    installed = set(plugins.channels())
    for company_id, name, channel in db.execute(_DUE_DOWNLOADS, [now]).fetchall():
        if _plugin_missing(company_id, name, channel, installed):
            continue
        _, created = jobs.enqueue(db, company_id, "download_orders")
        queued["download_orders"] += created
        with write(db):
            db.execute(
                "UPDATE companies SET next_download_at = ? WHERE id = ?", [clock.now_iso(download_every), company_id]
            )
    for company_id, name, channel in db.execute(_DUE_UPLOADS, [now]).fetchall():
        if _plugin_missing(company_id, name, channel, installed):
            continue
        _, created = jobs.enqueue(db, company_id, "upload_tracking")
        queued["upload_tracking"] += created
    return queued


def _pull_schedule_forward(db: sqlite_utils.Database, download_every: float) -> None:
    """Downloads scheduled under a longer interval come due within this one (0: now)."""
    with write(db):
        db.execute(
            "UPDATE companies SET next_download_at = ? WHERE next_download_at > ?",
            [clock.now_iso(download_every), clock.now_iso(download_every)],
        )


#: seconds a stopping worker waits for its jobs to reach an order boundary and requeue
STOP_GRACE_SECONDS = config.current().stop_grace_seconds


def run(
    db_path: str | Path,
    *,
    once: bool = False,
    interval: float = 30.0,
    max_workers: int = 4,
    processes: int = 1,
    download_every: float = DOWNLOAD_EVERY_SECONDS,
    echo: Any = None,
) -> None:
    """Tick and run the queue; with ``once`` a single round, else until SIGINT/SIGTERM.

    Jobs run on ``max_workers`` background threads (in each of ``processes`` job processes when
    more than 1, see ``host.jobs.pool``) while this thread ticks every ``interval`` seconds,
    so a long job of one company never holds up the schedule of the others. On SIGTERM running
    jobs stop at their next order or batch, commit and go back to the queue. A database
    deleted or replaced under the worker stops it with an error instead of a new empty one.
    """
    if is_postgresql(str(db_path)):  # workers on several machines: procrastinate
        try:
            from host.jobs.cluster.worker import run as run_cluster
        except ImportError as exc:
            raise HostError(
                f"a worker on PostgreSQL needs the postgresql extra ({exc.name} is missing): "
                "pip install 'cartplugin[postgresql]'"
            ) from None

        return run_cluster(str(db_path), once=once, interval=interval, max_workers=max_workers,
                           download_every=download_every, echo=echo)  # fmt: skip
    stop = threading.Event()
    if not once and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    if echo and not once:  # a service's output is read later, in a journal: each line says when
        plain_echo = echo
        echo = lambda text: plain_echo(f"{clock.now_iso()} {text}")  # noqa: E731
    pool = make_pool(db_path, max_workers=max_workers, processes=processes)
    on_finish = (lambda job, status: echo(f"job {job.id} {job.kind}: {status}")) if echo else None
    db = connect(db_path, create=False)
    identity = file_identity(db_path)
    _pull_schedule_forward(db, download_every)
    try:
        if once:
            queued = tick(db, download_every=download_every)
            db.close()  # job processes are forked with no connection open (see host.jobs.pool)
            ran = pool.drain(on_finish=on_finish)
            if echo:
                echo(
                    f"tick: queued {queued['download_orders']} download(s), "
                    f"{queued['upload_tracking']} upload(s); ran {ran} job(s)"
                )
            return
        db.close()
        pool.start(stop, poll_seconds=min(interval, 1.0), on_finish=on_finish)
        db = connect(db_path, create=False)
        while not stop.is_set():
            pool.replace_dead()  # a job process that was killed: its job is requeued by this round's tick
            if file_identity(db_path) != identity:
                stop.set()
                raise HostError(
                    f"the database {str(db_path)!r} was deleted or replaced while the worker ran; stopped "
                    "(restore it, or start the worker again to use the new one)"
                )
            try:
                queued = tick(db, download_every=download_every)
            except sqlite3.Error as exc:  # e.g. locked past the busy timeout: try again next round
                log.error("worker round failed: %s; next round in %s s", exc, interval)
            else:
                if echo and any(queued.values()):
                    echo(f"tick: queued {queued['download_orders']} download(s), {queued['upload_tracking']} upload(s)")
            stop.wait(interval)
    finally:
        stop.set()
        if not once and not pool.join(STOP_GRACE_SECONDS):
            log.warning("jobs still in a network call after %s s are left to the next worker", STOP_GRACE_SECONDS)
        db.close()
