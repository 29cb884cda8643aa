"""The host's accept step is offered only to channels that ask for it, and gated like a download."""

from __future__ import annotations


def test_orders_accept_on_a_channel_that_does_not_ask_for_acceptance_says_so(run, company):
    run("import-orders", company)
    result = run("orders", "accept", company, ok=False)
    assert result.exit_code != 0 and "does not ask sellers to accept orders" in result.output
    assert all(o["awaiting_acceptance"] is False for o in run.json("orders", "list", "--company", company))


def test_orders_accept_is_refused_while_allow_order_download_is_off(run, company):
    run("website-settings", company, "--no-allow-order-download")
    result = run("orders", "accept", company, ok=False)
    assert result.exit_code != 0 and "Allow Order Download is off" in result.output
