"""What operators and support staff meet at the terminal: settings, logs, tables, messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

from support import API_KEY, wait_until

from backmarket_pro.sandbox import Sandbox
from host.store.db import connect

ROOT = Path(__file__).resolve().parents[1]


def _subprocess(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CARTPLUGIN_")}
    return subprocess.run(
        [sys.executable, "-m", "host", *args], capture_output=True, text=True, timeout=120, cwd=cwd,
        env={**environment, "XDG_CONFIG_HOME": str(cwd / "xdg"), **(env or {})},
    )  # fmt: skip


# -- settings ------------------------------------------------------------------------------------


def test_a_config_file_sets_the_database_relative_to_itself_and_variables_and_flags_override_it(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "cartplugin.toml").write_text('db = "data/shop.db"\nrecent_days = 7\nlog_level = "INFO"\n')
    (tmp_path / "etc" / "data").mkdir()
    env = {"CARTPLUGIN_CONFIG": str(tmp_path / "etc" / "cartplugin.toml"), "CARTPLUGIN_RECENT_DAYS": "9"}
    shown = _subprocess("config", "show", "--json", cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    rows = {r["name"]: r for r in json.loads(shown.stdout)["settings"]}
    assert rows["db"]["value"] == str(tmp_path / "etc" / "data" / "shop.db")  # absolute, beside the file
    assert rows["db"]["source"].endswith("cartplugin.toml")
    assert (rows["recent_days"]["value"], rows["recent_days"]["source"]) == (9, "$CARTPLUGIN_RECENT_DAYS")
    assert rows["log_level"]["value"] == "INFO" and rows["download_every"]["source"] == "default"
    flagged = _subprocess("--log-level", "error", "config", "show", "--json", cwd=tmp_path, env=env)
    assert {r["name"]: r for r in json.loads(flagged.stdout)["settings"]}["log_level"] == {
        **rows["log_level"], "value": "ERROR", "source": "flag"}  # fmt: skip


def test_the_database_path_is_absolute_wherever_the_command_runs(tmp_path):
    shown = _subprocess("config", "show", "--json", cwd=tmp_path)
    rows = {r["name"]: r for r in json.loads(shown.stdout)["settings"]}
    assert rows["db"]["value"] == str(tmp_path / "cartplugin.db") and rows["db"]["source"] == "default"
    found = _subprocess("config", "show", cwd=tmp_path)
    assert "Config file: none" in found.stdout and "Setting" in found.stdout and "From" in found.stdout


def test_a_bad_setting_is_one_error_line_naming_where_it_came_from(tmp_path):
    (tmp_path / "cartplugin.toml").write_text('download_every = "often"\n')
    result = _subprocess("config", "show", cwd=tmp_path)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("Error: setting 'download_every' (from ") and "cartplugin.toml" in result.stderr
    (tmp_path / "cartplugin.toml").write_text('colour = "blue"\n')
    result = _subprocess("config", "show", cwd=tmp_path)
    assert result.returncode == 1 and "unknown setting 'colour'" in result.stderr


def test_log_level_and_format_are_taken_in_any_case_from_the_file_and_variables(tmp_path):
    (tmp_path / "cartplugin.toml").write_text('log_level = "info"\nlog_format = "JSON"\n')
    from_file = _subprocess("config", "show", "--json", cwd=tmp_path)
    assert from_file.returncode == 0, from_file.stderr
    rows = {r["name"]: r["value"] for r in json.loads(from_file.stdout)["settings"]}
    assert (rows["log_level"], rows["log_format"]) == ("INFO", "json")
    from_env = _subprocess("config", "show", "--json", cwd=tmp_path, env={"CARTPLUGIN_LOG_LEVEL": "debug"})
    assert from_env.returncode == 0, from_env.stderr
    assert {r["name"]: r["value"] for r in json.loads(from_env.stdout)["settings"]}["log_level"] == "DEBUG"


def test_every_bad_setting_is_reported_at_once_in_one_line(tmp_path):
    (tmp_path / "cartplugin.toml").write_text('download_every = "often"\nweb_port = 0\n')
    result = _subprocess("config", "show", cwd=tmp_path, env={"CARTPLUGIN_RECENT_DAYS": "-3"})
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    for name, source in (("download_every", "cartplugin.toml"), ("web_port", "cartplugin.toml"),
                         ("recent_days", "$CARTPLUGIN_RECENT_DAYS")):  # fmt: skip
        assert f"setting {name!r} (from " in result.stderr and source in result.stderr, name
    (tmp_path / "cartplugin.toml").write_text('colour = "blue"\nsize = 3\n')
    unknown = _subprocess("config", "show", cwd=tmp_path)
    assert unknown.returncode == 1 and "unknown settings 'colour', 'size'" in unknown.stderr


def test_config_show_names_the_key_file_in_use_when_none_is_set(tmp_path):
    shown = _subprocess("--db", "shop.db", "config", "show", "--json", cwd=tmp_path)
    rows = {r["name"]: r for r in json.loads(shown.stdout)["settings"]}
    assert rows["secret_key_file"]["value"] == str(tmp_path / "shop.key")
    assert rows["secret_key_file"]["source"] == "default"


def test_config_show_masks_secrets():
    from host import config

    class WithSecret(config.Settings):
        token: config.SecretStr | None = None

    loaded = config.Loaded(WithSecret(token="s3cr3t-value"), None, {}, {})
    rows = {r["name"]: r["value"] for r in loaded.rows()}
    assert "s3cr3t" not in json.dumps(rows, default=str)


# -- logging ---------------------------------------------------------------------------------------


def _company_with_sandbox(run, sandbox, name="Acme Refurb"):
    run("companies", "add", name)
    run(
        "website-settings",
        name,
        "--store-plugin",
        "backmarket_pro",
        "--allow-order-download",
        "--allow-tracking-upload",
    )
    run("cart-settings", name, "--set", f"website_url={sandbox.base_url}", "--set", f"x_api_key={API_KEY}")
    run("test-settings", name)
    return name


def test_a_failing_job_is_logged_to_stderr_by_default_with_a_timestamp(run, bmp, monkeypatch):
    monkeypatch.setenv("CARTPLUGIN_BMP_RETRIES", "0")
    with Sandbox(api_key=API_KEY, orders=3) as sandbox:
        name = _company_with_sandbox(run, sandbox)
        sandbox.set_faults(fail_5xx=True)
        result = run("worker", "--once", ok=False)
    lines = [line for line in result.stderr.splitlines() if "WARNING cartplugin.runner" in line]
    assert lines, result.stderr
    assert lines[0][:4].isdigit() and "T" in lines[0][:11] and "Z " in lines[0]  # 2026-11-27T02:05:41.123Z
    assert name in lines[0] and "503" in lines[0]
    # the API's own advice and the plugin's are not both repeated
    shown = run.json("jobs", "show", str(run.json("jobs", "list")[0]["id"]))
    messages = " ".join(line["message"] for line in shown["log"])
    assert "retry later.; try again later" not in messages and "later; try again later" not in messages


def test_log_records_can_be_json_lines_for_collectors(run, bmp, monkeypatch):
    monkeypatch.setenv("CARTPLUGIN_BMP_RETRIES", "0")
    with Sandbox(api_key=API_KEY, orders=3) as sandbox:
        _company_with_sandbox(run, sandbox)
        sandbox.set_faults(fail_5xx=True)
        result = run("--log-format", "json", "worker", "--once", ok=False)
    records = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert records and {"time", "level", "logger", "message"} <= set(records[0])
    assert records[0]["level"] == "WARNING"
    run("--log-format", "text", "companies", "list")  # back to text for the tests that follow


def test_an_idle_worker_says_nothing_and_a_busy_one_dates_its_lines(company, run, db_target, tmp_path):
    # the company's first download is due: the worker queues it, then idles
    proc = subprocess.Popen(
        [sys.executable, "-m", "host", "--db", str(db_target), "worker", "--interval", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("CARTPLUGIN_") or k.endswith("_SECRET_KEY_FILE")},
    )  # fmt: skip
    try:
        assert wait_until(lambda: _download_done(db_target), timeout=30)
        time.sleep(1)  # five idle rounds of 0.2 s: none may print a line
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    lines = [line for line in out.splitlines() if line.strip()]
    assert any("download_orders: Completed" in line for line in lines), out  # the busy round said so
    assert not any("queued 0" in line for line in lines), out
    assert all(line[:4].isdigit() for line in lines), out


def _download_done(db_target: Path | str) -> bool:
    with closing(connect(db_target, migrate=False, create=False)) as db:
        done = db.execute("SELECT 1 FROM jobs WHERE kind = 'download_orders' AND status = 'Completed'").fetchone()
    return done is not None


# -- tables and lookups ----------------------------------------------------------------------------


def test_orders_list_has_headers_dates_and_the_buyer_and_json_is_unchanged(company, run):
    run("import-orders", company)
    listed = run("orders", "list").stdout.splitlines()
    header = listed[0].split()
    assert header[:2] == ["Order", "Company"] and "Buyer" in header and "Date" in header
    rows = run.json("orders", "list")
    assert "buyer" not in rows[0]  # the JSON keeps its fields
    first = listed[1]
    assert rows[0]["order_date"][:10] in first and rows[0]["source_order_id"] in first
    # the columns line up: every row's channel order id starts where the header's does
    start = listed[0].index("Channel order")
    assert all(line[start:].startswith("BMP") for line in listed[1:]), listed[:3]


def test_orders_show_accepts_the_channel_order_id(company, run):
    run("import-orders", company)
    first = run.json("orders", "list")[0]
    by_channel_id = run.json("orders", "show", first["source_order_id"])
    assert by_channel_id["id"] == first["id"]
    text = run("orders", "show", first["source_order_id"]).stdout
    assert first["source_order_id"] in text and "ordered " in text


def test_orders_list_into_head_ends_quietly(run, bmp, db_target, tmp_path):
    with Sandbox(api_key=API_KEY, orders=400, seed=5) as big:
        run("import-orders", _company_with_sandbox(run, big))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARTPLUGIN_")}
    result = subprocess.run(
        f"{sys.executable} -m host --db {db_target} orders list | head -n 2", shell=True, capture_output=True,
        text=True, timeout=120, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert len(result.stdout.splitlines()) == 2
    assert "BrokenPipe" not in result.stderr and "Error" not in result.stderr, result.stderr


def test_import_orders_and_jobs_list_print_words_not_escaped_json(company, run):
    text = run("import-orders", company).stdout
    assert "{" not in text and "\\u" not in text and " new, 0 updated, 0 unchanged" in text
    listed = run("jobs", "list").stdout.splitlines()
    assert listed[0].split()[:4] == ["Job", "Company", "Kind", "Status"]
    assert "{" not in "\n".join(listed) and '"' not in "\n".join(listed)


def test_an_import_that_saw_nothing_says_which_date_it_used_and_how_to_go_further_back(run, bmp):
    with Sandbox(api_key=API_KEY, orders=0) as empty:
        name = _company_with_sandbox(run, empty)
        text = run("import-orders", name).stdout
    assert "0 orders updated since 20" in text and "use --start-date DATE" in text


def test_recent_days_from_a_config_file_sets_the_window_import_orders_reads(run, bmp, tmp_path):
    from datetime import UTC, datetime, timedelta

    (tmp_path / "seven.toml").write_text("recent_days = 7\n")
    with Sandbox(api_key=API_KEY, orders=0) as empty:
        name = _company_with_sandbox(run, empty)
        text = run("--config", str(tmp_path / "seven.toml"), "import-orders", name).stdout
    expected = (datetime.now(UTC) - timedelta(days=7)).date().isoformat()
    assert f"0 orders updated since {expected} (the last 7 days)" in text, text


# -- messages that are true -------------------------------------------------------------------------


def test_ship_does_not_promise_an_upload_that_is_switched_off(company, run):
    run("import-orders", company)
    order = next(o for o in run.json("orders", "list") if o["shipping_status"] == "Unshipped")
    run("website-settings", company, "--no-allow-tracking-upload")
    text = run("orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", "1Z999AA10000000079").stdout
    assert "will upload automatically" not in text and "Allow Tracking Upload is off" in text
    run("website-settings", company, "--allow-tracking-upload")
    order = next(o for o in run.json("orders", "list") if o["shipping_status"] == "Unshipped")
    text = run("orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", "1Z999AA10000000088").stdout
    assert "the worker uploads the tracking" in text


def test_worker_download_every_zero_downloads_now_even_after_a_longer_schedule(company, run):
    run("worker", "--once")  # the first download; the next is due in 300 s
    assert "queued 0 download" in run("worker", "--once").stdout
    assert "queued 1 download" in run("worker", "--once", "--download-every", "0").stdout
    assert "queued 1 download" in run("worker", "--once", "--download-every", "0").stdout


def test_two_companies_on_one_channel_account_get_a_warning_that_shows_no_key(company, run, sandbox):
    run("companies", "add", "Twin")
    run("website-settings", "Twin", "--store-plugin", "backmarket_pro", "--allow-order-download")
    result = run("cart-settings", "Twin", "--set", f"website_url={sandbox.base_url}/", "--set", f"x_api_key={API_KEY}")
    assert "same channel account" in result.stderr and "'Acme Refurb'" in result.stderr
    assert API_KEY not in result.output and API_KEY[-4:] not in result.stderr
    other = run("cart-settings", "Twin", "--set", "x_api_key=another-key-000000000")
    assert "same channel account" not in other.stderr


def test_the_display_name_staff_know_is_accepted_for_store_plugin(run, bmp):
    run("companies", "add", "Acme")
    shown = run.json("website-settings", "Acme", "--store-plugin", "BackMarketForBusiness WebsiteCartPlugin")
    assert shown["store_plugin"] == "backmarket_pro"


def test_a_company_whose_plugin_is_missing_says_so_and_the_worker_skips_it(company, run, bmp, monkeypatch):
    from host.channel import plugins
    from host.jobs import scheduler

    # a worker process says it once per company: this process's other databases had a company 1 too
    monkeypatch.setattr(scheduler, "_reported_missing", set())
    plugins.unregister(bmp)
    try:
        listed = run("companies", "list").stdout
        assert "plugin missing" in listed and "established" not in listed
        assert run.json("companies", "list")[0]["plugin_missing"] is True
        result = run("worker", "--once")
        assert "queued 0 download" in result.stdout and "unknown store plugin" not in result.output
        assert "plugin missing" in result.stderr
        refused = run("import-orders", company, ok=False)
        assert refused.exit_code == 1 and "plugin missing" in refused.stderr
    finally:
        plugins.register(bmp, name="backmarket_pro")
