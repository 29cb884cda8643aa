"""The benchmark rows of issue 6, each a measured figure next to its floor from the same run."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from .common import (
    ROOT,
    SandboxProcess,
    add_company,
    median_of,
    new_db_path,
    run_job,
)


@dataclass
class Config:
    """Sizes of one run; ``QUICK`` is the smoke-test size, ``FULL`` the issue's."""

    repeats: int = 3
    import_orders: int = 20_000
    companies: int = 50
    orders_per_company: int = 200
    company_latency: float = 0.050
    workers: int = 4  # the host's default (cartplugin worker --workers, worker.run, jobs run)
    upload_orders: int = 1_000
    upload_latency: float = 0.150
    upload_repeats: int = 3
    memory_small: int = 10_000
    memory_large: int = 100_000
    memory_small_repeats: int = 3
    tick_companies: int = 10_000
    tick_orders_per_company: int = 10
    tick_repeats: int = 30
    web_orders: int = 100_000
    web_jobs: int = 20_000
    web_repeats: int = 15
    amazon_orders: int = 2_000
    #: how much faster than Amazon's usage plans the sandbox and the client run
    amazon_rate_scale: float = 400.0
    #: the bulk import against a channel's real latency (issue 26)
    latency_import_orders: int = 20_000
    import_latency: float = 0.150


FULL = Config()
QUICK = Config(
    repeats=1,
    import_orders=600,
    companies=4,
    orders_per_company=50,
    company_latency=0.020,
    upload_orders=40,
    upload_latency=0.005,
    upload_repeats=1,
    memory_small=300,
    memory_large=1_200,
    memory_small_repeats=1,
    tick_companies=300,
    tick_orders_per_company=3,
    tick_repeats=5,
    web_orders=2_000,
    web_jobs=400,
    web_repeats=2,
    amazon_orders=300,
    amazon_rate_scale=2000.0,
    latency_import_orders=600,
    import_latency=0.020,
)


@dataclass
class Row:
    key: str
    title: str
    measured: str
    floor: str
    ratio: float | None
    target: str
    passed: bool | None
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def result(self) -> str:
        return "-" if self.passed is None else ("pass" if self.passed else "MISS")


def _s(seconds: float) -> str:
    return f"{seconds:.3f} s" if seconds < 10 else f"{seconds:.1f} s"


def _samples(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.3f}" for v in values) + "]"


# -- 1 + 6: bulk import and re-import ---------------------------------------------------------------


ORDERS_PATH = "/2024-03/orders"
#: row 1's target (issue 14: "bulk import <= 1.25x its floor")
IMPORT_TARGET = 1.25
#: row 2's target (issue 26: "<= 1.3: today a third of the row's time is idle")
COMPANIES_TARGET = 1.3


def floor_fetch(base_url: str, api_key: str, page_size: int = 200) -> tuple[float, list[dict[str, Any]], int]:
    """A bare requests loop over the same listing (same filters, same page size, follow ``next``)."""
    session = requests.Session()
    session.trust_env = False
    session.headers["x-api-key"] = api_key
    started = time.perf_counter()
    url: str | None = base_url + ORDERS_PATH
    params: dict[str, str] | None = {
        "fulfillment_status": "unfulfilled",
        "financial_status": "any",
        "page-size": str(page_size),
    }
    raw: list[dict[str, Any]] = []
    pages = 0
    while url:
        response = session.get(url, params=params, timeout=60)
        response.raise_for_status()
        body = response.json()
        raw.extend(body["results"])
        url = body["next"]
        params = None
        pages += 1
    seconds = time.perf_counter() - started
    session.close()
    return seconds, raw, pages


#: the host's columns of ``orders`` and ``order_lines`` the floor fills (as host.records.orders does)
FLOOR_ORDER_COLUMNS = (
    "id", "company_id", "channel", "source_order_id", "payment_status", "order_date", "channel_updated_at",
    "currency", "subtotal", "shipping_total", "tax", "grand_total", "commission", "total_cost",
    "buyer_company", "buyer_vat_number", "buyer_email", "shipping_address", "billing_address",
    "channel_financial_status", "channel_fulfillment_status", "channel_cancelled", "imported_at", "updated_at",
    "awaiting_acceptance", "discount_total", "adjustment_total",
)  # fmt: skip
FLOOR_LINE_COLUMNS = (
    "order_id", "source_line_id", "sku", "title", "quantity", "unit_price", "tax", "line_total", "discount",
    "channel_cancelled",
)  # fmt: skip


