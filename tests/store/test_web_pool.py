"""On PostgreSQL the web admin takes its connections from a bounded pool (``web_db_pool_size``),
served by waitress as ``cartplugin serve`` serves it and read by real HTTP clients."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
import requests
from test_web_admin_store import PASSWORD, _token

from host.records import companies, users
from host.records.companies import add_company
from host.store.db import connect
from host.web import create_app
from host.web.server import Running, ServerOptions

PAGES = ["/orders", "/jobs", "/orders?status=Completed", "/companies", "/jobs?status=Failed"]


@pytest.fixture
def served(pg_url, bmp, monkeypatch, tmp_path):
    """The web admin on a new PostgreSQL database, its pool size from the setting (2)."""
    monkeypatch.setenv("CARTPLUGIN_SECRET_KEY_FILE", str(tmp_path / "cart.key"))
    monkeypatch.setenv("CARTPLUGIN_WEB_DB_POOL_SIZE", "2")
    db = connect(pg_url)
    acme = add_company(db, "Acme Refurb")
    companies.update_website_settings(db, acme, store_plugin="backmarket_pro")
    users.add_user(db, "ann", "admin", PASSWORD)
    db.close()
    app = create_app(pg_url)
    with Running(app, ServerOptions(port=0, threads=8, access_log=False)) as running:
        base = f"http://127.0.0.1:{running.port}"
        _APPS[base] = app
        yield base
        del _APPS[base]
    app.extensions["cartplugin.connections"].close()


#: the app served at each base URL of ``served``
_APPS: dict = {}


def _pools_of(base: str) -> list:
    return [_APPS[base].extensions["cartplugin.connections"].pool]


def _signed_in(base: str) -> requests.Session:
    http = requests.Session()
    http.trust_env = False
    form = http.get(base + "/login", timeout=30)
    answer = http.post(base + "/login", data={"csrf_token": _token(form.text), "name": "ann", "password": PASSWORD},
                       allow_redirects=False, timeout=30)  # fmt: skip
    assert answer.status_code == 302, answer.text
    return http


def _monitor(pg_url: str) -> psycopg.Connection:
    return psycopg.connect(pg_url, autocommit=True)


def _sessions(monitor: psycopg.Connection) -> int:
    """Sessions ever opened to this database (PostgreSQL 14+), read fresh."""
    monitor.execute("SELECT pg_stat_clear_snapshot()")
    row = monitor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()").fetchone()
    assert row is not None
    return int(row[0])


def _others(monitor: psycopg.Connection) -> int:
    """Client connections to this database other than the monitor's own: the web admin's."""
    row = monitor.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND backend_type = 'client backend'"
    ).fetchone()
    assert row is not None
    return int(row[0])


def test_page_loads_from_six_clients_at_once_open_at_most_the_pool_size_of_server_connections(served, pg_url):
    clients = [_signed_in(served) for _ in range(6)]
    monitor = _monitor(pg_url)
    before = _sessions(monitor)
    statuses: list[int] = []
    most = 0

    def browse(http: requests.Session) -> None:
        for _ in range(4):
            for page in PAGES:
                statuses.append(http.get(served + page, timeout=60).status_code)

    threads = [threading.Thread(target=browse, args=(http,)) for http in clients]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):  # the server's connections, sampled meanwhile
        most = max(most, _others(monitor))
    for thread in threads:
        thread.join()
    opened = _sessions(monitor) - before
    monitor.close()
    assert statuses == [200] * (6 * 4 * len(PAGES))
    assert most <= 2, f"{most} server connections at once"
    assert opened <= 2, f"{opened} server sessions opened for {len(statuses)} page loads"


def test_a_connection_the_server_dropped_is_replaced_and_the_page_still_answers(served, pg_url):
    http = _signed_in(served)
    assert http.get(served + "/orders", timeout=30).status_code == 200
    monitor = _monitor(pg_url)
    assert _others(monitor) >= 1  # the pool keeps its connection open between requests
    monitor.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
    )
    while _others(monitor):  # gone once the server has ended them
        time.sleep(0.05)
    monitor.close()
    answers = [http.get(served + page, timeout=30) for page in PAGES]
    assert [a.status_code for a in answers] == [200] * len(PAGES), answers[0].text[-500:]


def test_a_page_that_finds_every_pooled_connection_busy_answers_503_with_retry_after(served):
    """A pool with none free for ``timeout`` is the database busy for now, not a broken page: 503
    "The database is busy" with Retry-After (it was a 500 "Something went wrong")."""
    from host.store.api import unavailable
    from host.store.errors import Unavailable

    http = _signed_in(served)
    (pool,) = _pools_of(served)
    pool.timeout = 0.3
    held = [pool.take(), pool.take()]  # both of the pool's 2 connections lent out
    try:
        answer = http.get(served + "/orders", timeout=30)
        with pytest.raises(Unavailable) as raised:
            pool.take()
    finally:
        for raw in held:
            pool.give_back(raw)
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "5"
    assert "The database is busy" in answer.text and "Something went wrong" not in answer.text
    assert unavailable(raised.value) and "all 2 of the pool in use" in str(raised.value)
    assert http.get(served + "/orders", timeout=30).status_code == 200  # given back: pages answer again
