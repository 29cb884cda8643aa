"""The sandbox answers as Back Market's published orders API describes, and the plugin's
settings and mapping follow it: every endpoint and state transition the plugin uses, walked
with plain HTTP against the sandbox, checked against the OpenAPI description in ``reference/``."""

from __future__ import annotations

import re
from pathlib import Path

import requests
from bm_helpers import COMPANY_NAME, CONTACT_EMAIL, TOKEN

from backmarket import mapping
from backmarket.sandbox import Sandbox
from backmarket.settings import PLATFORM_URLS, PREPROD_URLS

SPEC = (Path(__file__).resolve().parents[1] / "reference" / "back-market-orders-api-openapi.yml").read_text("utf-8")
AGENT = f"BM-{COMPANY_NAME}-cartplugin;{CONTACT_EMAIL}"
HEADERS = {
    "Authorization": f"Basic {TOKEN}",
    "Accept-Language": "fr-fr",
    "User-Agent": AGENT,
    "Accept": "application/json",
}


def enum_of(schema: str) -> list[int]:
    block = SPEC.split(f"    {schema}:\n", 1)[1].split("description:", 1)[0]
    return [int(v) for v in re.findall(r"^\s+- (\d+)$", block, flags=re.M)]


def schema_fields(schema: str) -> set[str]:
    block = SPEC.split(f"    {schema}:\n", 1)[1]
    # up to the next schema (four spaces of indentation): its properties are at eight
    block = re.split(r"\n    [A-Za-z]+:\n", block, maxsplit=1)[0]
    return set(re.findall(r"^        ([a-z_]+):$", block, flags=re.M))


class Api:
    def __init__(self, sandbox: Sandbox):
        self.base = sandbox.base_url

    def get(self, path: str, headers: dict | None = None, **params):
        return requests.get(self.base + path, params=params, headers=headers or HEADERS, timeout=5)

    def post(self, order_id: int, body: dict):
        return requests.post(
            f"{self.base}/ws/orders/{order_id}", json={"order_id": order_id, **body}, headers=HEADERS, timeout=5
        )


def envelope(answer: requests.Response) -> dict:
    body = answer.json()
    assert set(body) == {"error", "requestId"} and {"code", "message"} <= set(body["error"]), body
    return body


def test_settings_know_every_platform_host_the_spec_lists() -> None:
    servers = set(re.findall(r"^- url: (\S+)$", SPEC, flags=re.M))
    assert servers == set(PLATFORM_URLS.values()) | set(PREPROD_URLS.values())


def test_the_states_and_fields_the_plugin_reads_are_the_published_ones() -> None:
    assert set(mapping.ORDER_STATE_NAMES) == set(enum_of("OrderState"))
    line_states = set(enum_of("OrderLineState"))
    assert (
        mapping.LINE_STATES_CANCELLED | {mapping.LINE_PAID, mapping.LINE_ACCEPTED, mapping.LINE_SHIPPED} <= line_states
    )
    order_fields = schema_fields("Order")
    assert {
        "order_id",
        "state",
        "price",
        "shipping_price",
        "sales_taxes",
        "currency",
        "date_creation",
        "date_modification",
        "orderlines",
        "tracking_number",
        "shipping_address",
        "billing_address",
    } <= order_fields
    assert {"id", "state", "listing", "product", "quantity", "price", "sales_taxes"} <= schema_fields("OrderLine")
    assert {"order_id", "new_state", "sku", "tracking_number", "tracking_url", "shipper", "imei", "serial_number"} <= (
        schema_fields("UpdateOrder")
    )
    assert "without the shipping price" in SPEC and "neither in state=0 (New Order) nor state=8" in SPEC


