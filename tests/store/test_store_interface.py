"""One store interface on both backends: its backend said once, its own errors, its write()."""

from __future__ import annotations

import sqlite3

import pytest

from host.store import api, errors
from host.store.db import write


def test_a_store_says_its_backend_and_takes_turns_writing_through_its_own_write(store, store_target):
    assert api.backend(store) == ("postgresql" if store_target.startswith("postgresql") else "sqlite")
    store.execute("CREATE TABLE iface_t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
    with store.write():
        store.execute("INSERT INTO iface_t (id, name) VALUES (:id, :name)", {"id": 1, "name": "a"})
        with write(store):  # nested: a savepoint of the same transaction
            store.execute("INSERT INTO iface_t (id, name) VALUES (:id, :name)", {"id": 2, "name": "b"})
        assert store.conn.in_transaction
    assert not store.conn.in_transaction
    assert store["iface_t"].exists() and list(store["iface_t"].columns_dict) == ["id", "name"]
    assert "iface_t" in store.table_names()


def test_a_broken_constraint_is_caught_through_the_store_names_and_postgresql_raises_its_own(store, store_target):
    store.execute("CREATE TABLE iface_u (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)")
    store.execute("INSERT INTO iface_u (id, name) VALUES (:id, :name)", {"id": 1, "name": "a"})
    with pytest.raises(api.IntegrityError) as caught, write(store):
        store.execute("INSERT INTO iface_u (id, name) VALUES (:id, :name)", {"id": 2, "name": "a"})
    assert isinstance(caught.value, api.Error)
    if api.backend(store) == "postgresql":  # no longer dressed as sqlite3's
        assert isinstance(caught.value, errors.IntegrityError) and not isinstance(caught.value, sqlite3.Error)
        assert "duplicate key" in str(caught.value) and isinstance(caught.value.__cause__, Exception)
    with pytest.raises(api.Error):
        store.execute("SELECT * FROM no_such_table")
    assert store.execute("SELECT COUNT(*) FROM iface_u").fetchone()[0] == 1


def test_the_store_errors_combine_unpacked_and_no_host_module_nests_them():
    import ast
    from pathlib import Path

    caught = []
    for raised in (sqlite3.IntegrityError("a"), errors.OperationalError("b")):
        try:
            raise raised
        except (*api.IntegrityError, *api.OperationalError) as exc:
            caught.append(exc)
    assert len(caught) == 2
    # a nested tuple, ``except (IntegrityError, OperationalError)``, fails only once an error comes
    names = {"IntegrityError", "OperationalError", "Error", "StoreErrors"}
    nested = []
    for path in sorted((Path(__file__).resolve().parents[2] / "host").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ExceptHandler) and isinstance(node.type, ast.Tuple):
                for item in node.type.elts:
                    name = item.attr if isinstance(item, ast.Attribute) else getattr(item, "id", None)
                    if name in names and "sqlite3" not in ast.unparse(item) and "psycopg" not in ast.unparse(item):
                        nested.append(f"{path.name}:{node.lineno}")
    assert nested == [], nested
