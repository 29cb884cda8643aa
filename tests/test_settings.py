"""Website General Settings and Cart General: validation refuses bad input and saves nothing."""

from __future__ import annotations

import pytest
from support import API_KEY, Cli, db_digest

SECRET = "sk-live-0123456789abcdef"


@pytest.fixture
def configured(run, bmp):
    run("companies", "add", "Acme")
    run("website-settings", "Acme", "--store-plugin", "backmarket_pro")
    run(
        "cart-settings",
        "Acme",
        "--set",
        f"x_api_key={SECRET}",
        "--set",
        "website_url=https://api.pro.backmarket.com/sellers-prod",
    )
    return "Acme"


def test_cart_general_shows_the_plugin_fields_with_labels_and_the_default_url(run, configured):
    shown = run.json("cart-settings", configured)
    fields = {f["key"]: f for f in shown["fields"]}
    assert fields["website_url"]["label"] == "Website URL"
    assert fields["website_url"]["value"] == "https://api.pro.backmarket.com/sellers-prod"
    assert fields["x_api_key"]["label"] == "x-api-key" and fields["x_api_key"]["secret"] is True
    assert fields["commission_percent"]["label"] == "Order Import: Commission (%)"


@pytest.mark.parametrize("as_json", [False, True])
def test_the_key_is_masked_in_every_output(run, configured, as_json):
    outputs = [
        run("cart-settings", configured, *(["--json"] if as_json else [])).output,
        run("cart-settings", configured, "--set", "commission_percent=5", *(["--json"] if as_json else [])).output,
        run("companies", "list", *(["--json"] if as_json else [])).output,
        run("website-settings", configured, *(["--json"] if as_json else [])).output,
    ]
    for output in outputs:
        assert SECRET not in output
    assert "****cdef" in outputs[0]


BAD_SETTINGS = [
    (["--set", "commission_percent=101"], "commission_percent"),
    (["--set", "commission_percent=-1"], "commission_percent"),
    (["--set", "commission_percent=ten"], "commission_percent"),
    (["--set", "commission_percent=NaN"], "commission_percent"),
    (["--set", "commission_percent=1,2,3"], "one decimal comma or point, like 12,5 or 12.5"),
    (["--set", "commission_percent=1.234,5"], "no thousands separator"),
    (["--set", "website_url=not a url"], "website_url"),
    (["--set", "website_url=ftp://api.example.com"], "website_url"),
    (["--set", "website_url=http://api.pro.backmarket.com/sellers-prod"], "https"),
    (["--set", "colour=blue"], "unknown Cart General setting 'colour'"),
    (["--set", "x_api_key=short"], "x_api_key"),
    (["--set", "x_api_key=has space inside"], "x_api_key"),
    (["--set", "novalue"], "KEY=VALUE"),
    (["--set", "x_api_key="], "x_api_key"),  # clearing a required field
]


@pytest.mark.parametrize("args,expected", BAD_SETTINGS, ids=[" ".join(a) for a, _ in BAD_SETTINGS])
def test_bad_cart_settings_are_refused_with_one_line_and_nothing_saved(run, configured, db_target, args, expected):
    before = db_digest(db_target)
    result = run("cart-settings", configured, *args, ok=False)
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and expected in lines[0], result.output
    assert "Traceback" not in result.output and SECRET not in result.output
    assert db_digest(db_target) == before


def test_a_commission_typed_with_a_decimal_comma_is_stored_as_that_decimal(run, configured, db_target):
    from decimal import Decimal

    from host.records import companies
    from host.store.db import connect

    run("cart-settings", configured, "--set", "commission_percent=12,5")
    db = connect(db_target)
    try:
        settings = companies.cart_settings_model(db, companies.get_company(db, configured))
    finally:
        db.close()
    assert settings.commission_percent == Decimal("12.5") and isinstance(settings.commission_percent, Decimal)
    assert {f["key"]: f["value"] for f in run.json("cart-settings", configured)["fields"]}["commission_percent"] == (
        "12.5"
    )


def test_http_is_allowed_for_loopback_hosts_only(run, configured):
    run(
        "cart-settings",
        configured,
        "--set",
        "website_url=http://127.0.0.1:8080/sellers-prod",
        "--set",
        f"x_api_key={API_KEY}",
    )
    run("cart-settings", configured, "--set", "website_url=http://localhost:8080", "--set", f"x_api_key={API_KEY}")
    result = run("cart-settings", configured, "--set", "website_url=http://10.0.0.5/sellers-prod", ok=False)
    assert result.exit_code != 0 and "https" in result.output


@pytest.mark.parametrize(
    "args,expected",
    [
        (["website-settings", "Nobody"], "unknown company 'Nobody'"),
        (["cart-settings", "Nobody"], "unknown company 'Nobody'"),
        (["website-settings", "Acme", "--store-plugin", "no_such_plugin"], "unknown store plugin 'no_such_plugin'"),
        (["test-settings", "999"], "unknown company '999'"),
    ],
)
def test_unknown_company_or_plugin_changes_nothing(run, configured, db_target, args, expected):
    before = db_digest(db_target)
    result = run(*args, ok=False)
    assert result.exit_code != 0 and expected in result.output and result.output.count("\n") == 1
    assert db_digest(db_target) == before


@pytest.mark.sqlite_only("a SQLite file that does not exist; PostgreSQL: the test below")
def test_commands_on_a_missing_database_do_not_create_it(run, db_target, bmp):
    result = run("companies", "list", ok=False)
    assert result.exit_code != 0 and "no database" in result.output
    assert not db_target.exists()


