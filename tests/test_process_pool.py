"""Jobs in worker processes (host.jobs.pool): forked children claim and run Queued Jobs.

Real parts throughout: sandboxes on 127.0.0.1, a SQLite file (SQLite only), the pool's forked processes,
the CLI through click's CliRunner. The Back Market Pro plugin is registered in this process
only (the ``bmp`` fixture), so every job that succeeds here proves a child has it too.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from click.testing import CliRunner
from support import Held, wait_until

import backmarket_pro.plugin
from backmarket_pro.sandbox import Sandbox
from host.channel import settings_test
from host.cli.main import cli
from host.jobs import queue as jobs
from host.jobs import runner
from host.jobs.pool import ProcessPool, make_pool
from host.records import companies
from host.store.db import connect

#: job processes are SQLite's engine; PostgreSQL's is the cluster (tests/cluster: a worker killed
#: mid-job, a stopping worker giving its job back, the shared rate limit, no forked processes)
pytestmark = [
    pytest.mark.sqlite_only("host.jobs.pool is the SQLite engine"),
    pytest.mark.skipif(not hasattr(os, "fork"), reason="job processes need fork"),
]


def _company(db, name: str, sandbox: Sandbox, key: str) -> int:
    company = companies.add_company(db, name)
    companies.update_website_settings(
        db, company, store_plugin="backmarket_pro", allow_order_download=True, allow_tracking_upload=True
    )
    companies.update_cart_settings(db, company, {"website_url": sandbox.base_url, "x_api_key": key})
    assert settings_test.test_settings(db, company).ok
    return company.id


@pytest.fixture
def shops(bmp, db_target: Path) -> Iterator[list[tuple[int, Sandbox]]]:
    """Four companies, each with a seller account of its own on a sandbox of its own."""
    with ExitStack() as stack:
        sandboxes = [stack.enter_context(Sandbox(api_key=f"key-{n:04d}-abcdefgh", orders=25, seed=n)) for n in range(4)]
        db = connect(db_target)
        try:
            ids = [_company(db, f"Shop {n}", s, s.api_key) for n, s in enumerate(sandboxes)]
        finally:
            db.close()
        yield list(zip(ids, sandboxes, strict=True))


def _orders_per_company(db_target: Path) -> dict[int, list[int]]:
    db = connect(db_target)
    try:
        rows = db.execute(
            "SELECT company_id, source_order_id, COUNT(*) FROM orders GROUP BY company_id, source_order_id"
        ).fetchall()
    finally:
        db.close()
    counts: dict[int, list[int]] = {}
    for company_id, _, count in rows:
        counts.setdefault(company_id, []).append(count)
    return counts


def _unfulfilled(sandbox: Sandbox) -> int:
    return sum(o["fulfillment_status"] in ("unfulfilled", "partial") for o in sandbox.orders())


def _enqueue_imports(db_target: Path, ids: list[int]) -> list[int]:
    db = connect(db_target)
    try:
        return [jobs.enqueue(db, company_id, "import_orders")[0].id for company_id in ids]
    finally:
        db.close()


def _job_rows(db_target: Path) -> list[dict]:
    db = connect(db_target)
    try:
        return list(db.query("SELECT * FROM jobs ORDER BY id"))
    finally:
        db.close()


def _pid(claimed_by: str) -> int:
    return int(claimed_by.split(":")[1])


def test_child_processes_run_every_job_once_with_a_plugin_registered_only_in_this_process(shops, db_target):
    ids = [company_id for company_id, _ in shops]
    _enqueue_imports(db_target, ids)
    finished: list[tuple[jobs.Job, str]] = []
    pool = make_pool(db_target, max_workers=2, processes=2)
    assert isinstance(pool, ProcessPool)
    ran = pool.drain(on_finish=lambda job, status: finished.append((job, status)))
    assert ran == 4 and sorted(status for _, status in finished) == ["Completed"] * 4
    rows = [r for r in _job_rows(db_target) if r["kind"] == "import_orders"]
    assert [r["status"] for r in rows] == ["Completed"] * 4 and all(r["attempts"] == 1 for r in rows)
    # each job was claimed by a job process, not by this one: the pid in claimed_by is the child's
    pids = {_pid(r["claimed_by"]) for r in rows}
    assert os.getpid() not in pids and {_pid(job.claimed_by or "") for job, _ in finished} == pids
    counts = _orders_per_company(db_target)
    for company_id, sandbox in shops:
        assert len(counts[company_id]) == _unfulfilled(sandbox) and set(counts[company_id]) == {1}
    # asking again finds nothing to do: no job runs twice
    assert make_pool(db_target, max_workers=2, processes=2).drain() == 0


def _report_freeze_count(conn) -> None:
    conn.send(gc.get_freeze_count())
    conn.close()


def test_job_processes_start_with_what_they_inherit_frozen_and_this_one_keeps_nothing_frozen():
    # a child's collections would otherwise walk (and copy out of the parent's memory) every
    # object it inherited; the parent thaws its own once its children are started
    import multiprocessing

    from host.jobs.pool import frozen

    ctx = multiprocessing.get_context("fork")
    readers = []
    with frozen():
        for _ in range(2):  # the second fork finds them frozen still
            reader, writer = ctx.Pipe(duplex=False)
            child = ctx.Process(target=_report_freeze_count, args=(writer,))
            child.start()
            writer.close()
            readers.append((reader, child))
        assert gc.get_freeze_count() > 10_000
    for reader, child in readers:
        assert reader.recv() > 10_000
        child.join(10)
    assert gc.get_freeze_count() == 0


def test_processes_1_is_the_thread_pool_of_this_process(db_target):
    assert isinstance(make_pool(db_target, max_workers=3, processes=1), runner.LocalPool)


def test_the_cli_runs_jobs_in_processes_and_writes_their_logs_as_json_to_stderr(shops, db_target):
    ids = [company_id for company_id, _ in shops]
    _enqueue_imports(db_target, ids[:2])
    cli_runner = CliRunner()
    result = cli_runner.invoke(
        cli,
        ["--db", str(db_target), "--log-level", "INFO", "--log-format", "json", "jobs", "run", "--processes", "2"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "ran 2 job(s)" in result.stdout
    assert result.stdout.count("import_orders: Completed") == 2  # on_finish, reported to the parent
    records = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    done = [r for r in records if r["logger"] == "cartplugin.runner" and "import_orders" in r["message"]]
    assert any(": Completed" in r["message"] for r in done), records
    assert all(r["time"].endswith("Z") for r in records)

    result = cli_runner.invoke(
        cli, ["--db", str(db_target), "worker", "--once", "--processes", "2", "--download-every", "0"]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.count("download_orders: Completed") == 4 and "ran 4 job(s)" in result.stdout
    counts = _orders_per_company(db_target)
    assert all(set(c) == {1} for c in counts.values()) and len(counts) == 4

    for bad in ("0", "many"):
        refused = cli_runner.invoke(cli, ["--db", str(db_target), "worker", "--once", "--processes", bad])
        assert refused.exit_code == 2 and "--processes" in refused.output


def test_a_childs_log_records_reach_this_processes_handlers(shops, db_target, caplog):
    _enqueue_imports(db_target, [shops[0][0]])
    with caplog.at_level(logging.INFO):
        assert ProcessPool(db_target, processes=2, threads=1).drain() == 1
    from_children = [r for r in caplog.records if r.name == "cartplugin.runner" and "Completed" in r.getMessage()]
    assert from_children and all(r.process != os.getpid() for r in from_children)


@pytest.fixture
def small_pages(monkeypatch):
    """Five orders a page and a batch, so a job has many order boundaries (forked children inherit it)."""
    options = dataclasses.replace(backmarket_pro.plugin.client_options, page_size=5)
    monkeypatch.setattr(backmarket_pro.plugin, "client_options", options)
    monkeypatch.setenv("CARTPLUGIN_DOWNLOAD_BATCH", "5")


def test_stop_requeues_the_running_jobs_of_every_process_and_the_next_run_finishes_them(shops, db_target, small_pages):
    # each sandbox answers one page, then holds its answers until every process was told to stop
    held = [Held(sandbox) for _, sandbox in shops]
    ids = [company_id for company_id, _ in shops]
    _enqueue_imports(db_target, ids)
    stop = threading.Event()
    pool = ProcessPool(db_target, processes=2, threads=2)
    pool.start(stop, poll_seconds=0.1)
    try:
        assert wait_until(lambda: sum(r["status"] == "Processing" for r in _job_rows(db_target)) == 4)
        assert wait_until(lambda: len(_orders_per_company(db_target)) == 4)
        stop.set()
        assert wait_until(lambda: all(child.told_to_stop for child in pool._children))
    finally:
        stop.set()
        for gate in held:
            gate.release()  # the pages still to come take 0.15 s each: the stop is in first
        assert pool.join(5.0)  # every child stopped at an order boundary; none had to be killed
    assert not any(gate.timed_out for gate in held)
    rows = _job_rows(db_target)
    assert [r["status"] for r in rows if r["kind"] == "import_orders"] == ["Queued"] * 4
    assert all(r["attempts"] == 0 and r["claimed_by"] is None for r in rows if r["kind"] == "import_orders")
    for gate in held:
        gate.remove()
    assert ProcessPool(db_target, processes=2, threads=2).drain() == 4
    counts = _orders_per_company(db_target)
    for company_id, sandbox in shops:
        assert len(counts[company_id]) == _unfulfilled(sandbox) and set(counts[company_id]) == {1}


def test_sigterm_to_a_child_requeues_its_job(shops, db_target, small_pages):
    company_id, sandbox = shops[0]
    held = Held(sandbox)
    (job_id,) = _enqueue_imports(db_target, [company_id])
    stop = threading.Event()
    pool = ProcessPool(db_target, processes=1, threads=1)
    pool.start(stop, poll_seconds=0.1)
    try:
        assert wait_until(lambda: company_id in _orders_per_company(db_target))  # a page in, the next one held
        (pid,) = pool.pids()
        os.kill(pid, signal.SIGTERM)  # as systemd does to every process of the service
        held.release()
        assert wait_until(lambda: not pool.pids())
    finally:
        stop.set()
        held.release()
        assert pool.join(5.0)
    assert not held.timed_out
    row = [r for r in _job_rows(db_target) if r["id"] == job_id][0]
    assert row["status"] == "Queued" and row["attempts"] == 0


def test_a_killed_child_leaves_its_job_to_recover_orphans_and_a_new_process_finishes_it(
    shops, db_target, small_pages, monkeypatch
):
    monkeypatch.setattr(runner, "HEARTBEAT_SECONDS", 0.1)  # inherited by the children
    company_id, sandbox = shops[0]
    held = Held(sandbox)
    (job_id,) = _enqueue_imports(db_target, [company_id])
    stop = threading.Event()
    pool = ProcessPool(db_target, processes=2, threads=1)
    pool.start(stop, poll_seconds=0.1)
    try:
        assert wait_until(lambda: company_id in _orders_per_company(db_target))  # a page in, the next one held
        first = _job_rows(db_target)[-1]
        assert first["status"] == "Processing"
        pid = _pid(first["claimed_by"])
        assert pid in pool.pids() and pid != os.getpid()
        # the child's heartbeat thread beats for its job
        assert wait_until(lambda: _job_rows(db_target)[-1]["heartbeat_at"] > first["heartbeat_at"], timeout=5)
        os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda: pid not in pool.pids())
        db = connect(db_target)
        try:
            assert jobs.recover_orphans(db) == [job_id]
        finally:
            db.close()
        assert _job_rows(db_target)[-1]["status"] == "Queued"
        assert pool.replace_dead() == 1 and len(pool.pids()) == 2
        held.release()
        assert wait_until(lambda: _job_rows(db_target)[-1]["status"] == "Completed")
    finally:
        stop.set()
        held.release()
        assert pool.join(5.0)
    assert not held.timed_out
    last = _job_rows(db_target)[-1]
    assert last["attempts"] == 2 and _pid(last["claimed_by"]) not in (pid, os.getpid())
    counts = _orders_per_company(db_target)
    assert len(counts[company_id]) == _unfulfilled(sandbox) and set(counts[company_id]) == {1}


#: sha256 of ``multiprocessing.popen_fork.Popen._launch``'s source (dedented) as
#: ``process_pool._ForkPopen`` copies it (CPython 3.11)
_STDLIB_LAUNCH_SHA256 = "40416fb7c8204577def0112112bb130f4d6e5a095fa6ea22f81757587163d1ea"


@pytest.mark.skipif(sys.version_info >= (3, 13), reason="3.13 changed the launcher: the standard one is used")
def test_the_copied_fork_launcher_is_still_the_standard_one_of_this_python():
    import hashlib
    import inspect
    import textwrap
    from multiprocessing import popen_fork

    from host.jobs import pool as process_pool

    # a change upstream shows here: copy it into _ForkPopen._launch again, keeping the cleanup
    source = textwrap.dedent(inspect.getsource(popen_fork.Popen._launch))
    assert hashlib.sha256(source.encode()).hexdigest() == _STDLIB_LAUNCH_SHA256
    assert process_pool._Launcher is process_pool._ForkPopen  # what the job processes start with


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc")
def test_a_dead_process_whose_fork_fails_is_replaced_on_a_later_round_and_nothing_leaks(db_target, monkeypatch, caplog):
    connect(db_target).close()
    stop = threading.Event()
    pool = ProcessPool(db_target, processes=2, threads=1)
    pool.start(stop, poll_seconds=0.1)
    try:
        for pid in pool.pids():
            os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda: not pool.pids())
        before = _open_descriptors()
        real_fork = os.fork

        def no_more_processes() -> int:
            raise BlockingIOError(11, "Resource temporarily unavailable")

        monkeypatch.setattr(os, "fork", no_more_processes)
        with caplog.at_level(logging.ERROR, logger="cartplugin.pool"):
            for _ in range(5):  # five worker rounds while the machine is out of processes
                assert pool.replace_dead() == 0
        failures = [r for r in caplog.records if r.name == "cartplugin.pool" and r.levelno == logging.ERROR]
        assert len(failures) == 5 and "could not start a job process" in failures[0].getMessage()
        assert _open_descriptors() == before  # the pipes made for each failed fork are closed
        monkeypatch.setattr(os, "fork", real_fork)
        assert pool.replace_dead() == 2 and len(pool.pids()) == 2  # the next round starts both
        assert pool.replace_dead() == 0
    finally:
        stop.set()
        assert pool.join(5.0)


def test_a_job_in_a_child_keeps_its_time_budget(shops, db_target, small_pages, monkeypatch):
    monkeypatch.setenv("CARTPLUGIN_JOB_BUDGET_SECONDS", "0.3")
    company_id, sandbox = shops[0]
    sandbox.set_faults(latency=0.1)
    _enqueue_imports(db_target, [company_id])
    assert ProcessPool(db_target, processes=2, threads=1).drain() == 1
    row = _job_rows(db_target)[-1]
    assert row["status"] == "Completed" and json.loads(row["summary"]).get("more") is True
    assert 0 < len(_orders_per_company(db_target)[company_id]) < _unfulfilled(sandbox)


def test_every_process_counts_its_requests_in_the_one_rate_limit_file(shops, db_target, small_pages, monkeypatch):
    monkeypatch.delenv("CARTPLUGIN_RATE_LIMIT_DB", raising=False)
    # a window long enough that no hit expires during the test: the file holds one row per request
    options = dataclasses.replace(backmarket_pro.plugin.client_options, rate_limit=1000, rate_window=600.0)
    monkeypatch.setattr(backmarket_pro.plugin, "client_options", options)
    for _, sandbox in shops:
        sandbox.set_faults(latency=0.05)  # a job lasts longer than a fork: both processes get work
        sandbox.clear_request_log()
    _enqueue_imports(db_target, [company_id for company_id, _ in shops])
    finished: list[jobs.Job] = []
    assert ProcessPool(db_target, processes=2, threads=1).drain(on_finish=lambda job, _: finished.append(job)) == 4
    assert len({_pid(job.claimed_by or "") for job in finished}) == 2  # both processes ran jobs
    made = sum(len(sandbox.request_log()) for _, sandbox in shops)
    limiter = sqlite3.connect(f"{db_target}-ratelimit")
    try:
        hits = limiter.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM rate_hits").fetchone()
    finally:
        limiter.close()
    assert made > 8 and hits == (made, 4)


def test_a_job_process_killed_by_a_failpoint_is_recovered_by_the_next_worker_round(shops, db_target):
    """The worker as staff start it (a subprocess, plugins from entry points): a job process dies
    mid-import; the worker itself ends normally and says so; the next round finishes the job."""
    env = {
        **os.environ,
        "CARTPLUGIN_BMP_PAGE_SIZE": "5",
        "CARTPLUGIN_DOWNLOAD_BATCH": "5",
        "CARTPLUGIN_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "host", "--db", str(db_target), "worker", "--once", "--processes", "2"]
    _enqueue_imports(db_target, [company_id for company_id, _ in shops])
    crashed = subprocess.run(
        command, env={**env, "CARTPLUGIN_FAILPOINTS": "download.after_commit=2"}, capture_output=True, text=True,
        timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert crashed.returncode == 0, crashed.stderr[-2000:]
    assert "ended with exit code -9" in crashed.stderr
    left = [r for r in _job_rows(db_target) if r["status"] == "Processing"]
    assert left  # claimed by a job process that is gone
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert again.returncode == 0, again.stderr[-2000:]
    assert {r["status"] for r in _job_rows(db_target) if r["kind"] == "import_orders"} == {"Completed"}
    counts = _orders_per_company(db_target)
    for company_id, sandbox in shops:
        assert len(counts[company_id]) == _unfulfilled(sandbox) and set(counts[company_id]) == {1}
