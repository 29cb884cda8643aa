"""What a broken or hostile channel, or an unlucky operator, must not do to the host.

Each test drives the real CLI (in-process or as a subprocess) against the real Back Market Pro
sandbox; bad orders are planted in the sandbox's data the way a faulty channel would send them.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from fault_harness import Harness, setup_company
from support import API_KEY, db_digest

from backmarket_pro.sandbox import Sandbox
from host import clock
from host.store import pg_migrations
from host.store.api import backend
from host.store.db import connect, write
from host.store.migrations import LEGACY

KEY = "hardening-key-0001-abcd"


def plant(channel: Sandbox, change, key: str | None = None) -> str:
    """A new order listed after every other one, then changed by ``change(order)`` in place: the
    listing position stays that of a normal new order whatever the change does to its fields."""
    (order_id,) = channel.add_orders(1, key)
    account = channel._account(key)
    with channel._lock:
        order = account.orders[order_id]
        change(order)
        account.encoded.pop(order_id, None)
        # JSON escapes (\ud800) carry what UTF-8 cannot: a lone surrogate reaches the client
        account.encoded[order["id"]] = json.dumps(order, separators=(",", ":")).encode()
        account.version += 1
    return order.get("id", order_id)


def set_line(field: str, value):
    def change(order):
        order["line_items"][0][field] = value

    return change


def set_field(field: str, value):
    def change(order):
        order[field] = value

    return change


def cursor(h: Harness) -> str | None:
    rows = h.query(
        "SELECT value FROM cursors WHERE company_id = :company AND name = 'orders_updated_at'",
        {"company": h.company_id},
    )
    return rows[0][0] if rows else None


def host_ids(h: Harness) -> set[str]:
    return {o["source_order_id"] for o in h.host_orders()}


@pytest.fixture
def channel():
    with Sandbox(api_key=KEY, orders=25, seed=5) as server:
        yield server


@pytest.fixture
def h(tmp_path, channel, db_target) -> Harness:
    return Harness(tmp_path, channel, db=db_target)


def test_orders_the_host_cannot_store_are_set_aside_while_the_rest_of_the_page_imports(h, channel):
    good_before = h.channel_unfulfilled_ids()
    bad = {
        plant(channel, set_line("quantity", 2**63)),
        plant(channel, set_line("title", "broken \ud800 text")),
        plant(channel, set_line("title", "x" * 2_000_000)),
        plant(channel, set_field("id", "..")),
        plant(channel, set_field("id", ".")),
        plant(channel, set_field("id", "NUL\x00ID")),
        plant(channel, set_field("created_at", "0999-01-01T00:00:00Z")),
    }
    victim = plant(channel, lambda order: None)  # valid for the models, refused by the database below
    h.refuse_order(victim)
    good_after = set(channel.add_orders(3))

    h.cli("import-orders", h.company)

    imported = host_ids(h)
    assert good_before | good_after <= imported
    assert not (bad | {victim}) & imported
    ((status, summary),) = h.query("SELECT status, summary FROM jobs WHERE kind = 'import_orders'")
    assert status == "Partial Success"
    assert json.loads(summary)["bad_orders"] == len(bad) + 1
    messages = "\n".join(m for (m,) in h.query("SELECT message FROM job_logs WHERE level = 'warning'"))
    assert victim in messages and "cannot store" in messages
    # the cursor stays at or before the earliest bad order (planted first), so every one of them is
    # read again; the cursor held at a later one would never ask for the earlier ones again
    stamps = {o["id"]: o["updated_at"] for o in channel.orders()}
    earliest = min(clock.parse(stamps[order_id]) for order_id in bad | {victim})
    assert earliest < max(clock.parse(stamps[order_id]) for order_id in bad | {victim})
    assert cursor(h) is not None and clock.parse(cursor(h)) <= earliest
    more = set(channel.add_orders(2))
    h.cli("worker", "--once", "--download-every", "0")
    assert more <= host_ids(h)


def test_an_order_dated_before_the_year_1000_does_not_break_the_cursor(h, channel):
    plant(channel, set_field("updated_at", "0999-06-01T00:00:00Z"))
    env_batch = {"CARTPLUGIN_DOWNLOAD_BATCH": "1"}  # the old date alone in its batch
    h.cli("import-orders", h.company, env=env_batch)
    value = cursor(h)
    assert value is not None and len(value) == len(clock.now_iso()), value
    assert clock.parse(value) <= clock.now()
    later = set(channel.add_orders(3))
    h.cli("worker", "--once", "--download-every", "0", env=env_batch)
    assert later <= host_ids(h)
    assert h.query("SELECT COUNT(*) FROM jobs WHERE status = 'Failed'")[0][0] == 0


def test_an_order_stamped_in_the_far_future_is_bad_and_the_cursor_stays_near_now(h, channel):
    far = plant(channel, set_field("updated_at", "9999-12-31T00:00:00Z"))
    tomorrow = clock.iso(datetime.now(UTC) + timedelta(days=1))
    near = plant(channel, set_field("updated_at", tomorrow))
    h.cli("import-orders", h.company)
    assert not {far, near} & host_ids(h)
    assert clock.parse(cursor(h)) <= clock.now() + timedelta(minutes=5)
    later = set(channel.add_orders(3))
    h.cli("worker", "--once", "--download-every", "0")
    assert later <= host_ids(h)
    messages = "\n".join(m for (m,) in h.query("SELECT message FROM job_logs WHERE level = 'warning'"))
    assert far in messages and near in messages


def test_a_new_key_given_during_an_import_does_not_lose_the_new_accounts_orders(tmp_path, db_target):
    other = "hardening-key-0002-efgh"
    with Sandbox(api_key=KEY, orders=600, seed=6) as channel:
        channel.add_account(other, orders=40, seed=9)
        h = Harness(tmp_path, channel, db=db_target)
        channel.set_faults(latency=0.3)
        importing = subprocess.Popen(
            [sys.executable, "-m", "host", "--db", str(h.db_target), "import-orders", h.company],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=h.env(), stdin=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            assert h.wait_until(lambda: len(h.host_orders()) > 0, timeout=30)
            h.cli("cart-settings", h.company, "--set", f"x_api_key={other}")
            h.cli("test-settings", h.company)
            importing.communicate(timeout=60)
        finally:
            importing.kill()
        channel.clear_faults()
        h.cli("worker", "--once", "--download-every", "0")
        new_account = {o["id"] for o in channel.orders(other) if o["fulfillment_status"] in ("unfulfilled", "partial")}
        missing = new_account - host_ids(h)
        assert not missing, f"{len(missing)} of the new account's {len(new_account)} orders never imported"
        (status,) = h.query("SELECT status FROM jobs WHERE kind = 'import_orders'")[0]
        assert status == "Cancelled"


def test_import_orders_says_an_attempt_failed_and_when_it_retries_instead_of_reporting_success(h, channel):
    channel.set_faults(fail_5xx=True)
    result = h.cli("import-orders", h.company, check=False)
    assert result.returncode != 0
    assert "attempt 1 of 5 failed" in result.stdout and "runs again at" in result.stdout, result.stdout
    assert "503" in result.stdout or "Transient" in result.stdout


# -- the database and the key ------------------------------------------------------------------


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_database_from_a_newer_version_is_refused_in_one_line_and_left_unchanged(run, db_target):
    run("companies", "add", "Acme")
    db = connect(db_target)
    try:
        with write(db):  # a step this version does not know, in each backend's record of steps
            if backend(db) == "sqlite":
                db.execute(
                    "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
                    "VALUES ('host', '0099_future', 'x')"
                )
            else:
                db.execute(f"INSERT INTO {pg_migrations.TABLE} VALUES ('0099_future', 'x')")
    finally:
        db.close()
    before = db_digest(db_target)
    for args in (["companies", "list"], ["companies", "add", "Other"], ["worker", "--once"]):
        result = run(*args, ok=False)
        assert result.exit_code == 1
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and "newer cartplugin" in lines[0] and "0099_future" in lines[0], result.output
    assert db_digest(db_target) == before


def test_six_processes_opening_a_new_database_at_once_all_succeed_and_migrate_it_once(tmp_path):
    script = (
        "import sys, time\n"
        "from host.cli.main import cli\n"
        "time.sleep(max(0.0, float(sys.argv[1]) - time.time()))\n"
        "cli(sys.argv[2:])\n"
    )
    for round_ in range(4):
        path = tmp_path / f"fresh-{round_}.db"
        start = time.time() + 1.5
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", script, str(start), "--db", str(path), "companies", "add", f"Co {n}"],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )  # fmt: skip
            for n in range(6)
        ]
        results = [(p.wait(timeout=60), p.stderr.read()) for p in procs]
        for p in procs:
            p.stdout.close()
            p.stderr.close()
        assert all(code == 0 for code, _ in results), results
        db = sqlite3.connect(path)
        names = [n for (n,) in db.execute("SELECT name FROM _sqlite_migrations WHERE migration_set = 'host'")]
        assert len(names) == len(set(names)) >= 1  # each step once
        assert db.execute("SELECT COUNT(*) FROM companies").fetchone()[0] == 6
        db.close()


@pytest.mark.sqlite_only("a SQLite file's and its journal's modes and bytes; either backend: the test below")
def test_the_database_its_journal_and_the_key_file_are_private_and_the_key_is_stored_encrypted(run, company, db_target):
    old_umask = os.umask(0o022)
    try:
        run("companies", "add", "Second")
    finally:
        os.umask(old_umask)
    key_file = db_target.with_name("cart.key")
    db = connect(db_target)  # the -wal and -shm files exist while a connection is open
    try:
        db.execute("UPDATE companies SET connection_message = connection_message")
        for path in (db_target, db_target.with_name("cart.db-wal"), db_target.with_name("cart.db-shm"), key_file):
            assert _mode(path) == 0o600, (path, oct(_mode(path)))
        stored = db_target.read_bytes() + db_target.with_name("cart.db-wal").read_bytes()
    finally:
        db.close()
    assert API_KEY.encode() not in stored
    assert "****" in run("cart-settings", company).output


def test_the_key_file_is_private_and_the_database_holds_the_key_only_encrypted(run, company, db_target, tmp_path):
    # the key file sits next to a SQLite file, and is named by CARTPLUGIN_SECRET_KEY_FILE for PostgreSQL
    assert _mode(tmp_path / "cart.key") == 0o600
    db = connect(db_target)
    try:
        values = [value for (value,) in db.execute("SELECT value FROM cart_settings WHERE is_secret = 1")]
    finally:
        db.close()
    assert values and all(value.startswith("fernet:") and API_KEY not in value for value in values)
    assert "****" in run("cart-settings", company).output


def test_a_new_website_url_without_the_key_again_is_refused_and_the_key_can_come_from_a_file(
    run, company, db_target, tmp_path
):
    before = db_digest(db_target)
    result = run("cart-settings", company, "--set", "website_url=https://evil.example.com", ok=False)
    assert result.exit_code == 1 and "x_api_key" in result.output and len(result.output.strip().splitlines()) == 1
    assert db_digest(db_target) == before
    # the same host with its default port spelled out is the same host
    key_file = tmp_path / "bmp.key.txt"
    key_file.write_text(API_KEY + "\n")
    run(
        "cart-settings",
        company,
        "--set",
        "website_url=https://other.example.com",
        "--set-file",
        f"x_api_key={key_file}",
    )
    shown = run.json("cart-settings", company)
    assert {f["key"]: f["value"] for f in shown["fields"]}["x_api_key"] == "****" + API_KEY[-4:]


def test_a_missing_key_file_is_a_clear_error_and_never_loses_the_secrets(run, company, db_target, tmp_path):
    key_file = tmp_path / "cart.key"  # next to a SQLite file; named by CARTPLUGIN_SECRET_KEY_FILE for PostgreSQL
    saved = key_file.read_bytes()
    key_file.unlink()

    def secret_row():
        db = connect(db_target)
        try:
            return db.execute("SELECT value FROM cart_settings WHERE is_secret = 1").fetchall()
        finally:
            db.close()

    before = secret_row()
    for args in (["test-settings", company], ["cart-settings", company, "--set", "commission_percent=3"]):
        result = run(*args, ok=False)
        assert result.exit_code == 1 and "cart.key" in result.output and "missing" in result.output, result.output
    assert secret_row() == before  # the stored secret is left as it was
    assert not key_file.exists()
    key_file.write_bytes(saved)
    os.chmod(key_file, 0o600)
    assert "Connection established" in run("test-settings", company).output


@pytest.mark.sqlite_only("SQLite's legacy step 0003_hardening; a PostgreSQL database never held secrets in clear")
def test_clear_text_secrets_of_an_older_database_are_encrypted_when_it_is_opened(run, company, db_target):
    db = sqlite3.connect(db_target)
    with db:  # as an older version left it: the key in clear, every old step recorded but the one that encrypts
        db.execute("UPDATE cart_settings SET value = ? WHERE is_secret = 1", [API_KEY])
        db.execute("DELETE FROM _sqlite_migrations")
        db.executemany("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES ('host', ?, 'x')",
                       [(name,) for name in sorted(LEGACY - {"0003_hardening"})])  # fmt: skip
        db.execute("PRAGMA user_version = 0")
    db.close()
    assert "Connection established" in run("test-settings", company).output
    db = sqlite3.connect(db_target)
    (value,) = db.execute("SELECT value FROM cart_settings WHERE is_secret = 1").fetchone()
    db.close()
    assert value.startswith("fernet:") and API_KEY not in value


# -- what reaches the staff terminal -----------------------------------------------------------

HOSTILE = "\x1b]0;owned\x07\x1b[2J\x9b31m\u202eevil"


def test_escape_sequences_from_the_channel_never_reach_the_terminal_raw(h, channel):
    def hostile(order):
        order["line_items"][0]["title"] = "Phone " + HOSTILE
        order["buyer"]["company"] = "Buyer " + HOSTILE

    good = plant(channel, hostile)
    plant(channel, set_field("id", "\x1b[2J\x1b]0;id\x07"))  # refused, but named in the job log
    h.cli("import-orders", h.company)
    (order_id,) = h.query("SELECT id FROM orders WHERE source_order_id = :sid", {"sid": good})[0]
    (job_id,) = h.query("SELECT id FROM jobs WHERE kind = 'import_orders'")[0]
    outputs = [
        h.cli("orders", "show", str(order_id)).stdout,
        h.cli("orders", "list").stdout,
        h.cli("jobs", "show", str(job_id)).stdout,
        h.cli("jobs", "list").stdout,
    ]
    shown_json = h.cli("orders", "show", str(order_id), "--json").stdout
    job_json = h.cli("jobs", "show", str(job_id), "--json").stdout
    for text in [*outputs, shown_json, job_json]:
        for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
            assert raw not in text
    assert "\\x1b]0;owned" in outputs[0]  # shown, visibly
    assert "[2J" in outputs[2]  # the refused id is named, its escapes defused
    order = json.loads(shown_json)
    assert order["lines"][0]["title"] == "Phone " + HOSTILE  # JSON keeps the exact text, escaped
    assert order["buyer_company"] == "Buyer " + HOSTILE


def test_company_names_match_without_case_in_every_script(run):
    run("companies", "add", "Ärger Straße GmbH")
    assert "Ärger Straße GmbH" in run("website-settings", "ärger strasse gmbh").output
    assert "Ärger Straße GmbH" in run("website-settings", "ÄRGER STRASSE GMBH").output
    result = run("companies", "add", "ÄRGER STRASSE GMBH", ok=False)
    assert result.exit_code == 1 and "already exists" in result.output


# -- the worker: deleted database, time budget, scheduling, SIGTERM ----------------------------


@pytest.mark.sqlite_only("a SQLite file deleted under the worker")
def test_a_database_deleted_under_a_running_worker_stops_it_with_an_error_and_is_not_recreated(h):
    worker = h.start_worker()
    try:
        assert h.wait_until(lambda: len(h.host_orders()) > 0, timeout=30)
        for suffix in ("", "-wal", "-shm"):
            h.db_target.with_name(h.db_target.name + suffix).unlink(missing_ok=True)
        out, err = worker.communicate(timeout=10)
    finally:
        worker.kill()
    assert worker.returncode == 1
    assert "deleted or replaced" in err.strip().splitlines()[-1]
    assert not h.db_target.exists()
    result = h.cli("jobs", "list", check=False)  # other commands refuse a missing database too
    assert result.returncode == 1 and "no database" in result.stderr and not h.db_target.exists()


def test_a_job_over_its_time_budget_commits_what_it_has_and_the_next_run_continues(tmp_path, db_target):
    with Sandbox(api_key=KEY, orders=400, seed=7) as channel:
        h = Harness(tmp_path, channel, db=db_target)
        channel.set_faults(latency=0.2)
        budget = {"CARTPLUGIN_JOB_BUDGET_SECONDS": "1"}
        started = time.monotonic()
        h.cli("import-orders", h.company, env=budget)
        assert time.monotonic() - started < 15
        ((status, summary),) = h.query("SELECT status, summary FROM jobs WHERE kind = 'import_orders'")
        assert status == "Completed" and json.loads(summary).get("more") is True
        first = len(h.host_orders())
        expected = h.channel_unfulfilled_ids()
        assert 0 < first < len(expected)
        channel.clear_faults()
        for _ in range(20):
            h.cli("worker", "--once", "--download-every", "0", env=budget)
            if len(h.host_orders()) == len(expected):
                break
        h.assert_exactly_once(expected)


def _two_companies(tmp_path, slow: Sandbox, quick: Sandbox, db_target) -> tuple[Harness, int]:
    h = Harness(tmp_path, slow, db=db_target)
    db = connect(h.db_target)
    try:
        other = setup_company(db, "Quick Ltd", quick.base_url, quick.api_key)
    finally:
        db.close()
    return h, other


def test_a_long_job_does_not_hold_up_the_schedule_of_other_companies(tmp_path, db_target):
    with (
        Sandbox(api_key=KEY, orders=1500, seed=7) as slow,
        Sandbox(api_key="quick-key-0003-ijkl", orders=10, seed=8) as quick,
    ):
        h, other = _two_companies(tmp_path, slow, quick, db_target)
        slow.set_faults(latency=0.3)
        worker = h.start_worker(interval=0.2)
        try:

            def quick_ids() -> set[str]:
                return {
                    sid
                    for (sid,) in h.query(
                        "SELECT source_order_id FROM orders WHERE company_id = :company", {"company": other}
                    )
                }

            assert h.wait_until(lambda: len(quick_ids()) > 0, timeout=20)
            new = set(quick.add_orders(3))
            assert h.wait_until(lambda: new <= quick_ids(), timeout=6), "the quick company waited for the slow one"
            running = h.query(
                "SELECT COUNT(*) FROM jobs WHERE company_id = :company AND status = 'Processing'",
                {"company": h.company_id},
            )
            assert running[0][0] == 1  # the long job was still running meanwhile
        finally:
            h.stop_worker(worker)


def test_sigterm_stops_the_worker_within_seconds_and_the_interrupted_job_continues_later(tmp_path, db_target):
    with Sandbox(api_key=KEY, orders=1500, seed=7) as slow:
        h = Harness(tmp_path, slow, db=db_target)
        slow.set_faults(latency=0.3)
        # a stop grace far above the bound below: a worker that ended only when the grace ran out
        # (its job not stopping by itself) takes longer than the bound, however loaded the machine
        worker = h.start_worker(interval=0.2, CARTPLUGIN_STOP_GRACE_SECONDS="30")
        assert h.wait_until(lambda: len(h.host_orders()) > 0, timeout=20)
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        worker.communicate(timeout=60)
        # within seconds: 10, not 4, as a loaded CI machine once needed more than 4 s to end the process
        assert time.monotonic() - started < 10, f"took {time.monotonic() - started:.1f} s"
        assert worker.returncode == 0
        statuses = [s for (s,) in h.query("SELECT status FROM jobs WHERE kind = 'download_orders'")]
        assert statuses and statuses[-1] == "Queued", statuses
        slow.clear_faults()
        h.cli("worker", "--once", "--download-every", "0")
        h.assert_exactly_once(h.channel_unfulfilled_ids())


def test_an_upload_over_its_time_budget_stops_between_batches_and_the_next_runs_send_the_rest(h, channel):
    h.cli("import-orders", h.company)
    shipped = h.ship(12)
    channel.set_faults(latency=0.2)
    budget = {"CARTPLUGIN_JOB_BUDGET_SECONDS": "0.5"}  # 4 shipments a batch, 0.2 s each
    h.cli("worker", "--once", "--download-every", "3600", env=budget)
    (summary,) = h.query("SELECT summary FROM jobs WHERE kind = 'upload_tracking' ORDER BY id LIMIT 1")[0]
    assert json.loads(summary).get("more") is True
    for _ in range(6):
        h.cli("worker", "--once", "--download-every", "3600", env=budget)
        if all(o["source_updated_for_shipping"] for o in h.host_orders() if o["source_order_id"] in shipped):
            break
    h.assert_tracking_delivered(shipped)
