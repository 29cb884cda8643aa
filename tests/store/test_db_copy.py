"""``cartplugin db copy --to postgresql://...``, and ``db status`` / ``db backup`` on PostgreSQL."""

from __future__ import annotations

import json

import psycopg
import pytest
from test_store import import_orders, order

from host.jobs import queue as jobs
from host.records import audit, companies, orders, users
from host.records.companies import add_company
from host.store.db import connect

#: `db copy` reads the CLI's own database, a SQLite file, into a PostgreSQL URL: its source is SQLite's
pytestmark = pytest.mark.sqlite_only


@pytest.fixture
def source(db_target, bmp):
    """A SQLite database with a row in every table the host writes, a sealed secret among them."""
    db = connect(db_target)
    acme = add_company(db, "Acme Refurb")
    add_company(db, "Zeta Ltd")
    companies.update_website_settings(db, acme, store_plugin="backmarket_pro", allow_order_download=True)
    companies.update_cart_settings(
        db, acme, {"website_url": "https://pro.example.com", "x_api_key": "copy-secret-987654"}
    )
    import_orders(db, acme.id, [order(1), order(2), order(3)])
    first = next(iter(orders.list_orders(db, acme.id)))["id"]
    orders.ship_order(db, first, carrier="UPS", tracking_number="1Z999AA10000000097")
    job, _ = jobs.enqueue(db, acme.id, "download_orders")
    jobs.finish(db, jobs.claim(db, "w"), jobs.COMPLETED, {"inserted": 3})
    users.add_user(db, "Alice", "admin", "correct horse battery")
    users.authenticate(db, "alice", "wrong password!!")
    audit.record(db, "alice", "company added", company_id=acme.id)
    db.execute("DELETE FROM orders WHERE id = 0")  # nothing: ids keep their gaps either way
    db.close()
    return db_target


def _rows(conn, table: str, columns: list[str]) -> list[tuple]:
    names = ", ".join(columns)
    return [tuple(r) for r in conn.execute(f"SELECT {names} FROM {table} ORDER BY {names}").fetchall()]


def test_a_copy_holds_every_row_with_its_id_and_new_rows_get_new_ids(run, source, pg_url, monkeypatch):
    result = run("db", "copy", "--to", pg_url)
    assert "Copied" in result.output and "stay sealed with the key file" in result.output
    sqlite = connect(source)
    shared = 0
    with psycopg.connect(pg_url) as conn:
        pg_tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        for table in sqlite.table_names():
            if table not in pg_tables:
                continue
            columns = [
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_name = %s", [table]
                )
            ]
            columns = [c for c in columns if c in sqlite[table].columns_dict]
            expected = _rows(sqlite.conn, table, columns)
            assert _rows(conn, table, columns) == expected, table
            shared += bool(expected)
    assert shared >= 12
    sqlite.close()
    monkeypatch.setenv("CARTPLUGIN_SECRET_KEY_FILE", str(source.with_name("cart.key")))
    db = connect(pg_url)
    acme = companies.get_company(db, "acme refurb")
    assert companies.cart_settings_model(db, acme).x_api_key.get_secret_value() == "copy-secret-987654"
    assert add_company(db, "New Co").id == 3
    again, created = jobs.enqueue(db, acme.id, "download_orders")
    assert created and again.id == 2
    assert users.authenticate(db, "ALICE", "correct horse battery") is not None
    db.close()


def test_a_target_that_is_not_empty_is_refused_and_left_as_it_was(run, source, pg_url, monkeypatch):
    monkeypatch.setenv("CARTPLUGIN_SECRET_KEY_FILE", str(source.with_name("cart.key")))
    db = connect(pg_url)
    add_company(db, "Already Here")
    db.close()
    result = run("db", "copy", "--to", pg_url, ok=False)
    assert result.exit_code != 0 and "not empty" in result.output and "nothing was copied" in result.output
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT name FROM companies").fetchall() == [("Already Here",)]
        assert conn.execute("SELECT COUNT(*) FROM orders").fetchone() == (0,)


def test_copy_wants_a_postgresql_url(run, source):
    result = run("db", "copy", "--to", str(source.with_name("other.db")), ok=False)
    assert result.exit_code != 0 and "postgresql://" in result.output


def test_status_and_backup_speak_of_postgresql(run, pg_url, tmp_path):
    from click.testing import CliRunner

    from host.cli.main import cli

    runner = CliRunner()
    fresh = runner.invoke(cli, ["--db", pg_url, "db", "status"], catch_exceptions=False)
    assert "Schema version: 0" in fresh.output and "upgrades it" in fresh.output  # status only looks
    connect(pg_url).close()
    status = runner.invoke(cli, ["--db", pg_url, "db", "status", "--json"], catch_exceptions=False)
    assert status.exit_code == 0, status.output
    shown = json.loads(status.output)
    assert shown["backend"] == "postgresql" and shown["schema_version"] == shown["schema_expected"] >= 1
    assert shown["companies"] == 0 and shown["size_bytes"] > 0
    text = runner.invoke(cli, ["--db", pg_url, "db", "status"], catch_exceptions=False)
    assert "PostgreSQL" in text.output and "Schema version" in text.output
    backup = runner.invoke(cli, ["--db", pg_url, "db", "backup", str(tmp_path / "b.db")], catch_exceptions=False)
    assert backup.exit_code != 0 and "pg_dump" in backup.output
    assert not (tmp_path / "b.db").exists()


def test_a_password_in_the_url_is_never_shown(tmp_path):
    from click.testing import CliRunner

    from host.cli.main import cli

    url = "postgresql://cart:hunter2secret@127.0.0.1:1/nowhere"
    shown = CliRunner().invoke(cli, ["--db", url, "config", "show", "--json"], catch_exceptions=False)
    assert "hunter2secret" not in shown.output and "postgresql://cart:****@127.0.0.1:1/nowhere" in shown.output
    failed = CliRunner().invoke(cli, ["--db", url, "companies", "list"], catch_exceptions=False)
    assert failed.exit_code != 0 and "hunter2secret" not in failed.output
