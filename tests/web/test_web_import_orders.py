"""Import Orders as Sellercloud's Download Orders from Channel: a Start Date (the recent window
by default) that the Queued Job reads again from, counts as "N new, M updated, K unchanged" in
the web admin and the CLI, and the pages and orders read so far while the job runs (the real
Back Market Pro sandbox, a real SQLite file, the web admin on a real port)."""

from __future__ import annotations

import json
import re
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from support import Held, db_digest, fetch_rows, wait_until
from web_support import signed_in

import backmarket_pro.plugin
from backmarket_pro.client import ClientOptions
from host import clock
from host.channel import cursors, download
from host.jobs import runner


def _jobs(db_target: Path) -> list[tuple[int, str, str]]:
    return fetch_rows(db_target, "SELECT id, kind, params FROM jobs ORDER BY id")


def _cursor(db_target: Path) -> str:
    return fetch_rows(db_target, "SELECT value FROM cursors WHERE name = :name", {"name": cursors.CURSOR_NAME})[0][0]


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]*>", " ", html))


def _unfulfilled(sandbox) -> int:
    return sum(1 for order in sandbox.orders() if order["fulfillment_status"] == "unfulfilled")


def test_the_dialog_offers_a_start_date_filled_with_the_recent_window(web, run, company):
    http, _ = signed_in(web, "sue")
    settings = http.get(f"{web.url}/companies/1/website-general-settings", timeout=10).text
    assert 'action="/companies/1/import-orders"' in settings and 'method="get"' in settings
    dialog = http.get(f"{web.url}/companies/1/import-orders", timeout=10)
    assert dialog.status_code == 200
    default = (clock.now() - timedelta(days=cursors.recent_days())).date().isoformat()
    assert re.search(rf'<input[^>]*id="start_date"[^>]*type="date"[^>]*value="{default}"', dialog.text), dialog.text
    main = dialog.text.split("<main", 1)[1]
    assert "cartplugin " not in main and "--since" not in main and "--start-date" not in main
    reader, _ = signed_in(web, "rita")  # read-only staff cannot import
    assert reader.get(f"{web.url}/companies/1/import-orders", timeout=10).status_code == 403


def test_import_orders_after_the_automatic_download_reads_the_whole_window_again(web, run, company, sandbox, db_target):
    run("worker", "--once", "--processes", "1")  # the automatic download: every order, the cursor saved
    automatic = [job for job in run.json("jobs", "list") if job["kind"] == "download_orders"]
    assert automatic and automatic[0]["status"] == "Completed"
    cursor = _cursor(db_target)
    start = (clock.now() - timedelta(days=cursors.recent_days())).date().isoformat()

    http, token = signed_in(web, "sue")
    queued = http.post(
        f"{web.url}/companies/1/import-orders", data={"csrf_token": token, "start_date": start}, timeout=10
    )
    assert f"reads the orders updated since {start} 00:00:00 UTC" in _text(queued.text)
    job_id, kind, params = _jobs(db_target)[-1]
    assert kind == "import_orders" and json.loads(params)["since"] == f"{start}T00:00:00.000000Z"
    runner.LocalPool(db_target, max_workers=1).drain()

    count = _unfulfilled(sandbox)
    words = f"0 new, 0 updated, {count} unchanged"
    job_page = _text(http.get(f"{web.url}/jobs/{job_id}", timeout=10).text)
    assert f"Counts {words}, read from {start} 00:00:00 UTC" in job_page
    assert f"orders updated since {start} 00:00:00 UTC (the Start Date)" in job_page  # the log, in words
    assert f"Completed: {words}, read from {start} 00:00:00 UTC" in job_page and "T00:00:00" not in job_page
    assert words in _text(http.get(f"{web.url}/jobs", timeout=10).text)
    shown = run("jobs", "show", str(job_id)).stdout
    assert f"Job {job_id} Import Orders for {company}: Completed" in shown and f"Counts: {words}" in shown
    assert words in run("jobs", "list").stdout
    assert _cursor(db_target) == cursor  # the automatic download goes on from where it was
    admin, _ = signed_in(web, "ann")
    change_log = _text(admin.get(f"{web.url}/companies/1/change-log", timeout=10).text)
    assert f"Start Date: {start} 00:00:00 UTC" in change_log


