"""Running Queued Jobs: one claimed job to its end state, and a bounded pool that drains the queue.

``execute`` is the whole contract a job engine needs: given a claimed job it does the work
and leaves the job Completed, Partial Success, Failed, Cancelled or queued again for a retry.
``LocalPool`` runs it on threads against SQLite (``host.jobs.pool`` in worker processes of
threads); a distributed engine (Celery, Dramatiq) could
call ``claim`` + ``execute`` in its task instead, and the plugins would not know the difference.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from host import clock, config
from host.channel import connection_test, cursors, download, gate, upload
from host.errors import HostError
from host.jobs import queue as jobs
from host.jobs.failpoints import failpoint
from host.jobs.queue import Job
from host.records import audit, companies, credentials
from host.records.companies import get_company
from host.store.api import Store, backend, unavailable
from host.store.db import as_target, connect, short_write, target_of, write
from plugin_spec import BadData, ChannelError, RateLimited

log = logging.getLogger("cartplugin.runner")


def worker_id() -> str:
    return f"{jobs.machine_id()}:{os.getpid()}:{threading.get_ident()}"


#: seconds between two heartbeats of a running job (well under jobs.STALE_AFTER_SECONDS)
HEARTBEAT_SECONDS = 20.0


def _cluster_heartbeat() -> float:
    """On PostgreSQL the cluster engine's sweep gives back a row whose beats stop: beat at least
    as often as it expects."""
    from host.jobs.cluster import HEARTBEAT_SECONDS as cluster_beat

    return min(HEARTBEAT_SECONDS, cluster_beat)


#: the heartbeat interval for each backend's job engine (HEARTBEAT_SECONDS where none is named)
_HEARTBEAT_INTERVAL: dict[str, Callable[[], float]] = {"postgresql": _cluster_heartbeat}


def _cluster_orphan_window() -> float:
    from host.jobs.cluster import ORPHAN_AFTER_SECONDS

    return ORPHAN_AFTER_SECONDS


#: how long a running job's row may go without a heartbeat before another worker may take it,
#: for each backend's job engine (``jobs.STALE_AFTER_SECONDS`` where none is named)
_ORPHAN_WINDOW: dict[str, Callable[[], float]] = {"postgresql": _cluster_orphan_window}
#: the part of the orphan window a claim is trusted without asking the database: the rest is the
#: margin for a late statement and for clocks of two machines that differ a little
LEASE_SHARE = 2 / 3


def orphan_window(backend_name: str) -> float:
    """Seconds a running job's row may go without a heartbeat on ``backend_name`` before another
    worker may take it."""
    return _ORPHAN_WINDOW.get(backend_name, lambda: jobs.STALE_AFTER_SECONDS)()


class _Heartbeat:
    """Beats for a job from a thread of its own while the job runs, so a slow page (long
    timeouts, Retry-After waits) never makes a live job look dead to other workers.

    It also keeps the claim's lease: the claim surely holds until the orphan window, less a
    margin, has passed since the last beat that found it (``time.monotonic()``, taken before the
    beat, so a process stopped for a while sees the lease run out). ``holds()`` is asked before
    every channel request: within the lease it answers at once; past it (the process was stopped,
    the database is slow) it has the claim confirmed by a beat first. A beat that finds the claim
    gone (another worker took the job) sets ``lost``, and the job stops sending.
    """

    def __init__(self, db: Store, job: Job):
        self.path = target_of(db)
        self.backend = backend(db)
        self.job = job
        self.stopped = threading.Event()
        #: the claim is no longer this worker's (a beat matched no row)
        self.lost = threading.Event()
        self.window = orphan_window(self.backend)
        self.lease = self.window * LEASE_SHARE
        self.confirmed_at = job.leased_at if job.leased_at is not None else float("-inf")
        self._wake = threading.Event()
        self._beaten = threading.Condition()
        self._beats = 0
        self.thread = threading.Thread(target=self._run, name=f"heartbeat-{job.id}", daemon=True)

    def _interval(self) -> float:
        return _HEARTBEAT_INTERVAL.get(self.backend, lambda: HEARTBEAT_SECONDS)()

    def _run(self) -> None:
        interval = self._interval()
        while True:
            self._wake.wait(interval)
            self._wake.clear()
            if self.stopped.is_set():
                break
            started = time.monotonic()
            held: bool | None = None
            try:
                # a connection for this beat alone: lent by the process's pool on PostgreSQL
                with contextlib.closing(short_write(self.path)) as own:
                    held = jobs.heartbeat(own, self.job)
            except Exception:  # a missed beat (database restarting) is no reason to stop beating
                log.warning("heartbeat of job %s failed; beating on", self.job.id, exc_info=True)
            with self._beaten:
                if held:
                    self.confirmed_at = max(self.confirmed_at, started)
                elif held is False:
                    self.lost.set()
                self._beats += 1
                self._beaten.notify_all()

    def confirmed(self) -> bool:
        """Whether the claim holds by the lease alone, now (asks nothing, waits for nothing)."""
        return not self.lost.is_set() and time.monotonic() < self.confirmed_at + self.lease

    def holds(self) -> bool:
        """Whether the claim surely holds now: at once within the lease, else after a beat (waiting
        at most the orphan window for one; a database that does not answer by then: False)."""
        if self.confirmed():
            return True
        if self.lost.is_set():
            return False
        give_up = time.monotonic() + self.window
        with self._beaten:
            while not self.lost.is_set() and not self.stopped.is_set():
                now = time.monotonic()
                if now < self.confirmed_at + self.lease:
                    return True
                if now >= give_up:
                    break
                self._wake.set()
                self._beaten.wait_for(functools.partial(self._beat_since, self._beats), give_up - now)
        return False

    def _beat_since(self, seen: int) -> bool:
        return self._beats > seen or self.stopped.is_set()

    def __enter__(self) -> _Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopped.set()
        self._wake.set()
        with self._beaten:
            self._beaten.notify_all()
        self.thread.join()


def job_budget_seconds() -> float:
    """Seconds a download or upload job may run before it stops with its work so far committed and
    leaves the rest to the next run, so one huge backlog cannot hold a worker thread (the setting)."""
    return config.current().job_budget_seconds


def execute(
    db: Store,
    job: Job,
    *,
    progress: download.Progress | None = None,
    stop: Callable[[], bool] | None = None,
) -> str:
    """Do a claimed job's work and record its end; returns the job's new status.

    ``stop`` is asked between orders and batches: once true the job commits what it has and
    goes back to the queue, to be continued by the next worker.

    The job is fenced by its claim: before every channel request (the ``stop`` question the
    channel toolkit asks) the claim's lease must hold, and each batch it writes renews the claim
    in the batch's own transaction (``jobs.hold``). A worker that lost its job (its heartbeats
    stopped for longer than the orphan window: a frozen process, a partition, and another worker
    took the job) sends nothing more and writes nothing more; the job log says so, and its
    attempt is not counted against the job. Returns ``LOST`` then.
    """
    with _Heartbeat(db, job) as beat:

        def stop_or_lost() -> bool:
            return (stop is not None and stop()) or not beat.holds()

        try:
            return _execute(db, job, progress, stop_or_lost, beat)
        except jobs.ClaimLost:
            return _lost(db, job)


#: what ``execute`` returns for a job whose claim this worker lost while running it
LOST = "Lost"


def _lost(db: Store, job: Job) -> str:
    """Say in the job's log why this worker stopped (a line beside the new owner's, nothing of
    the row changed)."""
    log.warning("job %s %s: %s", job.id, job.kind, jobs.LOST_CLAIM)
    try:
        jobs.log(db, job.id, "warning", f"{jobs.LOST_CLAIM} (worker {job.claimed_by}, attempt {job.attempts})")
    except Exception:  # the database is away: the log line is all that is lost
        log.warning("job %s: the line saying it was lost could not be written", job.id, exc_info=True)
    return LOST


def _ended(job: Job, recorded: bool) -> None:
    """An end the job's claim did not let it write: the claim was lost meanwhile."""
    if not recorded:
        raise jobs.ClaimLost(job)


