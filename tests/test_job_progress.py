"""A running download's progress: the jobs.progress column on both stores, the toolkit's page
reports, and the words staff read."""

from __future__ import annotations

import pytest
import sqlite_utils
from support import fetch_rows, toy_api

from host.jobs import queue as jobs
from host.store.db import connect
from host.store.migrations import SCHEMA_VERSION, migrations
from plugin_spec import progress
from plugin_spec.paging import Offset
from plugin_spec.sandbox import Reply
from plugin_spec.sandbox.api import ApiSandbox, Request

KEY = "progress-key-4c5d6e7f"


@pytest.mark.sqlite_only("SQLite's legacy migration path; PostgreSQL's: tests/store/test_pg_migrations.py")
def test_a_database_before_job_progress_gains_the_column_and_keeps_its_jobs(db_target):
    old = sqlite_utils.Database(db_target)
    migrations.apply(old, stop_before="0011_job_progress")
    old.execute("INSERT INTO companies (name, created_at) VALUES ('Old Co', '2025-01-01T00:00:00.000000Z')")
    old.execute(
        "INSERT INTO jobs (company_id, kind, status, params, run_after, created_at, summary) VALUES "
        "(1, 'import_orders', 'Completed', '{}', '2025-01-01T00:00:00.000000Z', '2025-01-01T00:00:00.000000Z', "
        """'{"inserted": 3}')"""
    )
    old.conn.commit()
    old.close()
    db = connect(db_target)
    assert "progress" in db["jobs"].columns_dict
    (shown,) = jobs.list_jobs(db)
    assert shown["summary"] == {"inserted": 3} and shown["progress"] is None
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


class Listing(ApiSandbox):
    """Seven items, three a page, as next links or offsets."""

    prefix = "/api"
    routes = [("GET", "/next", "next_links"), ("GET", "/offset", "offsets")]
    rows = [{"id": str(i), "n": i} for i in range(7)]

    def next_links(self, request: Request) -> Reply:
        return self.page(request, self.rows, key=lambda r: (r["n"],), default_size=3)

    def offsets(self, request: Request) -> Reply:
        return self.page(request, self.rows, key=lambda r: (r["n"],), size_param="limit", style="offset")


@pytest.mark.parametrize(
    ("path", "pager"), [("/next", None), ("/offset", Offset(page_size=3))], ids=["next links", "offsets"]
)
def test_the_toolkit_reports_each_listing_page_it_hands_out(path, pager):
    pages: list[int] = []
    with Listing(api_key=KEY) as server, toy_api(server, KEY) as api:
        with progress.counting(pages.append):
            items = [item for page in api.pages(path, None, pager=pager) for item in page]
        alone = [item for page in api.pages(path, None, pager=pager) for item in page]  # nobody counting
    assert pages == [3, 3, 1] and len(items) == len(alone) == 7


def test_progress_reads_as_pages_and_orders():
    assert jobs.progress_words({"pages": 3, "orders": 6}, running=True) == "3 pages, 6 orders read so far"
    running = {"pages": 1, "orders": 200, "new": 150, "updated": 0, "unchanged": 50}
    assert jobs.progress_words(running, running=True) == (
        "1 page, 200 orders read so far, saved: 150 new, 0 updated, 50 unchanged"
    )
    assert jobs.progress_words({"pages": 4, "orders": 1}, running=False) == "4 pages, 1 order read"
    assert jobs.progress_words(None, running=True) == ""


def test_a_one_page_import_writes_its_claim_opening_line_batch_coverage_and_end_and_nothing_more(
    run, db_target, company, monkeypatch
):
    """Every job process takes turns for the write lock: a download job whose orders fit one
    batch writes its progress beside its batch and its end (no write for the first page's
    counts, none for the same counts again), and its Change Log entry with its end."""
    from host.jobs import runner
    from host.store.pg import PgDatabase
    from host.store.sqlite import SqliteStore

    db = connect(db_target)
    company_id = db.execute("SELECT id FROM companies WHERE name = :name", {"name": company}).fetchone()[0]
    job, _ = jobs.enqueue(db, company_id, "import_orders")
    db.close()
    opened: list[str] = []
    for store in (SqliteStore, PgDatabase):
        real = store.write

        def counting(self, real=real):
            if not self.in_transaction if isinstance(self, PgDatabase) else not self.conn.in_transaction:
                opened.append("write")
            return real(self)

        monkeypatch.setattr(store, "write", counting)
    sent: list[str] = []  # PostgreSQL: each statement is a round trip
    real_execute = PgDatabase.execute

    def counted(self, sql, params=None):
        sent.append(" ".join(sql.split()).upper())
        return real_execute(self, sql, params)

    monkeypatch.setattr(PgDatabase, "execute", counted)
    assert runner.LocalPool(db_target, max_workers=1).drain() == 1
    shown = run.json("jobs", "show", str(job.id))
    new = shown["summary"]["inserted"]
    assert shown["status"] == jobs.COMPLETED and new > 0
    assert shown["progress"]["pages"] == 1 and shown["progress"]["new"] == new  # the final counts
    # the claim, "downloading unfulfilled orders updated since ...", the batch with its cursor and
    # counts, the coverage of the window read, the end with its Change Log entry (the drain's
    # last look for a job finds none without a write); before: 9
    assert len(opened) == 5
    if sent:
        # a write takes its turn in the same round trip as its BEGIN; progress, log lines, the end
        # and the Change Log entry join the transaction they are written in without a savepoint:
        # the one left is the batch's own (one bad order is retried alone); before: 7
        assert sum(statement.startswith("SAVEPOINT") for statement in sent) == 1
        assert sum(statement.startswith("BEGIN; SELECT PG_ADVISORY_XACT_LOCK(") for statement in sent) == len(opened)
        assert "BEGIN" not in sent and not any(statement.startswith("SELECT PG_ADVISORY") for statement in sent)
    assert fetch_rows(
        db_target, "SELECT action FROM audit_log WHERE target = :target", {"target": f"job {job.id}"}
    ) == [(f"Import Orders: {new} new, 0 updated",)]
