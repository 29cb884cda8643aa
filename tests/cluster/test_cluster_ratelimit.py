"""The per-key limit held across processes (and so machines) in PostgreSQL (plugin_spec.ratelimit_pg)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest
from support import assert_a_waiting_request_stops_with_its_job, assert_window_held

from host.jobs.pool import ProcessPool, make_pool
from host.jobs.runner import LocalPool
from plugin_spec.ratelimit import limiter_for
from plugin_spec.ratelimit_pg import PgRateLimiter

LIMIT, WINDOW, EACH = 4, 1.0, 8

CHILD = f"""
import json, sys
sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r})
from support import record_grants
from plugin_spec.ratelimit import limiter_for
limiter = limiter_for("https://api.example", "one-key", {LIMIT}, {WINDOW})
assert type(limiter).__name__ == "PgRateLimiter", type(limiter)
grants = []
record_grants(limiter, grants)
for _ in range({EACH}):
    limiter.acquire()
print(json.dumps(grants))
"""


def test_the_host_picks_the_postgresql_limiter_for_a_postgresql_url(pg_url, monkeypatch):
    monkeypatch.setenv("CARTPLUGIN_RATE_LIMIT_DB", pg_url)
    assert isinstance(limiter_for("https://api.example", "a-key", 3, 1.0), PgRateLimiter)


def test_two_processes_sending_with_one_key_share_one_window(pg_url):
    env = {**os.environ, "CARTPLUGIN_RATE_LIMIT_DB": pg_url}
    children = [
        subprocess.Popen([sys.executable, "-c", CHILD], env=env, stdout=subprocess.PIPE, text=True) for _ in range(2)
    ]
    grants = [tuple(g) for child in children for g in json.loads(child.communicate(timeout=120)[0])]
    assert all(child.returncode == 0 for child in children)
    assert len(grants) == 2 * EACH
    # any LIMIT + 1 requests of the two processes together span more than one window
    # (a per-process limit would let 2 * LIMIT through in one window)
    assert_window_held(grants, limit=LIMIT, window=WINDOW)


def test_a_key_limit_survives_a_database_restart(postgres, pg_url):
    limiter = PgRateLimiter(pg_url, "restart-key", 100, 60.0)
    limiter.acquire()
    postgres.restart()
    limiter.acquire()  # the broken connection is replaced, the window is still counted
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM cartplugin_rate_hits").fetchone() == (2,)


def test_the_limiters_of_many_keys_and_threads_share_one_connection_per_process(pg_url):
    """A worker talks to hundreds of companies' keys from short-lived upload and prefetch threads:
    a connection for each key or thread would exhaust the server."""
    for n in range(10):
        PgRateLimiter(pg_url, f"key-{n}", 10, 1.0).acquire()
    sent = threading.Barrier(21)
    counted = threading.Event()

    def send(n: int) -> None:
        PgRateLimiter(pg_url, f"key-{n}", 10, 1.0).acquire()
        sent.wait(30)
        counted.wait(30)  # alive (with whatever it opened) while the connections are counted

    threads = [threading.Thread(target=send, args=(n,)) for n in range(10, 30)]
    for t in threads:
        t.start()
    sent.wait(30)
    try:
        with psycopg.connect(pg_url) as conn:
            mine = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid != pg_backend_pid()"
            ).fetchone()
    finally:
        counted.set()
        for t in threads:
            t.join(30)
    assert mine == (1,)


def test_a_request_waiting_for_a_postgresql_slot_is_not_sent_once_the_job_stops(pg_url):
    """The PostgreSQL window is a Limiter like the others: a stopping upload sends nothing more."""

    assert_a_waiting_request_stops_with_its_job(PgRateLimiter(pg_url, "stopping-key", limit=1, window=30), within=15)


def test_job_processes_are_not_forked_for_a_postgresql_database(pg_url):
    """On PostgreSQL `jobs run` and the pool use threads; more processes are the cluster engine's."""

    assert isinstance(make_pool(pg_url, max_workers=2, processes=2), LocalPool)
    with pytest.raises(ValueError, match="cluster engine"):
        ProcessPool(pg_url, processes=2)
