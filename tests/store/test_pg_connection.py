"""A PostgreSQL connection the server dropped: opened again between transactions, never inside one."""

from __future__ import annotations

import pytest

from host.records.companies import add_company, list_companies
from host.store.api import OperationalError
from host.store.db import connect, write


def test_after_a_server_restart_the_next_statement_outside_a_transaction_reconnects(postgres, pg_url):
    db = connect(pg_url)
    add_company(db, "Before")
    postgres.restart()
    with pytest.raises(OperationalError):
        db.execute("SELECT 1")  # this statement met the dropped connection
    assert [c["name"] for c in list_companies(db)] == ["Before"]
    add_company(db, "After")
    assert [c["name"] for c in list_companies(db)] == ["Before", "After"]
    db.close()


def test_a_transaction_that_loses_its_connection_fails_whole(postgres, pg_url):
    db = connect(pg_url)
    with pytest.raises(OperationalError, match="lost during a transaction"):
        with write(db):
            add_company(db, "Half")
            postgres.restart()
            with pytest.raises(OperationalError):
                db.execute("UPDATE companies SET connection_message = 'x'")  # the connection is gone
            # the rest of the transaction must not run on a new connection, one statement at a time
            with pytest.raises(OperationalError, match="lost during a transaction"):
                add_company(db, "Sneaky")
        # leaving the block commits: that fails too
    assert list_companies(db) == []
    add_company(db, "Whole")
    assert [c["name"] for c in list_companies(db)] == ["Whole"]
    db.close()
