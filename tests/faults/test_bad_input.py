"""Bad input through the CLI: one clear line on stderr, a non-zero exit, the database untouched."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from support import API_KEY, db_digest

from host.cli.main import cli

LONG = "x" * 5000


@pytest.fixture
def shop(run, company, db_target):
    """A configured company with imported orders; returns (company, order id, db path)."""
    run("import-orders", company)
    order_id = str(run.json("orders", "list")[0]["id"])
    return company, order_id, db_target


CASES = [
    # companies
    ("empty company name", ["companies", "add", ""], "company name"),
    ("oversize company name", ["companies", "add", LONG], "company name"),
    ("control character in a name", ["companies", "add", "Acme\x1b[31m"], "printable"),
    ("name made of digits", ["companies", "add", "12345"], "only digits"),
    ("duplicate company", ["companies", "add", "{company}"], "already exists"),
    ("unknown company", ["website-settings", "Nobody Ltd"], "unknown company"),
    ("SQL in a company name", ["cart-settings", "Acme' OR '1'='1"], "unknown company"),
    ("shell in a company name", ["orders", "list", "--company", "$(rm -rf /)"], "unknown company"),
    ("unknown company id", ["test-settings", "987654"], "unknown company"),
    # website general settings
    ("unknown plugin", ["website-settings", "{company}", "--store-plugin", "amazon"], "unknown store plugin"),
    (
        "path as plugin name",
        ["website-settings", "{company}", "--store-plugin", "../../etc/passwd"],
        "unknown store plugin",
    ),
    # cart general
    ("commission over 100", ["cart-settings", "{company}", "--set", "commission_percent=100.01"], "commission_percent"),
    ("negative commission", ["cart-settings", "{company}", "--set", "commission_percent=-0.5"], "commission_percent"),
    ("commission overflow", ["cart-settings", "{company}", "--set", "commission_percent=1e400"], "commission_percent"),
    (
        "commission infinity",
        ["cart-settings", "{company}", "--set", "commission_percent=Infinity"],
        "commission_percent",
    ),
    ("javascript URL", ["cart-settings", "{company}", "--set", "website_url=javascript:alert(1)"], "website_url"),
    (
        "URL with credentials",
        ["cart-settings", "{company}", "--set", "website_url=https://u:p@api.example.com"],
        "website_url",
    ),
    (
        "clear-text URL",
        ["cart-settings", "{company}", "--set", "website_url=http://api.pro.backmarket.com/sellers-prod"],
        "https",
    ),
    ("oversize URL", ["cart-settings", "{company}", "--set", f"website_url=https://a.com/{LONG}"], "website_url"),
    ("shell in the key", ["cart-settings", "{company}", "--set", "x_api_key=$(rm -rf /)"], "x_api_key"),
    ("oversize key", ["cart-settings", "{company}", "--set", f"x_api_key={LONG}"], "x_api_key"),
    ("empty key name", ["cart-settings", "{company}", "--set", "=value"], "KEY=VALUE"),
    ("unknown setting", ["cart-settings", "{company}", "--set", "password=hunter22"], "unknown Cart General setting"),
    # orders
    (
        "order id unknown, not a number",
        ["orders", "show", "1; DROP TABLE orders"],
        "no order with number or channel order id",
    ),
    ("order id overflow", ["orders", "show", "99999999999999999999999999"], "unknown order"),
    ("order id zero", ["orders", "show", "0"], "unknown order"),
    ("negative order id", ["orders", "show", "-5"], "No such option"),
    (
        "unknown order",
        ["orders", "ship", "424242", "--carrier", "UPS", "--tracking", "1Z999AA10000000015"],
        "unknown order",
    ),
    ("empty carrier", ["orders", "ship", "{order}", "--carrier", " ", "--tracking", "1Z999AA10000000015"], "carrier"),
    (
        "oversize carrier",
        ["orders", "ship", "{order}", "--carrier", LONG, "--tracking", "1Z999AA10000000015"],
        "carrier",
    ),
    (
        "carrier with a NUL",
        ["orders", "ship", "{order}", "--carrier", "UPS\x00", "--tracking", "1Z999AA10000000015"],
        "carrier",
    ),
    ("empty tracking", ["orders", "ship", "{order}", "--carrier", "UPS", "--tracking", ""], "tracking number"),
    (
        "non-http tracking URL",
        [
            "orders",
            "ship",
            "{order}",
            "--carrier",
            "UPS",
            "--tracking",
            "1Z999AA10000000015",
            "--tracking-url",
            "file:///etc/passwd",
        ],
        "tracking URL",
    ),
    ("missing tracking", ["orders", "ship", "{order}", "--carrier", "UPS"], "--tracking"),
    (
        "too many serials",
        ["orders", "ship", "{order}", "--carrier", "UPS", "--tracking", "1Z999AA10000000015"]
        + ["--serial", "S"] * 3000,
        "serial",
    ),
    ("unknown status", ["orders", "set-status", "{order}", "Lost in space"], "unknown status"),
    ("SQL as a status", ["orders", "set-status", "{order}", "Cancelled'; DROP TABLE orders; --"], "unknown status"),
    # dates
    ("a word as a date", ["import-orders", "{company}", "--since", "yesterday"], "--since"),
    ("impossible date", ["import-orders", "{company}", "--since", "2026-13-45"], "--since"),
    ("future date", ["import-orders", "{company}", "--since", "2999-01-01"], "future"),
    # jobs and the worker
    ("job id not a number", ["jobs", "show", "abc"], "must be a number"),
    ("unknown job", ["jobs", "show", "31337"], "unknown job"),
    ("cancel a finished job", ["jobs", "cancel", "1"], "only a Queued job"),
    ("zero interval", ["worker", "--interval", "0"], "--interval"),
    ("too many workers", ["worker", "--workers", "1000"], "--workers"),
]


@pytest.mark.parametrize("label,args,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_non_zero_and_changes_nothing(shop, label, args, expected):
    company, order_id, db_target = shop
    args = [a.replace("{company}", company).replace("{order}", order_id) for a in args]
    before = db_digest(db_target)
    result = CliRunner().invoke(cli, ["--db", str(db_target), *args])
    assert result.exit_code not in (0, None), result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert expected in lines[0], lines[0]
    assert "Traceback" not in result.output and API_KEY not in result.output
    assert result.stdout == ""
    assert db_digest(db_target) == before, f"{label}: the database changed"


def test_there_are_at_least_thirty_cases():
    assert len(CASES) >= 30


@pytest.mark.parametrize("kind", ["missing folder", "a directory", "not a database"])
def test_bad_database_paths(tmp_path, kind):
    target = {"missing folder": tmp_path / "no" / "such" / "x.db", "a directory": tmp_path,
              "not a database": tmp_path / "notes.txt"}[kind]  # fmt: skip
    if kind == "not a database":
        target.write_text("these are my notes, not SQLite\n" * 50)
    before = target.read_bytes() if target.is_file() else None
    result = CliRunner().invoke(cli, ["--db", str(target), "companies", "add", "Acme"])
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "database" in lines[0], result.stderr
    if before is not None:
        assert target.read_bytes() == before
    assert not (tmp_path / "no").exists()
