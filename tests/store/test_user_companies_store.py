"""Which companies a staff account reaches, on both stores: an account made before the step
reaches every company, as it did; given companies limit it; admins always reach all."""

from __future__ import annotations

import pytest
import sqlite_utils

from host import access, pg_migrations, users
from host.access import EVERY, Access
from host.companies import add_company
from host.db import connect
from host.errors import HostError
from host.migrations import migrations
from host.pg import PgDatabase

PASSWORD = "correct horse battery staple"


def test_an_account_reaches_every_company_until_given_some_and_admins_always_do(store):
    acme, beta = add_company(store, "Acme Refurb"), add_company(store, "Beta Phones")
    sue = users.add_user(store, "sue", "support", PASSWORD)
    ann = users.add_user(store, "ann", "admin", PASSWORD)
    assert access.for_user(store, sue) == EVERY
    assert access.set_companies(store, "sue", add=["acme refurb"]) == ["Acme Refurb"]
    assert access.for_user(store, sue) == Access(frozenset({acme.id}))
    assert access.set_companies(store, "SUE", add=[str(beta.id)]) == ["Acme Refurb", "Beta Phones"]
    assert access.set_companies(store, "sue", remove=["Acme Refurb"]) == ["Beta Phones"]
    assert access.for_user(store, sue) == Access(frozenset({beta.id}))
    assert access.set_companies(store, "sue", every=True) is None
    assert access.for_user(store, sue) == EVERY
    assert access.for_user(store, ann) == EVERY


def test_a_refused_change_changes_nothing(store):
    add_company(store, "Acme Refurb")
    add_company(store, "Beta Phones")
    users.add_user(store, "sue", "support", PASSWORD)
    users.add_user(store, "ann", "admin", PASSWORD)
    access.set_companies(store, "sue", add=["Acme Refurb"])
    before = access.company_names(store)
    refused = [
        ("sue", {"add": ["Beta Phones", "Nowhere Ltd"]}),  # one unknown name: not even Beta is given
        ("sue", {"add": ["Beta Phones"], "remove": ["Beta Phones"]}),
        ("sue", {"add": ["Beta Phones"], "every": True}),
        ("ann", {"add": ["Beta Phones"]}),  # admins reach every company
        ("nobody", {"every": True}),
    ]
    for name, change in refused:
        with pytest.raises(HostError) as refusal:
            access.set_companies(store, name, **change)
        assert "\n" not in str(refusal.value), change
    assert access.company_names(store) == before


def test_a_sqlite_database_of_the_previous_version_keeps_every_account_reaching_every_company(tmp_path):
    path = tmp_path / "old.db"
    old = sqlite_utils.Database(path)
    migrations.apply(old, stop_before="0015_user_companies")
    old.execute("INSERT INTO companies (name, name_key, created_at) VALUES ('Old Co', 'old co', 'd')")
    old.execute("INSERT INTO users (name, role, password_hash, created_at) VALUES ('walt', 'warehouse', 'x', 'd')")
    old.conn.commit()
    old.close()
    db = connect(path)
    assert access.for_user(db, users.get_user_by_name(db, "walt")) == EVERY
    assert db["user_companies"].pks == ["user_id", "company_id"]


def test_a_postgresql_database_of_the_previous_version_keeps_every_account_reaching_every_company(pg_url):
    db = PgDatabase(pg_url)
    pg_migrations.migrate(db, until="0009_order_id_search")
    with db.write():
        db.execute("INSERT INTO users (name, role, password_hash, created_at) VALUES ('walt', 'warehouse', 'x', 'd')")
    db.close()
    db = connect(pg_url)
    try:
        assert access.for_user(db, users.get_user_by_name(db, "walt")) == EVERY
        assert "0010_user_companies" in pg_migrations.applied(db)
    finally:
        db.close()
