"""Cluster rules each guarded by a test that fails when the rule is broken by hand (issue 27):
PostgreSQL in a temporary folder, the engine's schema and bridge, the leader's sweep."""

from __future__ import annotations

import signal

import psycopg
from cluster_support import wait_until

from host import clock
from host.jobs import queue as jobs
from host.jobs.cluster import engine
from host.store.db import connect, write


def test_a_job_whose_worker_dies_on_every_attempt_is_requeued_until_its_last_and_then_ends_failed(
    cluster_url, company_id
):
    # the sweep alone must end it: the claim's own check fails a dead job only after the host's
    # longer STALE_AFTER_SECONDS, which these heartbeats never reach
    dead_for = engine.ORPHAN_AFTER_SECONDS + 1
    assert dead_for < jobs.STALE_AFTER_SECONDS
    db = connect(cluster_url)
    try:
        job, _ = jobs.enqueue(db, company_id, "download_orders")
        with psycopg.connect(cluster_url, autocommit=True) as conn:
            for attempt in range(1, job.max_attempts + 1):
                claimed = jobs.claim(db, f"elsewhere:{attempt}:1", job_id=job.id)
                assert claimed is not None and claimed.attempts == attempt
                # its worker dies: no task runs it and its heartbeat stops
                db.execute(
                    "UPDATE jobs SET heartbeat_at = :at WHERE id = :id", {"at": clock.now_iso(-dead_for), "id": job.id}
                )
                swept = engine.sweep(conn)
                if attempt < job.max_attempts:
                    assert swept == {"stalled_tasks": 0, "requeued": 1, "failed": 0, "deferred": 0}
                    assert jobs.get_job(db, job.id).status == jobs.QUEUED
            # attempts == max_attempts: the boundary itself ends it Failed, it is not queued again
            assert swept == {"stalled_tasks": 0, "requeued": 0, "failed": 1, "deferred": 0}
            shown = jobs.show_job(db, job.id)
            assert shown["status"] == jobs.FAILED and shown["attempts"] == job.max_attempts
            assert shown["summary"] == {"error": "its worker stopped during every attempt"}
            assert shown["finished_at"] is not None
            assert shown["log"][-1]["message"] == (
                f"Failed: its worker (elsewhere:{job.max_attempts}:1) stopped during every attempt"
            )
            # and it stays so: nothing claims it, the next sweep leaves it alone
            assert jobs.claim(db, "survivor:9:1", job_id=job.id) is None
            assert engine.sweep(conn) == {"stalled_tasks": 0, "requeued": 0, "failed": 0, "deferred": 0}
            assert jobs.get_job(db, job.id).status == jobs.FAILED
    finally:
        db.close()


def test_worker_processes_killed_during_each_attempt_leave_the_job_failed_and_the_next_worker_does_not_run_it(
    cluster_url, company_id, sandbox, start_worker
):
    """The same rule end to end, for workers on one machine: real worker processes, each killed
    mid-download (a failpoint). The leader's tick asks the kernel and finds the dead pid at once
    (``jobs.recover_orphans``), before any sweep: this guards that path, the test above the sweep's."""
    db = connect(cluster_url)
    try:
        with write(db):  # two attempts, so two deaths use them up
            job, _ = jobs.enqueue(db, company_id, "import_orders")
            db.execute("UPDATE jobs SET max_attempts = 2 WHERE id = :id", {"id": job.id})
        for attempt in (1, 2):
            # the second one leads the schedule, gives itself the dead first one's job, and dies too
            doomed = start_worker(env={"CARTPLUGIN_FAILPOINTS": "download.item=3"})
            assert doomed.proc.wait(timeout=60) == -signal.SIGKILL, doomed.output
            assert jobs.get_job(db, job.id).attempts == attempt
        survivor = start_worker()
        ended = (jobs.COMPLETED, jobs.PARTIAL, jobs.FAILED, jobs.CANCELLED)
        assert wait_until(lambda: jobs.get_job(db, job.id).status in ended, timeout=60), survivor.output
        shown = jobs.show_job(db, job.id)
        assert shown["status"] == jobs.FAILED and shown["attempts"] == 2, shown  # not a third run by the survivor
        messages = [line["message"] for line in shown["log"]]
        assert sum("stopped while running this job; queued again" in m for m in messages) == 1
        assert "stopped during every attempt" in messages[-1]
    finally:
        db.close()
    assert survivor.stop() == 0, survivor.output