def _execute(
    db: Store, job: Job, progress: download.Progress | None, stop: Callable[[], bool], beat: _Heartbeat
) -> str:
    failpoint("job.after_claim")
    company = get_company(db, job.company_id)

    def job_log(level: str, message: str) -> None:
        jobs.log(db, job.id, level, message)
        log.log(logging.getLevelName(level.upper()), "job %s %s (%s): %s", job.id, job.kind, company.name, message)

    try:
        gate.check_allowed(db, company, job.kind)
    except gate.NotAllowed as exc:
        _ended(job, jobs.finish(db, job, jobs.CANCELLED, {"reason": str(exc)}))
        return jobs.CANCELLED

    def held() -> None:  # inside each write of the job's batches: the claim is still this worker's
        jobs.hold(db, job)

    try:
        if job.kind == "test_settings":
            return connection_test.run(db, job, company)
        if job.kind in ("import_orders", "download_orders"):
            channel = companies.store_plugin(db, company)
            since: datetime | None
            if job.kind == "import_orders":
                requested = clock.parse(job.params["since"]) if job.params.get("since") else None
                since, why = cursors.import_since(db, company, requested)
            else:
                since, why = cursors.download_since(db, company, channel)
            since, why = cursors.behind_the_cursor(db, company, channel, since, why)
            job_log(
                "info", f"downloading unfulfilled orders updated since {jobs.instant_words(clock.iso(since))} ({why})"
            )
            summary = download.download_orders(
                db,
                company,
                since=since,
                progress=progress,
                log=job_log,
                stop=stop,
                budget_seconds=job_budget_seconds(),
                record=lambda counts: jobs.set_progress(db, job, counts),
                held=held,
            )
            summary["since"] = clock.iso(since)
            status = jobs.PARTIAL if summary["bad_orders"] else jobs.COMPLETED
            if summary.get("more"):
                download.download_soon(db, company, summary.get("waiting_until"))
        elif job.kind == "upload_tracking":
            summary = upload.upload_tracking(
                db, company, log=job_log, stop=stop, budget_seconds=job_budget_seconds(), held=held
            )
            # nothing accepted is a failure, not a partial success; a shipment that met a passing
            # failure is not sent yet either, though it goes again next round without a pause
            if not summary["failed"] and not summary["retrying"]:
                status = jobs.COMPLETED
            elif summary["accepted"] or summary["already_recorded"]:
                status = jobs.PARTIAL
            else:
                status = jobs.FAILED
        else:  # pragma: no cover - enqueue refuses unknown kinds
            raise HostError(f"unknown job kind {job.kind!r}")
    except ChannelError as exc:
        message = _safe(db, company, exc)
        log.warning("job %s %s (%s) failed: %s: %s", job.id, job.kind, company.name, type(exc).__name__, message)
        # a malformed answer is most often a cut-off body: worth the bounded retries too
        if exc.retryable or isinstance(exc, BadData):
            retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
            requeued = jobs.retry_later(db, job, f"{type(exc).__name__}: {message}", retry_after=retry_after)
            return jobs.QUEUED if requeued else jobs.FAILED
        _ended(job, jobs.finish(db, job, jobs.FAILED, {"error": f"{type(exc).__name__}: {message}"}))
        return jobs.FAILED
    except download.SettingsChanged as exc:
        _ended(job, jobs.finish(db, job, jobs.CANCELLED, {"reason": str(exc)}))
        return jobs.CANCELLED
    except gate.Interrupted as exc:
        if beat.lost.is_set():
            raise jobs.ClaimLost(job) from None
        reason = str(exc)
        if not beat.confirmed():  # not stopped by the worker: its claim could not be confirmed in time
            reason = (
                "this worker could not confirm its claim on the job with the database in time; "
                "stopped without sending more, queued again"
            )
        _ended(job, jobs.requeue_now(db, job, reason))
        return jobs.QUEUED
    except jobs.ClaimLost:
        raise
    except HostError as exc:
        log.error("job %s %s (%s) failed: %s", job.id, job.kind, company.name, exc)
        _ended(job, jobs.finish(db, job, jobs.FAILED, {"error": str(exc)}))
        return jobs.FAILED
    except Exception as exc:  # never let one job kill the worker; retry in case it was transient
        if unavailable(exc):
            # the database went away (a restart, a failover) or a lock was not had in time: not the
            # job's failure, so the attempt does not count (still away, the engine gives the row back)
            log.warning("job %s %s (%s): the database could not answer: %s", job.id, job.kind, company.name, exc)
            jobs.requeue_now(db, job, f"the database could not answer ({exc}); queued again")
            return jobs.QUEUED
        log.error(
            "job %s %s (%s): internal error %s: %s",
            job.id,
            job.kind,
            company.name,
            type(exc).__name__,
            _safe(db, company, exc),
        )
        requeued = jobs.retry_later(db, job, f"internal error {type(exc).__name__}: {_safe(db, company, exc)}")
        return jobs.QUEUED if requeued else jobs.FAILED
    failpoint("job.before_finish")
    with write(db):  # the end and its Change Log entry in one transaction
        recorded = jobs.finish(db, job, status, summary)
        if recorded:
            _log_download(db, job, status, summary)
    _ended(job, recorded)
    log.info("job %s %s (%s): %s %s", job.id, job.kind, company.name, status, summary)
    return status


