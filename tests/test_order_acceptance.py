"""The host's accept step is offered only to channels that ask for it, and gated like a download."""

from __future__ import annotations

import json

import pytest


def test_orders_accept_on_a_channel_that_does_not_ask_for_acceptance_says_so(run, company):
    run("import-orders", company)
    result = run("orders", "accept", company, ok=False)
    assert result.exit_code != 0 and "does not ask sellers to accept orders" in result.output
    assert all(o["awaiting_acceptance"] is False for o in run.json("orders", "list", "--company", company))


def test_orders_accept_is_refused_while_allow_order_download_is_off(run, company):
    run("website-settings", company, "--no-allow-order-download")
    result = run("orders", "accept", company, ok=False)
    assert result.exit_code != 0 and "Allow Order Download is off" in result.output


SPY_TOKEN = "spy-accept-token-5150"


@pytest.fixture
def accepting(run):
    """A channel that asks for acceptance and whose accept call fails, naming the token it was given."""
    from spy_plugin import SpyChannel

    from host.channel import plugins
    from plugin_spec import AcceptResult, ChannelError, hookimpl

    class Accepting(SpyChannel):
        @hookimpl
        def cartplugin_channel_info(self):
            info = super().cartplugin_channel_info()
            return info.model_copy(update={"capabilities": ["accept_orders"]})

        @hookimpl
        def cartplugin_download_orders(self, settings, since, unfulfilled_only):
            for order in super().cartplugin_download_orders(settings, since, unfulfilled_only):
                yield order.model_copy(update={"awaiting_acceptance": True})

        @hookimpl
        def cartplugin_accept_orders(self, settings, orders):
            self.calls.append(("accept_orders", {"orders": [o.source_order_id for o in orders]}))
            if self.fail:
                raise ChannelError(f"the channel refused token {settings.token.get_secret_value()}")
            return [AcceptResult(source_order_id=o.source_order_id, ok=True, message="accepted") for o in orders]

    channel = Accepting(name="accepting_channel", orders=3)
    channel.fail = True
    plugins.register(channel, name="accepting")
    try:
        run("companies", "add", "Accepting Co")
        run("website-settings", "Accepting Co", "--store-plugin", "accepting_channel", "--allow-order-download")
        run("cart-settings", "Accepting Co", "--set", f"token={SPY_TOKEN}")
        run("test-settings", "Accepting Co")
        run("import-orders", "Accepting Co")
        yield channel
    finally:
        plugins.unregister(channel)


def test_a_channel_that_fails_to_accept_leaves_every_order_waiting_and_never_shows_the_token(run, accepting):
    result = run("orders", "accept", "Accepting Co", "--json", ok=False)
    report = json.loads(result.stdout)
    assert result.exit_code == 1 and len(report) == 3 and not any(r["ok"] for r in report)
    assert all("the channel refused token ****5150" in r["message"] for r in report)
    assert SPY_TOKEN not in result.output
    assert all(o["awaiting_acceptance"] for o in run.json("orders", "list"))


def test_an_order_staff_cancelled_here_is_never_accepted_on_the_channel(run, accepting):
    accepting.fail = False
    first, *others = run.json("orders", "list")
    run("orders", "set-status", str(first["id"]), "Cancelled")
    report = run.json("orders", "accept", "Accepting Co")
    assert sorted(r["id"] for r in report) == sorted(o["id"] for o in others)
    assert accepting.calls[-1] == ("accept_orders", {"orders": sorted(o["source_order_id"] for o in others)})
    assert run.json("orders", "show", str(first["id"]))["awaiting_acceptance"] is True
