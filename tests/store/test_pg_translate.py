"""The few SQLite spellings the older positional SQL keeps, as PostgreSQL takes them (host.store.pg.translate;
these tests go when translate() does, once every module writes SQL with named parameters)."""

from __future__ import annotations

from host.store.pg import display, is_url, translate


def test_placeholders_become_psycopg_ones_but_not_inside_literals():
    assert translate("SELECT * FROM t WHERE a = ? AND b = '?' AND c LIKE 'x%'") == (
        "SELECT * FROM t WHERE a = %s AND b = '?' AND c ILIKE 'x%%'"
    )
    assert translate("SELECT 'it''s ?', ? -- why?\n") == "SELECT 'it''s ?', %s -- why?\n"
    assert translate("SELECT a % 2 FROM t") == "SELECT a %% 2 FROM t"


def test_null_safe_equality_and_scalar_min_max():
    assert translate("UPDATE j SET s = 1 WHERE c IS ? AND d IS NOT ? AND e IS NULL") == (
        "UPDATE j SET s = 1 WHERE c IS NOT DISTINCT FROM %s AND d IS DISTINCT FROM %s AND e IS NULL"
    )
    assert translate("SET v = MAX(t.v, excluded.v), n = MIN(COALESCE(a, 0), ?)") == (
        "SET v = GREATEST(t.v, excluded.v), n = LEAST(COALESCE(a, 0), %s)"
    )
    assert translate("SELECT MAX(id), min(x) FROM t") == "SELECT MAX(id), min(x) FROM t"
    assert translate("SET a = MAX(a - 1, 0)") == "SET a = GREATEST(a - 1, 0)"


def test_sqlite_planner_hints_are_dropped():
    assert translate("SELECT c.id FROM companies c INDEXED BY companies_download_due WHERE x") == (
        "SELECT c.id FROM companies c WHERE x"
    )


def test_urls_are_told_from_paths_and_shown_without_password():
    assert is_url("postgresql://u:pw@db:5432/cart") and is_url("postgres://db/cart")
    assert not is_url("cart.db") and not is_url("/srv/postgresql/cart.db")
    assert display("postgresql://u:s3cret@db:5432/cart") == "postgresql://u:****@db:5432/cart"
    assert display("postgresql://db/cart") == "postgresql://db/cart"
