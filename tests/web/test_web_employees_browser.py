"""Employees in a real browser (Chromium): an admin adds an employee with the password typed
twice, disables one, resets a password; an employee changes their own password and stays
signed in (screenshots 37-38)."""

from __future__ import annotations

from web_support import PASSWORD, SHOTS, Walk

from host.records import audit
from host.store.db import connect

ZOE_PASSWORD = "zoe's first long password"
NEW_PASSWORD = "walt's own new passphrase"


def test_employees_add_disable_reset_and_change_own_password_in_a_real_browser(browser, web, db_target):
    admin = Walk(browser, web)
    admin.sign_in("ann")
    admin.page.click("header.top nav a:has-text('Employees')")
    admin.page.wait_for_url("**/users")
    admin.page.fill("#name", "zoe")
    admin.page.select_option("#role", "support")
    admin.page.fill("#password", ZOE_PASSWORD)
    admin.page.fill("#confirm", ZOE_PASSWORD)
    admin.page.click("button:has-text('Add Employee')")
    admin.page.wait_for_url("**/users")
    assert "Employee zoe added (support)" in admin.text(".flash")

    # rita is signed in elsewhere; disabling her ends that session at her next click
    rita = Walk(browser, web)
    rita.sign_in("rita")
    admin.page.click("tr[data-name='rita'] button:has-text('Disable')")
    admin.page.wait_for_url("**/users")
    assert "rita is disabled" in admin.text(".flash")
    assert admin.text("tr[data-name='rita'] td.status") == "Disabled"
    assert "Cancel Queued Jobs" in admin.text("tr[data-name='sue'] td.may")
    admin.shot("37-employees")
    rita.go("/orders")
    assert "/login" in rita.page.url
    rita.page.fill("#name", "rita")
    rita.page.fill("#password", PASSWORD)
    rita.page.click("button:has-text('Sign in')")
    assert rita.text("p.error") == "Wrong user name or password."
    rita.context.close()

    # Reset Password of sue: her typed passwords must match
    admin.page.click("tr[data-name='sue'] a:has-text('Reset Password')")
    admin.page.fill("#password", "sue's reset password!")
    admin.page.fill("#confirm", "sue's reset password!")
    admin.page.click("button:has-text('Reset Password')")
    admin.page.wait_for_url("**/users")
    assert "Password of sue reset" in admin.text(".flash")
    admin.context.close()

    # walt changes his own password: this browser stays signed in, his other one is signed out
    other = Walk(browser, web)
    other.sign_in("walt")
    walt = Walk(browser, web)
    walt.sign_in("walt")
    walt.page.click("header.top a:has-text('My Password')")
    walt.page.wait_for_url("**/account/password")
    walt.page.fill("#current", PASSWORD)
    walt.page.fill("#password", NEW_PASSWORD)
    walt.page.fill("#confirm", NEW_PASSWORD)
    walt.page.click("button:has-text('Change Password')")
    walt.page.wait_for_url("**/account/password")
    assert "Password changed. You stay signed in here" in walt.text(".flash")
    walt.shot("38-change-own-password")
    walt.go("/orders")
    assert walt.page.url.endswith("/orders")
    other.go("/orders")
    assert "/login" in other.page.url
    other.context.close()
    walt.context.close()

    assert (SHOTS / "37-employees.png").stat().st_size > 10_000
    db = connect(db_target)
    try:
        log = [(e["actor"], e["action"], e["target"]) for e in reversed(audit.entries(db))]
    finally:
        db.close()
    assert log == [
        ("ann", "employee added", "zoe"),
        ("ann", "employee disabled", "rita"),
        ("ann", "employee password reset", "sue"),
        ("walt", "own password changed", "walt"),
    ]
    for walk in (admin, walt):  # no password typed was ever sent back in a page
        assert not [body for body in walk.bodies if ZOE_PASSWORD in body or NEW_PASSWORD in body]
