"""Website General's other options and a Queued Job's priority, walked in a real Chromium
(screenshots 33 to 35)."""

from __future__ import annotations

from support import fetch_rows
from web_support import SHOTS, Walk


def test_options_and_job_priority_in_a_real_browser(browser, web, run, company, db_target):
    walk = Walk(browser, web)
    walk.sign_in("sue")
    walk.go("/companies/1/website-general-settings?edit=1")
    walk.page.check("#allow_unpaid_orders")
    walk.page.check("#order_download_limit")
    walk.page.fill("#order_download_limit_date", "2026-11-01")
    walk.page.check("#delay_tracking")
    walk.page.fill("#delay_min_hours", "24")
    walk.page.check("#delay_skip_saturday")
    walk.page.check("#delay_skip_sunday")
    walk.page.locator("#delay_skip_sunday").scroll_into_view_if_needed()
    walk.shot("33-website-general-options-edit")
    walk.page.click("button:has-text('Save')")
    walk.page.wait_for_url("**/website-general-settings")
    assert walk.text(".flash") == "Website General Settings saved."
    walk.page.locator("text=Delayed Tracking").last.scroll_into_view_if_needed()
    walk.shot("34-website-general-options-saved")
    shown = run.json("website-settings", company)
    assert shown["allow_unpaid_orders"] and shown["order_download_limit_date"] == "2026-11-01"
    assert (shown["delay_min_hours"], shown["delay_skip_saturday"], shown["delay_skip_sunday"]) == (24, True, True)

    queued = run.json("import-orders", company, "--no-wait")
    walk.go("/jobs")
    row = walk.page.locator(f"tr:has(a[href='/jobs/{queued['id']}'])")
    assert "Normal" in row.inner_text()
    row.locator("a").first.click()
    walk.page.wait_for_url(f"**/jobs/{queued['id']}")
    walk.page.select_option("#job-priority", "High")
    walk.page.click("button:has-text('Set Priority')")
    walk.page.wait_for_url(f"**/jobs/{queued['id']}")
    assert walk.text(".flash") == f"Job {queued['id']} priority: High."
    assert walk.text("#job-priority-name") == "High"
    walk.shot("35-queued-job-priority-raised")
    assert run.json("jobs", "show", str(queued["id"]))["priority_name"] == "High"
    assert fetch_rows(db_target, "SELECT actor, action FROM audit_log ORDER BY id DESC LIMIT 1") == [
        ("sue", "Queued Job priority changed")
    ]
    for name in (
        "33-website-general-options-edit",
        "34-website-general-options-saved",
        "35-queued-job-priority-raised",
    ):
        assert (SHOTS / f"{name}.png").stat().st_size > 10_000
    walk.context.close()
