"""Queued Jobs the web process runs itself, on a thread of their own, never in a request.

Test Settings answers a person who is waiting at the page, so it must not wait for a worker
that may be busy or not running at all (``cartplugin serve`` alone): the web process claims
the job it just queued and runs it in the background, its time bounded by the job itself. A
worker that claimed it first runs it instead (a claim is atomic: it runs once either way).
"""

from __future__ import annotations

import contextlib
import logging
import threading

from host.jobs import runner
from host.jobs.queue import claim
from host.store.db import connect

log = logging.getLogger("cartplugin.web")


def run_job(db_target: str, job_id: int) -> threading.Thread:
    """Claim job ``job_id`` and run it to its end on a daemon thread; returns that thread."""

    def work() -> None:
        try:
            db = connect(db_target, migrate=False, create=False)
        except Exception:
            log.exception("job %s: the web process cannot open the database to run it", job_id)
            return
        try:
            job = claim(db, runner.worker_id(), job_id=job_id)
            if job is not None:  # else a worker has it (or it already ended)
                runner.execute(db, job)
        except Exception:  # the job stays Processing and is claimed again once its heartbeat is stale
            log.exception("job %s could not be run by the web process", job_id)
        finally:
            with contextlib.suppress(Exception):  # a database gone meanwhile: nothing left to close
                db.close()

    thread = threading.Thread(target=work, name=f"cartplugin-web-job-{job_id}", daemon=True)
    thread.start()
    return thread
