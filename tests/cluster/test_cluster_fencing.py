"""Fencing: a worker that lost its job (frozen past the orphan window, its job run by another
worker meanwhile) sends nothing more once it runs again, writes nothing over the new owner's
row, and says so in the job log. Real worker processes, SIGSTOP and SIGCONT."""

from __future__ import annotations

import signal
import time

import psycopg
from cluster_support import wait_until
from fault_harness import UNFULFILLED, setup_company
from support import Held

from backmarket_pro.sandbox import Sandbox
from host import clock
from host.jobs import queue as jobs
from host.jobs.cluster import engine
from host.store.db import connect

KEY = "bmp-fencing-key-7c1e90d24b5a"
#: the orphan window of the conftest's workers (CARTPLUGIN_CLUSTER_STALLED_SECONDS)
STALLED = 3.0


def _orders(db) -> list[str]:
    return [r[0] for r in db.execute("SELECT source_order_id FROM orders").fetchall()]


def test_a_worker_frozen_past_the_orphan_window_sends_nothing_once_resumed(cluster_url, start_worker):
    # six pages of ten orders (FAST_ENV): the job is still paging when its worker is frozen
    with Sandbox(api_key=KEY, orders=60, seed=5) as sandbox:
        db = connect(cluster_url)
        try:
            company_id = setup_company(db, "Frozen GmbH", sandbox.base_url, KEY)
            # no scheduled download beside the job of this test
            db.execute("UPDATE companies SET next_download_at = :at", {"at": clock.now_iso(86400)})
            held = Held(sandbox, passes=1, latency=0.2)  # the first page is answered, the second held
            frozen = start_worker()
            job, _ = jobs.enqueue(db, company_id, "import_orders")
            # the first batch (ten orders) is committed and the listing waits for its held second page
            assert wait_until(lambda: held.arrived.is_set() and len(_orders(db)) == 10, timeout=60), frozen.output
            time.sleep(0.5)
            claimed_by = jobs.get_job(db, job.id).claimed_by
            frozen.proc.send_signal(signal.SIGSTOP)
            try:
                # past the orphan window the sweep (the leader's, run here: the frozen worker leads)
                # gives the job back, and another worker runs it to its end
                time.sleep(STALLED + 0.5)
                with psycopg.connect(cluster_url, autocommit=True) as conn:
                    assert wait_until(lambda: engine.sweep(conn)["requeued"] == 1, timeout=30)
                held.remove()
                other = start_worker()
                assert wait_until(lambda: jobs.get_job(db, job.id).status == jobs.COMPLETED, timeout=60), other.output
                assert other.stop() == 0, other.output
                time.sleep(1.0)  # the held answer to the frozen worker has gone out
                sandbox.clear_request_log()
            finally:
                frozen.proc.send_signal(signal.SIGCONT)
            lost = f"{jobs.LOST_CLAIM} (worker {claimed_by}, attempt 1)"

            def said_lost() -> bool:
                return any(line["message"] == lost for line in jobs.show_job(db, job.id)["log"])

            assert wait_until(said_lost, timeout=30), (jobs.show_job(db, job.id)["log"], frozen.output)
            time.sleep(1.0)  # anything it would still send, it has sent by now
            assert sandbox.request_log() == [], frozen.output  # not one request once resumed

            # the new owner's end stands: not overwritten, and the lost claim counted no attempt
            done = jobs.show_job(db, job.id)
            assert done["status"] == jobs.COMPLETED and done["attempts"] == 2
            assert "error" not in done["summary"] and done["summary"]["inserted"] > 0
            imported = _orders(db)
            assert len(imported) == len(set(imported))
            assert set(imported) == {o["id"] for o in sandbox.orders(KEY) if o["fulfillment_status"] in UNFULFILLED}
            assert frozen.stop() == 0, frozen.output
            # its task's end cannot be recorded either (the sweep ended it): one line, not a traceback
            assert "its end is not recorded" in frozen.output and "Traceback" not in frozen.output, frozen.output
        finally:
            db.close()
