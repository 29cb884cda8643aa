"""One Change Log of every change, whoever makes it (issue 24, item 5): the command line as
``cli:<unix user>``, the worker's automatic changes as ``system``, one entry per change and none
for an order read again unchanged. The real CLI (CliRunner), a real SQLite file, the real Back
Market Pro sandbox on 127.0.0.1."""

from __future__ import annotations

import getpass
import json

from support import API_KEY

from host.channel import connection_test
from host.jobs import queue as jobs
from host.records import audit
from host.store.db import connect

CLI_USER = f"cli:{getpass.getuser()}"
PASSWORD = "correct horse battery staple"


def _log(db_target) -> list[dict]:
    """Every entry, oldest first."""
    return list(reversed(audit.entries(connect(db_target), limit=10_000)))


def _actions(db_target, source: str) -> list[str]:
    return [e["action"] for e in _log(db_target) if e["source"] == source]


def _piped(run, *args: str, text: str) -> None:
    """The CLI with ``text`` on its stdin (a password piped in once)."""
    from host.cli.main import cli

    result = run.runner.invoke(cli, ["--db", str(run.db_target), *args], input=text, catch_exceptions=False)
    assert result.exit_code == 0, result.output


def _no_secret(db_target) -> None:
    rows = connect(db_target).execute("SELECT * FROM audit_log").fetchall()
    text = json.dumps([list(row) for row in rows])
    assert API_KEY not in text and API_KEY[-6:] not in text


def test_each_command_line_change_is_in_the_change_log_as_cli_and_the_unix_user(run, company, db_target, sandbox):
    # the company fixture ran companies add, website-settings, cart-settings and test-settings
    setup = [e for e in _log(db_target) if e["source"] == "cli"]
    assert [e["action"] for e in setup] == [
        "company added", "Website General Settings saved", "Cart General saved", "Test Settings"
    ]  # fmt: skip
    assert {e["actor"] for e in setup} == {CLI_USER}
    assert {e["who"] for e in setup} == {f"Operator ({CLI_USER})"}
    cart = setup[2]["details"]
    assert cart["x_api_key"] == "replaced" and cart["commission_percent"] == "10"
    assert setup[1]["details"]["allow_order_download"] == {"from": False, "to": True}

    run("import-orders", company)
    (imported,) = [e for e in _log(db_target) if e["action"].startswith("Import Orders")]
    count = len(run.json("orders", "list"))
    assert imported["action"] == f"Import Orders: {count} new, 0 updated" and imported["actor"] == CLI_USER
    assert imported["details"]["new"] == count > 1 and imported["source"] == "cli"

    first, second = run.json("orders", "list")[:2]
    run("orders", "ship", str(first["id"]), "--carrier", "UPS", "--tracking", "1Z999AA10123456784")
    run("orders", "set-status", str(second["id"]), "Cancelled")
    run("import-orders", company, "--no-wait")
    queued = run.json("jobs", "list")[0]
    run("jobs", "cancel", str(queued["id"]))
    _piped(run, "users", "add", "sue", "--role", "support", text=PASSWORD + "\n")
    _piped(run, "users", "password", "sue", text=PASSWORD + "!\n")
    run("users", "unlock", "sue")

    later = [e for e in _log(db_target) if e["source"] == "cli"][5:]
    assert [(e["action"], e["target"]) for e in later] == [
        ("order shipped", f"order {first['source_order_id']}"),
        ("order status changed", f"order {second['source_order_id']}"),
        ("Queued Job cancelled", f"job {queued['id']} (Import Orders)"),
        ("employee added", "sue"),
        ("employee password reset", "sue"),
        ("employee unlocked", "sue"),
    ]
    assert {e["actor"] for e in later} == {CLI_USER}
    assert later[0]["details"] == {"carrier": "UPS", "tracking": "1Z999AA10123456784"}
    assert later[1]["details"] == {"from": "In Process", "to": "Cancelled"}
    _no_secret(db_target)
    assert PASSWORD not in json.dumps([e["details"] for e in _log(db_target)])


