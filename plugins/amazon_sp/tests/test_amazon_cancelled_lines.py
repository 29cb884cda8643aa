"""An Amazon order item whose cancellation was carried out (``cancellation.cancellationExecution``,
read with includedData CANCELLATION) is flagged; a cancellation only requested is not yet; every
item of a CANCELLED order is. The sandbox cancels one item and answers as the models say."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest
from amz_helpers import validate
from test_amazon_kit import settings_for

from amazon_sp import client, mapping, plugin
from amazon_sp.sandbox import Sandbox
from plugin_spec import ChannelOrder


def _two_items(sandbox: Sandbox) -> dict:
    return next(
        o for o in sandbox.orders()
        if o["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED" and o["fulfillment"]["fulfilledBy"] == "MERCHANT"
        and len(o["orderItems"]) == 2
    )  # fmt: skip


def test_the_download_asks_for_the_items_cancellations() -> None:
    assert "CANCELLATION" in client.INCLUDED_DATA.split(",")


def test_an_item_the_buyer_cancelled_is_flagged_and_the_order_stands(amz_sandbox: Sandbox) -> None:
    target = _two_items(amz_sandbox)
    gone = target["orderItems"][0]["orderItemId"]
    after = amz_sandbox.cancel_item(target["orderId"], gone)
    assert after["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
    validate("orders_2026-01-01", "ItemCancellation", after["orderItems"][0]["cancellation"])
    since = mapping.timestamp(target["lastUpdatedTime"], "lastUpdatedTime") - timedelta(seconds=1)
    found = [
        o for o in plugin.cartplugin_download_orders(
            settings=settings_for(amz_sandbox), since=since, unfulfilled_only=True, credentials=None)
        if isinstance(o, ChannelOrder) and o.source_order_id == target["orderId"]
    ]  # fmt: skip
    assert [(line.source_line_id, line.channel_cancelled) for line in found[-1].lines] == [
        (gone, True), (target["orderItems"][1]["orderItemId"], False)
    ]  # fmt: skip
    assert found[-1].channel_cancelled is False


def test_a_cancellation_only_requested_is_not_one_yet_and_a_cancelled_order_flags_every_item(
    amz_sandbox: Sandbox,
) -> None:
    target = _two_items(amz_sandbox)
    raw = copy.deepcopy(target)
    raw["orderItems"][0]["cancellation"] = {"cancellationRequest": {"requester": "BUYER", "cancelReason": "late"}}
    order = mapping.channel_order(raw)
    assert [line.channel_cancelled for line in order.lines] == [False, False]
    cancelled = amz_sandbox.set_status(target["orderId"], "CANCELLED")
    order = mapping.channel_order(cancelled)
    assert order.channel_cancelled and all(line.channel_cancelled for line in order.lines)


def test_cancelling_every_item_cancels_the_order_and_a_shipped_item_cannot_be(amz_sandbox: Sandbox) -> None:
    target = _two_items(amz_sandbox)
    for item in target["orderItems"]:
        after = amz_sandbox.cancel_item(target["orderId"], item["orderItemId"])
    assert after["fulfillment"]["fulfillmentStatus"] == "CANCELLED"
    shipped = next(o for o in amz_sandbox.orders() if o["fulfillment"]["fulfillmentStatus"] == "SHIPPED")
    with pytest.raises(ValueError, match="cannot be cancelled"):
        amz_sandbox.cancel_item(shipped["orderId"], shipped["orderItems"][0]["orderItemId"])
    with pytest.raises(KeyError):
        amz_sandbox.cancel_item(target["orderId"], "no-such-item")
