"""SQL written once with named parameters runs on both backends (``host.store.api``)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from host.store.api import IntegrityError, in_list
from host.store.db import write


def test_named_parameters_a_literal_percent_and_a_cast_run_the_same_on_both(store) -> None:
    store.execute("CREATE TABLE named_t (id INTEGER PRIMARY KEY, name TEXT, amount TEXT, UNIQUE (name))")
    with write(store):
        store.execute(
            "INSERT INTO named_t (id, name, amount) VALUES (:id, :name, :amount)",
            {"id": 1, "name": "50% off: phones", "amount": Decimal("12.50")},
        )
        store.conn.executemany(
            "INSERT INTO named_t (id, name, amount) VALUES (:id, :name, :amount)",
            [{"id": 2, "name": None, "amount": "1"}, {"id": 3, "name": "c", "amount": "2"}],
        )
    rows = list(store.query("SELECT id, name, amount FROM named_t WHERE name LIKE '50%' AND id = :id", {"id": 1}))
    assert rows == [{"id": 1, "name": "50% off: phones", "amount": "12.50"}]  # Decimal kept as its text
    null_safe = "SELECT id FROM named_t WHERE (name = :name OR (name IS NULL AND :name IS NULL)) ORDER BY id"
    assert store.execute(null_safe, {"name": None}).fetchall() == [(2,)]
    assert store.execute(null_safe, {"name": "c"}).fetchall() == [(3,)]
    marks, params = in_list("id", [1, 3])
    assert [r[0] for r in store.execute(f"SELECT id FROM named_t WHERE id IN {marks} ORDER BY id", params)] == [1, 3]
    marks, params = in_list("id", [])
    assert store.execute(f"SELECT id FROM named_t WHERE id IN {marks}", params).fetchall() == []
    bigger = "SELECT CASE WHEN CAST(amount AS INTEGER) >= :floor THEN CAST(amount AS INTEGER) ELSE :floor END"
    assert store.execute(f"{bigger} FROM named_t WHERE id = :id", {"floor": 2, "id": 2}).fetchone()[0] == 2
    with pytest.raises(IntegrityError), write(store):
        store.execute("INSERT INTO named_t (id, name) VALUES (:id, :name)", {"id": 9, "name": "c"})
    assert store.execute("SELECT COUNT(*) FROM named_t").fetchone()[0] == 3  # nothing half-written


def test_postgresql_refuses_positional_parameters_and_runs_sql_without_parameters_as_written(pg_url) -> None:
    from host.store.db import connect

    db = connect(pg_url)
    try:
        for run in (db.execute, db.query, db.conn.execute):
            with pytest.raises(TypeError, match="PostgreSQL statements take named parameters"):
                list(run("SELECT id FROM companies WHERE id = ?", [1]))  # type: ignore[operator]
        with pytest.raises(TypeError, match="PostgreSQL statements take named parameters"):
            db.conn.executemany("UPDATE companies SET name = ? WHERE id = ?", [("a", 1)])
        # no parameters: sent as written (a literal % or ? is text, LIKE keeps PostgreSQL's meaning)
        assert db.execute("SELECT '50% off?', 'Ab' LIKE 'a%'").fetchone() == ("50% off?", False)
        assert db.execute("SELECT CAST(:n AS TEXT) || '%?'", {"n": 5}).fetchone() == ("5%?",)
    finally:
        db.close()