def test_the_cli_takes_the_start_date_and_says_new_updated_unchanged(run, company, sandbox, db_target):
    first = run("import-orders", company, "--start-date", "2020-01-01").stdout
    count = _unfulfilled(sandbox)
    assert f"Import Orders: Completed: {count} new, 0 updated, 0 unchanged, read from 2020-01-01 00:00" in first
    cursor = _cursor(db_target)
    again = run("import-orders", company, "--since", "2020-01-01").stdout  # the older name still works
    assert f"0 new, 0 updated, {count} unchanged" in again and "inserted" not in again
    assert _cursor(db_target) == cursor
    listed = run("jobs", "list").stdout
    assert f"{count} new, 0 updated, 0 unchanged" in listed and "inserted" not in listed


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("yesterday", "must be a date like 2026-11-01"),
        ("2026-13-45", "must be a date like 2026-11-01"),
        ("", "must be a date like 2026-11-01"),
        ("2999-01-01", "must not be in the future"),
        ("1999-12-31", "must be in the year 2000 or later"),
    ],
)
def test_a_bad_start_date_is_refused_in_one_line_and_queues_nothing(web, run, company, db_target, typed, words):
    before = _jobs(db_target)
    http, token = signed_in(web, "sue")
    answer = http.post(
        f"{web.url}/companies/1/import-orders", data={"csrf_token": token, "start_date": typed}, timeout=10
    )
    assert answer.status_code == 422
    error = re.search(r'<p class="error field-error" id="error-start_date"[^>]*>([^<]*)</p>', answer.text)
    assert error and error.group(1).startswith(f"Start Date {words}"), answer.text
    assert f'value="{typed}"' in answer.text  # what was typed stays in the box
    assert _jobs(db_target) == before

    digest = db_digest(db_target)
    refused = run("import-orders", company, "--start-date", typed, ok=False)
    (line,) = refused.output.strip().splitlines()
    assert refused.exit_code != 0 and line.startswith(f"Error: --start-date (--since) {words}"), line
    assert db_digest(db_target) == digest


def test_a_running_import_shows_the_pages_and_orders_read_so_far(web, run, company, sandbox, db_target, monkeypatch):
    monkeypatch.setattr(backmarket_pro.plugin, "client_options", ClientOptions(page_size=3))
    monkeypatch.setattr(download, "PROGRESS_EVERY_SECONDS", 0.0)  # every page, not once a second
    sandbox.add_orders(20)
    count = _unfulfilled(sandbox)
    run("import-orders", company, "--start-date", "2020-01-01", "--no-wait")
    job_id = _jobs(db_target)[-1][0]
    held = Held(sandbox, passes=3)  # three pages answer, the fourth waits
    worker = threading.Thread(target=runner.LocalPool(db_target, max_workers=1).drain)
    worker.start()
    try:
        assert held.arrived.wait(30)
        assert wait_until(lambda: "3 pages" in run("jobs", "show", str(job_id)).stdout)
        shown = run("jobs", "show", str(job_id)).stdout
        assert f"Job {job_id} Import Orders for {company}: Processing" in shown
        assert "Progress: 3 pages, 6 orders read so far" in shown  # the third page's orders are being read
        http, _ = signed_in(web, "rita")
        live = _text(http.get(f"{web.url}/jobs/{job_id}/log", timeout=10).text)
        assert "Progress 3 pages, 6 orders read so far" in live and "Processing" in live
        assert "3 pages, 6 orders read so far" in _text(http.get(f"{web.url}/jobs", timeout=10).text)
    finally:
        held.remove()
        worker.join(60)
    assert not held.timed_out
    pages = -(-count // 3) + (1 if count % 3 == 0 else 0)  # a full last page is followed by an empty one
    done = run.json("jobs", "show", str(job_id))
    assert done["status"] == "Completed" and done["progress"]["orders"] == count
    assert done["progress"]["pages"] in (pages, -(-count // 3))
    shown = run("jobs", "show", str(job_id)).stdout
    assert f"Progress: {done['progress']['pages']} pages, {count} orders read\n" in shown
    assert f"Counts: {count} new, 0 updated, 0 unchanged" in shown
