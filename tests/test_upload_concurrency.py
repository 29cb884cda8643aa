"""Tracking uploads at the channel's pace: several shipments in flight, the rate limiter on,
results in order, a wrong key or a stopping job sending nothing more."""

from __future__ import annotations

import dataclasses
import multiprocessing
import threading
import time
from datetime import UTC, datetime

import pytest
from support import API_KEY, assert_a_waiting_request_stops_with_its_job, assert_window_held, in_threads, record_grants

from backmarket_pro import plugin as bmp_plugin
from backmarket_pro.client import ClientOptions
from backmarket_pro.sandbox import Sandbox
from backmarket_pro.settings import BackMarketProSettings
from host.channel import gate, upload
from host.records import orders
from host.records.companies import get_company
from host.store import db as host_db
from plugin_spec import AuthError, Shipment, ShipmentLine, UploadResult, http, ratelimit, stopping
from plugin_spec.ratelimit import ENV_VAR, RateLimiter, SharedRateLimiter
from plugin_spec.wire import upload_each

QUICK = ClientOptions(connect_timeout=1, read_timeout=5, retries=0, backoff_factor=0.01, backoff_jitter=0.01,
                      rate_limit=1_000_000, concurrency=4)  # fmt: skip


def toy_shipments(n: int) -> list[Shipment]:
    return [Shipment(shipment_id=i, source_order_id=f"O-{i}", carrier="UPS", tracking_number=f"1Z{i:04d}",
                     shipped_at=datetime.now(UTC), lines=[]) for i in range(1, n + 1)]  # fmt: skip


