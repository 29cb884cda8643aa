"""Fencing on both backends, in one process: a job whose claim another worker took while it
ran sends no request and writes no order after that, and its job log says why it stopped.
(``tests/cluster/test_cluster_fencing.py`` freezes a real worker process for the same rule.)"""

from __future__ import annotations

import dataclasses
import itertools
import sys
import threading
import time
from pathlib import Path

import support
from support import ups_tracking

from backmarket_pro import plugin
from backmarket_pro.sandbox import Sandbox
from host.errors import HostError
from host.jobs import queue as jobs
from host.jobs import runner
from host.records import orders
from host.store.db import connect

sys.path.insert(0, str(Path(__file__).resolve().parent / "faults"))
from fault_harness import FAST_ENV, setup_company  # noqa: E402

KEY = "bmp-fencing-key-3f0a6c18e27d"


def _orders(db) -> int:
    return db.execute("SELECT count(*) FROM orders").fetchone()[0]


def _listings(sandbox) -> list[dict]:
    return [r for r in sandbox.request_log() if r["method"] == "GET" and r["path"].endswith("/orders")]


def test_a_job_whose_claim_another_worker_took_sends_and_writes_nothing_more(db_target, bmp, monkeypatch):
    for name, value in FAST_ENV.items():  # batches of ten orders
        monkeypatch.setenv(name, value)
    # a read timeout well past the held answer: under load a timed-out page is retried by the HTTP layer,
    # and a retry is one more request in the count below (seen once in CI: 5 pages instead of 3)
    monkeypatch.setenv("CARTPLUGIN_BMP_READ_TIMEOUT", "10")
    monkeypatch.setattr(plugin, "client_options", dataclasses.replace(plugin.client_options, page_size=10))
    # a short orphan window, so the lease (two thirds of it) runs out while a page is answered
    monkeypatch.setattr(runner, "orphan_window", lambda backend: 0.6)
    with Sandbox(api_key=KEY, orders=60, seed=5) as sandbox:
        db = connect(db_target)
        try:
            company_id = setup_company(db, "Fenced Oy", sandbox.base_url, KEY)
            job, _ = jobs.enqueue(db, company_id, "import_orders")
            mine = jobs.claim(db, "frozen:1:1", job_id=job.id)
            assert mine is not None
            taken: dict[str, object] = {}
            answers = itertools.count()
            sleep = sandbox.sleep

            def answer(seconds: float) -> None:
                if next(answers) == 2:  # while the third page is answered, another worker takes the job
                    other = connect(db_target)
                    try:
                        taken["job"] = jobs.claim(other, "taker:2:1", job_id=job.id, stale_after=0.0)
                        taken["orders"] = _orders(other)
                    finally:
                        other.close()
                    sleep(1.0)  # longer than the lease: the next request must ask the database first
                sleep(seconds)

            sandbox.clear_request_log()
            sandbox.sleep = answer
            status = runner.execute(db, mine)

            assert len(_listings(sandbox)) == 3  # no page asked for after the one being answered
            assert _orders(db) == taken["orders"]  # no batch written after the job was taken
            assert status == runner.LOST
            row = jobs.get_job(db, job.id)
            assert (row.status, row.claimed_by, row.attempts) == (jobs.PROCESSING, "taker:2:1", 2)
            messages = [line["message"] for line in jobs.show_job(db, job.id)["log"]]
            assert f"{jobs.LOST_CLAIM} (worker frozen:1:1, attempt 1)" in messages
            # the new owner's claim holds: its end is recorded
            new_owner = taken["job"]
            assert isinstance(new_owner, jobs.Job)
            assert jobs.finish(db, new_owner, jobs.COMPLETED, {"inserted": 0})
        finally:
            db.close()


def test_an_upload_whose_claim_another_worker_took_posts_and_records_nothing_more(db_target, bmp, monkeypatch):
    for name, value in FAST_ENV.items():  # batches of four shipments
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(runner, "orphan_window", lambda backend: 0.6)
    with Sandbox(api_key=KEY, orders=20, seed=5) as sandbox:
        db = connect(db_target)
        try:
            company_id = setup_company(db, "Fenced Oy", sandbox.base_url, KEY)
            imported, _ = jobs.enqueue(db, company_id, "import_orders")
            assert runner.execute(db, jobs.claim(db, "importer:1:1", job_id=imported.id)) == jobs.COMPLETED
            shipped = 0
            for n, (order_id,) in enumerate(db.execute("SELECT id FROM orders ORDER BY id").fetchall()):
                try:
                    orders.ship_order(db, order_id, carrier="UPS", tracking_number=ups_tracking(n))
                    shipped += 1
                except HostError:  # cancelled on the channel
                    pass
            assert shipped >= 8
            job, _ = jobs.enqueue(db, company_id, "upload_tracking")
            mine = jobs.claim(db, "frozen:1:1", job_id=job.id)
            assert mine is not None

            # the first post is answered; the rest of its batch is held at the channel, so no thread
            # of the upload asks anything until the answers come (as a frozen process would not)
            arrived, release = itertools.count(1), threading.Event()
            seen = {"posts": 0}
            sleep = sandbox.sleep

            def answer(seconds: float) -> None:
                seen["posts"] = next(arrived)
                if seen["posts"] > 1:
                    release.wait(30)
                sleep(seconds)

            sandbox.sleep = answer
            ran: dict[str, str] = {}

            def run() -> None:
                own = connect(db_target)
                try:
                    ran["status"] = runner.execute(own, mine)
                finally:
                    own.close()

            worker = threading.Thread(target=run)
            worker.start()
            assert support.wait_until(lambda: seen["posts"] >= 4, 30)  # one batch: the first post, three held
            time.sleep(1.0)  # its heartbeat is older than the orphan window now: another worker takes the job
            taker = jobs.claim(db, "taker:2:1", job_id=job.id, stale_after=0.6)
            assert taker is not None
            posts_then, accepted_then = seen["posts"], _accepted(db)
            release.set()
            worker.join(30)
            assert not worker.is_alive()

            assert seen["posts"] == posts_then  # not one post after the job was taken
            assert _accepted(db) == accepted_then  # nor a result recorded over the new owner's
            assert ran["status"] == runner.LOST
            messages = [line["message"] for line in jobs.show_job(db, job.id)["log"]]
            assert f"{jobs.LOST_CLAIM} (worker frozen:1:1, attempt 1)" in messages
            # the new owner sends the rest; the posts the lost worker had sent are "already recorded"
            sandbox.sleep = sleep
            assert runner.execute(db, taker) == jobs.COMPLETED
            assert _accepted(db) == shipped
        finally:
            db.close()


def _accepted(db) -> int:
    return db.execute("SELECT count(*) FROM shipments WHERE upload_state = 'accepted'").fetchone()[0]
