"""The procrastinate app of a cluster, its one task, and the sweep that keeps both sides in step.

The host's ``jobs`` table stays the record staff see and the owner of the rules (one pending
job per company and kind, attempts, back-off with Retry-After, Cancelled, logs): procrastinate
only decides *which worker process runs a Queued row, and when*. Its task
``cartplugin.run_job(job_id)`` claims that row with ``jobs.claim`` and runs it with
``runner.execute``, exactly as ``LocalPool`` does on SQLite. A retry is the host's
``retry_later`` (the row goes back to Queued with a later ``run_after``; the trigger of
:mod:`.schema` defers a new task for then), so procrastinate's own retry strategy is not used
and a procrastinate task always ends ``succeeded`` unless the database itself failed.

A worker process that dies (SIGKILL, out of memory, machine lost) stops beating its
procrastinate heartbeat; :func:`sweep`, run by the scheduler's leader, then gives its rows back
to the queue (or fails them once their attempts are used up, the host's rule) and ends its
stalled procrastinate tasks.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import procrastinate
import psycopg

from host import clock
from host.jobs import cluster as cluster_timing
from host.jobs import queue as jobs
from host.jobs import runner
from host.jobs.cluster.schema import QUEUE, TASK
from host.store import pg
from host.store.db import connect
from plugin_spec import pgurl

log = logging.getLogger("cartplugin.cluster")

# the timing of a cluster (one definition, in host.jobs.cluster, for every process on PostgreSQL)
STALLED_WORKER_SECONDS = cluster_timing.STALLED_WORKER_SECONDS
ORPHAN_AFTER_SECONDS = cluster_timing.ORPHAN_AFTER_SECONDS
HEARTBEAT_SECONDS = cluster_timing.HEARTBEAT_SECONDS
#: how long a task whose database went away keeps trying to give its row back
GIVE_BACK_SECONDS = 120.0
#: how long a finished procrastinate task (and its events) is kept: the host's ``jobs`` row is
#: the record staff see; the task's own only helps to follow a run that has just ended
FINISHED_TASKS_KEPT_SECONDS = 3600.0
#: finished tasks removed at most per round, so that one round never holds up the schedule
PRUNE_BATCH = 1000

_local = threading.local()
#: set when the worker process is stopping: running jobs stop at their next order and requeue
stopping = threading.Event()
_runs = [0]
_runs_lock = threading.Lock()
#: told ``(job, status)`` after each row this process runs (the worker's ``job N kind: status`` line)
_on_finish: list[Callable[[jobs.Job, str], Any]] = []


def report_to(on_finish: Callable[[jobs.Job, str], Any] | None) -> None:
    """Tell ``on_finish`` of each row this process runs from now on (``None``: tell no one)."""
    _on_finish[:] = [on_finish] if on_finish else []


def runs() -> int:
    """How many rows this process has run (claimed and executed) so far."""
    return _runs[0]


def _host_db(url: str) -> Any:
    db = getattr(_local, "db", None)
    if db is None or getattr(_local, "url", None) != url:
        db = connect(url, create=False)
        _local.db, _local.url = db, url
    return db


def _forget_host_db() -> None:
    db = getattr(_local, "db", None)
    _local.db = None
    if db is not None:
        try:
            db.close()
        except Exception:  # already broken: nothing to close cleanly
            pass


def run_job(url: str, job_id: int) -> str:
    """The body of ``cartplugin.run_job``: claim the row, run it, return its new status."""
    try:
        db = _host_db(url)
        job = jobs.claim(db, runner.worker_id(), job_id=job_id)
    except Exception:  # the database went away before the claim: the task fails, the sweep redoes it
        _forget_host_db()
        raise
    if job is None:
        return _not_claimed(url, job_id)
    try:
        status = runner.execute(db, job, stop=stopping.is_set)
    except Exception as exc:  # the job's end could not be recorded: most often the database went away
        _forget_host_db()
        _give_back(url, job, exc)
        return jobs.QUEUED
    with _runs_lock:
        _runs[0] += 1
    for tell in _on_finish:
        tell(job, status)
    return status


def _give_back(url: str, job: jobs.Job, exc: Exception) -> None:
    """Put a claimed row back in the queue once the database answers again (a restart, a
    failover); if it stays away, the sweep does it later (the row's heartbeat stops)."""
    reason = f"the database connection was lost ({type(exc).__name__}); queued again"
    deadline = time.monotonic() + GIVE_BACK_SECONDS
    while True:
        try:
            db = _host_db(url)
            jobs.requeue_now(db, job, reason)
            log.warning("job %s %s: %s", job.id, job.kind, reason)
            return
        except Exception:
            _forget_host_db()
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def _not_claimed(url: str, job_id: int) -> str:
    """The row was not runnable: done, cancelled, run elsewhere, or not due yet on this clock.

    Only the last case needs anything: a task for its ``run_after`` (clocks of two machines may
    differ by a little, and a row must never be left Queued without a task).
    """
    with pgurl.connect(url, autocommit=True, **pg.connect_kwargs(url)) as conn:
        row = conn.execute("SELECT status, company_id, kind, priority, run_after FROM jobs WHERE id = %s",
                           [job_id]).fetchone()  # fmt: skip
        if row is None:
            return "missing"
        status, company_id, kind, priority, run_after = row
        if status == jobs.QUEUED:  # at least a second from now, so a clock behind the database's cannot spin
            conn.execute(
                "SELECT cartplugin_defer_run_job(%s, %s, %s, %s, "
                "GREATEST(%s::timestamptz, now() + interval '1 second')::text)",
                [job_id, company_id, kind, priority, run_after],
            )
            return "deferred again"
        return f"not run: {status}"


def make_app(url: str, *, pool_size: int = 4) -> procrastinate.App:
    """The procrastinate app on ``url``; its pool checks each connection before use (procrastinate
    sets that), so a worker carries on over a database restart."""
    connector = procrastinate.PsycopgConnector(
        conninfo=url, kwargs=pg.connect_kwargs(url), min_size=1, max_size=pool_size, reconnect_timeout=3600
    )
    app = procrastinate.App(connector=connector)

    @app.task(name=TASK, queue=QUEUE)
    def cartplugin_run_job(job_id: int) -> str:
        return run_job(url, job_id)

    return app


_DIED_SUMMARY = json.dumps({"error": "its worker stopped during every attempt"})
_STALLED_TASKS = f"""
SELECT p.id FROM procrastinate_jobs p LEFT JOIN procrastinate_workers w ON w.id = p.worker_id
 WHERE p.task_name = '{TASK}' AND p.status = 'doing'
   AND (w.id IS NULL OR w.last_heartbeat < now() - make_interval(secs => %s))
"""
_LIVE_TASK = f"""
SELECT 1 FROM procrastinate_jobs p JOIN procrastinate_workers w ON w.id = p.worker_id
 WHERE p.task_name = '{TASK}' AND p.status = 'doing' AND (p.args->>'job_id')::bigint = j.id
   AND w.last_heartbeat >= now() - make_interval(secs => %s)
"""
_ANY_TASK = f"""
SELECT 1 FROM procrastinate_jobs p WHERE p.task_name = '{TASK}' AND p.status IN ('todo', 'doing')
   AND (p.args->>'job_id')::bigint = j.id
"""


_OLD_FINISHED_TASKS = f"""
DELETE FROM procrastinate_jobs WHERE id IN (
    SELECT p.id FROM procrastinate_jobs p
     WHERE p.task_name = '{TASK}' AND p.status IN ('succeeded', 'failed', 'cancelled', 'aborted')
       AND NOT EXISTS (SELECT 1 FROM procrastinate_events e WHERE e.job_id = p.id
                          AND e.at >= now() - make_interval(secs => %s))
     ORDER BY p.id LIMIT %s)
"""


def prune(conn: psycopg.Connection, *, kept: float | None = None, batch: int | None = None) -> int:
    """Delete up to ``batch`` of the host's procrastinate tasks that ended more than ``kept``
    seconds ago, with their events (procrastinate keeps every one otherwise); how many.

    procrastinate's own ``delete_old_jobs`` reads every task and event of the database at each
    call; this reads the oldest tasks first and stops at ``batch``, so the leader can do it
    every round and the table stays as small as a window of ``kept`` seconds. Defaults:
    ``FINISHED_TASKS_KEPT_SECONDS`` and ``PRUNE_BATCH``.
    """
    kept = FINISHED_TASKS_KEPT_SECONDS if kept is None else kept
    batch = PRUNE_BATCH if batch is None else batch
    with conn.transaction():
        return conn.execute(_OLD_FINISHED_TASKS, [kept, batch]).rowcount


def sweep(conn: psycopg.Connection) -> dict[str, int]:
    """Bring the queue and the engine back in step after a worker died; once per cluster round.

    * procrastinate tasks ``doing`` on a dead worker end ``failed`` (their rows are handled next);
    * a Processing row with no recent heartbeat and no live task (or no heartbeat for the host's
      ``jobs.STALE_AFTER_SECONDS`` at all) goes back to Queued, or Failed once its attempts are
      used up (the host's rule for a worker that dies with its job);
    * a Queued row with no task (queued before the engine was installed) gets one.
    """
    done = {"stalled_tasks": 0, "requeued": 0, "failed": 0, "deferred": 0}
    now_iso = clock.now_iso()
    orphan_before_iso = clock.now_iso(-ORPHAN_AFTER_SECONDS)
    stale_before_iso = clock.now_iso(-jobs.STALE_AFTER_SECONDS)
    with conn.transaction():
        for (task_id,) in conn.execute(_STALLED_TASKS, [STALLED_WORKER_SECONDS]).fetchall():
            conn.execute("SELECT procrastinate_finish_job_v1(%s, 'failed', false)", [task_id])
            done["stalled_tasks"] += 1
    with conn.transaction():
        rows = conn.execute(
            f"WITH dead AS (SELECT id, claimed_by FROM jobs j WHERE status = 'Processing' "
            f"AND COALESCE(heartbeat_at, '') < %s AND (NOT EXISTS ({_LIVE_TASK}) OR COALESCE(heartbeat_at, '') < %s) "
            "FOR UPDATE) "
            "UPDATE jobs SET status = CASE WHEN attempts >= max_attempts THEN 'Failed' ELSE 'Queued' END, "
            "run_after = %s, claimed_by = NULL, "
            "finished_at = CASE WHEN attempts >= max_attempts THEN %s ELSE finished_at END, "
            "summary = CASE WHEN attempts >= max_attempts THEN %s ELSE summary END "
            "FROM dead WHERE jobs.id = dead.id RETURNING jobs.id, jobs.status, dead.claimed_by",
            [orphan_before_iso, STALLED_WORKER_SECONDS, stale_before_iso, now_iso, now_iso, _DIED_SUMMARY],
        ).fetchall()
        for job_id, status, claimed_by in rows:
            if status == jobs.FAILED:
                message, level = f"Failed: its worker ({claimed_by}) stopped during every attempt", "error"
                done["failed"] += 1
            else:
                message, level = f"worker {claimed_by} stopped while running this job; queued again", "warning"
                done["requeued"] += 1
            conn.execute(
                "INSERT INTO job_logs (job_id, at, level, message) VALUES (%s, %s, %s, %s)",
                [job_id, now_iso, level, message],
            )
    with conn.transaction():
        for job_id, company_id, kind, priority, run_after in conn.execute(
            f"SELECT id, company_id, kind, priority, run_after FROM jobs j WHERE status = 'Queued' "
            f"AND NOT EXISTS ({_ANY_TASK})"
        ).fetchall():
            conn.execute("SELECT cartplugin_defer_run_job(%s, %s, %s, %s, %s)",
                         [job_id, company_id, kind, priority, run_after])  # fmt: skip
            done["deferred"] += 1
    return done
