"""Row 10 (``--rows pages``): Manage Orders and Queued Jobs while a worker imports, on both backends.

Support staff browse while imports run. For SQLite and then PostgreSQL (a throwaway server from
``tests/pg_server.py``; skipped with a note where PostgreSQL is not installed): a database of
``web_orders`` orders (100,000) in 50 companies and ``web_jobs`` finished jobs, the web admin
served as users run it (``cartplugin serve``: waitress, its own process, access log on), and
two staff members signed in through its login form, each a real HTTP client on a keep-alive
connection, going round the Manage Orders and Queued Jobs pages.

First the clients browse with nothing else running (the floor: the same pages, the same two
clients, the same run); then a ``cartplugin worker`` process of its own runs Import Orders for a
company whose channel holds ``import_orders`` orders (20,000: every page of them written by the
worker's job process while the pages are read), and every request made while that job is
Processing is timed from the client's side. The row passes when the 95th percentile of each
kind of page (orders, jobs) is at most 50 ms on both backends and no page saw an error: a 5xx,
"database is locked", a lost session or a refused connection (each counted).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from .common import CHANNEL, ROOT, SandboxProcess, add_company, new_db_path

ORDER_PAGES = [
    "/orders",
    "/orders?page=20",
    "/orders?company={company}",
    "/orders?status=Completed",
    "/orders?shipping=Fully+Shipped",
    "/orders?source_updated=no&company=3",
    "/orders?sort=order_date&dir=desc",
    "/orders?q=W7-123",
]
JOB_PAGES = ["/jobs", "/jobs?page=20", "/jobs?status=Processing", "/jobs?company={company}", "/jobs?kind=import_orders"]
COMPANIES = 50
CLIENTS = 2
#: the issue's target for the 95th percentile of each kind of page while the worker writes
TARGET_MS = 50.0
USER, PASSWORD = "bench-staff", "bench password 123"


def populate(db: Any, orders: int, jobs: int) -> None:
    """``orders`` orders and ``jobs`` finished jobs in :data:`COMPANIES` companies, written once
    with named parameters for either backend. The companies download nothing by themselves
    (automatic download off), so the worker runs only the import the bench queues."""
    from host import clock
    from host.records import order_search
    from host.store.db import write

    now = clock.now_iso()
    with write(db):
        db.conn.executemany(
            "INSERT INTO companies (name, created_at, connection_status) VALUES (:name, :now, 'established')",
            [{"name": f"Web Company {i:02d}", "now": now} for i in range(1, COMPANIES + 1)],
        )
        ids = [row[0] for row in db.execute("SELECT id FROM companies ORDER BY id").fetchall()]
        db.conn.executemany(
            "INSERT INTO website_settings (company_id, store_plugin, allow_order_download, allow_tracking_upload, "
            "updated_at) VALUES (:company, :plugin, 0, 0, :now)",
            [{"company": i, "plugin": CHANNEL, "now": now} for i in ids],
        )
        statuses = ("In Process", "In Process", "In Process", "Completed", "On Hold")
        rows = []
        for n in range(orders):
            company = ids[n % COMPANIES]
            shipped = n % 3 == 0
            day = f"2026-{n % 12 + 1:02d}-{n % 28 + 1:02d}T{n % 24:02d}:00:00.000000Z"
            rows.append({"company": company, "source": f"W{company}-{n}", "status": statuses[n % 5],
                         "shipping": "Fully Shipped" if shipped else "Unshipped",
                         "uploaded": int(shipped and n % 2 == 0), "cancelled": int(n % 97 == 0), "day": day,
                         "now": now})  # fmt: skip
        db.conn.executemany(
            "INSERT INTO orders (company_id, channel, source_order_id, status, payment_status, shipping_status, "
            "source_updated_for_shipping, channel_cancelled, order_date, channel_updated_at, currency, subtotal, "
            "shipping_total, tax, grand_total, commission, total_cost, imported_at, updated_at) "
            f"VALUES (:company, '{CHANNEL}', :source, :status, 'Fully Charged', :shipping, :uploaded, :cancelled, "
            ":day, :day, 'EUR', '100.00', '5.00', '21.00', '126.00', '12.60', '138.60', :now, :now)",
            rows,
        )
        order_search.index_new(db, [tuple(r) for r in db.execute("SELECT id, source_order_id FROM orders")])
        kinds = ("download_orders", "download_orders", "upload_tracking", "import_orders", "test_settings")
        job_statuses = ("Completed", "Completed", "Completed", "Partial Success", "Failed", "Cancelled")
        db.conn.executemany(
            "INSERT INTO jobs (company_id, kind, status, params, attempts, run_after, created_at, started_at, "
            "finished_at, summary) VALUES (:company, :kind, :status, '{}', 1, :now, :now, :now, :now, "
            "'{\"inserted\": 3, \"updated\": 1}')",
            [{"company": ids[n % COMPANIES], "kind": kinds[n % 5], "status": job_statuses[n % 6], "now": now}
             for n in range(jobs)],
        )  # fmt: skip
    # as a database that has lived: vacuumed (PostgreSQL's autovacuum would have been by now; its
    # index-only scans read the table until then) and analysed
    db.execute("VACUUM")
    db.execute("ANALYZE")


# -- the processes ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _environ() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "CARTPLUGIN_LOG_LEVEL": "WARNING",
    }


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process ``pid`` has used so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def served(target: str, work: Path, label: str) -> Iterator[tuple[str, Path, int]]:
    """``cartplugin serve`` in a process of its own; its base URL, its log file and its pid."""
    port = _free_port()
    log = work / f"pages-{label}-serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "host", "--db", target, "serve", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=_environ(), cwd=ROOT,
        )  # fmt: skip
        try:
            for _ in range(600):
                if proc.poll() is not None:
                    raise RuntimeError(f"cartplugin serve ended at once: {log.read_text()[-2000:]}")
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                raise RuntimeError("cartplugin serve did not listen within 60 s")
            yield f"http://127.0.0.1:{port}", log, proc.pid
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@contextlib.contextmanager
def worker(target: str, work: Path, label: str) -> Iterator[subprocess.Popen]:
    """``cartplugin worker`` in a process of its own (its job processes forked from it)."""
    log = work / f"pages-{label}-worker.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "host", "--db", target, "worker", "--interval", "0.5", "--download-every", "86400"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=_environ(), cwd=ROOT,
        )  # fmt: skip
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def sign_in(base: str) -> requests.Session:
    """A browser's session: the login form fetched, its CSRF token sent back with the password."""
    session = requests.Session()
    session.trust_env = False
    form = session.get(base + "/login", timeout=30)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', form.text) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', form.text
    )
    if token is None:
        raise RuntimeError("no CSRF token on the login page")
    answer = session.post(
        base + "/login", data={"csrf_token": token.group(1), "name": USER, "password": PASSWORD}, timeout=30
    )
    if answer.status_code != 200 or "/login" in answer.url:
        raise RuntimeError(f"sign-in failed: {answer.status_code} {answer.url}")
    return session