def _log_download(db: Store, job: Job, status: str, summary: dict[str, Any]) -> None:
    """A finished download as one Change Log entry ("Import Orders: 19 new, 0 updated"), not one per
    order: every Import Orders, under who asked for it; a scheduled Download Orders only when it
    brought new orders (its rounds that find nothing new write nothing)."""
    if job.kind not in ("import_orders", "download_orders"):
        return
    if job.kind == "download_orders" and not summary.get("inserted"):
        return
    # orders new and cancelled already are counted here ("flagged_cancelled"); a known order
    # the channel cancels since has an entry of its own (orders._log_channel_changes)
    counts = {"new": summary.get("inserted", 0)}
    counts.update({key: summary.get(key, 0) for key in ("updated", "unchanged", "flagged_cancelled", "bad_orders")})
    audit.record(db, audit.from_params(job.params), f"{jobs.kind_name(job.kind)}: "
                 f"{counts['new']} new, {counts['updated']} updated", company_id=job.company_id,
                 target=f"job {job.id}", details={"status": status, **counts})  # fmt: skip


_TWICE_LATER = re.compile(
    r"[.;,]?\s*(?:please\s+)?(?:re)?try (?:again )?later\.?(?=[;,.]?\s*(?:please\s+)?(?:re)?try (?:again )?later)", re.I
)