def test_commands_on_a_postgresql_database_the_server_lacks_fail_in_one_line_and_create_nothing(postgres, bmp):
    result = Cli(postgres.url("no_such_database"))("companies", "list", ok=False)
    assert result.exit_code != 0 and result.output.count("\n") == 1 and "no_such_database" in result.output
    assert "no_such_database" not in postgres._psql("SELECT datname FROM pg_database")


def test_changing_a_cart_setting_resets_the_connection(run, company):
    assert run.json("website-settings", company)["connection_status"] == "established"
    run("cart-settings", company, "--set", "commission_percent=3")
    assert run.json("website-settings", company)["connection_status"] == "untested"


def test_cart_settings_need_a_store_plugin_first(run, bmp):
    run("companies", "add", "Bare")
    result = run("cart-settings", "Bare", "--set", "x_api_key=abcdefgh12", ok=False)
    assert result.exit_code != 0 and "no store plugin" in result.output


def test_a_company_name_is_unique(run, bmp):
    run("companies", "add", "Acme")
    result = run("companies", "add", "acme", ok=False)
    assert result.exit_code != 0 and "already exists" in result.output
    assert len(run.json("companies", "list")) == 1


def test_an_optional_secret_field_is_masked_too(run, bmp):
    from pydantic import Field, SecretStr

    from host.channel import plugins
    from plugin_spec import CartSettings, ChannelInfo, hookimpl

    class OptionalSecretSettings(CartSettings):
        password: SecretStr | None = Field(default=None, title="Password")

    class Channel:
        @hookimpl
        def cartplugin_channel_info(self):
            return ChannelInfo(
                name="optional_secret", display_name="Optional", version="1", settings_model=OptionalSecretSettings
            )

    channel = Channel()
    plugins.register(channel, name="optional_secret")
    try:
        run("companies", "add", "Opt")
        run("website-settings", "Opt", "--store-plugin", "optional_secret")
        output = run("cart-settings", "Opt", "--set", "password=correct-horse-battery", "--json").output
        assert "correct-horse-battery" not in output and "****tery" in output
    finally:
        plugins.unregister(channel)


def test_a_secret_can_be_typed_at_a_hidden_prompt(run, configured, db_target):
    from click.testing import CliRunner

    from host.cli.main import cli

    typed = "typed-at-prompt-9876"
    result = CliRunner().invoke(
        cli, ["--db", str(db_target), "cart-settings", configured, "--set", "x_api_key=-"], input=typed + "\n"
    )
    assert result.exit_code == 0, result.output
    assert typed not in result.output and "****9876" in result.stdout


def test_changing_the_url_or_key_forgets_the_cursor_but_the_commission_does_not(run, company, db_target):
    from host.store.db import connect

    run("import-orders", company)
    count = lambda: connect(db_target).execute("SELECT COUNT(*) FROM cursors").fetchone()[0]  # noqa: E731
    assert count() == 2  # the cursor and the window it covers
    run("cart-settings", company, "--set", "commission_percent=7")
    assert count() == 2
    run("cart-settings", company, "--set", "x_api_key=another-account-key-1")
    assert count() == 0


def test_when_the_settings_change_while_test_settings_runs_the_result_is_discarded_and_the_connection_stays_untested(
    run, db_target
):
    from spy_plugin import SpyChannel

    from host.channel import plugins
    from host.records import companies
    from host.store.db import connect
    from plugin_spec import TestResult, hookimpl

    class SlowCheck(SpyChannel):
        @hookimpl
        def cartplugin_test_settings(self, settings):
            # staff save a new token from another screen while the channel is being asked
            other = connect(db_target)
            try:
                companies.update_cart_settings(
                    other, companies.get_company(other, "Busy Co"), {"token": "tok-new-9876"}
                )
            finally:
                other.close()
            return TestResult(ok=True, message="the old token works", account_name="Spy")

    channel = SlowCheck(name="slow_check")
    plugins.register(channel, name="slow_check")
    try:
        run("companies", "add", "Busy Co")
        run("website-settings", "Busy Co", "--store-plugin", "slow_check", "--allow-order-download")
        run("cart-settings", "Busy Co", "--set", "token=tok-old-1234")
        result = run("test-settings", "Busy Co", ok=False)
        assert result.exit_code != 0 and "settings changed while they were being tested" in result.output
        assert run.json("website-settings", "Busy Co")["connection_status"] == "untested"
        assert "run Test Settings first" in run("import-orders", "Busy Co", ok=False).output
    finally:
        plugins.unregister(channel)


def test_companies_list_shows_each_companys_toggles_as_staff_set_them(run, bmp):
    run("companies", "add", "Downloads Only")
    run("companies", "add", "Uploads Only")
    run("website-settings", "Downloads Only", "--store-plugin", "backmarket_pro", "--allow-order-download")
    run("website-settings", "Uploads Only", "--store-plugin", "backmarket_pro", "--allow-tracking-upload")
    listed = {c["name"]: c for c in run.json("companies", "list")}
    assert (listed["Downloads Only"]["allow_order_download"], listed["Downloads Only"]["allow_tracking_upload"]) == (
        True,
        False,
    )
    assert (listed["Uploads Only"]["allow_order_download"], listed["Uploads Only"]["allow_tracking_upload"]) == (
        False,
        True,
    )
