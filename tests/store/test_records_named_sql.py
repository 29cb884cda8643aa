"""The records' SQL (companies, users, employees, access, the Change Log, channel credentials)
reaches PostgreSQL as written, with named parameters: none of it goes through the regular
expressions of ``host.store.pg.translate``, and each answer is the one SQLite gives."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from host.records import access, audit, companies, credentials, employees, users
from host.records.companies import add_company
from host.store import pg
from host.store.api import backend
from host.store.db import write

#: the modules whose every statement is written once (a statement from elsewhere is not counted here)
RECORDS = {
    str(Path(module.__file__ or "").resolve()) for module in (access, audit, companies, credentials, employees, users)
}
STORE = str(Path(pg.__file__ or "").resolve().parent)


@pytest.fixture
def rewritten(store, monkeypatch) -> Iterator[list[str]]:
    """Each statement of the records that ``translate`` rewrote for PostgreSQL, as ``file:line:
    SQL`` (who issued it: the first caller outside ``host/store``)."""
    real = getattr(pg, "translate", None)
    if backend(store) != "postgresql" or real is None:  # SQLite runs SQL as written; or the rewrite is gone
        yield []
        return
    seen: list[str] = []

    def spy(sql: str) -> str:
        translated = real(sql)
        if translated == sql.replace("%", "%%"):  # run as written (psycopg wants a literal % doubled)
            return sql
        frame = sys._getframe(1)
        while frame.f_back is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(STORE):
            frame = frame.f_back
        if str(Path(frame.f_code.co_filename).resolve()) in RECORDS:
            seen.append(f"{Path(frame.f_code.co_filename).name}:{frame.f_lineno}: {sql}")
        return translated

    monkeypatch.setattr(pg, "translate", spy)
    yield seen


def test_the_records_reach_postgresql_without_the_placeholder_rewrite(store, rewritten, bmp) -> None:
    operator = audit.cli_actor()
    acme = add_company(store, "Acme Refurb", actor=operator)
    other = add_company(store, "Zeta Ltd")
    assert companies.get_company(store, "acme refurb").id == acme.id
    assert companies.get_company(store, str(other.id)).name == "Zeta Ltd"
    assert [c["name"] for c in companies.list_companies(store)] == ["Acme Refurb", "Zeta Ltd"]
    companies.update_website_settings(
        store, acme, store_plugin="backmarket_pro", allow_order_download=True, actor=operator,
        options={"allow_unpaid_orders": True, "delay_tracking": True, "delay_min_hours": "4"},
    )  # fmt: skip
    settings = companies.website_settings(store, acme)
    assert settings["allow_unpaid_orders"] is True and settings["delay_min_hours"] == 4
    pairs = {"website_url": "https://pro.example.com", "x_api_key": "secret-key-123456"}
    companies.update_cart_settings(store, acme, pairs, actor=operator)
    companies.update_website_settings(store, other, store_plugin="backmarket_pro")
    companies.update_cart_settings(store, other, pairs)
    assert companies.shared_account(store, acme) == ["Zeta Ltd"]
    assert companies.cart_settings_model(store, acme).x_api_key.get_secret_value() == "secret-key-123456"
    version = companies.settings_version(store, acme)
    assert companies.record_test_result(store, acme, version, True, "ok")
    assert not companies.record_test_result(store, acme, version - 1, True, "stale")
    assert companies.get_company(store, acme.id).connection_status == "established"

    admin = employees.add(store, operator, "ann", "admin", "a-long-password")
    employees.add(store, operator, "bob", "support", "b-long-password")
    assert users.check_new_user(store, "carl", "warehouse") == "carl"
    assert users.get_user(store, admin.id) == users.get_user_by_name(store, "ANN")
    assert users.authenticate(store, "bob", "wrong password", address="10.0.0.1") is None
    assert users.unlock(store, "BOB") == 1
    bob = users.authenticate(store, "bob", "b-long-password", address="10.0.0.1")
    assert bob is not None and users.password_matches(store, bob.id, "b-long-password")
    users.end_sessions(store, bob.id)
    employees.set_role(store, "ann", "bob", "warehouse")
    employees.set_disabled(store, "ann", "bob", True)
    employees.set_disabled(store, "ann", "bob", False)
    employees.reset_password(store, "ann", "bob", "another-long-password")
    bob = employees.change_own_password(store, users.get_user_by_name(store, "bob"), "another-long-password", "x" * 12)
    assert [u["name"] for u in users.list_users(store)] == ["ann", "bob"]
    with pytest.raises(Exception, match="last admin"):
        employees.set_role(store, "bob", "ann", "support")

    assert access.set_companies(store, "bob", add=["acme refurb", "Zeta Ltd"], actor=operator) == [
        "Acme Refurb",
        "Zeta Ltd",
    ]
    assert access.set_companies(store, "bob", remove=["Zeta Ltd"]) == ["Acme Refurb"]
    assert access.for_user(store, bob) == access.Access(frozenset({acme.id}))
    assert access.set_companies(store, "bob", every=True) is None
    assert access.company_names(store)[bob.id] is None
    employees.remove(store, "ann", "bob")

    with write(store):  # in the caller's transaction
        audit.record_many(store, audit.SYSTEM, [("order imported", acme.id, "SO-1", {"n": 1})])
    entries = audit.entries(store, filters=audit.Filters(user="CLI:" + operator[4:].upper(), company_id=acme.id))
    assert {e["action"] for e in entries} == {"company added", "Website General Settings saved", "Cart General saved"}
    today = entries[0]["at"][:10]
    in_range = audit.Filters(source="system", kind="order imported", since=today, until=today)
    assert [e["target"] for e in audit.entries(store, filters=in_range)] == ["SO-1"]
    assert "employee removed" in audit.kinds(store) and audit.kinds(store, company_id=acme.id) == sorted(
        {"company added", "Website General Settings saved", "Cart General saved", "order imported"}
    )

    tokens = credentials.DbCredentialStore.of(store, acme.id, "backmarket_pro")
    try:
        assert tokens.begin_refresh("oauth2", 0, 30)
        saved = tokens.finish_refresh("oauth2", 0, {"access_token": "at-0123456789"}, None, "https://o.example")
        assert saved.version == 1 and tokens.load("oauth2") == saved
        assert tokens.begin_refresh("oauth2", 1, 30)
        tokens.abandon_refresh("oauth2", 1)
        assert tokens.begin_refresh("oauth2", 1, 30)  # the claim was released
    finally:
        tokens.close()
    assert credentials.values_of(store, acme.id) == ["at-0123456789"]
    assert [t["name"] for t in credentials.status(store, acme.id, "backmarket_pro")] == ["oauth2"]

    with write(store):  # an entry a year old goes, the others stay
        store.execute("UPDATE audit_log SET at = :at WHERE action = 'order imported'", {"at": "2025-01-01T00:00:00Z"})
    assert audit.purge(store, 365, batch=1) == 1
    assert "order imported" not in audit.kinds(store)

    assert rewritten == []


def test_the_companies_an_account_reaches_are_a_condition_with_named_parameters(store) -> None:
    ids = [add_company(store, name).id for name in ("Acme Refurb", "Zeta Ltd", "Omega")]
    sql = "SELECT name FROM companies WHERE {reach} AND name != :skip ORDER BY id"
    for reach, names in (
        (access.EVERY, ["Acme Refurb", "Zeta Ltd"]),
        (access.Access(frozenset({ids[0], ids[1]})), ["Acme Refurb", "Zeta Ltd"]),
        (access.Access(frozenset({ids[2]})), []),
        (access.Access(frozenset()), []),
    ):
        condition, params = reach.where("id")
        rows = store.execute(sql.format(reach=condition), {**params, "skip": "Omega"}).fetchall()
        assert [name for (name,) in rows] == names
