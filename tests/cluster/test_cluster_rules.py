"""Cluster rules each guarded by a test that fails when the rule is broken by hand (issue 27):
PostgreSQL in a temporary folder, the engine's schema and bridge, the leader's sweep."""

from __future__ import annotations

import psycopg

from host import clock, jobs
from host.cluster import engine
from host.db import connect


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
                db.execute("UPDATE jobs SET heartbeat_at = ? WHERE id = ?", [clock.now_iso(-dead_for), job.id])
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
