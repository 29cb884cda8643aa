"""Rate limits per operation group (token buckets), shared by processes, and waits that stop
resumably: a slot past the job's budget ends the job with its work kept and the next run due
when the slot frees."""

from __future__ import annotations

import dataclasses
import multiprocessing
import re
import threading
import time
import warnings
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from support import API_KEY, assert_bucket_held, record_grants

from backmarket_pro import plugin as bmp_plugin
from backmarket_pro.client import PROFILE, ClientOptions
from host import clock
from host.channel import cursors, download, gate, upload
from host.jobs import queue as jobs
from host.jobs import runner, scheduler
from host.records import orders
from host.records.companies import get_company
from host.store import db as host_db
from plugin_spec import RateLimitWait, stopping
from plugin_spec.http import HttpOptions, JsonApi
from plugin_spec.ratelimit import ENV_VAR, Rate, TokenBucket, group_limiter, limiter_for

API = "https://api.example/orders-api"
LISTING = "/2024-03/orders"
QUICK = ClientOptions(connect_timeout=1, read_timeout=5, retries=0, backoff_factor=0.01, backoff_jitter=0.01,
                      concurrency=2)  # fmt: skip


@pytest.fixture(params=["process", "sqlite", "postgresql"])
def store(request, tmp_path, monkeypatch) -> str:
    """Where the limits are kept: in this process, the SQLite side file, or PostgreSQL."""
    if request.param == "sqlite":
        monkeypatch.setenv(ENV_VAR, str(tmp_path / "limits.db"))
    elif request.param == "postgresql":
        monkeypatch.setenv(ENV_VAR, request.getfixturevalue("pg_url"))
    else:
        monkeypatch.delenv(ENV_VAR, raising=False)
    return request.param


def fresh(name: str) -> str:
    """A key no other test has used (the limiters of one process are kept for its lifetime)."""
    return f"{name}-{time.monotonic_ns()}"


