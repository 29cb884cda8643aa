"""A line item's ``state`` (Back Market's orderline states) says the channel cancelled the line:
the mapping flags it (read one by one and read as a whole page alike), the sandbox cancels a line
and refuses to ship it, and the plugin's download brings the flag."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta

import pytest
import requests
from test_bmp_mapping import ORDER

from backmarket_pro import mapping, plugin
from backmarket_pro.sandbox import Sandbox
from plugin_spec import BadOrder, ChannelOrder


def _two_lines(*states: object) -> dict:
    raw = copy.deepcopy(ORDER)
    first = raw["line_items"][0]
    raw["line_items"] = [dict(first, id=f"L{i + 1}", sku=f"SKU-{i + 1}") for i in range(len(states))]
    for line, state in zip(raw["line_items"], states, strict=True):
        if state != "absent":
            line["state"] = state
    return raw


def _both_ways(raw: dict) -> tuple[ChannelOrder | BadOrder, list[ChannelOrder] | None]:
    one = mapping.order_or_bad(copy.deepcopy(raw))
    try:
        whole, _ = mapping.read_page(json.dumps({"results": [raw], "next": None}).encode())
    except ValueError:
        return one, None
    return one, whole


@pytest.mark.parametrize(
    "state, cancelled",
    [(4, True), (5, True), (6, True), (7, True), (1, False), (2, False), (3, False), (None, False),
     ("absent", False), (99, False)],
)  # fmt: skip
def test_the_cancelled_and_refunded_orderline_states_flag_the_line_and_only_that_line(state, cancelled) -> None:
    one, whole = _both_ways(_two_lines(state, 2))
    assert isinstance(one, ChannelOrder) and whole is not None
    for order in (one, whole[0]):
        assert [line.channel_cancelled for line in order.lines] == [cancelled, False]
        assert order.channel_cancelled is False  # the order's own "cancelled" field decides that
    assert one.model_dump() == whole[0].model_dump()


@pytest.mark.parametrize("state", ["4", True, 4.0, [4], {"state": 4}])
def test_a_state_that_is_not_an_integer_makes_the_order_bad_naming_the_field(state) -> None:
    one, whole = _both_ways(_two_lines(2, state))
    assert isinstance(one, BadOrder) and "line_items[1].state must be an integer" in one.message
    assert whole is None  # the page reader refuses it too: the page is read order by order


def test_the_sandbox_cancels_a_line_refuses_to_ship_it_and_ships_the_rest(sandbox: Sandbox, settings) -> None:
    target = next(o for o in sandbox.orders() if o["fulfillment_status"] == "unfulfilled"
                  and not o["cancelled"] and len(o["line_items"]) >= 2)  # fmt: skip
    gone, kept = target["line_items"][0], target["line_items"][1:]
    changed = sandbox.cancel_line(target["id"], gone["id"])
    assert changed["line_items"][0]["state"] == 4 and changed["cancelled"] is False
    assert changed["updated_at"] > target["updated_at"]

    since = datetime.fromisoformat(target["updated_at"]) - timedelta(seconds=1)
    found = [
        o for o in plugin.cartplugin_download_orders(settings=settings, since=since, unfulfilled_only=True)
        if isinstance(o, ChannelOrder) and o.source_order_id == target["id"]
    ]  # fmt: skip
    assert [line.channel_cancelled for line in found[-1].lines] == [True] + [False] * len(kept)

    url = f"{sandbox.base_url}/2024-03/orders/{target['id']}/shipments"
    headers = {"x-api-key": sandbox.api_key}
    named = requests.post(url, headers=headers, timeout=5, json={
        "tracking_number": "1Z999AA10123456784", "carrier": "UPS",
        "lines": [{"line_id": gone["id"], "sku": gone["sku"], "quantity": 1}]})  # fmt: skip
    assert named.status_code == 422 and "cancelled" in named.json()["error"]["message"]
    whole = requests.post(url, headers=headers, timeout=5, json={"tracking_number": "1Z999AA10123456784",
                                                                  "carrier": "UPS"})  # fmt: skip
    assert whole.status_code == 201
    assert {line["line_id"] for line in whole.json()["shipment"]["lines"]} == {line["id"] for line in kept}
    assert whole.json()["order"]["fulfillment_status"] == "fulfilled"  # the cancelled line is not waited for


def test_cancelling_every_line_cancels_the_order_and_a_shipped_line_cannot_be_cancelled(sandbox: Sandbox) -> None:
    target = next(o for o in sandbox.orders() if o["fulfillment_status"] == "unfulfilled" and not o["cancelled"])
    for line in target["line_items"]:
        last = sandbox.cancel_line(target["id"], line["id"])
    assert last["cancelled"] is True and {line["state"] for line in last["line_items"]} == {4}
    shipped = next(o for o in sandbox.orders() if o["fulfillment_status"] == "fulfilled")
    with pytest.raises(ValueError, match="shipped already"):
        sandbox.cancel_line(shipped["id"], shipped["line_items"][0]["id"])
    with pytest.raises(KeyError):
        sandbox.cancel_line(target["id"], "no-such-line")
    answer = requests.post(
        f"{sandbox.root_url}/_sandbox/orders/{shipped['id']}/lines/{shipped['line_items'][0]['id']}/cancel",
        timeout=5,
    )
    assert answer.status_code == 422


def test_an_order_cancelled_in_the_portal_has_its_unshipped_lines_cancelled_too(sandbox: Sandbox) -> None:
    target = next(o for o in sandbox.orders() if o["fulfillment_status"] == "unfulfilled" and not o["cancelled"])
    assert {line["state"] for line in target["line_items"]} == {2}
    after = sandbox.cancel_order(target["id"])
    assert {line["state"] for line in after["line_items"]} == {4}
    mapped = mapping.order_or_bad(after)
    assert isinstance(mapped, ChannelOrder) and mapped.channel_cancelled
    assert all(line.channel_cancelled for line in mapped.lines)


def test_an_order_whose_cancellation_is_undone_has_its_lines_standing_again(sandbox: Sandbox) -> None:
    target = next(o for o in sandbox.orders() if o["fulfillment_status"] == "unfulfilled" and not o["cancelled"])
    sandbox.cancel_order(target["id"])
    undone = sandbox.edit_order(target["id"], cancelled=False)
    assert {line["state"] for line in undone["line_items"]} == {2}
    mapped = mapping.order_or_bad(undone)
    assert isinstance(mapped, ChannelOrder) and not any(line.channel_cancelled for line in mapped.lines)