# -- the clients ---------------------------------------------------------------------------------


@dataclass
class Sample:
    path: str
    kind: str  # "orders" or "jobs"
    seconds: float
    status: int  # 0: no answer (connection refused or reset)
    problem: str = ""  # "5xx", "database is locked", "signed out", "no answer"


@dataclass
class Browsing:
    samples: list[Sample] = field(default_factory=list)

    def by_kind(self, kind: str) -> list[float]:
        return sorted(s.seconds for s in self.samples if s.kind == kind)

    def problems(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for s in self.samples:
            if s.problem:
                found[s.problem] = found.get(s.problem, 0) + 1
        return found


def p95(values: list[float]) -> float:
    """The 95th percentile (nearest rank) of sorted ``values``; 0 for none."""
    if not values:
        return 0.0
    return values[min(len(values) - 1, math.ceil(0.95 * len(values)) - 1)]


def _get(session: requests.Session, base: str, path: str) -> Sample:
    kind = "jobs" if path.startswith("/jobs") else "orders"
    started = time.perf_counter()
    try:
        answer = session.get(base + path, timeout=60, allow_redirects=False)
        body = answer.text
    except requests.RequestException:
        return Sample(path, kind, time.perf_counter() - started, 0, "no answer")
    seconds = time.perf_counter() - started
    problem = ""
    if "database is locked" in body:
        problem = "database is locked"
    elif answer.status_code >= 500:
        problem = "5xx"
    elif answer.status_code in (301, 302, 303) and "/login" in answer.headers.get("Location", ""):
        problem = "signed out"
    elif answer.status_code != 200:
        problem = f"HTTP {answer.status_code}"
    return Sample(path, kind, seconds, answer.status_code, problem)


def browse(sessions: list[requests.Session], base: str, pages: list[str], *, rounds: int = 0,
           until: threading.Event | None = None) -> Browsing:  # fmt: skip
    """Each session on a thread of its own, going round ``pages`` (each starting elsewhere in
    the list): ``rounds`` times, or until ``until`` is set."""
    result = Browsing()
    lock = threading.Lock()

    def client(number: int, session: requests.Session) -> None:
        mine: list[Sample] = []
        n = number * (len(pages) // max(1, len(sessions)))
        done = 0
        while (until is None and done < rounds * len(pages)) or (until is not None and not until.is_set()):
            mine.append(_get(session, base, pages[n % len(pages)]))
            n += 1
            done += 1
        with lock:
            result.samples.extend(mine)

    threads = [threading.Thread(target=client, args=(i, s)) for i, s in enumerate(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return result


# -- one backend -----------------------------------------------------------------------------------


@dataclass
class Measured:
    backend: str
    idle: Browsing
    loaded: Browsing
    import_s: float
    inserted: int
    serve_log_problems: int
    #: seconds inside the server (its access log) of the pages served while the import ran, by kind
    server: dict[str, list[float]] = field(default_factory=dict)
    #: CPU seconds the server process used per page while the import ran (its own, not the database's)
    cpu_per_page: float = 0.0

    def p95_ms(self, which: str, kind: str) -> float:
        return p95(getattr(self, which).by_kind(kind)) * 1000

    @property
    def errors(self) -> int:
        return sum(self.loaded.problems().values()) + sum(self.idle.problems().values()) + self.serve_log_problems

    @property
    def passed(self) -> bool:
        return (
            self.errors == 0
            and all(self.p95_ms("loaded", kind) <= TARGET_MS for kind in ("orders", "jobs"))
            and bool(self.loaded.by_kind("orders"))
            and bool(self.loaded.by_kind("jobs"))
        )


def measure(target: str, label: str, sandbox: SandboxProcess, cfg: Any, work: Path) -> Measured:
    from host.jobs import queue as jobs
    from host.records import users
    from host.store.db import connect

    db = connect(target)
    try:
        populate(db, cfg.web_orders, cfg.web_jobs)
        key, _ = sandbox.new_account(cfg.import_orders)
        company = add_company(db, "Import While Browsing", sandbox.base_url, key)
        # no automatic download beside the import the bench queues
        db.execute("UPDATE companies SET next_download_at = '9999-12-31T00:00:00.000000Z'")
        users.add_user(db, USER, "read-only", PASSWORD)
    finally:
        db.close()
    if label == "postgresql":
        from host.jobs.cluster import schema

        schema.ensure(target)  # the job engine's tables, as the first worker would install them
    pages = [p.format(company=company.id) for p in ORDER_PAGES + JOB_PAGES]
    with served(target, work, label) as (base, serve_log, serve_pid):
        sessions = [sign_in(base) for _ in range(CLIENTS)]
        browse(sessions, base, pages, rounds=1)  # warm: templates compiled, caches filled
        idle = browse(sessions, base, pages, rounds=max(2, cfg.web_repeats))
        db = connect(target, migrate=False)
        try:
            job, _ = jobs.enqueue(db, company.id, "import_orders")
            stop = threading.Event()
            loaded = Browsing()
            with worker(target, work, label) as proc:
                status = _wait_status(db, job.id, jobs.PENDING, proc, leave=jobs.QUEUED)
                log_from, cpu_from = serve_log.stat().st_size, cpu_seconds(serve_pid)
                started = time.perf_counter()
                clients = threading.Thread(
                    target=lambda: loaded.samples.extend(browse(sessions, base, pages, until=stop).samples)
                )
                clients.start()
                try:
                    status = _wait_status(db, job.id, jobs.PENDING, proc)
                finally:
                    stop.set()
                    clients.join()
                import_s = time.perf_counter() - started
                log_to, cpu_to = serve_log.stat().st_size, cpu_seconds(serve_pid)
            row = db.execute("SELECT summary FROM jobs WHERE id = :id", {"id": job.id}).fetchone()
        finally:
            db.close()
        for session in sessions:
            session.close()
    import json

    summary = json.loads(row[0]) if row and row[0] else {}
    if status != jobs.COMPLETED or summary.get("inserted") != cfg.import_orders:
        raise RuntimeError(f"pages under load ({label}): the import ended {status} {summary}")
    logged = serve_log.read_bytes()
    server = _server_times(logged[log_from:log_to].decode(errors="replace"))
    text = logged.decode(errors="replace")
    return Measured(label, idle, loaded, import_s, summary["inserted"],
                    text.count("internal error") + text.count("database is locked"), server,
                    (cpu_to - cpu_from) / max(1, len(loaded.samples)))  # fmt: skip


ACCESS_LINE = re.compile(r'"GET (/orders|/jobs)" (\d+) \d+ ([\d.]+)ms')


def _server_times(log: str) -> dict[str, list[float]]:
    """Seconds each page took inside the server (its access log), by kind."""
    found: dict[str, list[float]] = {"orders": [], "jobs": []}
    for path, _, ms in ACCESS_LINE.findall(log):
        found[path.strip("/")].append(float(ms) / 1000)
    return {kind: sorted(values) for kind, values in found.items()}


def _wait_status(db: Any, job_id: int, pending: tuple[str, ...], proc: subprocess.Popen, *,
                 leave: str | None = None) -> str:  # fmt: skip
    """Poll the job's status: until it is no longer ``leave`` (when given), else until it is done."""
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        status = db.execute("SELECT status FROM jobs WHERE id = :id", {"id": job_id}).fetchone()[0]
        if (leave is not None and status != leave) or (leave is None and status not in pending):
            return status
        if proc.poll() is not None:
            raise RuntimeError(f"the worker ended ({proc.returncode}) with the job {status}")
        time.sleep(0.05)
    raise RuntimeError("the import did not end within 30 minutes")


# -- the row ---------------------------------------------------------------------------------------


def _pg_server(folder: str) -> Any:
    sys.path.insert(0, str(ROOT / "tests"))
    from pg_server import PgServer, available

    return PgServer(folder) if available() else None


def pages_under_load(sandbox: SandboxProcess, cfg: Any, work: Path):
    from .rows import Row

    sandbox.set_latency(0)
    results = [measure(str(new_db_path(work, "pages")), "sqlite", sandbox, cfg, work)]
    notes: list[str] = []
    folder = tempfile.mkdtemp(prefix="cartpg-pages-")
    server = _pg_server(folder)
    key_before = os.environ.get("CARTPLUGIN_SECRET_KEY_FILE")
    try:
        if server is None:
            notes.append("PostgreSQL is not installed here: measured on SQLite only (the row cannot pass)")
        else:
            os.environ["CARTPLUGIN_SECRET_KEY_FILE"] = str(work / "pages-pg.key")
            results.append(measure(server.start(), "postgresql", sandbox, cfg, work))
    finally:
        if key_before is None:
            os.environ.pop("CARTPLUGIN_SECRET_KEY_FILE", None)
        else:
            os.environ["CARTPLUGIN_SECRET_KEY_FILE"] = key_before
        if server is not None:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)

    short = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
    measured = "; ".join(
        f"{short[m.backend]} orders {m.p95_ms('loaded', 'orders'):.0f} ms, jobs {m.p95_ms('loaded', 'jobs'):.0f} ms, "
        f"{m.errors} errors"
        for m in results
    )
    floor = "; ".join(
        f"{short[m.backend]} {max(m.p95_ms('idle', 'orders'), m.p95_ms('idle', 'jobs')):.0f} ms" for m in results
    )
    worst = max(results, key=lambda m: max(m.p95_ms("loaded", k) for k in ("orders", "jobs")))
    worst_kind = max(("orders", "jobs"), key=lambda k: worst.p95_ms("loaded", k))
    idle_of_worst = worst.p95_ms("idle", worst_kind)
    notes.insert(
        0,
        f"{cfg.web_orders:,} orders in {COMPANIES} companies and {cfg.web_jobs:,} jobs; a cartplugin worker process "
        f"imports {cfg.import_orders:,} more while {CLIENTS} signed-in clients browse `cartplugin serve` "
        f"({len(ORDER_PAGES)} Manage Orders and {len(JOB_PAGES)} Queued Jobs pages in turn); "
        "p95 of the requests made while the import job was Processing, timed by the client; "
        "floor: p95 of the same pages with nothing else running",
    )
    for m in results:
        counts = {k: len(m.loaded.by_kind(k)) for k in ("orders", "jobs")}
        notes.append(
            f"{short[m.backend]}: import of {m.inserted:,} orders took {m.import_s:.1f} s; "
            f"{counts['orders']} orders and {counts['jobs']} jobs pages meanwhile: p95 orders "
            f"{m.p95_ms('loaded', 'orders'):.1f} ms, jobs {m.p95_ms('loaded', 'jobs'):.1f} ms, slowest "
            f"{max(s.seconds for s in m.loaded.samples) * 1000:.1f} ms (idle p95 orders "
            f"{m.p95_ms('idle', 'orders'):.1f} ms, jobs {m.p95_ms('idle', 'jobs'):.1f} ms); inside the server "
            f"(access log) p95 orders {p95(m.server.get('orders', [])) * 1000:.1f} ms, jobs "
            f"{p95(m.server.get('jobs', [])) * 1000:.1f} ms, the server's CPU {m.cpu_per_page * 1000:.1f} ms a page; "
            "problems seen by a page: "
            f"{m.loaded.problems() or 'none'}; idle: {m.idle.problems() or 'none'}; errors in serve's log: "
            f"{m.serve_log_problems}"
        )
        per_page: dict[str, list[float]] = {}
        for s in m.loaded.samples:
            per_page.setdefault(s.path, []).append(s.seconds)
        notes.append(
            f"{short[m.backend]} per page under load (median / p95 ms): "
            + ", ".join(
                f"{path} {sorted(v)[len(v) // 2] * 1000:.0f}/{p95(sorted(v)) * 1000:.0f}"
                for path, v in per_page.items()
            )
        )
    passed = server is not None and all(m.passed for m in results)
    return Row(
        "pages",
        f"Pages while the worker writes: Manage Orders ({cfg.web_orders:,} orders) and Queued Jobs "
        f"during a {cfg.import_orders:,}-order import, p95",
        measured,
        floor,
        (worst.p95_ms("loaded", worst_kind) / idle_of_worst) if idle_of_worst else None,
        f"p95 <= {TARGET_MS:.0f} ms, 0 errors",
        passed,
        notes=notes,
        data={"results": results},
    )
