"""Queuing due downloads on PostgreSQL: one job at a time against the tick's bulk enqueue.

    python -m bench.schedule_bulk                       # 1,000 companies; 0, 1 and 4 busy worker processes
    python -m bench.schedule_bulk --companies 200 --workers 0,1

One throwaway PostgreSQL server (tests/pg_server.py) with the cluster engine installed, so each
Queued row also defers its procrastinate task, as in production. ``--companies`` companies are
made due, then queued by the scheduler's tick (``scheduler.tick``, one write transaction) and,
in the same run and on the same database, by the way it was queued before: ``jobs.enqueue`` and
an UPDATE of ``next_download_at`` per company, two write transactions each. Both read the due
companies the same way.

Writers take turns on one advisory lock, so what a tick costs depends on the other writers.
Each of ``--workers`` processes stands for a busy cluster worker: ``--threads`` job threads,
each in a loop of a write transaction holding the lock ``--hold`` seconds (a batch of orders
written) and ``--gap`` seconds outside it (the channel's answer awaited). The figures are the
seconds until the tick returns (every job queued and committed), the median of ``--repeats``.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from .common import ROOT


def _pg_server(folder: str) -> Any:
    sys.path.insert(0, str(ROOT / "tests"))
    from pg_server import PgServer

    return PgServer(folder)


def _one_by_one(db: Any, download_every: float) -> int:
    """The tick's downloads as they were queued before the bulk enqueue: a write per company for
    its job, another for its next download."""
    from host import clock
    from host.jobs import queue as jobs
    from host.jobs.scheduler import _DUE_DOWNLOADS
    from host.store.db import write

    queued = 0
    for company_id, _, _ in db.execute(_DUE_DOWNLOADS, {"now": clock.now_iso()}).fetchall():
        _, created = jobs.enqueue(db, company_id, "download_orders")
        queued += created
        with write(db):
            db.execute(
                "UPDATE companies SET next_download_at = :at WHERE id = :id",
                {"at": clock.now_iso(download_every), "id": company_id},
            )
    return queued


def _bulk(db: Any, download_every: float) -> int:
    from host.jobs import scheduler

    return scheduler.tick(db, download_every=download_every)["download_orders"]


def _busy_worker(url: str, job_ids: list[int], hold: float, gap: float, stop: Any) -> None:
    """One worker process's job threads, each writing in a loop until ``stop`` is set."""
    from host import clock
    from host.store.db import connect, write

    def thread(job_id: int) -> None:
        db = connect(url, create=False)
        try:
            while not stop.is_set():
                with write(db):
                    db.execute(
                        "UPDATE jobs SET heartbeat_at = :at WHERE id = :id", {"at": clock.now_iso(), "id": job_id}
                    )
                    time.sleep(hold)
                time.sleep(gap)
        finally:
            db.close()

    threads = [threading.Thread(target=thread, args=(job_id,)) for job_id in job_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.server = _pg_server(tempfile.mkdtemp(prefix="cartpg-bench-"))
        self.url = self.server.start()
        self.due: list[int] = []
        self.busy: list[int] = []  # a Processing job per job thread, the row each one writes

    def close(self) -> None:
        self.server.stop()
        shutil.rmtree(self.server.folder, ignore_errors=True)

    def setup(self) -> None:
        from host import clock
        from host.channel import plugins
        from host.jobs import queue as jobs
        from host.jobs.cluster import schema
        from host.store.db import connect, write

        plugins.load_plugins()
        db = connect(self.url)
        now = clock.now_iso()
        threads = self.args.threads * max(self.args.workers)
        try:
            with write(db):
                for n in range(self.args.companies + threads):
                    company_id = db.execute(
                        "INSERT INTO companies (name, created_at, connection_status, connection_message, "
                        "connection_tested_at) VALUES (:name, :now, 'established', 'ok', :now) RETURNING id",
                        {"name": f"Company {n:05d}", "now": now},
                    ).fetchone()[0]
                    db.execute(
                        "INSERT INTO website_settings (company_id, store_plugin, allow_order_download, updated_at) "
                        "VALUES (:id, 'backmarket_pro', :download, :now)",
                        {"id": company_id, "download": int(n < self.args.companies), "now": now},
                    )
                    (self.due if n < self.args.companies else self.busy).append(company_id)
            self.busy = [jobs.enqueue_and_claim(db, c, "download_orders", "bench:1:busy")[0].id for c in self.busy]
        finally:
            db.close()
        schema.ensure(self.url)

    def _reset(self, db: Any) -> None:
        """Every company due again, none with a pending download (the busy threads' rows stay)."""
        from host import clock
        from host.store.api import in_list
        from host.store.db import write

        marks, params = in_list("company", self.due)
        with write(db):
            db.execute(
                f"DELETE FROM job_logs WHERE job_id IN (SELECT id FROM jobs WHERE company_id IN {marks})", params
            )
            db.execute(f"DELETE FROM jobs WHERE company_id IN {marks}", params)
            db.execute(
                f"UPDATE companies SET next_download_at = :due WHERE id IN {marks}",
                {**params, "due": clock.now_iso(-1)},
            )
        with self.server_conn() as conn:
            conn.execute("DELETE FROM procrastinate_jobs WHERE status <> 'doing'")

    def server_conn(self) -> Any:
        import psycopg

        return psycopg.connect(self.url, autocommit=True)

    def measure(self, workers: int, how: Callable[[Any, float], int]) -> list[float]:
        from host.store.db import connect

        ctx = multiprocessing.get_context("spawn")
        stop = ctx.Event()
        per = self.args.threads
        procs = [
            ctx.Process(target=_busy_worker, args=(self.url, self.busy[i * per : (i + 1) * per], self.args.hold,
                                                   self.args.gap, stop))
            for i in range(workers)
        ]  # fmt: skip
        for p in procs:
            p.start()
        db = connect(self.url, create=False)
        samples = []
        try:
            time.sleep(2.0 if workers else 0.0)  # the busy workers are writing
            for _ in range(self.args.repeats):
                self._reset(db)
                started = time.perf_counter()
                queued = how(db, 900.0)
                samples.append(time.perf_counter() - started)
                if queued != len(self.due):
                    raise RuntimeError(f"queued {queued} of {len(self.due)} due downloads")
        finally:
            db.close()
            stop.set()
            for p in procs:
                p.join(30)
        return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.schedule_bulk", description=__doc__.split("\n")[0])
    parser.add_argument("--companies", type=int, default=1000)
    parser.add_argument("--workers", default="0,1,4", help="busy worker process counts, e.g. 0,1,4")
    parser.add_argument("--threads", type=int, default=4, help="job threads per busy worker process")
    parser.add_argument("--hold", type=float, default=0.003, help="seconds each write transaction holds the lock")
    parser.add_argument("--gap", type=float, default=0.03, help="seconds between two writes of a job thread")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    args.workers = [int(n) for n in args.workers.split(",")]
    bench = Bench(args)
    rows = []
    try:
        bench.setup()
        for workers in args.workers:
            old = bench.measure(workers, _one_by_one)
            new = bench.measure(workers, _bulk)
            rows.append((workers, statistics.median(old), statistics.median(new)))
            print(f"{workers} busy worker(s): one by one {statistics.median(old):.3f} s {[round(s, 3) for s in old]}, "
                  f"bulk {statistics.median(new):.3f} s {[round(s, 3) for s in new]}", flush=True)  # fmt: skip
    finally:
        bench.close()
    print()
    every = (args.hold + args.gap) * 1000
    print(f"{args.companies} due downloads on PostgreSQL; each busy worker: {args.threads} threads writing "
          f"{args.hold * 1000:.0f} ms every {every:.0f} ms; median of {args.repeats}")  # fmt: skip
    print(f"{'workers':>8} {'one by one s':>13} {'bulk s':>8} {'old / new':>10}")
    for workers, old_s, new_s in rows:
        print(f"{workers:>8} {old_s:13.3f} {new_s:8.3f} {old_s / new_s:10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
