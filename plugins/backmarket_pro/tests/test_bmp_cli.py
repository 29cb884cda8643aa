"""The plugin's CLI: the sandbox command is registered and runs in the foreground."""

from __future__ import annotations

import subprocess
import sys

import requests
from click.testing import CliRunner

from backmarket_pro import plugin


def test_sandbox_command_is_registered() -> None:
    from host.channel import plugins
    from host.cli.main import cli  # the real `cartplugin` CLI

    plugins.load_plugins()  # in the host's test run entry points stay unloaded: register it here
    registered_here = plugins.pm.get_plugin("backmarket_pro") is None
    if registered_here:
        plugins.register(plugin, name="backmarket_pro")
    try:
        result = CliRunner().invoke(cli, ["backmarket-pro", "sandbox", "--help"])
    finally:
        if registered_here:
            plugins.unregister(plugin)
    assert result.exit_code == 0, result.output
    for option in ("--host", "--port", "--api-key", "--orders", "--seed", "--latency"):
        assert option in result.output


SCRIPT = """
import click, sys
from backmarket_pro import plugin
cli = click.Group("cartplugin")
plugin.cartplugin_register_commands(cli=cli)
cli(sys.argv[1:])
"""


def test_sandbox_prints_its_keys_whole_and_serves_one_account_per_key_until_stopped() -> None:
    key, second = "cli-key-1234567890", "second-key-0000000002"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SCRIPT,
            "backmarket-pro",
            "sandbox",
            "--port",
            "0",
            "--orders",
            "4",
            "--api-key",
            key,
            "--account",
            f"{second}:Second Seller",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [proc.stdout.readline() for _ in range(4)]  # type: ignore[union-attr]
        website = next(line.split(": ", 1)[1].strip() for line in lines if line.startswith("Website URL"))
        # a sandbox key opens only the sandbox: printed whole, to be pasted into Cart General
        assert f"x-api-key:   {key}\n" in lines and any(second in line and "Second Seller" in line for line in lines)
        account = requests.get(f"{website}/2024-03/seller-account", headers={"x-api-key": key}, timeout=5)
        assert account.status_code == 200
        control = website.replace("/sellers-prod", "/_sandbox")
        assert requests.get(f"{control}/orders", timeout=5).json()["count"] == 4
        accounts = requests.get(f"{control}/accounts", timeout=5).json()["accounts"]
        assert [a["name"] for a in accounts][1:] == ["Second Seller"] and accounts[1]["orders"] == 4
        other = requests.get(f"{website}/2024-03/seller-account", headers={"x-api-key": second}, timeout=5)
        assert other.status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