def in_seconds(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


# -- the buckets -------------------------------------------------------------------------------


def test_a_bucket_lets_its_burst_go_at_once_then_one_request_per_interval(store):
    grants: list[tuple[float, float]] = []
    limiter = record_grants(group_limiter(API, fresh("key"), "orders", Rate(10, 3)), grants)
    assert [limiter.try_take() for _ in range(3)] == [None, None, None]  # the burst, without a wait
    pause = limiter.try_take()
    # then the rate: one per 0.1 s, and 2 % more (the channel counts arrivals, which jitter)
    assert pause is not None and 0 < pause <= 0.102 + 1e-3
    for _ in range(6):
        limiter.acquire()
    assert len(grants) == 9
    # from the first grant on, n grants take at least (n - 3) / 10 s (a request late for its
    # slot leaves a token in the bucket, so the bound is counted from the start, burst included)
    assert_bucket_held(grants, per_second=10, burst=3)


def test_the_buckets_of_two_groups_and_two_keys_are_independent(store):
    key = fresh("key")
    orders_bucket = group_limiter(API, key, "orders", Rate(Decimal("0.01"), 2))
    assert [orders_bucket.try_take(), orders_bucket.try_take()] == [None, None]
    waiting = orders_bucket.try_take()
    assert waiting is not None and waiting > 90  # the next "orders" slot is 100 s away
    assert group_limiter(API, key, "shipments", Rate(Decimal("0.01"), 2)).try_take() is None
    assert group_limiter(API, fresh("other-key"), "orders", Rate(Decimal("0.01"), 2)).try_take() is None
    assert limiter_for(API, key, 1, 60.0).try_take() is None  # the key's window counts apart
    assert orders_bucket.try_take() is not None  # and none of them gave "orders" a slot


def test_a_rate_is_a_positive_rate_and_a_whole_burst():
    for bad in ((0, 1), (-1, 5), (1, 0), (1, 1.5)):
        with pytest.raises(ValueError):
            Rate(*bad)  # type: ignore[arg-type]
    assert Rate(Decimal("0.0056"), 20).interval == pytest.approx(178.571, abs=1e-3)


def _take_six(api: str, key: str, grants) -> None:
    limiter = record_grants(group_limiter(api, key, "orders", Rate(5, 2)), grants)
    for _ in range(6):
        limiter.acquire()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_two_processes_share_one_bucket(kind, tmp_path, monkeypatch, request):
    target = str(tmp_path / "limits.db") if kind == "sqlite" else request.getfixturevalue("pg_url")
    monkeypatch.setenv(ENV_VAR, target)
    key = fresh("shared-key")
    with multiprocessing.Manager() as manager:
        shared = manager.list()
        procs = [multiprocessing.Process(target=_take_six, args=(API, key, shared)) for _ in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        grants = list(shared)
    assert len(grants) == 12
    # one bucket for both: a bucket per process would let 4 go at once and 10 a second
    assert_bucket_held(grants, per_second=5, burst=2)


# -- waiting: the budget and the stop ------------------------------------------------------------


def test_a_slot_later_than_the_wait_budget_is_refused_at_once_with_its_instant(store):
    limiter = group_limiter(API, fresh("key"), "orders", Rate(Decimal(1) / 30, 1))
    limiter.acquire()
    started = time.monotonic()
    with stopping.stop_when(None, wait_until=in_seconds(1)), pytest.raises(RateLimitWait) as refused:
        limiter.acquire()  # the next slot is 30 s away, the job may wait 1 s
    assert time.monotonic() - started < 1  # refused at once, not after waiting
    assert refused.value.retryable
    assert abs((refused.value.until - in_seconds(30)).total_seconds()) < 3
    assert "'orders'" in str(refused.value) and f"{refused.value.until:%H:%M:%S} UTC" in str(refused.value)
    assert limiter.try_take() is not None  # nothing was taken


def test_a_slot_within_the_wait_budget_is_waited_for():
    limiter = TokenBucket(Rate(4, 1))
    limiter.acquire()
    with stopping.stop_when(None, wait_until=in_seconds(5)):
        assert limiter.acquire() > 0.1  # a quarter of a second: waited, not refused


def test_a_stopping_job_stops_a_request_waiting_within_its_budget(store):
    limiter = group_limiter(API, fresh("key"), "orders", Rate(Decimal(1) / 30, 1))
    limiter.acquire()
    flag = threading.Event()
    threading.Timer(0.2, flag.set).start()
    started = time.monotonic()
    with stopping.stop_when(flag.is_set, wait_until=in_seconds(60)), pytest.raises(stopping.Stopped):
        limiter.acquire()  # allowed to wait the 30 s, but the job stops first
    assert time.monotonic() - started < 10


def test_a_scope_inside_another_keeps_the_earlier_wait_budget():
    early, late = in_seconds(10), in_seconds(100)
    with stopping.stop_when(None, wait_until=early):
        with stopping.stop_when(None):
            assert stopping.wait_until() == early
        with stopping.stop_when(None, wait_until=late):
            assert stopping.wait_until() == early
    with stopping.stop_when(None, wait_until=late), stopping.stop_when(None, wait_until=early):
        assert stopping.wait_until() == early
    assert stopping.wait_until() is None


# -- JsonApi: operations choose the bucket ----------------------------------------------------------


def _api(sandbox, **limits) -> JsonApi:
    options = HttpOptions(retries=0, rate_limit=1000, rate_window=1.0)
    return JsonApi(sandbox.base_url, PROFILE, options, headers={"x-api-key": API_KEY}, **limits)


def listing_requests(sandbox) -> list[dict]:
    return [r for r in sandbox.request_log() if r["path"].endswith(LISTING)]


def test_a_request_takes_its_slot_from_its_operations_bucket_only(sandbox, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    limits = {"orders": Rate(Decimal("0.01"), 2), "account": Rate(Decimal("0.01"), 1)}
    with _api(sandbox, limit_key=fresh(API_KEY), rate_limits=limits) as api:
        params = {"fulfillment_status": "any", "financial_status": "any", "page-size": "50"}
        for _ in range(2):  # the burst of "orders"
            api.request("GET", LISTING, params=params, operation="orders")
        api.request("GET", "/2024-03/seller-account", operation="account")
        api.request("GET", "/2024-03/seller-account")  # no operation: the key's window
        sent = len(sandbox.request_log())
        with stopping.stop_when(None, wait_until=in_seconds(2)):
            with pytest.raises(RateLimitWait):
                api.request("GET", LISTING, params=params, operation="orders")
            with pytest.raises(RateLimitWait):
                next(api.pages(LISTING, params, operation="orders"))
            with pytest.raises(RateLimitWait):
                api.request("GET", "/2024-03/seller-account", operation="account")
        assert len(sandbox.request_log()) == sent  # refused before sending
        api.request("GET", "/2024-03/seller-account")  # the window still has room


def test_an_operation_without_a_declared_limit_is_refused_before_sending(sandbox):
    with _api(sandbox, limit_key=fresh(API_KEY), rate_limits={"orders": Rate(1, 1)}) as api:
        with pytest.raises(ValueError, match="'order'"):
            api.request("GET", LISTING, operation="order")
    assert sandbox.request_log() == []


def test_the_deprecated_secret_argument_still_names_the_limit_key(sandbox, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    key = fresh(API_KEY)
    with pytest.warns(DeprecationWarning, match="limit_key"), _api(sandbox, secret=key) as old:
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with _api(sandbox, limit_key=key) as new:
            assert new.limiter is old.limiter  # one limiter: the same key counts once
    with pytest.raises(TypeError):
        _api(sandbox, secret=key, limit_key=key)


# -- the host: a wait past the budget ends the job, resumably ------------------------------------


@pytest.fixture
def company_id(company: str, db_target) -> int:
    db = host_db.connect(db_target)
    try:
        return get_company(db, company).id
    finally:
        db.close()


def _limited(monkeypatch, *, page_size: int, limit: int, window: float) -> None:
    """The plugin's client with a tiny window: the job's wait is seconds, not minutes."""
    options = dataclasses.replace(QUICK, page_size=page_size, rate_limit=limit, rate_window=window)
    monkeypatch.setattr(bmp_plugin, "client_options", options)
    monkeypatch.delenv(ENV_VAR, raising=False)


def _run_job(db_target, company_id: int, kind: str) -> dict:
    db = host_db.connect(db_target)
    try:
        job, _ = jobs.enqueue(db, company_id, kind)
        assert runner.LocalPool(db_target, max_workers=1).drain() == 1
        return jobs.show_job(db, job.id)
    finally:
        db.close()


def said_until(message: str, then: str) -> datetime | None:
    """The instant a "waiting for the channel's rate limit until 14:05:31 UTC; <then>" line names
    (to the second; the date is there when it is not today), or None for any other line."""
    found = re.fullmatch(
        rf"waiting for the channel's rate limit until (\d{{4}}-\d\d-\d\d )?(\d\d):(\d\d):(\d\d) UTC; {then}",
        message,
    )
    if found is None:
        return None
    day = datetime.fromisoformat(found[1].strip()).date() if found[1] else clock.now().date()
    return datetime(day.year, day.month, day.day, int(found[2]), int(found[3]), int(found[4]), tzinfo=UTC)


def _next_download_at(db_target, company_id: int) -> str:
    db = host_db.connect(db_target)
    try:
        return db.execute("SELECT next_download_at FROM companies WHERE id = :id", {"id": company_id}).fetchone()[0]
    finally:
        db.close()


def test_a_download_whose_next_page_would_wait_past_its_budget_ends_resumably_and_the_next_run_reads_the_rest_once(
    company_id, db_target, sandbox, monkeypatch
):
    wanted = [o for o in sandbox.orders(API_KEY) if o["fulfillment_status"] == "unfulfilled"]
    page = 3
    assert len(wanted) > 2 * page  # two pages fit in the window, a third one does not
    assert len(wanted) - 2 * page + 1 <= 2 * page  # the rest (and the order at the cursor) do
    _limited(monkeypatch, page_size=page, limit=2, window=5.0)
    monkeypatch.setenv("CARTPLUGIN_JOB_BUDGET_SECONDS", "2.0")
    sandbox.clear_request_log()

    first = _run_job(db_target, company_id, "import_orders")

    assert first["status"] == jobs.COMPLETED
    summary = first["summary"]
    assert summary["inserted"] == 2 * page and summary["more"] is True
    until = clock.parse(summary["waiting_until"])
    assert until > clock.now()
    said = [said_until(line["message"], "the next download continues from here") for line in first["log"]]
    assert [at for at in said if at is not None] == [until.replace(microsecond=0)], first["log"]
    assert len(listing_requests(sandbox)) == 2  # the third page was never asked for
    assert _next_download_at(db_target, company_id) == summary["waiting_until"]

    db = host_db.connect(db_target)
    try:
        cursor = cursors.get_cursor(db, company_id, "backmarket_pro")
        assert cursor is not None
        at_cursor = db.execute(
            "SELECT COUNT(*) FROM orders WHERE channel_updated_at = :at", {"at": clock.iso(cursor)}
        ).fetchone()[0]
        assert at_cursor >= 1
        assert scheduler.tick(db)["download_orders"] == 0  # not due before the limit allows a request
        time.sleep(max(0.0, (until - clock.now()).total_seconds()) + 0.05)
        assert scheduler.tick(db)["download_orders"] == 1  # due at that instant
    finally:
        db.close()
    sandbox.clear_request_log()
    assert runner.LocalPool(db_target, max_workers=1).drain() == 1

    db = host_db.connect(db_target)
    try:
        (second,) = [j for j in jobs.list_jobs(db, company_id) if j["kind"] == "download_orders"]
        assert second["status"] == jobs.COMPLETED
        rest = len(wanted) - 2 * page
        # every remaining order once; only the order(s) at the cursor itself are read again
        assert second["summary"]["inserted"] == rest
        assert second["summary"]["seen"] == rest + at_cursor
        assert "more" not in second["summary"]
        assert listing_requests(sandbox)[0]["query"]["updated_at_min"].startswith(f"{cursor:%Y-%m-%dT%H:%M:%S}")
        ids = [row[0] for row in db.execute("SELECT source_order_id FROM orders")]
        assert sorted(ids) == sorted(o["id"] for o in wanted)
    finally:
        db.close()


def test_a_stopping_job_stops_a_download_waiting_for_the_rate_limit_with_its_pages_kept(
    company_id, db_target, sandbox, monkeypatch
):
    _limited(monkeypatch, page_size=3, limit=2, window=30.0)
    db = host_db.connect(db_target)
    try:
        company = get_company(db, company_id)
        flag = threading.Event()
        threading.Timer(0.5, flag.set).start()
        started = time.monotonic()
        with pytest.raises(gate.Interrupted):
            # the third page may wait (budget 60 s) and waits, until the job stops
            download.download_orders(db, company, since=cursors.recent_since(), stop=flag.is_set, budget_seconds=60)
        assert time.monotonic() - started < 10  # not the 30 s of the window
        assert db.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 6  # both pages read are kept
    finally:
        db.close()


def test_an_upload_whose_next_post_would_wait_past_its_budget_leaves_the_rest_pending_until_then(
    company, company_id, run, db_target, sandbox, monkeypatch
):
    monkeypatch.setattr(bmp_plugin, "client_options", QUICK)
    run("import-orders", company)
    db = host_db.connect(db_target)
    try:
        ids = [r[0] for r in db.execute("SELECT id FROM orders WHERE status = 'In Process' AND channel_cancelled = 0")]
        for n, order_id in enumerate(ids):
            orders.ship_order(db, order_id, carrier="DHL Express", tracking_number=f"{n:010d}")
        _limited(monkeypatch, page_size=50, limit=2, window=6.0)
        sandbox.clear_request_log()
        lines: list[str] = []
        counts = upload.upload_tracking(
            db, get_company(db, company_id), log=lambda level, message: lines.append(message), budget_seconds=3.0
        )
        until = clock.parse(counts["waiting_until"])
        assert clock.now() < until and counts["more"] is True  # refused, not waited for; the rest comes next
        posts = [r for r in sandbox.request_log() if r["method"] == "POST"]
        assert len(posts) == 2 and counts["accepted"] == 2
        assert counts["failed"] == counts["retrying"] == 0  # a shipment not sent is no failure
        said = [said_until(line, "the next upload sends the rest") for line in lines]
        assert [at for at in said if at is not None] == [until.replace(microsecond=0)], lines
        assert scheduler.tick(db)["upload_tracking"] == 0  # not queued only to be refused again
        time.sleep(max(0.0, (until - clock.now()).total_seconds()) + 0.05)
        assert scheduler.tick(db)["upload_tracking"] == 1  # due when the limit allows a post
        pending = db.execute("SELECT upload_attempts FROM shipments WHERE upload_state = 'pending'").fetchall()
        assert [row[0] for row in pending] == [0] * (len(ids) - 2)  # no attempt counted: sent by the next run
    finally:
        db.close()
