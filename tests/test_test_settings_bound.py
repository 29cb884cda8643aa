"""Test Settings is bounded in all, retries included: a closed port or a silent channel gets one
readable line within the bound (``test_settings_seconds``), never a wait of the HTTP session's
own timeouts and retries, never urllib3's retry warnings."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from support import API_KEY, Held

from host.channel import settings_test
from host.records.companies import get_company
from host.store.db import connect

COMPANY = "Acme Refurb"


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _set_up(run, url: str) -> None:
    run("companies", "add", COMPANY)
    run("website-settings", COMPANY, "--store-plugin", "backmarket_pro", "--allow-order-download")
    run("cart-settings", COMPANY, "--set", f"website_url={url}", "--set", f"x_api_key={API_KEY}")


def _lines(result) -> list[str]:
    return [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]


def test_test_settings_against_a_closed_port_prints_one_readable_line_and_no_retry_warnings(run, bmp, monkeypatch):
    monkeypatch.setenv("CARTPLUGIN_TEST_SETTINGS_SECONDS", "3")
    _set_up(run, f"http://127.0.0.1:{_closed_port()}")
    started = time.monotonic()
    result = run("test-settings", COMPANY, ok=False)
    took = time.monotonic() - started
    assert result.exit_code == 1
    (line,) = _lines(result)  # exactly one line: no "Retrying (Retry(total=4, ...))" before it
    assert "Retrying" not in result.stdout + result.stderr and "urllib3" not in result.stdout + result.stderr
    assert line.startswith("Test Settings failed: Could not reach http://127.0.0.1:") and "nothing accepts" in line
    assert took < 3.5  # the retries stopped at the bound (they took 16 s with the session's own backoff)
    assert API_KEY not in result.stdout + result.stderr
    assert run.json("companies", "list")[0]["connection_status"] == "failed"


def test_a_silent_channel_fails_test_settings_at_the_bound_of_the_config_file(run, bmp, sandbox, tmp_path: Path):
    config = tmp_path / "cartplugin.toml"
    config.write_text("test_settings_seconds = 1\n")
    _set_up(run, sandbox.base_url)
    held = Held(sandbox, passes=0)  # the channel takes the request and says nothing
    try:
        started = time.monotonic()
        result = run("--config", str(config), "test-settings", COMPANY, ok=False)
        took = time.monotonic() - started
    finally:
        held.remove()
    assert result.exit_code == 1 and took < 2.0
    assert _lines(result) == [
        "Test Settings failed: The channel did not answer within 1 s; try again later, or check the address in "
        "the settings."
    ]
    shown = run.json("companies", "list")[0]
    assert shown["connection_status"] == "failed"
    # the same settings, the channel answering again: the connection is established as before
    assert "Connection established" in run("--config", str(config), "test-settings", COMPANY).stdout


def test_the_bound_covers_a_plugin_that_does_not_listen_to_the_deadline(db_target, run, bmp, sandbox, monkeypatch):
    """A plugin that never asks the toolkit (it sleeps) is not waited for past the bound either."""
    _set_up(run, sandbox.base_url)
    monkeypatch.setattr(bmp, "make_client", lambda settings: time.sleep(5))
    db = connect(db_target)
    try:
        started = time.monotonic()
        result = settings_test.test_settings(db, get_company(db, COMPANY), seconds=0.5)
        assert time.monotonic() - started < 1.0
    finally:
        db.close()
    assert not result.ok and result.message.startswith("The channel did not answer within 0.5 s")


@pytest.mark.parametrize("bad", ["0", "-1", "ten", "301"])
def test_a_bound_that_is_not_a_number_of_seconds_is_refused_in_one_line(run, bad, monkeypatch):
    monkeypatch.setenv("CARTPLUGIN_TEST_SETTINGS_SECONDS", bad)
    result = run("config", "show", ok=False)
    assert result.exit_code != 0
    (line,) = _lines(result)
    assert "test_settings_seconds" in line
