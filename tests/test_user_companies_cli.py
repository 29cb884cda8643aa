"""`cartplugin users companies`: the operator gives staff accounts their companies."""

from __future__ import annotations

from host.records import access, users
from host.store.db import connect

PASSWORD = "correct horse battery staple"


def _setup(run, db_target) -> None:
    run("companies", "add", "Acme Refurb")
    run("companies", "add", "Beta Phones")
    db = connect(db_target)
    users.add_user(db, "sue", "support", PASSWORD)
    users.add_user(db, "ann", "admin", PASSWORD)
    db.close()


def _names(db_target) -> dict:
    db = connect(db_target)
    try:
        return access.company_names(db)
    finally:
        db.close()


def test_users_companies_shows_gives_takes_and_gives_back_every_company(run, db_target):
    _setup(run, db_target)
    assert run("users", "companies", "sue").output == "sue (support) sees: every company\n"
    given = run("users", "companies", "sue", "--add", "Acme Refurb", "--add", "beta phones")
    assert given.output == "sue (support) sees: Acme Refurb, Beta Phones\n"
    assert run("users", "companies", "sue", "--remove", "Beta Phones").output == "sue (support) sees: Acme Refurb\n"
    assert run("users", "companies", "sue", "--all").output == "sue (support) sees: every company\n"
    # the list is kept while the user sees every company, and applies again when limited
    assert run("users", "companies", "sue", "--only-given").output == "sue (support) sees: Acme Refurb\n"
    run("users", "companies", "sue", "--remove", "Acme Refurb")
    assert run("users", "companies", "sue").output == "sue (support) sees: none (sees no company)\n"
    assert run("users", "companies", "ann").output == "ann (admin) sees: every company (admin)\n"
    # each change is in the Change Log as the operator's, a look alone is not
    import json

    kept = connect(db_target)
    try:
        entries = kept.execute(
            "SELECT actor, source, details FROM audit_log WHERE action = 'companies of an employee changed' ORDER BY id"
        ).fetchall()
    finally:
        kept.close()
    assert len(entries) == 5 and {(actor[:4], source) for actor, source, _ in entries} == {("cli:", "cli")}
    assert json.loads(entries[0][2])["Given"] == ["Acme Refurb", "Beta Phones"]


def test_users_companies_refuses_bad_input_in_one_line_and_changes_nothing(run, db_target):
    _setup(run, db_target)
    run("users", "companies", "sue", "--add", "Acme Refurb")
    before = _names(db_target)
    cases = {
        ("sue", "--add", "Nowhere Ltd"): "unknown company 'Nowhere Ltd'",
        ("sue", "--add", "Beta Phones", "--remove", "Beta Phones"): "added and removed at once",
        ("sue", "--all", "--add", "Beta Phones"): "--all reaches every company",
        ("ann", "--add", "Beta Phones"): "admins always reach every company",
        ("nobody", "--all"): "unknown user 'nobody'",
    }
    for args, said in cases.items():
        result = run("users", "companies", *args, ok=False)
        assert result.exit_code != 0, args
        assert said in result.output and result.output.count("\n") == 1, (args, result.output)
    assert _names(db_target) == before
    run("users", "companies", "sue", "--all")
    result = run("users", "companies", "sue", "--remove", "Acme Refurb", ok=False)
    assert result.exit_code != 0 and "name the companies it keeps with --add" in result.output
    assert _names(db_target)[1] is None  # still every company
