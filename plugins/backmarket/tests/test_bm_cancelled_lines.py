"""Orderlines in a final state (4 cancelled, 5 refunded before shipping, 6 refunded after, 7 not
paid) are flagged line by line; the order is cancelled only when every line is. The package of
what is left ships, with the single unit's IMEI when one unit is left."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backmarket import mapping, plugin
from backmarket.sandbox import Sandbox
from backmarket.sandbox_data import OrderFactory
from plugin_spec import ChannelOrder, Shipment, ShipmentLine

IMEI = "356938035643809"


def _raw(*states: int) -> dict:
    now = datetime.now(UTC)
    raw = OrderFactory(seed=11).order(now - timedelta(hours=2), now - timedelta(hours=1), state=3)
    first = raw["orderlines"][0]
    raw["orderlines"] = [
        dict(first, id=first["id"] * 10 + i, listing=f"SKU-{i}", state=s) for i, s in enumerate(states)
    ]
    return raw


@pytest.mark.parametrize("final", [4, 5, 6, 7])
def test_a_line_in_a_final_state_is_flagged_and_the_order_stands_while_another_line_does(final) -> None:
    order = mapping.order(_raw(final, 2))
    assert [line.channel_cancelled for line in order.lines] == [True, False]
    assert order.channel_cancelled is False
    assert order.channel_financial_status == "partially refunded"


def test_every_line_in_a_final_state_cancels_the_order() -> None:
    order = mapping.order(_raw(4, 5))
    assert order.channel_cancelled is True and all(line.channel_cancelled for line in order.lines)


def test_a_line_the_buyer_cancels_is_flagged_and_the_rest_ships_with_the_single_unit_imei(
    bm_sandbox: Sandbox, bm_settings
) -> None:
    target = next(
        o for o in bm_sandbox.orders()
        if o["state"] == 3 and len(o["orderlines"]) == 2 and o["orderlines"][1]["quantity"] == 1
        and all(line["state"] == 2 for line in o["orderlines"])
    )  # fmt: skip
    gone, kept = target["orderlines"]
    assert bm_sandbox.cancel_line(target["order_id"], gone["id"])["orderlines"][0]["state"] == 5  # accepted: refunded

    since = datetime.fromisoformat(target["date_modification"].replace("Z", "+00:00"))
    found = [
        o for o in plugin.cartplugin_download_orders(settings=bm_settings, since=since, unfulfilled_only=True)
        if isinstance(o, ChannelOrder) and o.source_order_id == str(target["order_id"])
    ]  # fmt: skip
    assert [line.channel_cancelled for line in found[-1].lines] == [True, False]
    assert found[-1].channel_cancelled is False

    # the host ships what is left: one line of one unit, so its IMEI goes with it
    shipment = Shipment(
        shipment_id=1, source_order_id=str(target["order_id"]), carrier="Colissimo", tracking_number="6A00012345678",
        shipped_at=datetime.now(UTC),
        lines=[ShipmentLine(source_line_id=str(kept["id"]), sku=kept["listing"], quantity=1, serial_numbers=[IMEI])],
    )  # fmt: skip
    (result,) = plugin.cartplugin_upload_tracking(settings=bm_settings, shipments=[shipment])
    assert result.ok, result.message
    shipped = bm_sandbox.order(target["order_id"])
    assert shipped["state"] == 9 and [line["state"] for line in shipped["orderlines"]] == [5, 3]
    assert shipped["orderlines"][1]["imei"] == IMEI


def test_a_shipped_line_cannot_be_cancelled_nor_an_unknown_one(bm_sandbox: Sandbox) -> None:
    shipped = next(o for o in bm_sandbox.orders() if o["state"] == 9)
    with pytest.raises(ValueError, match="shipped already"):
        bm_sandbox.cancel_line(shipped["order_id"], shipped["orderlines"][0]["id"])
    with pytest.raises(KeyError):
        bm_sandbox.cancel_line(shipped["order_id"], 999_999_999)