def tidy(message: str) -> str:
    """A channel's message as one sentence: advice said twice (the API's and the plugin's) once."""
    return _TWICE_LATER.sub("", message).replace(".;", ";")


def _safe(db: Store, company, exc: Exception) -> str:
    try:
        settings = companies.cart_settings_model(db, company)
    except HostError:
        settings = None
    try:
        tokens = credentials.values_of(db, company.id)
    except HostError:  # a key file that does not open them: nothing of theirs can be shown then
        tokens = []
    return tidy(gate.redact(str(exc), settings, tokens=tokens))[:300]


class LocalPool:
    """Runs queued jobs on a bounded pool of threads, each with its own SQLite connection.

    A pool's interface (``host.jobs.pool.ProcessPool`` has the same): ``drain`` runs what is
    runnable now and returns; ``start`` serves in the background until its ``stop`` is set,
    ``join`` waits for that; ``replace_dead`` is called by the worker between rounds.
    """

    def __init__(self, db_path: str | Path, max_workers: int = 4):
        self.db_path = as_target(db_path)
        self.max_workers = max_workers
        self._threads: list[threading.Thread] = []

    def _claim_and_run(
        self,
        db: Store,
        me: str,
        halt: threading.Event,
        company_ids: list[int] | None,
        on_finish: Callable[[Job, str], None] | None,
    ) -> bool:
        """Run one runnable job, if there is one; False when there is none now."""
        job = jobs.claim(db, me, company_ids=company_ids)
        if job is None:
            return False
        try:
            status = execute(db, job, stop=halt.is_set)
        except Exception:  # e.g. the database stayed locked: the job is picked up again later
            log.exception("job %s %s could not be recorded; it will be claimed again", job.id, job.kind)
            return True
        if on_finish:
            on_finish(job, status)
        return True

    def drain(
        self,
        *,
        company_ids: list[int] | None = None,
        on_finish: Callable[[Job, str], None] | None = None,
        stop: threading.Event | None = None,
    ) -> int:
        """Claim and run jobs until none is runnable now (or ``stop`` is set: running jobs stop
        at their next order or batch and go back to the queue); returns how many ran."""

        def loop() -> int:
            db = connect(self.db_path, create=False)
            ran = 0
            me = worker_id()
            try:
                while not halt.is_set() and self._claim_and_run(db, me, halt, company_ids, on_finish):
                    ran += 1
            finally:
                db.close()
            return ran

        halt = stop or threading.Event()
        with ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="cartplugin-job") as pool:
            futures = [pool.submit(loop) for _ in range(self.max_workers)]
            try:
                return sum(f.result() for f in futures)
            except KeyboardInterrupt:  # Ctrl-C: running jobs stop at their next order and requeue
                halt.set()
                raise

    def start(
        self,
        stop: threading.Event,
        *,
        poll_seconds: float = 1.0,
        on_finish: Callable[[Job, str], None] | None = None,
    ) -> None:
        """Run jobs in the background until ``stop`` is set, each thread looking for work every
        ``poll_seconds`` when idle: the scheduler keeps ticking while long jobs run."""

        def serve() -> None:
            try:
                db = connect(self.db_path, create=False)
            except HostError as exc:
                log.error("job thread cannot open the database: %s", exc)
                return
            me = worker_id()
            try:
                while not stop.is_set():
                    try:
                        busy = self._claim_and_run(db, me, stop, None, on_finish)
                    except Exception:  # a claim that failed (locked past the timeout): try again
                        log.exception("claiming a job failed; trying again")
                        busy = False
                    if not busy:
                        stop.wait(poll_seconds)
            finally:
                db.close()

        # daemon threads: a job stuck in a network call must not keep a stopping worker alive;
        # its claim dies with this process and the next worker requeues it at once
        self._threads = [
            threading.Thread(target=serve, name=f"cartplugin-job-{n}", daemon=True) for n in range(self.max_workers)
        ]
        for thread in self._threads:
            thread.start()

    def replace_dead(self) -> int:
        """Nothing to do: a thread does not die of a job (``_claim_and_run`` catches)."""
        return 0

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds in all for the threads of ``start``; True if all ended."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)