def test_the_listing_pages_hides_states_0_and_8_and_filters_by_modification(bm_sandbox: Sandbox) -> None:
    api = Api(bm_sandbox)
    hidden = {o["order_id"] for o in bm_sandbox.orders() if o["state"] in (0, 8)}
    assert hidden  # the sandbox holds them, the listing must not show them
    seen, url = [], "/ws/orders"
    params: dict = {"page-size": "5"}
    while url:
        body = api.get(url, **params).json()
        assert set(body) == {"count", "next", "previous", "results"}
        seen += body["results"]
        url, params = (body["next"].replace(bm_sandbox.base_url, "") if body["next"] else None), {}
    assert len(seen) == body["count"] and not hidden & {o["order_id"] for o in seen}
    assert api.get("/ws/orders", state="8").json()["results"] == []
    pivot = seen[len(seen) // 2]["date_modification"]
    later = api.get("/ws/orders", date_modification=pivot, **{"page-size": "50"}).json()["results"]
    assert later and all(o["date_modification"] >= pivot for o in later)
    assert api.get(f"/ws/orders/{next(iter(hidden))}").status_code == 404
    too_big = api.get("/ws/orders", **{"page-size": "51"})
    assert too_big.status_code == 400 and envelope(too_big)


def test_an_order_is_accepted_line_by_line_then_shipped_once(bm_sandbox: Sandbox) -> None:
    api = Api(bm_sandbox)
    (order_id,) = map(int, bm_sandbox.add_orders(1))
    order = api.get(f"/ws/orders/{order_id}").json()
    assert order["state"] == 1 and {x["state"] for x in order["orderlines"]} == {1}
    early = api.post(order_id, {"new_state": 3, "tracking_number": "T1", "shipper": "UPS"})
    assert early.status_code == 400 and envelope(early)["error"]["code"] == "invalid_state"
    for line in order["orderlines"]:
        accepted = api.post(order_id, {"new_state": 2, "sku": line["listing"]})
        assert accepted.status_code == 200
    assert accepted.json()["state"] == 3 and {x["state"] for x in accepted.json()["orderlines"]} == {2}
    again = api.post(order_id, {"new_state": 2, "sku": order["orderlines"][0]["listing"]})
    assert again.status_code == 400 and envelope(again)
    shipped = api.post(order_id, {"new_state": 3, "tracking_number": "T1", "shipper": "UPS",
                                  "tracking_url": "https://ups.example/T1"})  # fmt: skip
    assert shipped.status_code == 200 and shipped.json()["state"] == 9 and shipped.json()["tracking_number"] == "T1"
    assert {x["state"] for x in shipped.json()["orderlines"]} == {3}
    repeat = api.post(order_id, {"new_state": 3, "tracking_number": "T1", "shipper": "UPS"})
    assert repeat.status_code == 400 and envelope(repeat)


def test_a_line_the_seller_cannot_serve_is_cancelled_and_buyer_cancellations_reach_4_5_or_6(
    bm_sandbox: Sandbox,
) -> None:
    api = Api(bm_sandbox)
    a, b, c = map(int, bm_sandbox.add_orders(3))
    line = api.get(f"/ws/orders/{a}").json()["orderlines"][0]
    assert api.post(a, {"new_state": 4, "sku": line["listing"]}).json()["orderlines"][0]["state"] == 4
    assert {x["state"] for x in bm_sandbox.cancel_order(b)["orderlines"]} == {4}  # before acceptance
    for x in api.get(f"/ws/orders/{c}").json()["orderlines"]:
        api.post(c, {"new_state": 2, "sku": x["listing"]})
    assert {x["state"] for x in bm_sandbox.cancel_order(c)["orderlines"]} == {5}  # accepted, not shipped
    shipped = next(o for o in bm_sandbox.orders() if o["state"] == 9)
    assert {x["state"] for x in bm_sandbox.cancel_order(shipped["order_id"])["orderlines"]} == {6}
    listed = {o["order_id"] for o in api.get("/ws/orders", **{"page-size": "50", "page": "1"}).json()["results"]}
    listed |= {
        o["order_id"] for o in api.get("/ws/orders", **{"page-size": "50", "page": "2"}).json().get("results", [])
    }
    assert {a, b, c, shipped["order_id"]} <= listed


def test_errors_come_in_the_envelope_or_as_cloudflare_html(bm_sandbox: Sandbox) -> None:
    api = Api(bm_sandbox)
    wrong = api.get("/ws/orders", headers={**HEADERS, "Authorization": "Basic nope"})
    assert wrong.status_code == 401 and envelope(wrong)["requestId"]
    no_language = api.get("/ws/orders", headers={k: v for k, v in HEADERS.items() if k != "Accept-Language"})
    assert no_language.status_code == 400 and envelope(no_language)["error"]["code"] == "language_required"
    blocked = api.get("/ws/orders", headers={**HEADERS, "User-Agent": "python-requests/2.32"})
    assert (
        blocked.status_code == 403
        and blocked.headers["Content-Type"].startswith("text/html")
        and blocked.headers["cf-ray"]
    )
    bm_sandbox.set_faults(too_many_requests=1)
    limited = api.get("/ws/orders")
    assert limited.status_code == 429 and limited.headers["Retry-After"] and "html" in limited.headers["Content-Type"]


def test_a_lost_answer_is_a_502_after_the_change_was_applied(bm_sandbox: Sandbox) -> None:
    api = Api(bm_sandbox)
    (order_id,) = map(int, bm_sandbox.add_orders(1))
    line = api.get(f"/ws/orders/{order_id}").json()["orderlines"][0]
    bm_sandbox.set_faults(lose_answer=1)
    lost = api.post(order_id, {"new_state": 2, "sku": line["listing"]})
    assert lost.status_code == 502 and bm_sandbox.order(order_id)["orderlines"][0]["state"] == 2