class Tally:
    """How many sends are running at once, at most, and which shipments were sent."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = self.peak = 0
        self.sent: list[int] = []

    def __enter__(self) -> Tally:
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        return self

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.running -= 1


# -- the toolkit: upload_each ------------------------------------------------------------------------


def test_results_come_back_in_input_order_when_later_shipments_answer_first():
    tally = Tally()

    def send(shipment: Shipment) -> UploadResult:
        with tally:
            time.sleep(0.02 * (13 - shipment.shipment_id))  # the first is the slowest
            tally.sent.append(shipment.shipment_id)
        return UploadResult(shipment_id=shipment.shipment_id, ok=True, message=f"sent {shipment.shipment_id}")

    results = upload_each(toy_shipments(12), send, label="Toy", concurrency=4)
    assert [r.shipment_id for r in results] == list(range(1, 13))
    assert [r.message for r in results] == [f"sent {i}" for i in range(1, 13)]
    assert tally.peak == 4
    assert tally.sent != sorted(tally.sent)  # they did finish out of order


def test_a_wrong_key_mid_way_stops_the_sending_and_answers_the_rest_with_its_message():
    tally = Tally()
    gave_up: list[int] = []

    def send(shipment: Shipment) -> UploadResult:
        sid = shipment.shipment_id
        with tally:
            with tally.lock:
                tally.sent.append(sid)
            if sid == 5:
                raise AuthError("The x-api-key was refused (HTTP 401).")
            if sid in (3, 4):  # hold their threads until upload_each has taken the 401 in
                deadline = time.monotonic() + 10
                while not stopping.stopping():
                    if time.monotonic() > deadline:
                        gave_up.append(sid)
                        break
                    time.sleep(0.001)
        return UploadResult(shipment_id=sid, ok=True)

    # 1 goes alone; 2, 3 and 4 fill the three threads; 2's thread takes 5, whose 401 stops the rest
    results = upload_each(toy_shipments(30), send, label="Toy", concurrency=3)
    assert [r.shipment_id for r in results] == list(range(1, 31))
    assert not gave_up  # the sends in flight learnt of the 401
    assert sorted(tally.sent) == [1, 2, 3, 4, 5]  # nothing started once the 401 was in
    assert all(r.ok for r in results if r.shipment_id != 5 and r.shipment_id in tally.sent)
    refused = [r for r in results if r.shipment_id >= 5]
    assert all(not r.ok and not r.retryable and r.message == "The x-api-key was refused (HTTP 401)."
               for r in refused)  # fmt: skip


def test_a_stopping_job_sends_nothing_more_and_names_what_it_kept():
    tally = Tally()
    flag = threading.Event()

    def send(shipment: Shipment) -> UploadResult:
        with tally:
            with tally.lock:  # two threads appending at once must not both miss the fourth
                tally.sent.append(shipment.shipment_id)
                if len(tally.sent) >= 4:
                    flag.set()
            time.sleep(0.03)
        return UploadResult(shipment_id=shipment.shipment_id, ok=True)

    with stopping.stop_when(flag.is_set) as halt:
        results = upload_each(toy_shipments(20), send, label="Toy", concurrency=2)
    sent = set(tally.sent)
    assert 4 <= len(sent) <= 5
    assert halt.unsent == set(range(1, 21)) - sent
    assert all(r.ok for r in results if r.shipment_id in sent)
    assert all(not r.ok and r.retryable for r in results if r.shipment_id in halt.unsent)


# -- the limiter ------------------------------------------------------------------------------------


def test_a_request_waiting_for_a_slot_is_not_sent_once_the_job_stops():
    assert_a_waiting_request_stops_with_its_job(RateLimiter(limit=1, window=30), within=10)


def _threads_hammer(path: str, grants) -> None:
    limiter = record_grants(SharedRateLimiter(path, "one-key", limit=5, window=0.5), grants)

    def take() -> None:
        for _ in range(3):
            limiter.acquire()

    in_threads(take, 3)


def test_the_shared_limiter_holds_for_threads_of_several_processes(tmp_path):
    path = str(tmp_path / "limits.db")
    with multiprocessing.Manager() as manager:
        shared = manager.list()
        procs = [multiprocessing.Process(target=_threads_hammer, args=(path, shared)) for _ in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        grants = list(shared)
    assert len(grants) == 18
    assert_window_held(grants, limit=5, window=0.5)  # any 6 of the 18 span more than a window


# -- a real plugin against its sandbox --------------------------------------------------------------


@pytest.fixture
def channel():
    with Sandbox(api_key=API_KEY, orders=40, seed=5) as server:
        yield server


def open_shipments(channel: Sandbox, n: int) -> list[Shipment]:
    open_orders = [o for o in channel.orders() if o["fulfillment_status"] == "unfulfilled" and not o["cancelled"]]
    assert len(open_orders) >= n
    return [
        Shipment(
            shipment_id=i,
            source_order_id=o["id"],
            carrier="DHL Express",
            tracking_number=f"JD{i:06d}",
            shipped_at=datetime.now(UTC),
            lines=[
                ShipmentLine(source_line_id=line["id"], sku=line["sku"], quantity=line["quantity"])
                for line in o["line_items"]
            ],
        )  # fmt: skip
        for i, o in enumerate(open_orders[:n], start=1)
    ]


@pytest.mark.parametrize("shared", [False, True], ids=["in-process limiter", "shared limiter file"])
def test_uploads_keep_the_setting_in_flight_and_never_outrun_the_limiter(channel, monkeypatch, tmp_path, shared):
    if shared:
        monkeypatch.setenv(ENV_VAR, str(tmp_path / "limits.db"))
    else:
        monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setattr(bmp_plugin, "client_options", dataclasses.replace(QUICK, rate_limit=8, rate_window=1.0))
    grants: list[tuple[float, float]] = []
    recorded: set[int] = set()

    def limiter_for(*args):
        limiter = ratelimit.limiter_for(*args)
        if id(limiter) not in recorded:  # one limiter per key, shared by the upload's threads
            recorded.add(id(limiter))
            monkeypatch.setattr(limiter, "try_take", limiter.try_take)  # put back after the test
            record_grants(limiter, grants)
        return limiter

    monkeypatch.setattr(http, "limiter_for", limiter_for)
    channel.set_faults(latency=0.1)
    shipments = open_shipments(channel, 20)
    channel.clear_traffic()
    settings = BackMarketProSettings(website_url=channel.base_url, x_api_key=API_KEY)
    results = bmp_plugin.cartplugin_upload_tracking(settings=settings, shipments=shipments)
    traffic = channel.traffic()
    assert [r.shipment_id for r in results] == list(range(1, 21))
    assert all(r.ok and not r.already_recorded for r in results)
    assert traffic["peak_in_flight"] == 4  # QUICK.concurrency: never more, and the pool used all of them
    assert len(traffic["arrivals"]) == len(grants) == 20  # every request took a slot
    assert_window_held(grants, limit=8, window=1.0)  # any 9 requests span more than one window of 8


def test_a_server_error_for_one_shipment_keeps_the_others(channel, monkeypatch):
    monkeypatch.setattr(bmp_plugin, "client_options", QUICK)
    shipments = open_shipments(channel, 12)
    channel.set_faults(latency=0.05, fail_5xx=1)  # the next request only
    settings = BackMarketProSettings(website_url=channel.base_url, x_api_key=API_KEY)
    results = bmp_plugin.cartplugin_upload_tracking(settings=settings, shipments=shipments)
    assert [r.shipment_id for r in results] == list(range(1, 13))
    failed = [r for r in results if not r.ok]
    assert len(failed) == 1 and failed[0].retryable and "503" in failed[0].message
    ours = {s.source_order_id for s in shipments}
    shipped = {o["id"] for o in channel.orders() if o["shipments"] and o["id"] in ours}
    assert shipped == ours - {shipments[failed[0].shipment_id - 1].source_order_id}


def test_a_wrong_key_costs_one_request_however_many_threads(channel, monkeypatch):
    monkeypatch.setattr(bmp_plugin, "client_options", QUICK)
    shipments = open_shipments(channel, 12)
    channel.set_faults(latency=0.05)
    channel.clear_request_log()
    settings = BackMarketProSettings(website_url=channel.base_url, x_api_key="wrong-key-0000000000")
    results = bmp_plugin.cartplugin_upload_tracking(settings=settings, shipments=shipments)
    assert len(results) == 12 and not any(r.ok or r.retryable for r in results)
    assert all("x-api-key" in r.message for r in results)
    assert len(channel.request_log()) == 1  # the first shipment goes alone


# -- the host: a stopping upload job ----------------------------------------------------------------


@pytest.fixture
def shipped(company: str, run, db_target, sandbox, monkeypatch):
    """The company's 12-order sandbox imported and every open order shipped, as staff do it."""
    monkeypatch.setattr(bmp_plugin, "client_options", dataclasses.replace(QUICK, concurrency=2))
    run("import-orders", company)
    db = host_db.connect(db_target)
    ids = [row[0] for row in db.execute("SELECT id FROM orders WHERE status = 'In Process' AND channel_cancelled = 0")]
    for n, order_id in enumerate(ids):
        orders.ship_order(db, order_id, carrier="DHL Express", tracking_number=f"{n:010d}")
    sandbox.set_faults(latency=0.1)
    sandbox.clear_request_log()
    try:
        yield db, get_company(db, company), len(ids)
    finally:
        db.close()


