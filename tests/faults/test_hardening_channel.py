"""A hostile or broken channel cannot hang a job, blow up memory, loop, reach another path,
hide an accepted upload or make two processes exceed the key's rate limit.

Each test runs the real CLI or worker as a child process against the Back Market Pro sandbox,
with one of its hostile answers switched on.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time

import pytest
import requests
from fault_harness import Harness, setup_company

from backmarket_pro.sandbox import Sandbox
from host.jobs import queue as jobs
from host.store.db import connect
from plugin_spec.wire import safe_segment

KEY = "hardening-key-5c1e9a0f"
#: the memory an import may use in all, whatever the channel sends (a 300 MB answer read whole
#: took about 970 MB)
RSS_LIMIT_MB = 250
#: the child's address space is capped, so a regression fails the test instead of the machine
ADDRESS_SPACE_CAP = 3 * 1024**3
_API_PATH = re.compile(r"^/sellers-prod/2024-03/(seller-account|orders(/[^/]+(/shipments)?)?)/?$")


@pytest.fixture
def channel():
    with Sandbox(api_key=KEY, orders=40, seed=11) as server:
        yield server


def _import(h: Harness, timeout: float = 90, **env: str) -> tuple[subprocess.CompletedProcess, float, int]:
    """``import-orders`` in a child that reports its own peak RSS (kB); returns (result, seconds, rss)."""
    rss_file = h.tmp_path / "import.rss"
    code = (
        "import resource, runpy, sys\n"
        f"sys.argv = ['cartplugin', '--db', {str(h.db_target)!r}, 'import-orders', {h.company!r}]\n"
        "resource.setrlimit(resource.RLIMIT_AS, (%d, %d))\n"
        "try:\n    runpy.run_module('host', run_name='__main__')\n"
        "finally:\n"
        f"    open({str(rss_file)!r}, 'w').write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))\n"
    ) % (ADDRESS_SPACE_CAP, ADDRESS_SPACE_CAP)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=h.env(**env), timeout=timeout,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    h.logs += [result.stdout, result.stderr]
    return result, elapsed, int(rss_file.read_text() or 0) if rss_file.exists() else 0


def _upload_round(h: Harness) -> None:
    """One Upload Tracking job, run to its end by ``cartplugin jobs run``."""
    db = connect(h.db_target)
    try:
        jobs.enqueue(db, h.company_id, "upload_tracking", {})
    finally:
        db.close()
    h.cli("jobs", "run")


def _job_messages(h: Harness) -> list[str]:
    return [m for (m,) in h.query("SELECT message FROM job_logs ORDER BY id")]


def test_a_server_trickling_its_answer_cannot_hold_an_import_past_the_request_deadline(tmp_path, channel, db_target):
    h = Harness(tmp_path, channel, key=KEY, db=db_target)
    # one byte every 0.1 s never trips the 0.8 s read timeout: only a total deadline ends it
    channel.set_faults(trickle=True, trickle_seconds=0.1)
    result, elapsed, _ = _import(h, timeout=60, CARTPLUGIN_BMP_DEADLINE="2")
    print(f"trickle: the import ended after {elapsed:.1f} s")
    assert elapsed < 20, f"the import took {elapsed:.1f} s"
    assert not h.host_orders()
    assert any("did not finish within 2 s" in m for m in _job_messages(h)), _job_messages(h)


def test_a_next_link_that_never_ends_stops_the_import_with_a_readable_reason(tmp_path, channel, db_target):
    h = Harness(tmp_path, channel, key=KEY, db=db_target)
    channel.set_faults(next_loop=True)
    result, elapsed, _ = _import(h, timeout=60)
    assert elapsed < 30
    messages = _job_messages(h)
    assert any("no new orders" in m and "loop" in m for m in messages), messages
    listing = [r for r in channel.request_log() if r["path"].endswith("/orders")]
    assert len(listing) <= 3 * 5, f"{len(listing)} listing pages read"


@pytest.mark.parametrize("fault", ["huge_body", "endless_body"])
def test_a_huge_or_endless_answer_is_refused_and_memory_stays_low(tmp_path, channel, db_target, fault):
    h = Harness(tmp_path, channel, key=KEY, db=db_target)
    channel.set_faults(**{fault: 1})
    result, elapsed, rss_kb = _import(h, timeout=90)
    rss_mb = rss_kb / 1024
    print(f"{fault}: peak RSS {rss_mb:.0f} MB, {elapsed:.1f} s")
    assert rss_mb < RSS_LIMIT_MB, f"peak RSS {rss_mb:.0f} MB"
    assert any(r["fault"] == fault for r in channel.request_log())
    assert any("more than 32 MB" in m for m in _job_messages(h)), _job_messages(h)[-3:]


@pytest.mark.parametrize("spelling", ["HTTP://LOCALHOST:{port}/sellers-prod", "http://Localhost:{port}/sellers-prod"])
def test_an_uppercase_host_in_the_website_url_still_downloads_every_page(tmp_path, channel, db_target, spelling):
    port = channel.root_url.rsplit(":", 1)[1]
    h = Harness.__new__(Harness)
    h.db_target, h.sandbox, h.company, h.key, h.logs = db_target, channel, "Upper Case GmbH", KEY, []
    h.tmp_path = tmp_path
    db = connect(h.db_target)
    try:
        h.company_id = setup_company(db, h.company, spelling.format(port=port), KEY)
    finally:
        db.close()
    result, _, _ = _import(h, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    expected = h.channel_unfulfilled_ids()
    assert len(expected) > 10  # several pages of 10
    assert {o["source_order_id"] for o in h.host_orders()} == expected


def test_order_ids_dot_and_dot_dot_never_send_a_request_to_another_path(tmp_path, channel, db_target):
    h = Harness(tmp_path, channel, key=KEY, db=db_target)
    channel.add_orders(3, ids=[".", "..", "ok/../../seller-account"])
    h.cli("import-orders", h.company)
    imported = {o["source_order_id"] for o in h.host_orders()}
    assert not imported & {".", "..", "ok/../../seller-account"}
    assert any("cannot be used in a URL path" in m or "cannot be imported" in m for m in _job_messages(h))
    h.ship(len(imported))
    _upload_round(h)
    paths = [r["path"] for r in channel.request_log()]
    assert paths and all(_API_PATH.match(p) for p in paths), [p for p in paths if not _API_PATH.match(p)]
    for hostile in (".", "..", "a/b", "a\x00b", ""):
        with pytest.raises(Exception, match="cannot be used in a URL path"):
            safe_segment(hostile)


def test_an_already_recorded_answer_cut_off_midway_is_retried_not_shown_as_a_failed_upload(
    tmp_path, channel, db_target
):
    h = Harness(tmp_path, channel, key=KEY, db=db_target)
    h.cli("import-orders", h.company)
    shipped = h.ship(2)
    # the channel already has the tracking (an earlier upload landed, its answer was lost)
    for order_id, tracking in shipped.items():
        order = next(o for o in channel.orders(KEY) if o["id"] == order_id)
        body = {"tracking_number": tracking, "carrier": "UPS",
                "line_items": [{"id": li["id"], "quantity": li["quantity"]} for li in order["line_items"]]}  # fmt: skip
        answer = requests.post(f"{channel.base_url}/2024-03/orders/{order_id}/shipments", json=body,
                               headers={"x-api-key": KEY}, timeout=5)  # fmt: skip
        assert answer.status_code == 201, answer.text
    channel.set_faults(cut_error_body=1)  # the next 409 "tracking_already_recorded" arrives half
    _upload_round(h)
    assert any(r["fault"] == "cut_error_body" for r in channel.request_log())
    # the cut-off answer is not a refusal: no "rejected" message, and no pause before the next try
    rows = h.query(
        "SELECT upload_state, upload_message, next_upload_at FROM shipments WHERE upload_state != 'accepted'"
    )
    assert rows and all("rejected" not in (m or "") and "cut off" in (m or "") and due is None for _, m, due in rows), (
        rows
    )
    # while it waits for that try it is pending, not listed among the failed uploads staff handle
    assert all(state == "pending" for state, _, _ in rows), rows
    assert json.loads(h.cli("orders", "list", "--upload-failed", "--json").stdout or "[]") == []
    _upload_round(h)
    h.assert_tracking_delivered(shipped)
    failed = h.cli("orders", "list", "--upload-failed", "--json").stdout
    assert json.loads(failed or "[]") == []


def test_two_processes_sharing_one_key_stay_under_its_rate_limit_together(tmp_path, channel, db_target):
    h = Harness(tmp_path, channel, key=KEY, db=db_target)
    db = connect(h.db_target)
    try:
        second = "Same Key GmbH"
        setup_company(db, second, channel.base_url, KEY)
    finally:
        db.close()
    channel.set_faults(rate_limit=8, rate_window=1.0)
    channel.clear_request_log()
    env = h.env(CARTPLUGIN_BMP_RATE_LIMIT="7", CARTPLUGIN_BMP_RATE_WINDOW="1.0", CARTPLUGIN_BMP_PAGE_SIZE="1",
                CARTPLUGIN_BMP_RETRIES="0")  # fmt: skip
    results: list[subprocess.CompletedProcess] = []

    def run(company: str) -> None:
        results.append(subprocess.run(
            [sys.executable, "-m", "host", "--db", str(h.db_target), "import-orders", company],
            capture_output=True, text=True, env=env, timeout=120, stdin=subprocess.DEVNULL,
        ))  # fmt: skip

    threads = [threading.Thread(target=run, args=(name,)) for name in (h.company, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = [r["status"] for r in channel.request_log()]
    assert 429 not in statuses, f"{statuses.count(429)} answers of 429"
    assert len(statuses) >= 30, len(statuses)  # enough requests that two unshared limits would overrun
    assert all(r.returncode == 0 for r in results), [r.stderr[-500:] for r in results]
