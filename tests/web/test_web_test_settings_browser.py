"""Test Settings in a real browser: the page comes back at once and shows the test running while
the channel takes its time, then its answer, without a reload by hand (Chromium, the real web
server, the Back Market Pro sandbox holding its answer)."""

from __future__ import annotations

import time

from support import Held
from web_support import SHOTS, WEB_KEY, Walk

COMPANY = "Acme Refurb"


def test_test_settings_running_then_its_answer_in_a_real_browser(browser, web, run, channel):
    run("companies", "add", COMPANY)
    run("website-settings", COMPANY, "--store-plugin", "backmarket_pro", "--allow-order-download")
    run("cart-settings", COMPANY, "--set", f"website_url={channel.base_url}", "--set", f"x_api_key={WEB_KEY}",
        "--set", "commission_percent=12.5")  # fmt: skip
    walk = Walk(browser, web)
    walk.sign_in("sue")
    walk.go("/companies/1/cart-general")
    held = Held(channel, passes=0)  # the channel answers only when the test says so
    try:
        walk.page.click("summary[title='Options']")
        started = time.monotonic()
        walk.page.click("button:has-text('Test Settings')")
        walk.page.wait_for_selector("#test-settings[data-pending='yes']")
        assert time.monotonic() - started < 3.0  # the page is back while the channel still holds its answer
        assert held.arrived.wait(5)
        assert "Test Settings started as Queued Job 1" in walk.text(".flash")
        # the page may have come before the claim (Queued): its next look says Processing
        walk.page.wait_for_selector("#test-settings:has-text('Processing')")
        assert "Test Settings is running (Queued Job 1, Processing)" in walk.text("#test-settings")
        walk.shot("31-test-settings-running")
        held.release()
        # the page asks every second while the test runs: the answer comes in by itself
        walk.page.wait_for_selector("#test-settings[data-pending='no']")
    finally:
        held.remove()
    assert not held.timed_out
    answer = walk.text("#test-settings")
    assert "Connection established: Connected to Back Market Pro as" in answer
    assert walk.text(".connection .badge") == "Established"
    walk.shot("32-test-settings-answer")
    assert (SHOTS / "31-test-settings-running.png").stat().st_size > 10_000
    assert all(WEB_KEY not in body for body in walk.bodies)
    walk.context.close()
