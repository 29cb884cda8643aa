"""Void Shipment, Update Tracking (or the channel's portal), Retry of a refused upload, and the
carrier select of Ship Items, on the web admin's pages (a real server, the Back Market Pro sandbox)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support import fetch_rows
from web_support import signed_in

from host.store.db import connect


@pytest.fixture
def shop(run, company):
    run("import-orders", company)
    return run.json("orders", "list")


def _audit(db_target: Path, action: str) -> list[tuple[str, str, str]]:
    return fetch_rows(
        db_target, "SELECT actor, target, details FROM audit_log WHERE action = :action ORDER BY id", {"action": action}
    )


def _form_action(html: str, label: str) -> str:
    """The action of the form whose button says ``label``."""
    for form in re.findall(r"<form [^>]*action=\"([^\"]+)\"[^>]*>(.*?)</form>", html, re.S):
        if f">{label}</button>" in form[1]:
            return form[0]
    raise AssertionError(f"no {label} button")


def test_warehouse_voids_a_shipment_before_upload_and_the_change_log_says_who(web, run, shop, db_target):
    order = shop[0]
    run("orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", "1Z999AA10123456784")
    http, token = signed_in(web, "walt")
    page = http.get(f"{web.url}/orders/{order['id']}", timeout=10).text
    answer = http.post(web.url + _form_action(page, "Void Shipment"), data={"csrf_token": token}, timeout=10)
    assert "Shipment voided: order" in answer.text and "is Unshipped again" in answer.text
    shown = run.json("orders", "show", str(order["id"]))
    assert shown["shipments"] == [] and shown["shipping_status"] == "Unshipped"
    ((actor, target, details),) = _audit(db_target, "shipment voided")
    assert actor == "walt" and target == f"order {order['source_order_id']}" and "1Z999AA10123456784" in details
    reader, _ = signed_in(web, "rita")  # read-only: no buttons
    run("orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", "1Z999AA10123456784")
    assert "Void Shipment" not in reader.get(f"{web.url}/orders/{order['id']}", timeout=10).text


def test_after_upload_back_market_pro_offers_no_update_but_the_portal(web, run, shop, db_target):
    order = shop[0]
    run("orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", "1Z999AA10123456784")
    run("worker", "--once", "--processes", "1")
    http, token = signed_in(web, "walt")
    page = http.get(f"{web.url}/orders/{order['id']}", timeout=10).text
    assert "change it in the channel's portal" in page
    assert "Update Tracking</button>" not in page and "Void Shipment</button>" not in page
    shipment_id = run.json("orders", "show", str(order["id"]))["shipments"][0]["id"]
    before = connect(db_target).execute("SELECT * FROM shipments").fetchall()
    answer = http.post(
        f"{web.url}/orders/{order['id']}/shipments/{shipment_id}/tracking",
        data={"csrf_token": token, "tracking_number": "1Z12345E6605272234"},
        timeout=10,
    )
    assert (
        "Tracking not changed: BackMarketForBusiness WebsiteCartPlugin does not take a changed tracking" in answer.text
    )
    assert "cartplugin orders" not in answer.text  # staff words, no command
    assert connect(db_target).execute("SELECT * FROM shipments").fetchall() == before


def test_ship_items_offers_the_channel_s_carriers_and_refuses_markup_with_a_form_error(web, run, shop, db_target):
    order = shop[0]
    http, token = signed_in(web, "walt")
    page = http.get(f"{web.url}/orders/{order['id']}", timeout=10).text
    select = re.search(r'<select id="carrier" name="carrier">(.*?)</select>', page, re.S)
    assert select and all(
        f">{name}</option>" in select.group(1) for name in ("Colissimo", "DHL Express", "UPS", "Other")
    )
    url = f"{web.url}/orders/{order['id']}/ship"
    for data, error in [
        ({"carrier": "Other", "tracking_number": "<b>x</b>", "other_carrier": "Coursier Paris"}, "without &lt; &gt;"),
        ({"carrier": "UPS", "tracking_number": "1Z999AA10123456785"}, "is not a UPS tracking number"),
        ({"carrier": "Other", "tracking_number": "CP-42"}, "Name the carrier."),
    ]:
        answer = http.post(url, data={"csrf_token": token, **data}, timeout=10)
        assert answer.status_code == 422 and error in answer.text, answer.text[-2000:]
    assert run.json("orders", "show", str(order["id"]))["shipments"] == []
    answer = http.post(url, data={"csrf_token": token, "carrier": "Other", "other_carrier": "Coursier Paris",
                                  "tracking_number": "CP-42"}, timeout=10)  # fmt: skip
    assert answer.status_code == 200
    (shipment,) = run.json("orders", "show", str(order["id"]))["shipments"]
    assert (shipment["carrier"], shipment["tracking_number"]) == ("Coursier Paris", "CP-42")


def test_attention_lists_a_refused_upload_with_the_channel_s_words_and_retry_sends_it_again(
    web, run, shop, sandbox, db_target
):
    order = shop[0]
    sandbox.cancel_order(order["source_order_id"])
    run("orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", "1Z999AA10123456784")
    run("worker", "--once", "--processes", "1")
    http, token = signed_in(web, "walt")
    page = http.get(f"{web.url}/attention", timeout=10).text
    row = re.search(r'<tr id="refused-\d+">(.*?)</tr>', page, re.S)
    assert row and "is cancelled; it cannot be shipped" in row.group(1) and "HTTP 422" in row.group(1)
    assert "Retry</button>" in row.group(1) and "Void Shipment</button>" in row.group(1)
    sandbox.edit_order(order["source_order_id"], cancelled=False)
    answer = http.post(web.url + _form_action(row.group(1), "Retry"), data={"csrf_token": token, "back": "attention"},
                       timeout=10)  # fmt: skip
    assert answer.url.endswith("/attention") and "is sent again with the next upload" in answer.text
    assert not re.search(r'<tr id="refused-\d+">', answer.text)  # no longer waiting for staff
    run("worker", "--once", "--processes", "1")
    assert run.json("orders", "show", str(order["id"]))["source_updated_for_shipping"] is True
    assert [a for a, _, _ in _audit(db_target, "tracking upload retried")] == ["walt"]


def test_update_tracking_on_a_channel_that_takes_a_change_replaces_it_with_the_next_upload(web, run, db_target):
    from correcting_plugin import Correcting
    from support import registered

    with registered(Correcting(), "correcting_shop") as channel:
        run("companies", "add", "Fix Co")
        run("website-settings", "Fix Co", "--store-plugin", "correcting_shop", "--allow-order-download",
            "--allow-tracking-upload")  # fmt: skip
        run("cart-settings", "Fix Co", "--set", "token=spy-token-1234")
        run("test-settings", "Fix Co")
        run("import-orders", "Fix Co")
        order = run.json("orders", "list")[0]
        run("orders", "ship", str(order["id"]), "--carrier", "UPS", "--tracking", "1Z999AA10123456784")
        run("worker", "--once", "--processes", "1")
        http, token = signed_in(web, "walt")
        page = http.get(f"{web.url}/orders/{order['id']}", timeout=10).text
        assert "channel's portal" not in page
        url = web.url + _form_action(page, "Update Tracking")
        answer = http.post(url, data={"csrf_token": token, "tracking_number": "<b>x</b>"}, timeout=10)
        assert "Tracking not changed: the tracking number must be plain printable text" in answer.text
        answer = http.post(url, data={"csrf_token": token, "tracking_number": "1Z12345E6605272234"}, timeout=10)
        assert "changed; the channel gets it with the next upload" in answer.text
        assert "replaces 1Z999AA10123456784" in answer.text
        run("worker", "--once", "--processes", "1")
        assert channel.tracking == {order["source_order_id"]: "1Z12345E6605272234"}
        ((actor, _, details),) = _audit(db_target, "tracking updated")
        assert actor == "walt" and "1Z999AA10123456784" in details and "1Z12345E6605272234" in details
