"""On PostgreSQL the heartbeats of a worker's running jobs borrow their connections from a small
pool the process keeps: each job's heartbeat thread used to open a connection of its own (for
the server, a new process and a round of authentication) and close it when the job ended."""

from __future__ import annotations

import time

from host import clock
from host.jobs import queue as jobs
from host.jobs import runner
from host.records.companies import add_company
from host.store import db as host_db
from host.store.db import connect


def _beat_at(db, job_id: int) -> str:
    return db.execute("SELECT heartbeat_at FROM jobs WHERE id = :id", {"id": job_id}).fetchone()[0]


def test_the_heartbeats_of_job_after_job_share_a_few_pooled_connections(pg_url, monkeypatch):
    monkeypatch.setitem(runner._HEARTBEAT_INTERVAL, "postgresql", lambda: 0.02)
    db = connect(pg_url)
    company = add_company(db, "Beats Co")
    beats = 0
    for _ in range(8):
        job, _ = jobs.enqueue(db, company.id, "import_orders")
        claimed = jobs.claim(db, runner.worker_id(), job_id=job.id)
        assert claimed is not None
        claimed_at = _beat_at(db, job.id)
        with runner._Heartbeat(db, claimed):
            deadline = time.monotonic() + 10
            while _beat_at(db, job.id) == claimed_at and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.1)  # a few more beats
        assert _beat_at(db, job.id) > claimed_at  # the job beat
        beats += 1
        assert jobs.finish(db, claimed, jobs.COMPLETED, {"at": clock.now_iso()})
    db.close()
    pool = host_db._short_writes[pg_url].pool
    stats = pool._pool.get_stats()
    # 8 jobs, dozens of beats: before, 8 connections opened (one per job's heartbeat thread)
    assert beats == 8 and stats["connections_num"] <= 2, stats
    assert stats["requests_num"] >= 8 * 2  # every beat borrowed one
