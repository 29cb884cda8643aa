"""No lock held for ever: every host connection to PostgreSQL bounds how long it waits for a lock
and how long it may sit inside a transaction, and a heartbeat never waits for the write lock."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest

from host import config
from host.jobs import queue as jobs
from host.records.companies import add_company, list_companies
from host.store import api, pg
from host.store.db import connect, write


@pytest.fixture
def short_timeouts(monkeypatch):
    """The operator's settings, as a config would give them (read at each connection)."""
    monkeypatch.setenv("CARTPLUGIN_PG_LOCK_TIMEOUT_SECONDS", "1.5")
    monkeypatch.setenv("CARTPLUGIN_PG_IDLE_IN_TRANSACTION_SECONDS", "1")
    monkeypatch.setenv("CARTPLUGIN_PG_KEEPALIVES_IDLE", "20")


def test_every_host_connection_sets_lock_and_idle_timeouts_and_tcp_keepalives_from_the_config(pg_url, short_timeouts):
    db = connect(pg_url)
    try:
        assert db.execute("SHOW lock_timeout").fetchone()[0] == "1500ms"
        assert db.execute("SHOW idle_in_transaction_session_timeout").fetchone()[0] == "1s"
        parameters = db.raw.info.get_parameters()
        assert parameters["keepalives"] == "1"
        assert parameters["keepalives_idle"] == "20"
        assert parameters["keepalives_interval"] == "10"
        assert parameters["keepalives_count"] == "3"
        assert parameters["tcp_user_timeout"] == "60000"
    finally:
        db.close()


def test_the_urls_own_options_are_kept_beside_the_hosts(pg_url):
    url = f"{pg_url}?options=-c%20application_name%3Dcartplugin-ops"
    options = pg.connect_kwargs(url)["options"]
    assert options.startswith("-c application_name=cartplugin-ops ")
    assert "-c lock_timeout=60000" in options
    assert "-c idle_in_transaction_session_timeout=30000" in options


def test_a_write_kept_waiting_past_lock_timeout_fails_whole_saying_so_and_writes_nothing(pg_url, monkeypatch):
    monkeypatch.setenv("CARTPLUGIN_PG_LOCK_TIMEOUT_SECONDS", "1")  # the holder is not ended meanwhile
    holder, waiter = connect(pg_url), connect(pg_url)
    failed: list[Exception] = []

    def write_behind_the_holder() -> None:
        try:
            add_company(waiter, "Waiter")
        except Exception as exc:
            failed.append(exc)

    try:
        with write(holder):
            add_company(holder, "Holder")
            behind = threading.Thread(target=write_behind_the_holder, daemon=True)
            behind.start()
            behind.join(20)  # liveness, not speed: without lock_timeout it would wait as long as the holder
            assert not behind.is_alive()
        assert len(failed) == 1 and isinstance(failed[0], api.OperationalError)
        assert "write lock for longer than lock_timeout (1 s); nothing was written" in str(failed[0])
        assert api.unavailable(failed[0])
        assert [c["name"] for c in list_companies(waiter)] == ["Holder"]
        add_company(waiter, "After")  # the connection is usable again
    finally:
        holder.close()
        waiter.close()


def test_a_session_idle_inside_its_transaction_is_ended_by_the_server_and_its_write_lock_freed(pg_url, short_timeouts):
    frozen, other = connect(pg_url), connect(pg_url)
    try:
        with pytest.raises(api.OperationalError) as ended:
            with write(frozen):
                add_company(frozen, "Never")
                time.sleep(3)  # a process that stopped inside its transaction (SIGSTOP, a debugger)
                frozen.execute("SELECT 1")
        assert api.unavailable(ended.value)  # the job machinery takes it as the database away, not counted
        add_company(other, "Other")  # would wait for ever on the frozen session's lock
        assert [c["name"] for c in list_companies(other)] == ["Other"]
    finally:
        frozen.close()
        other.close()


def test_a_heartbeat_never_waits_for_the_shared_write_lock(pg_url):
    db = connect(pg_url)
    company = add_company(db, "Beating")
    jobs.enqueue(db, company.id, "download_orders")
    job = jobs.claim(db, "worker-1")
    assert job is not None
    holder, beater = connect(pg_url), connect(pg_url)
    beat = threading.Thread(target=jobs.heartbeat, args=(beater, job), daemon=True)
    try:
        with write(holder):  # another writer holds the lock (a frozen process would hold it for long)
            holder.execute("SELECT 1")
            beat.start()
            beat.join(20)  # liveness, not speed: waiting behind the lock it would never end here
            assert not beat.is_alive()
        row = db.execute("SELECT heartbeat_at FROM jobs WHERE id = :id", {"id": job.id}).fetchone()
        assert row[0] is not None
    finally:
        holder.close()
        if not beat.is_alive():
            beater.close()
        db.close()


def test_unavailable_names_a_lost_server_or_a_lock_timeout_not_a_broken_statement(pg_url):
    db = connect(pg_url)
    try:
        with pytest.raises(api.Error) as bad:
            db.execute("SELECT no_such_column FROM companies")
        assert not api.unavailable(bad.value)
        assert api.unavailable(pg._store_error(psycopg.OperationalError("server closed the connection")))
    finally:
        db.close()
    assert config.postgresql_session().lock_timeout == 60.0


def test_a_page_whose_write_waits_past_lock_timeout_says_nothing_was_saved(pg_url, bmp, monkeypatch, tmp_path):
    import re

    from host.records import users
    from host.web import create_app

    monkeypatch.setenv("CARTPLUGIN_PG_LOCK_TIMEOUT_SECONDS", "1")
    monkeypatch.setenv("CARTPLUGIN_SECRET_KEY_FILE", str(tmp_path / "cart.key"))
    db = connect(pg_url)
    company = add_company(db, "Acme Refurb")
    queued, _ = jobs.enqueue(db, company.id, "download_orders")
    users.add_user(db, "ann", "admin", "correct horse battery staple")
    client = create_app(pg_url).test_client()

    def token(html: str) -> str:
        match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
        assert match
        return match.group(1)

    login = client.get("/login")
    client.post(
        "/login", data={"csrf_token": token(login.text), "name": "ann", "password": "correct horse battery staple"}
    )
    shown = client.get(f"/jobs/{queued.id}")
    try:
        with write(db):  # another writer holds the lock past the page's lock_timeout
            db.execute("SELECT 1")
            answer = client.post(f"/jobs/{queued.id}/cancel", data={"csrf_token": token(shown.text)})
        assert answer.status_code == 503
        assert "Nothing was saved" in answer.text
        assert jobs.get_job(db, queued.id).status == jobs.QUEUED
    finally:
        db.close()
