"""Website General's other options and Queued Job priority in the web admin, over real HTTP."""

from __future__ import annotations

import html

from web_support import signed_in

from host.records import audit
from host.store.db import connect


def _website_form(token: str, **values: str) -> dict[str, str]:
    form = {"csrf_token": token, "store_type": "Custom", "store_plugin": "backmarket_pro",
            "allow_order_download": "y", "allow_tracking_upload": "y", "order_download_limit_date": "",
            "delay_min_hours": "0"}  # fmt: skip
    form.update(values)
    return form


def test_staff_set_the_options_in_website_general_and_the_change_log_says_who(web, run, company, db_target):
    http, token = signed_in(web, "sue")
    url = f"{web.url}/companies/1/website-general-settings"
    editing = http.get(url + "?edit=1", timeout=10).text
    for label in ("Allow Download Shipped Orders", "Allow Unpaid Orders", "Enable Order Download Limit",
                  "Order Download Limit Date", "Delay Tracking Time", "Min Hours to Wait", "Skip on Saturday",
                  "Skip on Sunday"):  # fmt: skip
        assert label in editing
    saved = http.post(
        url,
        data=_website_form(
            token,
            allow_unpaid_orders="y",
            order_download_limit="y",
            order_download_limit_date="2026-11-01",
            delay_tracking="y",
            delay_min_hours="12",
            delay_skip_sunday="y",
        ),  # fmt: skip
        timeout=10,
    )
    assert "Website General Settings saved." in saved.text
    shown = run.json("website-settings", company)
    assert (shown["allow_unpaid_orders"], shown["allow_download_shipped"], shown["order_download_limit"]) == (
        True, False, True,
    )  # fmt: skip
    assert (shown["order_download_limit_date"], shown["delay_min_hours"], shown["delay_skip_sunday"]) == (
        "2026-11-01", 12, True,
    )  # fmt: skip
    assert shown["connection_status"] == "established"
    page = html.unescape(saved.text)
    assert "Order Download Limit Date</dt><dd>2026-11-01" in page and "Min Hours to Wait</dt><dd>12" in page
    entry = audit.entries(connect(db_target))[0]
    assert entry["actor"] == "sue" and entry["action"] == "Website General Settings saved"
    assert entry["details"]["allow_unpaid_orders"] == {"from": False, "to": True}
    assert entry["details"]["delay_min_hours"] == {"from": 0, "to": 12}
    # the form again, unchanged: nothing is written
    again = http.post(
        url,
        data=_website_form(
            token,
            allow_unpaid_orders="y",
            order_download_limit="y",
            order_download_limit_date="2026-11-01",
            delay_tracking="y",
            delay_min_hours="12",
            delay_skip_sunday="y",
        ),  # fmt: skip
        timeout=10,
    )
    assert "Nothing changed." in again.text


def test_a_bad_option_in_the_form_is_named_and_nothing_is_saved(web, run, company, db_target):
    http, token = signed_in(web, "sue")
    url = f"{web.url}/companies/1/website-general-settings"
    for values, words in [
        ({"order_download_limit_date": "01/11/2026"}, "Order Download Limit Date must be a date written YYYY-MM-DD"),
        ({"delay_min_hours": "three"}, "Min Hours to Wait must be a whole number of hours from 0 to 720"),
        ({"order_download_limit": "y"}, "Enable Order Download Limit needs an Order Download Limit Date"),
    ]:
        refused = http.post(url, data=_website_form(token, allow_unpaid_orders="y", **values), timeout=10)
        assert words in html.unescape(refused.text) and 'class="flash error"' in refused.text
        assert "cartplugin" not in refused.text.split("<main", 1)[-1]  # no command line in staff words
    assert run.json("website-settings", company)["allow_unpaid_orders"] is False
    assert audit.entries(connect(db_target), source=audit.WEB) == []
    assert run.json("website-settings", company)["order_download_limit_date"] is None


def test_support_raises_a_queued_job_to_critical_in_queued_jobs_and_read_only_cannot(web, run, company, db_target):
    queued = run.json("import-orders", company, "--no-wait")
    http, token = signed_in(web, "sue")
    listing = http.get(f"{web.url}/jobs", timeout=10).text
    assert "<th>Priority</th>" in listing and "<td>Normal</td>" in listing
    page = http.get(f"{web.url}/jobs/{queued['id']}", timeout=10).text
    assert 'id="job-priority"' in page and "Set Priority" in page
    raised = http.post(
        f"{web.url}/jobs/{queued['id']}/priority", data={"csrf_token": token, "priority": "Critical"}, timeout=10
    )
    assert f"Job {queued['id']} priority: Critical." in raised.text
    assert 'id="job-priority-name">Critical<' in raised.text
    assert run.json("jobs", "show", str(queued["id"]))["priority_name"] == "Critical"
    entry = audit.entries(connect(db_target))[0]
    assert (entry["actor"], entry["action"], entry["details"]) == (
        "sue", "Queued Job priority changed", {"priority": {"from": "Normal", "to": "Critical"}},
    )  # fmt: skip
    bad = http.post(
        f"{web.url}/jobs/{queued['id']}/priority", data={"csrf_token": token, "priority": "Urgent"}, timeout=10
    )
    assert "Choose a priority: Normal, High or Critical." in bad.text
    reader, reader_token = signed_in(web, "rita")
    assert "Set Priority" not in reader.get(f"{web.url}/jobs/{queued['id']}", timeout=10).text
    refused = reader.post(
        f"{web.url}/jobs/{queued['id']}/priority", data={"csrf_token": reader_token, "priority": "Normal"}, timeout=10
    )
    assert refused.status_code == 403
    assert run.json("jobs", "show", str(queued["id"]))["priority_name"] == "Critical"


def test_a_finished_job_offers_no_priority_and_refuses_one_in_words(web, run, company):
    done = run.json("import-orders", company)
    http, token = signed_in(web, "sue")
    assert "Set Priority" not in http.get(f"{web.url}/jobs/{done['id']}", timeout=10).text
    refused = http.post(
        f"{web.url}/jobs/{done['id']}/priority", data={"csrf_token": token, "priority": "High"}, timeout=10
    )
    words = f"job {done['id']} is Completed; only a Queued or Processing job's priority can change"
    assert words in html.unescape(refused.text)
