"""The cluster's leader on PostgreSQL: one round queues every due company's job in one
transaction and each Queued row gets its procrastinate task (the bridge's trigger fires per
row of the bulk insert); finished procrastinate tasks past their window are removed, a batch
a round."""

from __future__ import annotations

import time

import psycopg
import pytest
from test_cluster_engine import tasks

from host import clock
from host.jobs import queue as jobs
from host.jobs.cluster import engine
from host.jobs.cluster.leader import Scheduler
from host.store.db import connect, write

COMPANIES = 200


def _companies(db, count: int, next_download_at: str | None) -> list[int]:
    now = clock.now_iso()
    ids = []
    with write(db):
        for n in range(1, count + 1):
            company_id = db.execute(
                "INSERT INTO companies (name, created_at, connection_status, connection_message, "
                "connection_tested_at, next_download_at) VALUES (:name, :now, 'established', 'ok', :now, :next) "
                "RETURNING id",
                {"name": f"Cluster {n:04d}", "now": now, "next": next_download_at},
            ).fetchone()[0]
            db.execute(
                "INSERT INTO website_settings (company_id, store_plugin, allow_order_download, updated_at) "
                "VALUES (:id, 'backmarket_pro', 1, :now)",
                {"id": company_id, "now": now},
            )
            ids.append(company_id)
    return ids


def test_one_leader_round_queues_every_due_download_and_each_row_gets_its_one_task(cluster_url, bmp):
    db = connect(cluster_url)
    leader = Scheduler(cluster_url, interval=1.0, download_every=900.0)
    try:
        ids = _companies(db, COMPANIES, clock.now_iso(-60))
        first = leader.round()
        assert first["download_orders"] == COMPANIES
        rows = db.execute("SELECT id, company_id FROM jobs WHERE status = 'Queued'").fetchall()
        assert sorted(company_id for _, company_id in rows) == ids
        assert sorted(tasks(cluster_url)) == sorted(
            (job_id, "todo", f"cartplugin:{company_id}:download_orders") for job_id, company_id in rows
        )
        assert first["deferred"] == 0  # the trigger gave every row its task; the sweep had none to give

        db.execute("UPDATE companies SET next_download_at = :due", {"due": clock.now_iso(-1)})
        again = leader.round()
        assert again["download_orders"] == 0  # each company's download is still pending
        assert len(tasks(cluster_url)) == COMPANIES
    finally:
        leader.close()
        db.close()


def test_the_leader_removes_finished_tasks_past_their_window_a_batch_a_round(cluster_url, monkeypatch):
    db = connect(cluster_url)
    leader = Scheduler(cluster_url, interval=1.0, download_every=900.0)
    try:
        company_ids = _companies(db, 8, None)
        queued = [jobs.enqueue(db, company_id, "download_orders")[0].id for company_id in company_ids]
        old_succeeded, old_failed, recent, waiting = queued[:5], queued[5:6], queued[6:7], queued[7:]
        with psycopg.connect(cluster_url, autocommit=True) as conn:
            worker = conn.execute("SELECT procrastinate_register_worker_v1()").fetchone()[0]
            for job_id in old_succeeded + old_failed + recent:
                status = "failed" if job_id in old_failed else "succeeded"
                conn.execute(
                    "UPDATE procrastinate_jobs SET status = 'doing', worker_id = %s "
                    "WHERE (args->>'job_id')::bigint = %s",
                    [worker, job_id],
                )
                conn.execute(
                    "SELECT procrastinate_finish_job_v1(id, %s, false) FROM procrastinate_jobs "
                    "WHERE (args->>'job_id')::bigint = %s",
                    [status, job_id],
                )
                db.execute(
                    "UPDATE jobs SET status = 'Completed', finished_at = :now WHERE id = :id",
                    {"now": clock.now_iso(), "id": job_id},
                )
            conn.execute(
                "UPDATE procrastinate_events SET at = now() - make_interval(secs => %s) "
                "WHERE job_id IN (SELECT id FROM procrastinate_jobs WHERE (args->>'job_id')::bigint = ANY(%s))",
                [engine.FINISHED_TASKS_KEPT_SECONDS + 60, old_succeeded + old_failed],
            )

        monkeypatch.setattr(engine, "PRUNE_BATCH", 4)
        assert [leader.round().get("pruned", 0) for _ in range(3)] == [4, 2, 0]
        assert sorted((job_id, status) for job_id, status, _ in tasks(cluster_url)) == sorted(
            [(recent[0], "succeeded"), (waiting[0], "todo")]
        )
        with psycopg.connect(cluster_url) as conn:
            left = conn.execute(
                "SELECT count(*) FROM procrastinate_events e LEFT JOIN procrastinate_jobs p ON p.id = e.job_id "
                "WHERE p.id IS NULL"
            ).fetchone()[0]
        assert left == 0  # the removed tasks' events went with them
        assert db.execute("SELECT count(*) FROM jobs").fetchone()[0] == 8  # the host's record stays whole
    finally:
        leader.close()
        db.close()


def test_a_leader_that_falls_silent_loses_the_lead_and_another_takes_over(cluster_url):
    """A frozen leader (here: one that stops speaking) keeps its connection, and its machine still
    answers TCP keepalives; the server ends its idle session after ``lead_lost_after``, and with it
    the lock, so another worker leads; the old one, speaking again, finds its session gone."""
    frozen = Scheduler(cluster_url, interval=0.2, download_every=300, lead_lost_after=1.0)
    other = Scheduler(cluster_url, interval=0.2, download_every=300, lead_lost_after=1.0)
    try:
        assert frozen.try_lead() is True
        assert other.try_lead() is False  # the lock is held while the leader speaks
        deadline = time.monotonic() + 15
        while not other.try_lead() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert other.leading, "the silent leader's lock was never released"
        with pytest.raises(psycopg.OperationalError):
            frozen.try_lead()  # its session was ended by the server: it cannot believe it still leads
    finally:
        frozen.close()
        other.close()
