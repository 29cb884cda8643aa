"""Row 7 (``--rows web``): the web admin's orders grid and Queued Jobs list on a large database.

Server time per page is measured through Flask's test client (routing, session, queries,
templates; no socket), against the floor of the same page's SQL run bare. Every query behind
the pages is shown with EXPLAIN QUERY PLAN: filtered pages must search an index, and no page
may sort the whole table in a temporary b-tree.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .common import median_of, new_db_path

ORDER_PAGES = [
    "/orders",
    "/orders?page=100",
    "/orders?company=7",
    "/orders?status=Completed",
    "/orders?shipping=Fully+Shipped",
    "/orders?source_updated=no&company=3",
    "/orders?cancelled=yes",
    "/orders?upload_failed=yes",
    "/orders?sort=order_date&dir=desc",
    "/orders?q=W7-123",
    "/orders?q=7-123",
    "/orders?company=7&q=123",
    "/orders?q=W7",
]
JOB_PAGES = ["/jobs", "/jobs?page=50", "/jobs?status=Failed", "/jobs?company=11", "/jobs?kind=import_orders"]
COMPANIES = 50


def populate(db: Any, orders: int, jobs: int) -> None:
    from host import clock
    from host.records import order_search
    from host.store.db import write

    now = clock.now_iso()
    with write(db):
        db.conn.executemany(
            "INSERT INTO companies (id, name, created_at, connection_status) VALUES (?, ?, ?, 'established')",
            [(i, f"Web Company {i:02d}", now) for i in range(1, COMPANIES + 1)],
        )
        db.conn.executemany(
            "INSERT INTO website_settings (company_id, store_plugin, allow_order_download, allow_tracking_upload, "
            "updated_at) VALUES (?, 'backmarket_pro', 1, 1, ?)",
            [(i, now) for i in range(1, COMPANIES + 1)],
        )
        statuses = ("In Process", "In Process", "In Process", "Completed", "On Hold")
        rows = []
        for n in range(orders):
            company = n % COMPANIES + 1
            shipped = n % 3 == 0
            day = f"2026-{n % 12 + 1:02d}-{n % 28 + 1:02d}T{n % 24:02d}:00:00.000000Z"
            rows.append((company, f"W{company}-{n}", statuses[n % 5], "Fully Shipped" if shipped else "Unshipped",
                         int(shipped and n % 2 == 0), int(n % 97 == 0), day, day, now, now))  # fmt: skip
        db.conn.executemany(
            "INSERT INTO orders (company_id, channel, source_order_id, status, payment_status, shipping_status, "
            "source_updated_for_shipping, channel_cancelled, order_date, channel_updated_at, currency, subtotal, "
            "shipping_total, tax, grand_total, commission, total_cost, imported_at, updated_at) "
            "VALUES (?, 'backmarket_pro', ?, ?, 'Fully Charged', ?, ?, ?, ?, ?, 'EUR', '100.00', '5.00', '21.00', "
            "'126.00', '12.60', '138.60', ?, ?)",
            rows,
        )
        db.execute(order_search.REBUILD)  # rows written here, not through the host's import path
        kinds = ("download_orders", "download_orders", "upload_tracking", "import_orders", "test_settings")
        job_statuses = ("Completed", "Completed", "Completed", "Partial Success", "Failed", "Cancelled")
        db.conn.executemany(
            "INSERT INTO jobs (company_id, kind, status, params, attempts, run_after, created_at, started_at, "
            "finished_at, summary) VALUES (?, ?, ?, '{}', 1, ?, ?, ?, ?, '{\"inserted\": 3, \"updated\": 1}')",
            [(n % COMPANIES + 1, kinds[n % 5], job_statuses[n % 6], now, now, now, now) for n in range(jobs)],
        )


def _signed_in_client(app: Any, db: Any) -> Any:
    from host.records import users
    from host.web.auth import start_session

    user = users.add_user(db, "bench", "read-only", "bench password 123")
    client = app.test_client()
    with client.session_transaction() as session:
        start_session(session, user)
    return client


def _sql_of(path: str) -> list[tuple[str, list[Any]]]:
    from urllib.parse import parse_qsl, urlsplit

    from host.records import queries

    parts = urlsplit(path)
    args = dict(parse_qsl(parts.query))
    page = queries._page_number(args.get("page"))
    if parts.path == "/jobs":
        select, count, params = queries.jobs_sql(args, page, queries.PAGE_SIZE)
    else:
        sort = args.get("sort") if args.get("sort") in queries.ORDER_SORTS else "id"
        select, count, params = queries.orders_sql(
            args, sort, args.get("dir", "desc") != "asc", page, queries.PAGE_SIZE
        )
    return [(select, params), (count, params)]


def web_pages(cfg: Any, work: Path):
    from host.records import queries
    from host.store.db import connect
    from host.web import create_app

    from .rows import Row

    path = new_db_path(work, "web")
    db = connect(path)
    populate(db, cfg.web_orders, cfg.web_jobs)
    db.execute("ANALYZE")
    app = create_app(path)
    client = _signed_in_client(app, db)
    figures: dict[str, tuple[float, float]] = {}
    plans: dict[str, list[str]] = {}
    for page in ORDER_PAGES + JOB_PAGES:
        answer = client.get(page)
        if answer.status_code != 200:
            raise RuntimeError(f"GET {page}: {answer.status_code}")
        sql = _sql_of(page)

        def measure(_: int, page: str = page) -> float:
            started = time.perf_counter()
            client.get(page)
            return time.perf_counter() - started

        def bare(_: int, sql: list = sql) -> float:
            started = time.perf_counter()
            for statement, params in sql:
                db.conn.execute(statement, params).fetchall()
            return time.perf_counter() - started

        served, _ = median_of(cfg.web_repeats, measure)
        floor, _ = median_of(cfg.web_repeats, bare)
        figures[page] = (served, floor)
        for statement, params in sql:
            plans[f"{page} {'COUNT' if statement.startswith('SELECT COUNT') else 'page'}"] = queries.explain(
                db, statement, params
            )
    counts = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("orders", "jobs")}
    db.close()
    bad = []
    for name, steps in plans.items():
        filtered = "?" in name.split()[0]
        for step in steps:
            if step == "SCAN counted":  # the capped count reading its own subquery's rows (queries._counted)
                continue
            if "TEMP B-TREE" in step or (
                filtered and step.startswith("SCAN") and "INDEX" not in step and "page=" not in name.split()[0]
            ):
                bad.append(f"{name}: {step}")
    order_served = sorted(s for p, (s, _) in figures.items() if p.startswith("/orders"))
    job_served = sorted(s for p, (s, _) in figures.items() if p.startswith("/jobs"))
    worst = max(figures.values(), key=lambda f: f[0])
    notes = [
        f"{counts['orders']:,} orders in {COMPANIES} companies, {counts['jobs']:,} jobs; "
        f"{cfg.web_repeats} requests per page through Flask's test client, median; "
        "floor = the page's SELECT + COUNT run bare",
    ]
    for page, (served, floor) in figures.items():
        notes.append(f"GET {page}: {served * 1000:.1f} ms (SQL alone {floor * 1000:.1f} ms)")
    for name, steps in plans.items():
        notes.append(f"EXPLAIN QUERY PLAN {name}: " + " | ".join(steps))
    if bad:
        notes.append("NOT INDEXED: " + "; ".join(bad))
    return Row(
        "web",
        f"Web admin pages, {counts['orders']:,} orders / {counts['jobs']:,} jobs: "
        "orders grid, Queued Jobs (median per page)",
        f"orders {order_served[len(order_served) // 2] * 1000:.1f} ms, "
        f"jobs {job_served[len(job_served) // 2] * 1000:.1f} ms; slowest {worst[0] * 1000:.1f} ms",
        f"{worst[1] * 1000:.1f} ms",
        worst[0] / worst[1] if worst[1] else None,
        "report; indexed",
        not bad,
        notes=notes,
        data={"figures": figures, "plans": plans},
    )
