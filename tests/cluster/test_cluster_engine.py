"""Queued Jobs on PostgreSQL run by procrastinate (host/jobs/cluster): one transaction for a row and
its task, one pending task per company and kind, real worker processes, one scheduler per
cluster, a killed worker's job finished by another."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import psycopg
import pytest
from cluster_support import wait_until
from fault_harness import FAST_ENV, UNFULFILLED, setup_company
from support import Held

from host import clock
from host.jobs import queue as jobs
from host.jobs.cluster import engine, schema
from host.store.db import connect, write


def tasks(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT (args->>'job_id')::bigint, status::text, queueing_lock FROM procrastinate_jobs ORDER BY id"
        ).fetchall()


def workers(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT id FROM procrastinate_workers").fetchall()


def test_a_job_row_and_its_task_are_committed_in_one_transaction(cluster_url, company_id):
    db = connect(cluster_url)
    try:
        with pytest.raises(RuntimeError), write(db):
            jobs.enqueue(db, company_id, "download_orders")
            raise RuntimeError("the caller's transaction fails after the enqueue")
        assert db.execute("SELECT count(*) FROM jobs").fetchone()[0] == 0
        assert tasks(cluster_url) == []  # a rollback leaves neither the row nor the task

        job, created = jobs.enqueue(db, company_id, "download_orders")
        assert created
        assert tasks(cluster_url) == [(job.id, "todo", f"cartplugin:{company_id}:download_orders")]
    finally:
        db.close()


def test_one_pending_task_per_company_and_kind_and_a_cancelled_row_cancels_it(cluster_url, company_id):
    db = connect(cluster_url)
    try:
        first, _ = jobs.enqueue(db, company_id, "upload_tracking")
        again, created = jobs.enqueue(db, company_id, "upload_tracking")
        other, _ = jobs.enqueue(db, company_id, "download_orders")
        assert (again.id, created) == (first.id, False)
        assert sorted(tasks(cluster_url)) == sorted(
            [
                (first.id, "todo", f"cartplugin:{company_id}:upload_tracking"),
                (other.id, "todo", f"cartplugin:{company_id}:download_orders"),
            ]
        )
        # procrastinate itself refuses a second waiting task under one queueing lock
        with psycopg.connect(cluster_url) as conn, pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW('cartplugin', %s, 0, NULL, %s, '{}'::jsonb, NULL)]"
                "::procrastinate_job_to_defer_v1[])",
                [schema.TASK, f"cartplugin:{company_id}:upload_tracking"],
            )
        jobs.cancel(db, first.id)
        assert (first.id, "cancelled", f"cartplugin:{company_id}:upload_tracking") in tasks(cluster_url)
    finally:
        db.close()


def test_a_job_queued_on_postgresql_runs_through_procrastinate_in_a_worker_process(
    cluster_url, company_id, sandbox, start_worker
):
    worker = start_worker()
    db = connect(cluster_url)
    try:
        job, _ = jobs.enqueue(db, company_id, "import_orders")
        assert wait_until(lambda: jobs.get_job(db, job.id).status == jobs.COMPLETED, timeout=60), worker.output
        # procrastinate marks its task succeeded only after the task has returned, a moment
        # after the host's own job row says Completed
        done = (job.id, "succeeded", f"cartplugin:{company_id}:import_orders")
        assert wait_until(lambda: done in tasks(cluster_url), timeout=30), (tasks(cluster_url), worker.output)
        imported = [r[0] for r in db.execute("SELECT source_order_id FROM orders").fetchall()]
        assert len(imported) == len(set(imported)) > 0
    finally:
        db.close()
    assert worker.stop() == 0, worker.output


def test_two_workers_run_the_schedule_once_and_the_survivor_takes_over(cluster_url, company_id, start_worker):
    first = start_worker()
    assert wait_until(lambda: first.said("leads"), timeout=60), first.output
    second = start_worker()
    # the second worker is up (procrastinate registered it) but does not lead while the first lives
    assert wait_until(lambda: len(workers(cluster_url)) == 2, timeout=60), second.output
    db = connect(cluster_url)
    try:
        db.execute(
            "UPDATE companies SET next_download_at = :due WHERE id = :id", {"due": clock.now_iso(), "id": company_id}
        )
        assert wait_until(lambda: first.said("tick: queued 1 download"), timeout=30), first.output
        assert wait_until(
            lambda: db.execute("SELECT count(*) FROM jobs WHERE status = 'Completed'").fetchone()[0] >= 1, timeout=60
        )
        assert not second.said("leads") and not second.said("tick:"), second.output

        first.stop(signal.SIGKILL)
        assert wait_until(lambda: second.said("leads"), timeout=30), second.output
        db.execute(
            "UPDATE companies SET next_download_at = :due WHERE id = :id", {"due": clock.now_iso(), "id": company_id}
        )
        assert wait_until(lambda: second.said("tick: queued 1 download"), timeout=30), second.output
    finally:
        db.close()
    assert second.stop() == 0, second.output


def test_a_worker_killed_mid_job_leaves_it_to_another_that_finishes_it(cluster_url, company_id, sandbox, start_worker):
    doomed = start_worker(env={"CARTPLUGIN_FAILPOINTS": "download.item=3"})
    db = connect(cluster_url)
    try:
        job, _ = jobs.enqueue(db, company_id, "import_orders")
        assert doomed.proc.wait(timeout=60) == -signal.SIGKILL, doomed.output
        assert jobs.get_job(db, job.id).status == jobs.PROCESSING
        survivor = start_worker()
        assert wait_until(lambda: jobs.get_job(db, job.id).status == jobs.COMPLETED, timeout=60), survivor.output
        finished = jobs.show_job(db, job.id)
        assert finished["attempts"] == 2
        assert any("stopped while running this job" in line["message"] for line in finished["log"])
        imported = [r[0] for r in db.execute("SELECT source_order_id FROM orders").fetchall()]
        assert len(imported) == len(set(imported))  # each order once
        assert set(imported) == {
            o["id"] for o in sandbox.orders(sandbox.api_key) if o["fulfillment_status"] in UNFULFILLED
        }
    finally:
        db.close()
    assert survivor.stop() == 0, survivor.output


def test_the_sweep_gives_back_the_job_of_a_worker_on_another_machine_that_stopped(cluster_url, company_id):
    """No process to ask on another machine: its procrastinate heartbeat went stale."""
    db = connect(cluster_url)
    try:
        job, _ = jobs.enqueue(db, company_id, "download_orders")
        with psycopg.connect(cluster_url, autocommit=True) as conn:
            worker_id = conn.execute("SELECT procrastinate_register_worker_v1()").fetchone()[0]
            task_id = conn.execute("SELECT id FROM procrastinate_jobs").fetchone()[0]
            conn.execute("UPDATE procrastinate_jobs SET status = 'doing', worker_id = %s WHERE id = %s",
                         [worker_id, task_id])  # fmt: skip
            claimed = jobs.claim(db, "elsewhere:4242:1", job_id=job.id)
            assert claimed is not None

            # alive (a fresh heartbeat): nothing is touched
            old = clock.now_iso(-engine.ORPHAN_AFTER_SECONDS - 1)
            db.execute("UPDATE jobs SET heartbeat_at = :at WHERE id = :id", {"at": old, "id": job.id})
            swept = engine.sweep(conn)
            assert swept == {"stalled_tasks": 0, "requeued": 0, "failed": 0, "deferred": 0}

            conn.execute("UPDATE procrastinate_workers SET last_heartbeat = now() - interval '1 hour'")
            swept = engine.sweep(conn)
            assert swept == {"stalled_tasks": 1, "requeued": 1, "failed": 0, "deferred": 0}
        assert jobs.get_job(db, job.id).status == jobs.QUEUED
        assert tasks(cluster_url) == [
            (job.id, "failed", f"cartplugin:{company_id}:download_orders"),
            (job.id, "todo", f"cartplugin:{company_id}:download_orders"),
        ]
        log = jobs.show_job(db, job.id)["log"]
        assert "worker elsewhere:4242:1 stopped while running this job; queued again" in log[-1]["message"]
    finally:
        db.close()


def test_rows_queued_before_the_engine_was_installed_are_given_to_it(pg_url, tmp_path, monkeypatch, sandbox):
    monkeypatch.setenv("CARTPLUGIN_SECRET_KEY_FILE", str(tmp_path / "cluster.key"))
    db = connect(pg_url)
    try:
        company_id = setup_company(db, "Early AG", sandbox.base_url, sandbox.api_key)
        job, _ = jobs.enqueue(db, company_id, "download_orders")
        assert schema.ensure(pg_url) is True
        assert schema.ensure(pg_url) is False  # already in place
        assert tasks(pg_url) == []
        with psycopg.connect(pg_url, autocommit=True) as conn:
            swept = engine.sweep(conn)
        assert swept["deferred"] == 1
        assert tasks(pg_url) == [(job.id, "todo", f"cartplugin:{company_id}:download_orders")]
    finally:
        db.close()


def test_worker_once_on_postgresql_runs_one_round_and_the_due_tasks(cluster_url, company_id):
    db = connect(cluster_url)
    try:
        job, _ = jobs.enqueue(db, company_id, "import_orders")
        result = subprocess.run(
            [sys.executable, "-m", "host", "--db", cluster_url, "worker", "--once", "--download-every", "3600"],
            capture_output=True, text=True, timeout=120, env={**os.environ, **FAST_ENV}, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert jobs.get_job(db, job.id).status == jobs.COMPLETED
        # the round queued the company's first download too; both ran
        assert "tick: queued 1 download(s), 0 upload(s); ran 2 job(s)" in result.stdout, result.stdout
        assert {status for _, status, _ in tasks(cluster_url)} == {"succeeded"}
    finally:
        db.close()


def test_a_stopping_worker_gives_its_running_job_back_and_the_next_one_finishes_it(
    cluster_url, company_id, sandbox, start_worker
):
    held = Held(sandbox, passes=0, latency=0.5)  # the page waits until the stop is sent, then takes 0.5 s
    first = start_worker()
    db = connect(cluster_url)
    try:
        job, _ = jobs.enqueue(db, company_id, "import_orders")
        assert wait_until(lambda: jobs.get_job(db, job.id).status == jobs.PROCESSING, timeout=60), first.output
        assert held.arrived.wait(60), first.output  # its listing request is at the channel
        first.proc.send_signal(signal.SIGTERM)
        held.release()
        assert first.proc.wait(timeout=60) == 0, first.output  # one signal: a second one cancels harder
        assert not held.timed_out
        stopped = jobs.show_job(db, job.id)
        assert stopped["status"] == jobs.QUEUED, first.output
        assert any("the worker is stopping" in line["message"] for line in stopped["log"])
        held.remove()
        second = start_worker()
        assert wait_until(lambda: jobs.get_job(db, job.id).status == jobs.COMPLETED, timeout=60), second.output
        assert jobs.get_job(db, job.id).attempts == 1  # a stop is not a failed attempt
    finally:
        db.close()
    assert second.stop() == 0, second.output


def test_a_worker_on_postgresql_without_the_engine_installed_says_what_to_install(cluster_url):
    code = (
        "import sys; sys.modules['procrastinate'] = None\n"  # as if the postgresql extra were not installed
        f"from host.cli.main import cli; cli(['--db', {cluster_url!r}, 'worker', '--once'])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "needs the postgresql extra (procrastinate is missing): pip install 'cartplugin[postgresql]'" in (
        result.stdout + result.stderr
    )
    assert "Traceback" not in result.stderr


def test_a_task_that_comes_before_its_row_is_due_defers_itself_to_then(cluster_url, company_id, start_worker):
    """Two machines' clocks may differ: a task run early leaves the row to a task of its own time."""
    db = connect(cluster_url)
    try:
        job, _ = jobs.enqueue(db, company_id, "import_orders")
        due = clock.now_iso(3.0)
        db.execute("UPDATE jobs SET run_after = :due WHERE id = :id", {"due": due, "id": job.id})
        with psycopg.connect(cluster_url, autocommit=True) as conn:  # as if this database's clock ran ahead
            conn.execute("UPDATE procrastinate_jobs SET scheduled_at = NULL")
        worker = start_worker()
        assert wait_until(lambda: jobs.get_job(db, job.id).status == jobs.COMPLETED, timeout=60), worker.output
        assert jobs.show_job(db, job.id)["started_at"] >= due

        def mine():
            return [status for job_id, status, _ in tasks(cluster_url) if job_id == job.id]

        # the early one, then the one it deferred (marked a moment after the host's row says Completed)
        assert wait_until(lambda: mine() == ["succeeded", "succeeded"], timeout=30), (mine(), worker.output)
    finally:
        db.close()