def test_the_workers_automatic_changes_are_system_entries_once_per_change(run, company, db_target, sandbox):
    run("import-orders", company)
    shipped, cancelled, repriced, touched = run.json("orders", "list")[:4]
    run("orders", "ship", str(shipped["id"]), "--carrier", "UPS", "--tracking", "1Z999AA10123456784")
    sandbox.cancel_order(cancelled["source_order_id"], api_key=API_KEY)
    sandbox.edit_order(repriced["source_order_id"], api_key=API_KEY, financial_status="partially_refunded")
    sandbox.edit_order(touched["source_order_id"], api_key=API_KEY, note="gift wrap")  # its timestamp only
    before = len(_log(db_target))

    run("worker", "--once", "--download-every", "0", "--processes", "1")
    run("worker", "--once", "--download-every", "0", "--processes", "1")  # the tracking goes once the download ran

    automatic = [e for e in _log(db_target)[before:] if e["source"] == "system"]
    by_action = {(e["action"], e["target"]): e for e in automatic}
    assert ("order cancelled on the channel", f"order {cancelled['source_order_id']}") in by_action
    changed = by_action[("order status changed by the channel", f"order {repriced['source_order_id']}")]
    assert changed["details"] == {"channel payment status": {"from": "paid", "to": "partially_refunded"}}
    assert ("Source Updated for Shipping set", f"order {shipped['source_order_id']}") in by_action
    assert {e["actor"] for e in automatic} == {"system"} and {e["who"] for e in automatic} == {"cartplugin (automatic)"}
    per_order = [e["target"] for e in automatic if e["target"].startswith("order ")]
    assert len(per_order) == len(set(per_order)) == 3  # one entry per order changed, none for the one touched only
    assert run.json("orders", "show", str(shipped["id"]))["source_updated_for_shipping"] is True

    # the next rounds read the same orders again, unchanged: nothing more is written
    settled = len(_log(db_target))
    run("worker", "--once", "--download-every", "0", "--processes", "1")
    run("worker", "--once", "--download-every", "0", "--processes", "1")
    assert len(_log(db_target)) == settled
    _no_secret(db_target)


def test_a_test_settings_nobody_asked_for_is_recorded_as_the_system(run, company, db_target):
    db = connect(db_target)
    job, _ = jobs.enqueue(db, 1, "test_settings", connection_test.params())
    run("jobs", "run", "--processes", "1")
    (entry,) = [e for e in _log(db_target) if e["target"] == f"job {job.id}"]
    assert (entry["actor"], entry["source"], entry["action"]) == ("system", "system", "Test Settings")
    assert entry["details"] == {"ok": True}


def test_the_change_log_is_filtered_by_who_and_a_web_user_named_system_stays_a_person(db_target, run):
    run("companies", "add", "Acme Refurb")
    db = connect(db_target)
    audit.record(db, "system", "company renamed", company_id=1)  # a web user who chose that name
    audit.record(db, audit.SYSTEM, "Source Updated for Shipping set", company_id=1)
    assert [e["action"] for e in audit.entries(db, source="web")] == ["company renamed"]
    assert [e["who"] for e in audit.entries(db, source="system")] == ["cartplugin (automatic)"]
    assert [e["action"] for e in audit.entries(db, source="cli")] == ["company added"]
    assert audit.parse_source("cli") == "cli" and audit.parse_source("root'--") is None


def test_a_cli_user_without_a_name_is_still_recorded(monkeypatch, db_target, run):
    def nameless() -> str:
        raise KeyError("uid 4242 has no name")

    monkeypatch.setattr(getpass, "getuser", nameless)
    run("companies", "add", "Acme Refurb")
    (entry,) = _log(db_target)
    assert (entry["actor"], entry["source"]) == ("cli:unknown", "cli")
