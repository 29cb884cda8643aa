"""The scheduler: which automatic work is due now, queued as jobs.

A tick uses two indexed queries (companies whose download is due, companies with Fully
Shipped orders not yet updated on the channel), so it costs the same with ten companies or
ten thousand when nothing is due. Running the queued jobs is the worker's (``host.jobs.worker``)
or, on PostgreSQL, the cluster's (``host.jobs.cluster``).
"""

from __future__ import annotations

import logging
import time

from host import clock, config
from host.channel import plugins
from host.jobs import queue as jobs
from host.records import audit
from host.store.api import Store, in_list, index_hint
from host.store.db import write

log = logging.getLogger("cartplugin.worker")

# Each searches a partial index: companies_download_due, which SQLite's planner picks by itself,
# and orders_awaiting_upload, which it must be told (by itself it reads every company's
# orders_updated_grid entries: 45 ms instead of 0.004 at 10,000 companies). Bench row "tick"
# shows the plans and fails on a full table scan.
_DUE_DOWNLOADS = (
    "SELECT c.id, c.name, w.store_plugin FROM companies c "
    "JOIN website_settings w ON w.company_id = c.id "
    "WHERE c.connection_status = 'established' AND c.next_download_at <= :now AND w.allow_order_download = 1"
)
_DUE_UPLOADS = (
    "SELECT DISTINCT o.company_id, c.name, w.store_plugin FROM orders o {hint} "
    "JOIN companies c ON c.id = o.company_id JOIN website_settings w ON w.company_id = o.company_id "
    "WHERE o.shipping_status = 'Fully Shipped' AND o.source_updated_for_shipping = 0 AND o.awaiting_acceptance = 0 "
    "AND c.connection_status = 'established' AND w.allow_tracking_upload = 1 "
    "AND EXISTS (SELECT 1 FROM shipments s WHERE s.order_id = o.id AND s.upload_state = 'pending' "
    "AND (s.next_upload_at IS NULL OR s.next_upload_at <= :now))"
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


def purge_if_due(db: Store) -> int | None:
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


def tick(db: Store, *, download_every: float | None = None) -> dict[str, int]:
    """Queue the automatic work that is due now; returns how many jobs of each kind were queued.

    The due companies are read first, without the write lock; when any are due, every job of the
    tick is queued in one write transaction (:func:`jobs.enqueue_many`), so a thousand due
    companies keep the other writers waiting once, briefly, not a thousand times.

    ``download_every``: seconds until a company's next automatic download (default: the setting)."""
    if download_every is None:
        download_every = config.current().download_every
    jobs.recover_orphans(db)
    purge_if_due(db)
    now = clock.now_iso()
    installed = set(plugins.channels())
    downloads = [
        company_id
        for company_id, name, channel in db.execute(_DUE_DOWNLOADS, {"now": now}).fetchall()
        if not _plugin_missing(company_id, name, channel, installed)
    ]
    due_uploads = _DUE_UPLOADS.format(hint=index_hint(db, "orders_awaiting_upload"))
    uploads = [
        company_id
        for company_id, name, channel in db.execute(due_uploads, {"now": now}).fetchall()
        if not _plugin_missing(company_id, name, channel, installed)
    ]
    queued = {"download_orders": 0, "upload_tracking": 0}
    if not downloads and not uploads:
        return queued
    with write(db):
        if downloads:
            downloads = _move_next_download(db, downloads, now, clock.now_iso(download_every))
            queued["download_orders"] = jobs.enqueue_many(db, "download_orders", downloads)
        if uploads:
            queued["upload_tracking"] = jobs.enqueue_many(db, "upload_tracking", uploads)
    return queued


def _move_next_download(db: Store, company_ids: list[int], now: str, at: str) -> list[int]:
    """Schedule the next download of those of ``company_ids`` still due at ``now`` (another
    worker process's tick may have taken them since they were read); which ones."""
    still_due: list[int] = []
    for start in range(0, len(company_ids), jobs.BULK_CHUNK):
        marks, params = in_list("company", company_ids[start : start + jobs.BULK_CHUNK])
        still_due += [
            row[0]
            for row in db.execute(
                f"UPDATE companies SET next_download_at = :at WHERE id IN {marks} AND next_download_at <= :now "
                "RETURNING id",
                {**params, "at": at, "now": now},
            ).fetchall()
        ]
    return still_due


def pull_schedule_forward(db: Store, download_every: float) -> None:
    """Downloads scheduled under a longer interval come due within this one (0: now); a worker
    starting with a shorter ``download_every`` than the last one calls it first."""
    at = clock.now_iso(download_every)
    with write(db):
        db.execute("UPDATE companies SET next_download_at = :at WHERE next_download_at > :at", {"at": at})
