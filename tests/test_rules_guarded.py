"""Rules each guarded by a test that fails when the rule is broken by hand (issue 27).

Every test goes through the real parts: the CLI on a real SQLite file (PostgreSQL too where
``db_target`` is used), the Back Market Pro sandbox on 127.0.0.1, the host's job queue.
"""

from __future__ import annotations

from datetime import datetime

from host import clock
from host.jobs import queue as jobs
from host.jobs import runner
from host.records import companies
from host.records.companies import add_company
from host.store.api import backend
from host.store.db import connect


def posts(sandbox) -> list[dict]:
    """Requests that sent tracking to the channel with a valid key."""
    return [r for r in sandbox.request_log() if r["method"] == "POST" and r["key_ok"]]


def listings(sandbox) -> list[dict]:
    return [r for r in sandbox.request_log() if r["method"] == "GET" and "/orders" in r["path"] and r["key_ok"]]


# -- 1. Test Settings must pass before automatic work ------------------------------------------


def test_an_upload_queued_before_cart_settings_change_sends_nothing_until_test_settings_passes_again(
    run, company, sandbox, db_target
):
    run.json("import-orders", company)
    order = run.json("orders", "list")[0]
    run("orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", "1Z999AA10000000060")
    db = connect(db_target)
    try:
        queued, _ = jobs.enqueue(db, companies.get_company(db, company).id, "upload_tracking")
    finally:
        db.close()
    # the same URL and key, so the channel would accept the upload: only the gate can stop it
    run("cart-settings", company, "--set", "commission_percent=12")
    assert run.json("website-settings", company)["connection_status"] == "untested"
    assert run.json("website-settings", company)["allow_tracking_upload"] is True  # the toggle lets it through
    sandbox.clear_request_log()
    runner.LocalPool(db_target, max_workers=1).drain()
    assert posts(sandbox) == []
    shown = run.json("jobs", "show", str(queued.id))
    assert shown["status"] == "Cancelled" and "run Test Settings first" in shown["summary"]["reason"]
    assert run.json("orders", "show", str(order["id"]))["shipments"][0]["upload_state"] != "accepted"
    # once Test Settings passes again the same tracking goes out: it was held, not lost
    run("test-settings", company)
    run("worker", "--once", "--download-every", "3600")
    assert len(posts(sandbox)) == 1
    assert run.json("orders", "show", str(order["id"]))["source_updated_for_shipping"] is True


# -- 2. A bad order holds the cursor at the earliest bad order ---------------------------------


def test_with_two_bad_orders_the_cursor_stays_at_or_before_the_earlier_one(run, company, sandbox, db_target):
    run.json("import-orders", company)
    early, between, late, after = sandbox.add_orders(4)  # each updated after the one before
    stamps = {o["id"]: o["updated_at"] for o in sandbox.orders()}
    assert stamps[early] < stamps[late]
    # two kinds of bad order: one the plugin cannot map, one the database refuses
    sandbox.set_faults(malformed_order=early)
    db = connect(db_target)
    try:
        _refuse_order(db, late)
    finally:
        db.close()
    run("worker", "--once", "--download-every", "0")
    have = {o["source_order_id"] for o in run.json("orders", "list")}
    assert {between, after} <= have and not {early, late} & have
    db = connect(db_target)
    try:
        (saved,) = db.execute("SELECT value FROM cursors WHERE name = 'orders_updated_at'").fetchone()
        # past the earlier bad order the next download would never ask for it again
        assert clock.parse(saved) <= datetime.fromisoformat(stamps[early])
        db.execute("DROP TRIGGER refuse_late" + (" ON orders" if backend(db) == "postgresql" else ""))
    finally:
        db.close()
    sandbox.clear_faults()
    sandbox.clear_request_log()
    run("worker", "--once", "--download-every", "0")
    (listing,) = listings(sandbox)
    assert listing["query"]["updated_at_min"][:19] <= stamps[early][:19]
    assert {early, late} <= {o["source_order_id"] for o in run.json("orders", "list")}


def _refuse_order(db, source_order_id: str) -> None:
    """A trigger that makes the database refuse one order's insert as a broken constraint
    (``refuse_late``; SQLite's RAISE(ABORT) is one), in each backend's SQL."""
    if backend(db) == "sqlite":
        db.execute(
            f"CREATE TRIGGER refuse_late BEFORE INSERT ON orders WHEN NEW.source_order_id = '{source_order_id}' "
            "BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
        )
        return
    db.execute(
        "CREATE FUNCTION refuse_late() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'disk says no' USING ERRCODE = 'check_violation'; END $$"
    )
    db.execute(
        "CREATE TRIGGER refuse_late BEFORE INSERT ON orders FOR EACH ROW "
        f"WHEN (NEW.source_order_id = '{source_order_id}') EXECUTE FUNCTION refuse_late()"
    )


# -- 3. Only the owner of a claim ends a job ---------------------------------------------------


def test_a_worker_presumed_dead_that_finishes_a_job_another_worker_took_changes_nothing(db_target):
    db = connect(db_target)
    try:
        company_id = add_company(db, "Owner Co").id
        job, _ = jobs.enqueue(db, company_id, "download_orders")
        slow = jobs.claim(db, "slow:1:1")
        assert slow is not None and slow.id == job.id
        # its heartbeat stops long enough for it to be presumed dead; another worker takes the job
        db.execute(
            "UPDATE jobs SET heartbeat_at = :at WHERE id = :id",
            {"at": clock.now_iso(-jobs.STALE_AFTER_SECONDS - 1), "id": job.id},
        )
        taker = jobs.claim(db, "taker:2:1")
        assert taker is not None and taker.id == job.id and taker.attempts == 2
        before = jobs.show_job(db, job.id)

        jobs.finish(db, slow, jobs.FAILED, {"error": "the slow worker woke up and gave up"})

        after = jobs.show_job(db, job.id)
        assert after == before  # status, summary, finished_at and the log all untouched
        assert jobs.get_job(db, job.id).claimed_by == "taker:2:1"
        jobs.finish(db, taker, jobs.COMPLETED, {"inserted": 3})
        done = jobs.show_job(db, job.id)
        assert done["status"] == jobs.COMPLETED and done["summary"] == {"inserted": 3}
    finally:
        db.close()


# -- 9. Allow Order Download off: the scheduler queues no download -----------------------------


def test_with_allow_order_download_off_the_scheduler_queues_no_download_at_all(run, company, sandbox):
    run("website-settings", company, "--no-allow-order-download")
    before = {j["id"] for j in run.json("jobs", "list")}
    sandbox.clear_request_log()
    run("worker", "--once", "--download-every", "0")  # every company's download is due now
    new = [j for j in run.json("jobs", "list") if j["id"] not in before]
    # not even one the runner then cancels: the queue itself stays free of downloads
    assert [j for j in new if j["kind"] == "download_orders"] == []
    assert listings(sandbox) == []
    # the same round with the toggle on does queue it: the company was due, only the toggle held it
    run("website-settings", company, "--allow-order-download")
    run("worker", "--once", "--download-every", "0")
    kinds = [(j["kind"], j["status"]) for j in run.json("jobs", "list") if j["id"] not in before]
    assert ("download_orders", "Completed") in kinds
