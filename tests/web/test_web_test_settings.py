"""Test Settings in the web admin never holds the request: it is a Queued Job the web process
runs in the background (or a worker, whichever claims it first); Cart General shows it running,
then its answer. The real web server on a loopback port, the real sandbox, a real SQLite file."""

from __future__ import annotations

import re
import time

from support import Held, wait_until
from web_support import WEB_KEY, after_test_settings, signed_in

COMPANY = "Acme Refurb"


def _set_up(run, channel) -> None:
    run("companies", "add", COMPANY)
    run("website-settings", COMPANY, "--store-plugin", "backmarket_pro", "--allow-order-download")
    run("cart-settings", COMPANY, "--set", f"website_url={channel.base_url}", "--set", f"x_api_key={WEB_KEY}")


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]*>", "", html))


def _state(http, web) -> str:
    return http.get(f"{web.url}/companies/1/test-settings", timeout=10).text


def test_test_settings_answers_at_once_and_the_page_shows_it_running_then_its_answer(web, run, channel):
    _set_up(run, channel)
    http, token = signed_in(web, "sue")
    held = Held(channel, passes=0)  # the channel holds its answer until the test lets it go
    try:
        started = time.monotonic()
        answer = http.post(f"{web.url}/companies/1/test-settings", data={"csrf_token": token}, timeout=5)
        took = time.monotonic() - started
        assert answer.status_code == 200 and took < 1.0
        assert held.arrived.wait(5)  # the job asked the channel, which has not answered yet
        page = _text(answer.text)
        assert re.search(r"Test Settings started as Queued Job (\d+); its answer appears below within 10 s", page)
        assert "Test Settings is running (Queued Job" in page and 'data-pending="yes"' in answer.text
        assert 'src="/static/live.js"' in answer.text
        # asked again while it runs: the same job, no second call to the channel
        again = _text(http.post(f"{web.url}/companies/1/test-settings", data={"csrf_token": token}, timeout=5).text)
        assert "Test Settings is already running as Queued Job" in again
        assert "Processing" in _text(_state(http, web))
        held.release()
        page = _text(after_test_settings(http, web))
    finally:
        held.remove()
    assert not held.timed_out
    assert (
        "Last Test Settings (Queued Job" in page and "Connection established: Connected to Back Market Pro as" in page
    )
    assert "Connection: Established" in page
    jobs = run.json("jobs", "list")
    assert [(j["kind"], j["status"]) for j in jobs] == [("test_settings", "Completed")]
    assert len(channel.request_log()) == 1
    admin, _ = signed_in(web, "ann")
    log = re.sub(r"\s+", " ", re.sub(r"<[^>]*>", " ", admin.get(f"{web.url}/companies/1/change-log", timeout=10).text))
    # who asked, and what the test found once it had (the worker or the web process ran it)
    assert "sue Test Settings started job 1 Created" in log and "sue Test Settings started job 1 Already queued" in log
    assert "sue Test Settings job 1 Connection established" in log
    assert WEB_KEY not in log and WEB_KEY not in page


def test_a_silent_channel_gives_the_page_the_bounded_message(web, run, channel, monkeypatch):
    monkeypatch.setenv("CARTPLUGIN_TEST_SETTINGS_SECONDS", "1")
    _set_up(run, channel)
    http, token = signed_in(web, "sue")
    held = Held(channel, passes=0)  # the channel never answers within the test's bound
    try:
        started = time.monotonic()
        answer = http.post(f"{web.url}/companies/1/test-settings", data={"csrf_token": token}, timeout=5)
        assert time.monotonic() - started < 1.0 and "its answer appears below within 1 s" in _text(answer.text)
        page = _text(after_test_settings(http, web, timeout=5))
        took = time.monotonic() - started
    finally:
        held.remove()
    assert took < 3.0
    assert (
        "Test Settings failed: The channel did not answer within 1 s; try again later, or check the address in "
        "the settings." in page
    )
    assert "Connection: Failed" in page
    assert run.json("jobs", "list")[0]["status"] == "Failed"


def test_a_worker_round_while_the_web_process_runs_the_test_does_not_run_it_twice(web, run, channel):
    """A job is claimed once: the worker finds the one the web process runs, and leaves it."""
    _set_up(run, channel)
    http, token = signed_in(web, "sue")
    held = Held(channel, passes=0)
    try:
        http.post(f"{web.url}/companies/1/test-settings", data={"csrf_token": token}, timeout=5)
        assert held.arrived.wait(5)
        # the web process has it: a worker round now finds nothing to run for it
        run("worker", "--once", "--download-every", "3600")
        held.release()
        assert wait_until(lambda: 'data-pending="no"' in _state(http, web), timeout=10)
    finally:
        held.remove()
    assert len(channel.request_log()) == 1
    assert [j["status"] for j in run.json("jobs", "list")] == ["Completed"]
