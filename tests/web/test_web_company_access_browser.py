"""A support user limited to one company, in a real browser: Manage Companies shows only that
company, and another company's page is "Not found"."""

from __future__ import annotations

import test_web_company_access as limited
from test_web_company_access import OTHER, _limit
from web_support import SHOTS, Walk

other = limited.other  # the second company's fixture


def test_a_limited_support_user_sees_only_their_company_in_a_real_browser(browser, web, run, company, other, db_target):
    run("import-orders", company)
    run("import-orders", other)
    theirs = run.json("orders", "list", "--company", other)
    _limit(db_target, company, ["sue"])
    walk = Walk(browser, web)
    walk.sign_in("sue")
    names = walk.page.locator("table.grid tbody tr td:nth-child(2)").all_inner_texts()
    assert names == [company]
    assert "You see only the companies given to you" in walk.text("#limited-companies")
    assert walk.page.locator("text=Add Company").count() == 0
    walk.shot("39-limited-user-companies")
    assert (SHOTS / "39-limited-user-companies.png").stat().st_size > 10_000
    walk.go(f"/orders/{theirs[0]['id']}")
    assert "Not found" in walk.text("h1")
    walk.go("/orders")
    assert OTHER not in walk.page.content()
    walk.context.close()
