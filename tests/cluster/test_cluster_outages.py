"""Outages of the database under running jobs, with real worker processes and a real sandbox:
a PostgreSQL restart mid-upload re-sends at most the requests in flight, and is no counted attempt."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import time

import psycopg
import pytest
from cluster_support import wait_until
from fault_harness import setup_company

import backmarket_pro.plugin
from backmarket_pro.sandbox import Sandbox
from host import clock
from host.channel import download, plugins
from host.records import companies
from host.store.db import connect

KEY = "bmp-outage-key-8c31e0d95a47"
ORDERS = 800
#: the upload concurrency of the job (requests in flight at once), set for the worker below
CONCURRENCY = 8


def query(url: str, sql: str, params: list | None = None) -> list[tuple]:
    """One statement on a connection of its own, tried again while the server restarts."""
    for _ in range(100):
        try:
            with psycopg.connect(url, connect_timeout=2) as conn:
                return conn.execute(sql, params).fetchall()
        except psycopg.OperationalError:
            time.sleep(0.2)
    raise AssertionError("PostgreSQL did not come back")


def ship_everything(url: str) -> int:
    """Every order shipped whole with a DHL number (what staff do, order by order)."""
    now = clock.now_iso()
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO shipments (order_id, carrier, tracking_number, tracking_url, shipped_at) "
            "SELECT id, 'DHL Express', 'JD' || lpad(id::text, 12, '0'), "
            "'https://www.dhl.com/track?id=JD' || lpad(id::text, 12, '0'), %s FROM orders WHERE channel_cancelled = 0",
            [now],
        )
        conn.execute(
            "INSERT INTO shipment_lines (shipment_id, order_line_id, quantity, serial_numbers) "
            "SELECT s.id, ol.id, ol.quantity - ol.quantity_shipped, '[\"35' || lpad(ol.id::text, 13, '0') || '\"]' "
            "FROM shipments s JOIN order_lines ol ON ol.order_id = s.order_id"
        )
        conn.execute(
            "UPDATE order_lines SET quantity_shipped = quantity WHERE order_id IN (SELECT order_id FROM shipments)"
        )
        return conn.execute(
            "UPDATE orders SET shipping_status = 'Fully Shipped', source_updated_for_shipping = 0, "
            "status = CASE WHEN status = 'In Process' THEN 'Completed' ELSE status END, updated_at = %s "
            "WHERE channel_cancelled = 0",
            [now],
        ).rowcount


@pytest.fixture
def big_sandbox():
    with Sandbox(api_key=KEY, orders=ORDERS, seed=11) as server:
        yield server


def test_a_database_restart_mid_upload_resends_at_most_the_requests_in_flight_and_counts_no_attempt(
    postgres, cluster_url, big_sandbox, start_worker
):
    db = connect(cluster_url)
    plugins.load_plugins()
    plugins.register(backmarket_pro.plugin, name="backmarket_pro")
    try:
        company_id = setup_company(db, "Outage GmbH", big_sandbox.base_url, KEY)
        download.download_orders(db, companies.get_company(db, company_id), since=None)
    finally:
        plugins.unregister(backmarket_pro.plugin)
        db.close()
    shipped = ship_everything(cluster_url)
    assert shipped >= ORDERS / 2
    big_sandbox.set_faults(latency=0.05)  # 800 POSTs take a few seconds: the restart lands mid-upload
    big_sandbox.clear_request_log()

    def posts() -> list[dict]:
        return [r for r in big_sandbox.request_log() if r["method"] == "POST"]

    worker = start_worker(
        env={
            "CARTPLUGIN_UPLOAD_BATCH": "200",
            "CARTPLUGIN_BMP_CONCURRENCY": str(CONCURRENCY),
            # the restart must not make the worker look dead (the sweep's rules are not under test)
            "CARTPLUGIN_CLUSTER_STALLED_SECONDS": "60",
        }
    )
    assert wait_until(lambda: len(posts()) >= 300, 120), worker.output
    postgres.restart()  # a batch of 200 is in flight, 100 of its answers not yet back

    def all_uploaded() -> bool:
        return (
            query(
                cluster_url,
                "SELECT count(*) FROM orders WHERE source_updated_for_shipping = 0 AND channel_cancelled = 0",
            )[0][0]
            == 0
        )

    assert wait_until(all_uploaded, 180), "\n".join(line for line in worker.lines if "not accepted" not in line)
    worker.stop()

    sent = collections.Counter(r["path"] for r in posts())
    resent = sum(sent.values()) - len(sent)
    assert len(sent) == shipped
    assert resent <= CONCURRENCY, f"{resent} tracking POSTs sent again"
    # the channel's side: every order holds exactly one shipment, its own tracking number
    ours = dict(query(cluster_url, "SELECT o.source_order_id, s.tracking_number FROM shipments s "
                      "JOIN orders o ON o.id = s.order_id WHERE o.channel_cancelled = 0"))  # fmt: skip
    held = {
        order["id"]: [shipment["tracking_number"] for shipment in order["shipments"]].count(ours[order["id"]])
        for order in big_sandbox.orders(KEY)
        if order["id"] in ours
    }
    assert len(held) == shipped and set(held.values()) == {1}
    print(f"{resent} of {sum(sent.values())} tracking POSTs were sent again (concurrency {CONCURRENCY})")
    # the lost database was no failure of the job: no counted attempt, no "internal error"
    logs = [m for (m,) in query(cluster_url, "SELECT message FROM job_logs")]
    assert not [m for m in logs if "internal error" in m], logs
    assert query(cluster_url, "SELECT count(*) FROM jobs WHERE kind = 'upload_tracking' AND attempts > 1")[0][0] == 0


HOLD_WRITE_LOCK = """
import os, signal, sys
from host import config  # the operator's settings for every connection (the CLI loads them so)
from host.store.db import connect, write

