"""Queued Jobs: one pending per (company, kind), atomic claims, stale reclaim, retries."""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from pathlib import Path

import pytest
from spy_plugin import SpyChannel

from host import clock, config
from host.channel import plugins
from host.errors import NotFound
from host.jobs import queue as jobs
from host.jobs import runner
from host.records.companies import add_company
from host.store.api import OperationalError
from host.store.db import connect
from plugin_spec import AuthError, TransientError, hookimpl


@pytest.fixture
def db(db_target):
    db = connect(db_target)
    yield db
    db.close()


@pytest.fixture
def company_id(db) -> int:
    return add_company(db, "Jobs Co").id


def test_a_second_request_returns_the_pending_job(db, company_id):
    first, created = jobs.enqueue(db, company_id, "download_orders")
    again, created_again = jobs.enqueue(db, company_id, "download_orders")
    assert created and not created_again and again.id == first.id
    other, created_other = jobs.enqueue(db, company_id, "upload_tracking")
    assert created_other and other.id != first.id


def test_unknown_kind_is_refused(db, company_id):
    with pytest.raises(Exception, match="unknown job kind"):
        jobs.enqueue(db, company_id, "format_disk")


def test_concurrent_claims_never_take_the_same_job(db_target, db):
    ids = [add_company(db, f"C{n}").id for n in range(30)]
    for company_id in ids:
        jobs.enqueue(db, company_id, "download_orders")
    claimed: list[int] = []
    lock = threading.Lock()

    def grab(n: int) -> None:
        own = connect(db_target)
        while (job := jobs.claim(own, f"w{n}")) is not None:
            with lock:
                claimed.append(job.id)
        own.close()

    threads = [threading.Thread(target=grab, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == 30


def test_higher_priority_is_claimed_first(db, company_id):
    download, _ = jobs.enqueue(db, company_id, "download_orders")
    test, _ = jobs.enqueue(db, company_id, "test_settings")
    assert jobs.claim(db, "w").id == test.id
    assert jobs.claim(db, "w").id == download.id


def test_a_job_whose_worker_died_is_claimed_again_after_the_timeout(db, company_id):
    job, _ = jobs.enqueue(db, company_id, "download_orders")
    assert jobs.claim(db, "dead-worker").id == job.id
    assert jobs.claim(db, "other", stale_after=60) is None  # still fresh
    db.execute("UPDATE jobs SET heartbeat_at = :at WHERE id = :id", {"at": clock.now_iso(-120), "id": job.id})
    again = jobs.claim(db, "other", stale_after=60)
    assert again.id == job.id and again.attempts == 2 and again.claimed_by == "other"


def test_transient_failures_are_retried_with_backoff_then_fail(db, company_id):
    job, _ = jobs.enqueue(db, company_id, "download_orders")
    db.execute("UPDATE jobs SET max_attempts = 2 WHERE id = :id", {"id": job.id})
    claimed = jobs.claim(db, "w")
    assert jobs.retry_later(db, claimed, "TransientError: 503") is True
    row = jobs.get_job(db, job.id)
    assert row.status == jobs.QUEUED
    assert jobs.claim(db, "w") is None  # backing off: run_after is in the future
    db.execute("UPDATE jobs SET run_after = :due WHERE id = :id", {"due": clock.now_iso(-1), "id": job.id})
    claimed = jobs.claim(db, "w")
    assert jobs.retry_later(db, claimed, "TransientError: 503") is False
    shown = jobs.show_job(db, job.id)
    assert shown["status"] == jobs.FAILED and "gave up after 2 attempts" in shown["summary"]["error"]
    assert any("retrying in" in line["message"] for line in shown["log"])


class FlakyChannel(SpyChannel):
    def __init__(self):
        super().__init__(name="flaky_channel")
        self.failures = 1

    @hookimpl
    def cartplugin_download_orders(self, settings, since, unfulfilled_only):
        if self.failures:
            self.failures -= 1
            raise TransientError("the channel answered 503 three times")
        return SpyChannel.cartplugin_download_orders(self, settings, since, unfulfilled_only)


@pytest.fixture
def flaky(run):
    channel = FlakyChannel()
    plugins.register(channel, name="flaky")
    run("companies", "add", "Flaky Co")
    run("website-settings", "Flaky Co", "--store-plugin", "flaky_channel", "--allow-order-download")
    run("cart-settings", "Flaky Co", "--set", "token=tok-123456")
    run("test-settings", "Flaky Co")
    yield channel
    plugins.unregister(channel)


def test_a_transient_channel_error_requeues_the_job_and_a_retry_completes_it(run, db_target, flaky):
    result = run("import-orders", "Flaky Co", "--json", ok=False)
    assert result.exit_code == 1  # the attempt failed: not a success, even though it will retry
    shown = json.loads(result.stdout)
    assert shown["status"] == jobs.QUEUED and shown["attempts"] == 1
    db = connect(db_target)
    db.execute("UPDATE jobs SET run_after = :due WHERE id = :id", {"due": clock.now_iso(-1), "id": shown["id"]})
    ran = runner.LocalPool(db_target, max_workers=2).drain()
    assert ran == 1
    final = run.json("jobs", "show", str(shown["id"]))
    assert final["status"] == jobs.COMPLETED and final["summary"]["inserted"] == 2


def test_running_an_import_twice_has_the_effect_of_once(run, db_target, flaky):
    flaky.failures = 0
    run("import-orders", "Flaky Co")
    run("import-orders", "Flaky Co")
    assert len(run.json("orders", "list")) == 2


def test_jobs_cli_lists_and_shows_with_log(run, flaky):
    flaky.failures = 0
    job = run.json("import-orders", "Flaky Co")
    listed = run.json("jobs", "list", "--company", "Flaky Co")
    assert [j["kind"] for j in listed][:2] == ["import_orders", "test_settings"]
    shown = run.json("jobs", "show", str(job["id"]))
    assert shown["status"] == jobs.COMPLETED
    assert any("downloading unfulfilled orders" in line["message"] for line in shown["log"])


def test_a_queued_job_can_be_cancelled_and_then_is_not_run(run, db_target, flaky):
    job = run.json("import-orders", "Flaky Co", "--no-wait")
    assert job["status"] == jobs.QUEUED
    run("jobs", "cancel", str(job["id"]))
    assert runner.LocalPool(db_target).drain() == 0
    assert flaky.calls[-1][0] == "test_settings"  # download never called


def test_asking_for_a_job_while_one_of_the_same_kind_is_processing_returns_that_job(db, company_id):
    first, _ = jobs.enqueue(db, company_id, "download_orders")
    running = jobs.claim(db, "w")
    assert running.id == first.id and jobs.get_job(db, first.id).status == jobs.PROCESSING
    again, created = jobs.enqueue(db, company_id, "download_orders")
    assert not created and again.id == first.id and again.status == jobs.PROCESSING


class RevokedKeyChannel(SpyChannel):
    def __init__(self):
        super().__init__(name="revoked_channel")
        self.downloads = 0

    @hookimpl
    def cartplugin_download_orders(self, settings, since, unfulfilled_only):
        self.downloads += 1
        raise AuthError("the channel refused the key (401)")


def test_a_job_that_gets_an_authentication_error_ends_failed_after_one_attempt_and_is_not_requeued(run, db_target):
    channel = RevokedKeyChannel()
    plugins.register(channel, name="revoked")
    try:
        run("companies", "add", "Revoked Co")
        run("website-settings", "Revoked Co", "--store-plugin", "revoked_channel", "--allow-order-download")
        run("cart-settings", "Revoked Co", "--set", "token=tok-123456")
        run("test-settings", "Revoked Co")
        result = run("import-orders", "Revoked Co", "--json", ok=False)
        assert result.exit_code != 0
        shown = json.loads(result.stdout)  # the failure is also logged, on stderr
        assert shown["status"] == jobs.FAILED and shown["attempts"] == 1
        assert "AuthError" in shown["summary"]["error"]
        db = connect(db_target)
        db.execute("UPDATE jobs SET run_after = :due", {"due": clock.now_iso(-3600)})  # nothing is merely backing off
        db.close()
        assert runner.LocalPool(db_target, max_workers=1).drain() == 0
        assert channel.downloads == 1
        assert run.json("jobs", "show", str(shown["id"]))["status"] == jobs.FAILED
    finally:
        plugins.unregister(channel)


def test_each_retry_of_a_failing_job_waits_about_twice_as_long_as_the_one_before(db, company_id):
    job, _ = jobs.enqueue(db, company_id, "download_orders")
    db.execute("UPDATE jobs SET max_attempts = 6 WHERE id = :id", {"id": job.id})
    for attempt in range(1, 5):
        db.execute("UPDATE jobs SET run_after = :due WHERE id = :id", {"due": clock.now_iso(-1), "id": job.id})
        claimed = jobs.claim(db, "w")
        asked = clock.now()
        assert jobs.retry_later(db, claimed, "TransientError: 503") is True
        run_after = clock.parse(db.execute("SELECT run_after FROM jobs WHERE id = :id", {"id": job.id}).fetchone()[0])
        waited = (run_after - asked).total_seconds()
        full = config.current().retry_base_seconds * 2 ** (attempt - 1)
        assert full / 2 - 0.5 <= waited <= full + 0.5, (attempt, waited)  # half to all of it: jitter


def test_a_retry_honours_the_channels_retry_after(db, company_id):
    job, _ = jobs.enqueue(db, company_id, "download_orders")
    claimed = jobs.claim(db, "w")
    before = clock.now()
    assert jobs.retry_later(db, claimed, "RateLimited: 429", retry_after=120) is True
    run_after = clock.parse(db.execute("SELECT run_after FROM jobs WHERE id = :id", {"id": job.id}).fetchone()[0])
    assert 119 <= (run_after - before).total_seconds() <= 121


def test_a_failed_heartbeat_does_not_stop_the_beats(db_target, db, company_id, monkeypatch, tmp_path, request):
    """A database that is away for a moment (a PostgreSQL restart, a moved file) costs one beat,
    not the rest: a job whose beats stopped would be given to another worker while it runs."""
    monkeypatch.setattr(runner, "HEARTBEAT_SECONDS", 0.05)
    job, _ = jobs.enqueue(db, company_id, "import_orders")
    claimed = jobs.claim(db, "me:1:1")
    assert claimed is not None and claimed.id == job.id

    def beat() -> str:
        return db.execute("SELECT heartbeat_at FROM jobs WHERE id = :id", {"id": job.id}).fetchone()[0]

    away = tmp_path / "away.db"
    with runner._Heartbeat(db, claimed):
        if isinstance(db_target, Path):
            db_target.rename(away)  # the next beats cannot open the database
            time.sleep(0.3)
            away.rename(db_target)
        else:
            request.getfixturevalue("postgres").restart()  # the beats meanwhile find no server
            with contextlib.suppress(*OperationalError):
                db.execute("SELECT 1")  # this test's own connection met the restart: the next one reconnects
        missed = beat()
        deadline = time.monotonic() + 10
        while beat() == missed and time.monotonic() < deadline:
            time.sleep(0.05)
        assert beat() > missed


def _dead_pid() -> int:
    """The pid of a process of this machine that has just ended."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_job_whose_worker_process_on_this_machine_ended_is_queued_again_at_once(db, company_id):
    me = jobs.machine_id()
    dead, alive, elsewhere, spent = (
        jobs.enqueue(db, add_company(db, f"Orphans {n}").id, "download_orders")[0] for n in range(4)
    )
    jobs.claim(db, f"{me}:{_dead_pid()}:w1", job_id=dead.id)
    jobs.claim(db, f"{me}:{os.getpid()}:w2", job_id=alive.id)
    jobs.claim(db, f"another-machine:{_dead_pid()}:w3", job_id=elsewhere.id)  # its pids mean nothing here
    spent_by = f"{me}:{_dead_pid()}:w4"
    jobs.claim(db, spent_by, job_id=spent.id)
    db.execute("UPDATE jobs SET max_attempts = attempts WHERE id = :id", {"id": spent.id})

    assert sorted(jobs.recover_orphans(db)) == sorted([dead.id, spent.id])

    again = jobs.get_job(db, dead.id)
    assert again.status == jobs.QUEUED and again.claimed_by is None
    assert jobs.claim(db, "next-worker", job_id=dead.id).id == dead.id  # runnable right away
    log = jobs.show_job(db, dead.id)["log"]
    assert any(
        line["level"] == "warning" and "stopped while running this job; queued again" in line["message"] for line in log
    )
    assert jobs.get_job(db, alive.id).status == jobs.PROCESSING
    assert jobs.get_job(db, elsewhere.id).status == jobs.PROCESSING
    failed = jobs.show_job(db, spent.id)
    assert failed["status"] == jobs.FAILED
    assert any(
        line["level"] == "error" and line["message"] == f"Failed: its worker ({spent_by}) stopped during every attempt"
        for line in failed["log"]
    )


def test_a_job_stopped_by_its_worker_goes_back_to_the_queue_without_spending_an_attempt(db, company_id):
    job, _ = jobs.enqueue(db, company_id, "download_orders")
    claimed = jobs.claim(db, "w1")
    assert claimed.attempts == 1
    jobs.requeue_now(db, claimed, "the worker is shutting down; the job runs again")
    again = jobs.get_job(db, job.id)
    assert again.status == jobs.QUEUED and again.attempts == 0 and again.claimed_by is None
    assert {"level": "warning", "message": "the worker is shutting down; the job runs again"}.items() <= next(
        line for line in jobs.show_job(db, job.id)["log"] if "shutting down" in line["message"]
    ).items()
    # a worker that lost its claim gives back nothing: the job stays with the one that has it
    taken = jobs.claim(db, "w2")
    jobs.requeue_now(db, claimed, "late")
    assert jobs.get_job(db, job.id).claimed_by == "w2" and jobs.get_job(db, job.id).attempts == taken.attempts


def test_a_retry_and_a_cancellation_are_written_to_the_job_log_with_their_level(db, company_id):
    job, _ = jobs.enqueue(db, company_id, "download_orders")
    jobs.retry_later(db, jobs.claim(db, "w"), "TransientError: 503.", retry_after=7)
    assert [(line["level"], line["message"]) for line in jobs.show_job(db, job.id)["log"]][-1] == (
        "warning",
        "TransientError: 503; retrying in 7.0 s",
    )
    other, _ = jobs.enqueue(db, add_company(db, "Cancelled Co").id, "download_orders")
    jobs.cancel(db, other.id)
    assert [(line["level"], line["message"]) for line in jobs.show_job(db, other.id)["log"]][-1] == (
        "info",
        "cancelled by staff",
    )


def test_the_cli_shows_a_jobs_summary_as_words():
    # `cartplugin jobs list` / `jobs show`: flags as words, a message as it is, counts with their name
    summary = {"all_sent": False, "dry_run": True, "error": "the channel said no", "bad_orders": 2}
    assert jobs.summary_text(summary) == "not all sent, dry run, the channel said no, bad orders 2"
    assert jobs.summary_text({"reason": "stopped", "message": "hello"}) == "stopped, hello"
    assert jobs.summary_text(None) == "-"


def test_a_jobs_summary_reads_as_staff_words():
    assert jobs.summary_words(
        {"inserted": 19, "seen": 20, "accepted": 2, "bad_orders": 1, "since": "2026-12-01T00:00:00Z", "more": True}
    ) == (
        "19 new, 0 updated, 0 unchanged, 2 accepted on the channel, 1 not imported, read from 2026-12-01T00:00:00Z, "
        "the next run goes on from here"
    )
    assert jobs.summary_words({"inserted": 0, "updated": 3, "unchanged": 4}) == "0 new, 3 updated, 4 unchanged"
    assert jobs.summary_words({"retrying": 1}) == "0 accepted, 0 refused, 1 to retry"
    assert jobs.summary_words({"accepted": 2, "failed": 1}) == "2 accepted, 1 refused, 0 to retry"
    assert (
        jobs.summary_words(
            {"error": "gave up", "waiting_until": "T", "more": True, "dry_run": False, "pages": 3, "orders": [1]},
            when=lambda at: f"<{at}>",
        )
        == "gave up, dry run no, pages 3, waiting for the channel's rate limit until <T>"
    )
    assert jobs.summary_words({"ok": True, "message": "Connection established", "reason": "r"}) == (
        "Connection established, r"
    )
    assert jobs.summary_words(None) == ""


def test_a_finished_job_logs_its_outcome_with_the_level_staff_filter_on(db, company_id):
    done, _ = jobs.enqueue(db, company_id, "download_orders")
    jobs.finish(db, jobs.claim(db, "w", job_id=done.id), jobs.COMPLETED, {"inserted": 3})
    assert jobs.show_job(db, done.id)["log"][-1] | {"at": None} == {
        "at": None,
        "level": "info",
        "message": "Completed: 3 new, 0 updated, 0 unchanged",
    }
    failed, _ = jobs.enqueue(db, company_id, "upload_tracking")
    jobs.finish(db, jobs.claim(db, "w", job_id=failed.id), jobs.FAILED, None)
    assert jobs.show_job(db, failed.id)["log"][-1] | {"at": None} == {
        "at": None,
        "level": "error",
        "message": "Failed: done",
    }


def test_a_job_whose_worker_died_on_its_last_attempt_ends_failed_with_the_reason(db, company_id):
    job, _ = jobs.enqueue(db, company_id, "download_orders")
    jobs.claim(db, "dying-worker")
    db.execute(
        "UPDATE jobs SET max_attempts = 1, heartbeat_at = :at WHERE id = :id", {"at": clock.now_iso(-120), "id": job.id}
    )
    assert jobs.claim(db, "other", stale_after=60) is None  # not taken again: it is spent
    shown = jobs.show_job(db, job.id)
    assert shown["status"] == jobs.FAILED and shown["summary"] == {"error": "its worker stopped during every attempt"}
    assert shown["log"][-1]["message"] == "Failed: its worker stopped during every attempt"


def test_an_unknown_job_is_named_as_a_job(db):
    with pytest.raises(NotFound, match="^job id must be a number, not 'abc'$"):
        jobs.get_job(db, "abc")
    with pytest.raises(NotFound, match="^unknown job 12345$"):
        jobs.get_job(db, 12345)