def posts(sandbox: Sandbox) -> list[dict]:
    return [r for r in sandbox.request_log() if r["method"] == "POST" and r["key_ok"]]


def states(db) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for state, attempts in db.execute("SELECT upload_state, upload_attempts FROM shipments"):
        found.setdefault(state, []).append(attempts)
    return found


def test_a_stop_mid_batch_sends_nothing_more_and_records_every_answer(shipped, sandbox):
    db, company, n = shipped
    assert n >= 8
    with pytest.raises(gate.Interrupted):
        upload.upload_tracking(db, company, stop=lambda: len(posts(sandbox)) >= 3)
    sent = posts(sandbox)
    assert 3 <= len(sent) <= 3 + 2  # what was in flight when the stop came
    found = states(db)
    assert len(found["accepted"]) == len(sent)  # every answer obtained is recorded
    assert found["pending"] == [0] * (n - len(sent))  # the rest untouched: not even an attempt
    again = upload.upload_tracking(db, company)
    assert again["accepted"] == n - len(sent)
    assert sorted(r["path"] for r in posts(sandbox)) == sorted({r["path"] for r in posts(sandbox)})  # none twice
    assert all(r["status"] == 201 for r in posts(sandbox))
    assert db.execute("SELECT COUNT(*) FROM orders WHERE source_updated_for_shipping = 1").fetchone()[0] == n