db = connect(sys.argv[1])
with write(db):
    db.execute("UPDATE companies SET connection_message = 'held' WHERE id = -1")
    print("holding the write lock", flush=True)
    os.kill(os.getpid(), signal.SIGSTOP)  # frozen inside its transaction, as a debugger or a stalled VM would
    db.execute("SELECT 1")
"""


def stopped(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()[0] == "T"


def test_a_process_frozen_inside_a_write_transaction_does_not_stop_the_cluster_and_nothing_runs_twice(
    cluster_url, sandbox, start_worker
):
    db = connect(cluster_url)
    try:
        ids = [setup_company(db, f"Frozen {n} GmbH", sandbox.base_url, sandbox.api_key) for n in range(3)]
    finally:
        db.close()
    query(cluster_url, "UPDATE companies SET next_download_at = '2999-01-01T00:00:00.000000Z' RETURNING id")
    short = {"CARTPLUGIN_PG_IDLE_IN_TRANSACTION_SECONDS": "2"}
    workers = [start_worker(env=short) for _ in range(2)]
    assert wait_until(lambda: query(cluster_url, "SELECT count(*) FROM procrastinate_workers")[0][0] >= 2)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_WRITE_LOCK, cluster_url],
        stdout=subprocess.PIPE, text=True, env={**os.environ, **short}, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().startswith("holding")
        assert wait_until(lambda: stopped(holder.pid), 10)
        # every company's download falls due: the leader queues them and the workers run them
        query(cluster_url, "UPDATE companies SET next_download_at = '2000-01-01T00:00:00.000000Z' RETURNING id")

        def all_done() -> bool:
            rows = query(cluster_url, "SELECT company_id, status FROM jobs WHERE kind = 'download_orders'")
            return {c for c, status in rows if status == "Completed"} == set(ids)

        finished = wait_until(all_done, 20)  # the holder stays frozen all along
        assert stopped(holder.pid)
        assert finished, "\n".join(w.output for w in workers)
    finally:
        holder.kill()
        holder.wait(10)
    # nothing ran twice: one job per company, one attempt each, none taken back from a live worker
    jobs_run = query(cluster_url, "SELECT company_id, attempts FROM jobs WHERE kind = 'download_orders'")
    assert sorted(jobs_run) == [(company, 1) for company in sorted(ids)]
    logs = [m for (m,) in query(cluster_url, "SELECT message FROM job_logs")]
    assert not [m for m in logs if "queued again" in m or "stopped while running" in m], logs
    for worker in workers:
        assert worker.proc.poll() is None