def floor_rows(raw: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The same orders and lines as rows of the host's own ``orders`` and ``order_lines`` columns,
    the wire's values as they come (not timed: the floor keeps only fetch + insert). The order ids
    are the floor's own (1, 2, ...): it never reads them back."""
    now = "2026-01-01T00:00:00.000000Z"
    orders, lines = [], []
    for order_id, order in enumerate(raw, start=1):
        buyer = order.get("buyer") or {}
        values = (
            order_id, 1, "backmarket_pro", order["id"], "Fully Charged", order["created_at"], order["updated_at"],
            order["currency"], order["subtotal_price"], order["shipping_price"], order["total_tax"],
            order["total_price"], "0.00", order["total_price"], buyer.get("company"), buyer.get("vat_number"),
            buyer.get("email"), json.dumps(order["shipping_address"], ensure_ascii=False),
            json.dumps(order["billing_address"], ensure_ascii=False), order["financial_status"],
            order["fulfillment_status"], int(order["cancelled"]), now, now, 0, "0", "0",
        )  # fmt: skip
        orders.append(dict(zip(FLOOR_ORDER_COLUMNS, values, strict=True)))
        for line in order["line_items"]:
            values = (order_id, line["id"], line["sku"], line["title"], line["quantity"], line["price"], line["tax"],
                      None, "0", 0)  # fmt: skip
            lines.append(dict(zip(FLOOR_LINE_COLUMNS, values, strict=True)))
    return orders, lines


def floor_insert(
    path: Path, orders: list[dict[str, Any]], lines: list[dict[str, Any]], how: str = "insert_all"
) -> tuple[float, float]:
    """The rows into a fresh host database (``host.store.db.connect``: the host's own schema, with
    its unique key, the web grid's indexes, ``orders_awaiting``), and each order into the order id
    search index (the host's ``order_search.index_new`` does the same), in one transaction.

    ``how``: ``insert_all``, sqlite-utils' ``insert_all`` as the floor always did (the search
    index rows by ``executemany``: sqlite-utils does not write an FTS table's rowid); or
    ``executemany``, one per table with the values by position, as the host's bulk insert binds
    them (tuples made before the clock starts). Returns (seconds, CPU seconds)."""
    from host.records import companies, order_search
    from host.store import db as host_db

    db = host_db.connect(path)
    companies.add_company(db, "Floor")  # company 1: the orders' foreign key (not timed)
    conn = db.conn
    search_sql = f"INSERT INTO {order_search.FTS_TABLE} (rowid, source_order_id) VALUES (?, ?)"
    if how == "executemany":
        order_sql, line_sql = (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
            for table, columns in (("orders", FLOOR_ORDER_COLUMNS), ("order_lines", FLOOR_LINE_COLUMNS))
        )
        order_values = [tuple(row.values()) for row in orders]
        line_values = [tuple(row.values()) for row in lines]
    cpu_started = time.process_time()
    started = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    if how == "executemany":
        conn.executemany(order_sql, order_values)
        conn.executemany(line_sql, line_values)
    else:
        db["orders"].insert_all(orders)
        db["order_lines"].insert_all(lines)
    conn.executemany(search_sql, ((row["id"], row["source_order_id"]) for row in orders))
    conn.execute("COMMIT")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    db.close()
    return seconds, cpu


def bulk_import(sandbox: SandboxProcess, cfg: Config, work: Path) -> tuple[Row, Row]:
    from host import clock
    from host.channel import cursors
    from host.store import db as host_db

    n = cfg.import_orders
    sandbox.set_latency(0)
    key, _ = sandbox.new_account(n)
    host_s: list[float] = []
    host_cpu_s: list[float] = []
    floor_cpu_s: list[float] = []
    again_s: list[float] = []
    cursor_s: list[float] = []
    floor_s: list[float] = []
    fetch_s: list[float] = []
    insert_s: list[float] = []
    executemany_s: list[float] = []
    host_requests = floor_pages = line_count = 0
    for i in range(cfg.repeats):
        db = host_db.connect(new_db_path(work, f"import-{i}"))
        company = add_company(db, "Bulk Import", sandbox.base_url, key)
        sandbox.clear_requests()
        cpu_started = time.process_time()
        started = time.perf_counter()
        status, summary = run_job(db, company.id, "import_orders")
        host_s.append(time.perf_counter() - started)
        host_cpu_s.append(time.process_time() - cpu_started)  # every thread of this process: the host's CPU
        host_requests = len(sandbox.requests_made())
        if status != "Completed" or summary.get("inserted") != n:
            raise RuntimeError(f"import: {status} {summary}")
        # Import Orders again as staff would: the window was read up to the cursor already,
        # so the job starts at the cursor (cursors.import_since)
        started = time.perf_counter()
        status, summary = run_job(db, company.id, "import_orders")
        again_s.append(time.perf_counter() - started)
        if status != "Completed" or summary.get("inserted") or summary.get("seen", 0) >= n:
            raise RuntimeError(f"re-import: {status} {summary}")
        # and forced to read the whole window again (--since): every order fetched, mapped and
        # found unchanged
        started = time.perf_counter()
        status, summary = run_job(db, company.id, "import_orders", {"since": clock.iso(cursors.recent_since())})
        cursor_s.append(time.perf_counter() - started)
        if status != "Completed" or summary.get("unchanged") != n:
            raise RuntimeError(f"full re-read: {status} {summary}")
        db.close()

        cpu_started = time.process_time()
        fetch, raw, floor_pages = floor_fetch(sandbox.base_url, key)
        fetch_cpu = time.process_time() - cpu_started
        if len(raw) != n:
            raise RuntimeError(f"floor fetched {len(raw)} orders, expected {n}")
        orders, lines = floor_rows(raw)
        line_count = len(lines)
        insert, insert_cpu = floor_insert(new_db_path(work, f"floor-{i}"), orders, lines)
        # for reference only: the same rows bound by position, as the host's bulk insert binds them
        executemany_s.append(floor_insert(new_db_path(work, f"floor-em-{i}"), orders, lines, "executemany")[0])
        del raw, orders, lines
        floor_cpu_s.append(fetch_cpu + insert_cpu)
        fetch_s.append(fetch)
        insert_s.append(insert)
        floor_s.append(fetch + insert)

    import statistics as st

    host, floor, again = st.median(host_s), st.median(floor_s), st.median(again_s)
    ratio = host / floor
    lines_per_order = line_count / n
    first = Row(
        "import",
        f"Bulk import, no latency: {n:,} orders ({lines_per_order:.2f} lines/order), Import Orders job",
        _s(host),
        _s(floor),
        ratio,
        f"<= {IMPORT_TARGET:g}",
        ratio <= IMPORT_TARGET,
        notes=[
            f"host samples {_samples(host_s)} s; {host_requests} API requests (Test Settings excluded); "
            f"host CPU (process time of the job) samples {_samples(host_cpu_s)} s = "
            f"{st.median(host_cpu_s) / n * 1000:.3f} ms/order",
            f"floor = bare requests loop {_s(st.median(fetch_s))} ({floor_pages} pages) + sqlite-utils insert_all "
            f"{_s(st.median(insert_s))} ({n:,} orders + {line_count:,} lines, and the order id search index, one "
            f"transaction) into the host's own schema (a fresh host.store.db.connect database: unique keys, the "
            f"grid's indexes, orders_awaiting); floor samples {_samples(floor_s)} s; for reference, the same rows "
            f"by executemany of tuples take {_s(st.median(executemany_s))}",
            f"CPU (this process; the sandbox runs in its own): host {_s(st.median(host_cpu_s))}, floor "
            f"{_s(st.median(floor_cpu_s))} (samples {_samples(floor_cpu_s)} s), ratio "
            f"{st.median(host_cpu_s) / st.median(floor_cpu_s):.2f}: both sides are CPU-bound at no latency, so on a "
            "quiet machine the wall ratio comes close to this one, and under load it is the steadier figure",
        ],
        data={
            "host": host_s,
            "host_cpu": host_cpu_s,
            "floor_cpu": floor_cpu_s,
            "floor": floor_s,
            "fetch": fetch_s,
            "insert": insert_s,
        },
    )
    ratio6 = again / host
    second = Row(
        "reimport",
        f"Re-import of the same {n:,} orders (nothing changed)",
        _s(again),
        _s(host) + " (1st import)",
        ratio6,
        "<= 0.5",
        ratio6 <= 0.5,
        notes=[
            f"re-import samples {_samples(again_s)} s: Import Orders starts at the saved cursor, "
            "the window before it having been read already",
            f"forced full re-read of the window (--since): {_s(st.median(cursor_s))} = "
            f"{st.median(cursor_s) / host:.2f} x the first import (samples {_samples(cursor_s)} s); the bare "
            f"fetch of the same pages alone is {_s(st.median(fetch_s))} = {st.median(fetch_s) / host:.2f} x",
        ],
        data={"again": again_s, "full_reread": cursor_s},
    )
    return first, second


# -- 9: bulk import at a real channel's latency --------------------------------------------------

#: the new row's target (issue 26: "bulk import at 150 ms a request ... <= 1.1")
LATENCY_IMPORT_TARGET = 1.1


def paging_concurrency() -> tuple[int, str]:
    """Listing requests the Back Market Pro client can have in flight at once, and why: it pages
    by ``next`` link (``plugin_spec.paging.NextLink``, the default of ``JsonApi.pages``), and a
    page's link is in the page before it, so prefetch (``HttpOptions.prefetch_pages``) asks for
    page k+1 only once page k is read: one request at a time, whatever the prefetch depth."""
    import backmarket_pro.plugin

    prefetch = backmarket_pro.plugin.client_options.prefetch_pages
    return 1, f"next-link paging: each page's link comes in the page before it (prefetch_pages={prefetch})"


def latency_import(sandbox: SandboxProcess, cfg: Config, work: Path) -> Row:
    """Row 9: row 1's Import Orders job with every request answered ``import_latency`` late,
    against the latency floor: the listing's pages x the latency, at the paging's concurrency."""
    import statistics as st

    from host.store import db as host_db

    n, latency = cfg.latency_import_orders, cfg.import_latency
    sandbox.set_latency(0)
    key, _ = sandbox.new_account(n)
    _, raw, pages = floor_fetch(sandbox.base_url, key)  # the bare loop's page count, at no latency
    del raw
    concurrency, why = paging_concurrency()
    floor = math.ceil(pages / concurrency) * latency
    host_s: list[float] = []
    cpu_s: list[float] = []
    request_counts: list[int] = []
    for i in range(cfg.repeats):
        sandbox.set_latency(0)
        db = host_db.connect(new_db_path(work, f"latency-import-{i}"))
        company = add_company(db, "Slow Channel", sandbox.base_url, key)
        sandbox.set_latency(latency)
        sandbox.clear_requests()
        cpu_started = time.process_time()
        started = time.perf_counter()
        status, summary = run_job(db, company.id, "import_orders")
        host_s.append(time.perf_counter() - started)
        cpu_s.append(time.process_time() - cpu_started)
        sandbox.set_latency(0)
        request_counts.append(len(sandbox.requests_made()))
        db.close()
        if status != "Completed" or summary.get("inserted") != n:
            raise RuntimeError(f"import at {latency * 1000:.0f} ms: {status} {summary}")
    host = st.median(host_s)
    ratio = host / floor
    requests_made = st.median(request_counts)
    return Row(
        "import-latency",
        f"Bulk import, {latency * 1000:.0f} ms/request: {n:,} orders, Import Orders job",
        _s(host),
        _s(floor),
        ratio,
        f"<= {LATENCY_IMPORT_TARGET:g}",
        ratio <= LATENCY_IMPORT_TARGET,
        notes=[
            f"host samples {_samples(host_s)} s; {requests_made} API requests (Test Settings excluded); host CPU "
            f"samples {_samples(cpu_s)} s",
            f"floor = {pages} pages (the bare loop's, page size 200) x {latency * 1000:.0f} ms / {concurrency} at "
            f"once ({why})",
            f"beyond the floor: {_s(host - floor)} = {(host - floor) / pages * 1000:.1f} ms a page",
        ],
        data={"host": host_s, "cpu": cpu_s, "floor": floor, "pages": pages, "requests": request_counts},
    )


# -- 2: many companies, real latency ------------------------------------------------------------


def row1_host_cpu_per_order(sandbox: SandboxProcess, cfg: Config, work: Path) -> tuple[float, list[float]]:
    """Row 1's measured host CPU per order, measured here when row 1 did not run: the same Import
    Orders job of the same size, no latency, its process time. Returns (median CPU seconds per
    order, samples)."""
    import statistics as st

    from host.store import db as host_db

    n = cfg.import_orders
    sandbox.set_latency(0)
    key, _ = sandbox.new_account(n)
    samples = []
    for i in range(cfg.repeats):
        db = host_db.connect(new_db_path(work, f"row1-cpu-{i}"))
        company = add_company(db, "Bulk Import", sandbox.base_url, key)
        started = time.process_time()
        status, summary = run_job(db, company.id, "import_orders")
        samples.append(time.process_time() - started)
        db.close()
        if status != "Completed" or summary.get("inserted") != n:
            raise RuntimeError(f"import: {status} {summary}")
    return st.median(samples) / n, samples


def _cpu_of_children() -> float:
    """CPU seconds of the bench's finished (reaped) child processes: the job processes."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def many_companies(sandbox: SandboxProcess, cfg: Config, work: Path, import_row: Row | None = None) -> Row:
    """Row 2: one Import Orders job per company, drained by the pool ``cartplugin worker`` uses by
    default (``--processes``: the cores, ``--workers`` threads in each)."""
    import statistics as st

    from host.jobs import queue as jobs
    from host.jobs.pool import cores, default_processes, make_pool
    from host.store import db as host_db

    if import_row is not None:  # row 1 ran in this run: its host's CPU
        row1_samples = import_row.data["host_cpu"]
        per_order = st.median(row1_samples) / cfg.import_orders
        row1_source = "row 1 of this run"
    else:
        per_order, row1_samples = row1_host_cpu_per_order(sandbox, cfg, work)
        row1_source = "measured for this row"
    processes, ncores = default_processes(), cores()
    concurrency = processes * cfg.workers
    sandbox.set_latency(0)
    keys = [sandbox.new_account(cfg.orders_per_company)[0] for _ in range(cfg.companies)]
    total = cfg.companies * cfg.orders_per_company
    host_s: list[float] = []
    floor_s: list[float] = []
    latency_s: list[float] = []
    cpu_s: list[float] = []
    sandbox_cpu_s: list[float] = []
    request_counts: list[int] = []
    cpu_floor = per_order * total / ncores
    for i in range(cfg.repeats):
        sandbox.set_latency(0)
        path = new_db_path(work, f"many-{i}")
        db = host_db.connect(path)
        ids = [add_company(db, f"Company {c:03d}", sandbox.base_url, key).id for c, key in enumerate(keys)]
        for company_id in ids:
            jobs.enqueue(db, company_id, "import_orders")
        db.close()  # as the worker: job processes are forked with no connection open
        sandbox.set_latency(cfg.company_latency)
        sandbox.clear_requests()
        cpu_before = _cpu_of_children() + time.process_time()
        sandbox_before = sandbox.cpu_seconds()
        started = time.perf_counter()
        ran = make_pool(path, max_workers=cfg.workers, processes=processes).drain()
        host_s.append(time.perf_counter() - started)
        cpu_s.append(_cpu_of_children() + time.process_time() - cpu_before)
        sandbox_after = sandbox.cpu_seconds()
        if sandbox_before is not None and sandbox_after is not None:
            sandbox_cpu_s.append(sandbox_after - sandbox_before)
        sandbox.set_latency(0)
        requests_made = len(sandbox.requests_made())
        request_counts.append(requests_made)
        latency_s.append(requests_made * cfg.company_latency / concurrency)
        floor_s.append(max(latency_s[-1], cpu_floor))
        db = host_db.connect(path)
        statuses = dict(
            db.execute("SELECT status, COUNT(*) FROM jobs WHERE kind = 'import_orders' GROUP BY status").fetchall()
        )
        imported = db.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
        db.close()
        if ran != cfg.companies or statuses != {"Completed": cfg.companies} or imported != total:
            raise RuntimeError(f"many companies: ran {ran}, {statuses}, {imported} orders")

    # once more with the thread pool of one process (--processes 1), for comparison
    sandbox.set_latency(0)
    path = new_db_path(work, "many-threads")
    db = host_db.connect(path)
    for c, key in enumerate(keys):
        jobs.enqueue(db, add_company(db, f"Company {c:03d}", sandbox.base_url, key).id, "import_orders")
    db.close()
    sandbox.set_latency(cfg.company_latency)
    started = time.perf_counter()
    make_pool(path, max_workers=cfg.workers, processes=1).drain()
    threads_only = time.perf_counter() - started
    sandbox.set_latency(0)

    host, floor = st.median(host_s), st.median(floor_s)
    ratio = host / floor
    cpu = st.median(cpu_s)
    shared = []
    if sandbox_cpu_s:  # the sandbox serves the pages on the same cores while the jobs run
        channel_cpu = st.median(sandbox_cpu_s)
        with_channel = (per_order * total + channel_cpu) / ncores
        busy = (cpu + channel_cpu) / ncores  # no schedule of these jobs on these cores is shorter
        shared = [
            f"the sandbox's CPU during the drain (its own process, same cores) samples {_samples(sandbox_cpu_s)} s; "
            f"with it the cores' floor is (row 1's host CPU x orders + {_s(channel_cpu)}) / {ncores} = "
            f"{_s(with_channel)}, ratio {host / with_channel:.2f}; with the host's measured CPU instead of row "
            f"1's: {_s(busy)}, ratio {host / busy:.2f}",
            f"lower bound of this run: the CPU it spent (host + sandbox) / {ncores} cores = {_s(busy)} = "
            f"{busy / floor:.2f} x the floor; "
            + (
                "above the target, so no schedule of these jobs meets it: the jobs' CPU per order must come down first"
                if busy / floor > COMPANIES_TARGET
                else "within the target: what is left above it is time the cores were idle"
            ),
        ]
    return Row(
        "companies",
        f"Many companies, {cfg.company_latency * 1000:.0f} ms/request: {cfg.companies} x "
        f"{cfg.orders_per_company} orders, worker default ({processes} processes x {cfg.workers} threads)",
        _s(host),
        _s(floor),
        ratio,
        f"<= {COMPANIES_TARGET:g}",
        ratio <= COMPANIES_TARGET,
        notes=[
            f"host samples {_samples(host_s)} s; drained by make_pool(processes={processes}, "
            f"max_workers={cfg.workers}), as cartplugin worker / jobs run by default",
            f"floor = max(latency part {_s(st.median(latency_s))} = {st.median(request_counts)} requests (counted "
            f"by the sandbox) x {cfg.company_latency * 1000:.0f} ms / {concurrency} jobs at once; CPU part "
            f"{_s(cpu_floor)} = row 1's host CPU {per_order * 1000:.3f} ms/order ({row1_source}, samples "
            f"{_samples(row1_samples)} s for {cfg.import_orders:,} orders) x {total:,} orders / {ncores} cores)",
            f"host CPU (job processes + bench process) samples {_samples(cpu_s)} s: {cpu / total * 1000:.3f} "
            f"ms/order = {cpu / (per_order * total):.2f} x row 1's per order; "
            f"CPU / cores = {_s(cpu / ncores)}",
            *shared,
            f"for comparison, one process of {cfg.workers} threads (--processes 1): {_s(threads_only)} = "
            f"{threads_only / floor:.2f} x the floor",
        ],
        data={"host": host_s, "floor": floor_s, "requests": request_counts, "cpu": cpu_s, "per_order": per_order},
    )


# -- 3: tracking upload --------------------------------------------------------------------------


def ship_everything(db: Any, company_id: int) -> int:
    """Ship every order of a company as staff do it, one package each (``orders.ship_order``);
    a single-line order carries a serial number (setup, not timed)."""
    from host.records import orders

    rows = db.execute(
        "SELECT o.id, COUNT(ol.id) FROM orders o JOIN order_lines ol ON ol.order_id = o.id "
        "WHERE o.company_id = :company GROUP BY o.id ORDER BY o.id",
        {"company": company_id},
    ).fetchall()
    for order_id, line_count in rows:
        tracking = f"JD{order_id:018d}"  # a DHL number: JD and 18 digits
        orders.ship_order(
            db, order_id, carrier="DHL Express", tracking_number=tracking,
            tracking_url=f"https://www.dhl.com/track?id={tracking}",
            serials=[f"35{order_id:013d}"] if line_count == 1 else (),
        )  # fmt: skip
    return len(rows)


@contextmanager
def limiter_on(work: Path) -> Iterator[Any]:
    """The plugin's client exactly as shipped (its rate limiter on), the limit counted in a file
    shared by every process, as the CLI sets it up (``<database>-ratelimit``); yields the options."""
    import backmarket_pro.plugin
    from backmarket_pro.client import ClientOptions
    from plugin_spec.ratelimit import ENV_VAR

    saved_options, saved_env = backmarket_pro.plugin.client_options, os.environ.get(ENV_VAR)
    options = ClientOptions.from_env()
    backmarket_pro.plugin.client_options = options
    os.environ[ENV_VAR] = str(work / "upload-ratelimit")
    try:
        yield options
    finally:
        backmarket_pro.plugin.client_options = saved_options
        if saved_env is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = saved_env


def upload_floors(
    requests_made: int, latency: float, limit: int, window: float, concurrency: int
) -> tuple[float, float]:
    """(rate-limit floor, latency floor) of ``requests_made`` uploads.

    Rate limit: at most ``limit`` requests start in any ``window`` seconds, so the last one starts
    no earlier than (ceil(n / limit) - 1) windows after the first, and is answered one latency
    later. Latency: ``concurrency`` requests in flight at a time, each ``latency`` long.
    """
    rate = (math.ceil(requests_made / limit) - 1) * window + latency
    return rate, math.ceil(requests_made / concurrency) * latency


def tracking_upload(sandbox: SandboxProcess, cfg: Config, work: Path) -> Row:
    from host.store import db as host_db

    n = cfg.upload_orders
    host_s: list[float] = []
    floor_s: list[float] = []
    request_counts: list[int] = []
    with limiter_on(work) as options:
        for i in range(cfg.upload_repeats):
            sandbox.set_latency(0)
            key, _ = sandbox.new_account(n)  # a key of its own: a fresh rate-limit window
            setup_started = time.monotonic()
            db = host_db.connect(new_db_path(work, f"upload-{i}"))
            company = add_company(db, "Upload", sandbox.base_url, key)
            status, summary = run_job(db, company.id, "import_orders")
            if summary.get("inserted") != n:
                raise RuntimeError(f"upload setup import: {status} {summary}")
            if ship_everything(db, company.id) != n:
                raise RuntimeError("upload setup: not every order shipped")
            if n > options.rate_limit // 2:
                # the import's and Test Settings' requests must not take slots of the upload's first window
                time.sleep(max(0.0, setup_started + options.rate_window + 0.5 - time.monotonic()))
            sandbox.set_latency(cfg.upload_latency)
            sandbox.clear_requests()
            started = time.perf_counter()
            status, summary = run_job(db, company.id, "upload_tracking")
            host_s.append(time.perf_counter() - started)
            sandbox.set_latency(0)
            requests_made = len(sandbox.requests_made())
            request_counts.append(requests_made)
            floor_s.append(
                max(
                    upload_floors(
                        requests_made, cfg.upload_latency, options.rate_limit, options.rate_window, options.concurrency
                    )
                )  # fmt: skip
            )
            done = db.execute(
                "SELECT COUNT(*) FROM orders WHERE company_id = :company AND source_updated_for_shipping = 1",
                {"company": company.id},
            ).fetchone()[0]
            db.close()
            if status != "Completed" or summary.get("accepted") != n or done != n:
                raise RuntimeError(f"upload: {status} {summary}, {done} orders marked")

    import statistics as st

    host, floor = st.median(host_s), st.median(floor_s)
    requests_made = int(st.median(request_counts))
    rate_floor, latency_floor = upload_floors(
        requests_made, cfg.upload_latency, options.rate_limit, options.rate_window, options.concurrency
    )
    ratio = host / floor
    return Row(
        "upload",
        f"Tracking upload, rate limiter on, {cfg.upload_latency * 1000:.0f} ms/request: {n:,} Fully Shipped "
        "orders, one job",
        _s(host),
        _s(floor),
        ratio,
        "<= 1.15",
        ratio <= 1.15,
        notes=[
            f"host samples {_samples(host_s)} s; {requests_made} requests; concurrency {options.concurrency}, "
            f"limiter {options.rate_limit} per {options.rate_window:g} s per key (shared file, as the CLI sets it)",
            f"floor = max(rate-limit floor {_s(rate_floor)} = ({math.ceil(requests_made / options.rate_limit)} - 1) "
            f"windows x {options.rate_window:g} s + {cfg.upload_latency * 1000:.0f} ms, latency floor "
            f"{_s(latency_floor)} = ceil({requests_made} / {options.concurrency}) x "
            f"{cfg.upload_latency * 1000:.0f} ms); ratio to the rate-limit floor {host / rate_floor:.2f}, "
            f"to the latency floor {host / latency_floor:.2f}",
        ],
        data={
            "host": host_s,
            "floor": floor_s,
            "requests": request_counts,
            "rate_floor": rate_floor,
            "latency_floor": latency_floor,
        },  # fmt: skip
    )


# -- 4: memory -------------------------------------------------------------------------------------


def _memory_child(sandbox: SandboxProcess, key: str, n: int) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    done = subprocess.run(
        [sys.executable, "-m", "bench.memory_child", sandbox.base_url, key, str(n)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"memory child failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory(sandbox: SandboxProcess, cfg: Config, work: Path) -> Row:
    sandbox.set_latency(0)
    small_key, _ = sandbox.new_account(cfg.memory_small)
    large_key, _ = sandbox.new_account(cfg.memory_large)
    small_runs = [_memory_child(sandbox, small_key, cfg.memory_small) for _ in range(cfg.memory_small_repeats)]
    large = _memory_child(sandbox, large_key, cfg.memory_large)
    import statistics as st

    small_mib = st.median(r["peak_kib"] for r in small_runs) / 1024
    large_mib = large["peak_kib"] / 1024
    base_mib = large["before_kib"] / 1024
    ratio = large_mib / small_mib
    small_list = ", ".join(f"{r['peak_kib'] / 1024:.1f}" for r in small_runs)
    return Row(
        "memory",
        f"Memory: peak RSS of an import of {cfg.memory_large:,} vs {cfg.memory_small:,} orders (fresh processes)",
        f"{large_mib:.1f} MiB",
        f"{small_mib:.1f} MiB",
        ratio,
        "<= 1.3, < 250 MB",
        ratio <= 1.3 and large_mib * 1024 * 1024 < 250e6,
        notes=[
            f"{cfg.memory_small:,}: {small_list} MiB "
            f"({len(small_runs)} runs); {cfg.memory_large:,}: one run ({large['seconds']:.1f} s import); "
            f"peak {base_mib:.1f} MiB before the import (interpreter, host, plugin loaded); peak RSS = VmHWM "
            f"of the child (ru_maxrss would include the forked copy of the bench); sandbox in its own process",
        ],
        data={"small": small_runs, "large": large},
    )


# -- 5: scheduler tick ------------------------------------------------------------------------------


def _populate_companies(db: Any, n: int, orders_per_company: int) -> None:
    """``n`` established companies, nothing due, with orders that need nothing (setup, bulk SQL)."""
    from host import clock
    from host.store.db import write

    now, later = clock.now_iso(), clock.now_iso(3600)
    with write(db):
        db.conn.executemany(
            "INSERT INTO companies (id, name, created_at, connection_status, connection_message, "
            "connection_tested_at, next_download_at) VALUES (?, ?, ?, 'established', 'ok', ?, ?)",
            [(i, f"Tick Company {i:05d}", now, now, later) for i in range(1, n + 1)],
        )
        db.conn.executemany(
            "INSERT INTO website_settings (company_id, store_plugin, allow_order_download, allow_tracking_upload, "
            "updated_at) VALUES (?, 'backmarket_pro', 1, 1, ?)",
            [(i, now) for i in range(1, n + 1)],
        )
        rows = []
        for company in range(1, n + 1):
            for k in range(orders_per_company):
                shipped = k % 2 == 0
                rows.append(
                    (
                        company,
                        f"T{company}-{k}",
                        "Fully Shipped" if shipped else "Unshipped",
                        int(shipped),
                        now,
                        now,
                        now,
                        now,
                    )
                )
        db.conn.executemany(
            "INSERT INTO orders (company_id, channel, source_order_id, payment_status, shipping_status, "
            "source_updated_for_shipping, order_date, channel_updated_at, currency, subtotal, shipping_total, tax, "
            "grand_total, commission, total_cost, imported_at, updated_at) "
            "VALUES (?, 'backmarket_pro', ?, 'Fully Charged', ?, ?, ?, ?, 'EUR', '1.00', '0.00', '0.20', '1.20', "
            "'0.12', '1.32', ?, ?)",
            rows,
        )
        # a history of finished jobs, two per company, as a scheduler that has run a while has
        db.conn.executemany(
            "INSERT INTO jobs (company_id, kind, status, priority, params, attempts, run_after, created_at, "
            "started_at, finished_at, summary) VALUES (?, ?, 'Completed', 0, '{}', 1, ?, ?, ?, ?, '{}')",
            [(i, kind, now, now, now, now) for i in range(1, n + 1) for kind in ("import_orders", "download_orders")],
        )


def _traced_statements(db: Any, action: Any) -> list[str]:
    """Every SQL statement ``action()`` runs on ``db``, with its parameters filled in."""
    seen: list[str] = []
    db.conn.set_trace_callback(seen.append)
    try:
        action()
    finally:
        db.conn.set_trace_callback(None)
    return seen


def _plan(db: Any, sql: str) -> list[str]:
    return [row[3] for row in db.conn.execute("EXPLAIN QUERY PLAN " + sql)]


def scheduler_tick(cfg: Config, work: Path) -> Row:
    from host.jobs import scheduler
    from host.store import db as host_db

    db = host_db.connect(new_db_path(work, "tick"))
    _populate_companies(db, cfg.tick_companies, cfg.tick_orders_per_company)
    queued = scheduler.tick(db)
    if any(queued.values()):
        raise RuntimeError(f"tick queued work although nothing is due: {queued}")
    # the statements a tick runs, as SQLite saw them: their plans, and the same SQL run bare
    statements = _traced_statements(db, lambda: scheduler.tick(db))
    queries = [sql for sql in statements if sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "WITH"))]

    def measure_tick(_: int) -> float:
        started = time.perf_counter()
        scheduler.tick(db)
        return time.perf_counter() - started

    def measure_bare(_: int) -> float:
        started = time.perf_counter()
        for sql in statements:
            db.conn.execute(sql).fetchall()
        return time.perf_counter() - started

    tick_s, tick_samples = median_of(cfg.tick_repeats, measure_tick)
    bare_s, _ = median_of(cfg.tick_repeats, measure_bare)
    plans = {sql: _plan(db, sql) for sql in queries}
    counts = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("companies", "orders", "jobs")}
    db.close()
    # every table access must be a SEARCH or a scan of a (partial) index, never a full table scan
    full_scans = [
        step for steps in plans.values() for step in steps
        if step.startswith("SCAN") and "INDEX" not in step and "CONSTANT ROW" not in step
    ]  # fmt: skip
    ratio = tick_s / bare_s if bare_s else None
    notes = [
        f"{counts['companies']:,} established companies, {counts['orders']:,} orders, "
        f"{counts['jobs']:,} finished jobs, nothing due; {cfg.tick_repeats} ticks, "
        f"min {min(tick_samples) * 1000:.2f} / max {max(tick_samples) * 1000:.2f} ms; "
        f"floor = the {len(statements)} statements a tick runs, bare",
    ]
    for sql, steps in plans.items():
        short = " ".join(sql.split())
        short = short if len(short) <= 90 else short[:87] + "..."
        notes.append(f"EXPLAIN QUERY PLAN {short}: " + " | ".join(steps))
    if full_scans:
        notes.append("FULL TABLE SCAN: " + "; ".join(full_scans))
    return Row(
        "tick",
        f"Scheduler tick, {cfg.tick_companies:,} companies, nothing due (scheduler.tick)",
        f"{tick_s * 1000:.2f} ms",
        f"{bare_s * 1000:.2f} ms",
        ratio,
        "report; indexed",
        not full_scans,
        notes=notes,
        data={"tick": tick_samples, "plans": plans},
    )