def test_the_job_budget_stops_the_sending_mid_batch(shipped, sandbox):
    db, company, n = shipped
    sandbox.set_faults(latency=0.5)  # the first alone, then 2 in flight; all of them would take 2.5 s
    counts = upload.upload_tracking(db, company, budget_seconds=1.0)
    sent = posts(sandbox)
    assert counts["more"] is True and counts["accepted"] == len(sent)
    assert 2 <= len(sent) < n
    assert states(db)["pending"] == [0] * (n - len(sent))


def _open_at_once(path: str, errors) -> None:
    def one() -> None:
        try:
            SharedRateLimiter(path, "one-key", limit=100, window=1.0).acquire()
        except Exception as exc:  # noqa: BLE001 - any failure is what the test counts
            errors.append(repr(exc))

    in_threads(one, 4)


def test_processes_opening_a_new_limiter_file_at_once_all_get_their_slot(tmp_path):
    """Switching a new file to WAL is not covered by SQLite's busy timeout: processes opening it
    at once used to fail with "database is locked" now and then (about 1 round in 20 here)."""
    with multiprocessing.Manager() as manager:
        errors = manager.list()
        for round_ in range(30):
            path = str(tmp_path / f"limits-{round_}.db")
            procs = [multiprocessing.Process(target=_open_at_once, args=(path, errors)) for _ in range(4)]
            for p in procs:
                p.start()
            for p in procs:
                p.join(60)
        assert list(errors) == []


def test_upload_each_hands_each_result_to_the_scope_as_it_comes_back_on_the_callers_thread() -> None:
    seen: list[tuple[int, int, int]] = []  # (shipment, results back so far, thread)
    back = [0]
    lock = threading.Lock()

    def send_one(shipment: Shipment) -> UploadResult:
        time.sleep(0.01 * (shipment.shipment_id % 3))
        with lock:
            back[0] += 1
        return UploadResult(shipment_id=shipment.shipment_id, ok=True)

    def on_result(result: UploadResult) -> None:
        with lock:
            seen.append((result.shipment_id, back[0], threading.get_ident()))

    with stopping.stop_when(None, on_result=on_result):
        results = upload_each(toy_shipments(20), send_one, label="Toy", concurrency=4)
    assert [r.shipment_id for r in results] == list(range(1, 21))
    assert sorted(sid for sid, _, _ in seen) == list(range(1, 21))  # each once
    assert {thread for _, _, thread in seen} == {threading.get_ident()}
    # reported while the batch was still being sent, not all at its end
    assert min(count for _, count, _ in seen[:5]) < 20


def test_when_storing_a_result_fails_upload_each_sends_nothing_more_than_what_is_in_flight() -> None:
    sent: list[int] = []
    lock = threading.Lock()

    def send_one(shipment: Shipment) -> UploadResult:
        with lock:
            sent.append(shipment.shipment_id)
        time.sleep(0.005)
        return UploadResult(shipment_id=shipment.shipment_id, ok=True)

    stored: list[int] = []

    def on_result(result: UploadResult) -> None:
        if len(stored) == 10:
            raise ConnectionError("the database went away")
        stored.append(result.shipment_id)

    with stopping.stop_when(None, on_result=on_result) as halt:
        results = upload_each(toy_shipments(100), send_one, label="Toy", concurrency=4)
    assert isinstance(halt.error, ConnectionError)
    assert len(stored) == 10
    assert len(sent) <= 10 + 4  # the stored ones, the one that failed to store and those in flight
    assert {r.shipment_id for r in results if r.ok} == set(sent)
    assert halt.unsent == set(range(1, 101)) - set(sent)  # left pending as they were
