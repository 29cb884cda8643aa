"""The plugin manager: specs, duplicate names, routing to the selected plugin only."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from spy_plugin import SpyChannel
from support import API_KEY

from host.channel import plugins
from host.channel.plugins import DuplicateChannel


def test_backmarket_pro_validates_against_the_hook_specs(bmp):
    plugins.pm.check_pending()  # raises PluginValidationError on an unknown hook or bad signature
    info = plugins.channel_info("backmarket_pro")
    assert info.display_name == "BackMarketForBusiness WebsiteCartPlugin"
    hooks = {h.name for h in plugins.pm.get_hookcallers(bmp)}
    assert {"cartplugin_channel_info", "cartplugin_test_settings", "cartplugin_download_orders",
            "cartplugin_upload_tracking", "cartplugin_register_commands"} <= hooks  # fmt: skip


def test_a_misspelled_hook_is_rejected():
    from plugin_spec import hookimpl

    class Typo:
        @hookimpl
        def cartplugin_download_order(self, settings):  # missing the final "s"
            return None

    with pytest.raises(Exception, match="unknown hook"):
        plugins.register(Typo(), name="typo")
    assert plugins.pm.get_plugin("typo") is None


def test_duplicate_channel_names_are_rejected(bmp):
    with pytest.raises(DuplicateChannel, match="backmarket_pro"):
        plugins.register(SpyChannel(name="backmarket_pro"), name="impostor")
    # the first registration stands, the impostor is gone
    assert plugins.pm.get_plugin("impostor") is None
    assert plugins.channel_info("backmarket_pro").display_name == "BackMarketForBusiness WebsiteCartPlugin"


def test_calls_reach_only_the_plugin_the_company_selected(run, bmp, sandbox):
    spy = SpyChannel()
    plugins.register(spy, name="spy")
    try:
        run("companies", "add", "A")
        run(
            "website-settings",
            "A",
            "--store-plugin",
            "backmarket_pro",
            "--allow-order-download",
            "--allow-tracking-upload",
        )
        run("cart-settings", "A", "--set", f"website_url={sandbox.base_url}", "--set", f"x_api_key={API_KEY}")
        run("test-settings", "A")
        run("import-orders", "A")
        assert spy.calls == []  # the spy implements every hook, yet was never called
        run("companies", "add", "B")
        run("website-settings", "B", "--store-plugin", "spy_channel", "--allow-order-download")
        run("cart-settings", "B", "--set", "token=abcd1234")
        requests_before = len(sandbox.request_log())
        run("test-settings", "B")
        run("import-orders", "B")
        assert [name for name, _ in spy.calls] == ["test_settings", "download_orders"]
        assert len(sandbox.request_log()) == requests_before  # Back Market Pro was not called for B
    finally:
        plugins.unregister(spy)


def _cli_subprocess(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "host", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )


def test_plugins_json_lists_the_installed_plugin_with_version_and_hooks():
    result = _cli_subprocess("plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["backmarket_pro"]["version"] == "0.1.0"
    assert "cartplugin_download_orders" in rows["backmarket_pro"]["hooks"]


def test_load_plugins_environment_variable_limits_what_loads():
    result = _cli_subprocess("plugins", "--json", env={"CARTPLUGIN_LOAD_PLUGINS": ""})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_trace_environment_variable_prints_hook_calls():
    result = _cli_subprocess("plugins", "--json", env={"CARTPLUGIN_TRACE_PLUGINS": "1"})
    assert result.returncode == 0
    assert "[trace] cartplugin_channel_info" in result.stderr


def _fake_distribution(root, name: str, module_source: str) -> dict:
    """A distribution on PYTHONPATH with one `cartplugin` entry point: no pip, no venv."""
    (root / f"{name}.py").write_text(module_source)
    info = root / f"{name}-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text(f"[cartplugin]\n{name} = {name}\n")
    return {"PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def test_a_broken_plugin_is_set_aside_with_a_warning_and_the_rest_works(tmp_path):
    env = _fake_distribution(
        tmp_path, "brokenchannel", "raise ImportError('needs frobnicate, which is not installed')\n"
    )
    listed = _cli_subprocess("plugins", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert "frobnicate" in rows["brokenchannel"]["error"] and rows["backmarket_pro"]["version"]
    assert listed.stderr.count("Warning: plugin 'brokenchannel' is not loaded") == 1
    db = tmp_path / "x.db"
    added = _cli_subprocess("--db", str(db), "companies", "add", "Still Works", env=env)
    assert added.returncode == 0 and "Added company" in added.stdout


def test_two_installed_plugins_claiming_one_channel_stop_the_host_with_a_clear_error(tmp_path):
    source = (
        "from plugin_spec import ChannelInfo, hookimpl\n"
        "from backmarket_pro.settings import BackMarketProSettings\n"
        "@hookimpl\n"
        "def cartplugin_channel_info():\n"
        "    return ChannelInfo(name='backmarket_pro', display_name='Impostor', version='6.6.6',\n"
        "                       settings_model=BackMarketProSettings)\n"
    )
    env = _fake_distribution(tmp_path, "impostor", source)
    result = _cli_subprocess("--db", str(tmp_path / "x.db"), "companies", "add", "Acme", env=env)
    assert result.returncode != 0 and result.stdout == ""
    assert result.stderr.strip().count("\n") == 0
    assert "two plugins claim the channel name 'backmarket_pro'" in result.stderr and "impostor" in result.stderr
