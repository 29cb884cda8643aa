"""The sandbox answers as Amazon's published Orders models say: every call the plugin will make,
walked with plain HTTP, each answer validated (strictly: no field the model does not define)
against the vendored Swagger 2.0 definitions in ``reference/``, and the request bodies the plugin
sends validated against the request schema."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta

import jsonschema
import pytest
import requests
from amz_helpers import LONG_AGO, Api, SandboxChannel, operation, shipment_body, spec, validate

from amazon_sp import sandbox as sb
from amazon_sp.sandbox import SEARCH_PATH, USAGE_PLANS, Sandbox

V2026, V0 = "orders_2026-01-01", "ordersV0"
CONFIRM = "/orders/v0/orders/{orderId}/shipmentConfirmation"


def search_parameters() -> dict[str, dict]:
    return {p["name"]: p for p in operation(V2026, SEARCH_PATH, "get")["parameters"]}


def error_list(answer: requests.Response, status: int, code: str | None = None, *, model: str = V2026) -> dict:
    """The answer is ``status`` with the model's error envelope (and the code, when given)."""
    assert answer.status_code == status, answer.text[:300]
    body = answer.json()
    validate(model, "ErrorList" if model == V2026 else "ConfirmShipmentErrorResponse", body)
    assert body["errors"] and all(e["message"] for e in body["errors"])
    if code is not None:
        assert body["errors"][0]["code"] == code, body
    assert answer.headers["x-amzn-RequestId"]
    return body


def usage_plan(description: str) -> tuple[float, int]:
    rate, burst = re.search(
        r"\|\s*([\d.]+)\s*\|\s*(\d+)\s*\|\s*$", description.split("**Usage Plan:**")[1], re.M
    ).groups()
    return float(rate), int(burst)


@pytest.fixture
def api(amz_sandbox: Sandbox) -> Api:
    return Api(amz_sandbox)


@pytest.fixture
def varied(amz_sandbox: Sandbox) -> Sandbox:
    """Every kind of order the model names, at least once, whatever the seed made."""
    for status, by in (("PARTIALLY_SHIPPED", "MERCHANT"), ("CANCELLED", "MERCHANT"), ("PENDING", "MERCHANT"),
                       ("SHIPPED", "AMAZON"), ("UNSHIPPED", "AMAZON"), ("SHIPPED", "MERCHANT")):  # fmt: skip
        amz_sandbox.add_order(status, by)
    amz_sandbox.add_order(marketplace_id="A13V1IB3VIYZZH")
    return amz_sandbox


# --- the parameters --------------------------------------------------------------------------------


def test_the_sandbox_knows_exactly_the_search_parameters_and_enums_the_model_lists() -> None:
    params = search_parameters()
    assert set(params) == {"createdAfter", "createdBefore", "lastUpdatedAfter", "lastUpdatedBefore",
                           "fulfillmentStatuses", "marketplaceIds", "fulfilledBy", "maxResultsPerPage",
                           "paginationToken", "includedData"}  # fmt: skip
    # none is required by the model (exactly one of createdAfter / lastUpdatedAfter, by its text)
    assert not [name for name, p in params.items() if p.get("required")]
    assert {name for name, p in params.items() if p["type"] == "array"} == set(sb.ARRAY_PARAMS)
    assert list(sb.INCLUDED_DATA) == params["includedData"]["items"]["enum"]
    assert list(sb.FULFILLMENT_STATUSES) == params["fulfillmentStatuses"]["items"]["enum"]
    assert list(sb.FULFILLMENT_STATUSES) == spec(V2026)["definitions"]["FulfillmentStatus"]["enum"]
    assert list(sb.FULFILLED_BY) == params["fulfilledBy"]["items"]["enum"]
    assert params["marketplaceIds"]["maxItems"] == sb.MAX_MARKETPLACE_IDS
    assert f"between 1 and {sb.PAGE_SIZE_MAX}" in params["maxResultsPerPage"]["description"]
    assert "**Default:** 100" in params["maxResultsPerPage"]["description"]
    assert "at or after this time" in params["lastUpdatedAfter"]["description"]  # inclusive
    assert (
        "with the exception of `maxResultsPerPage` and `includedData`"
        in (spec(V2026)["definitions"]["Pagination"]["description"])
    )


def test_every_enum_value_is_accepted_and_anything_else_refused(api: Api) -> None:
    for name, allowed in (("includedData", sb.INCLUDED_DATA), ("fulfillmentStatuses", sb.FULFILLMENT_STATUSES),
                          ("fulfilledBy", sb.FULFILLED_BY)):  # fmt: skip
        for value in allowed:
            answer = api.search(lastUpdatedAfter=LONG_AGO, **{name: value})
            assert answer.status_code == 200, (name, value, answer.text)
            validate(V2026, "SearchOrdersResponse", answer.json())
        assert api.search(lastUpdatedAfter=LONG_AGO, **{name: list(allowed)}).status_code == 200
        error_list(api.search(lastUpdatedAfter=LONG_AGO, **{name: "NOT_A_VALUE"}), 400, "InvalidInput")
        error_list(api.search(lastUpdatedAfter=LONG_AGO, **{name: allowed[0].lower()}), 400, "InvalidInput")


@pytest.mark.parametrize(
    "params, why",
    [
        ({}, "neither createdAfter nor lastUpdatedAfter"),
        ({"createdAfter": LONG_AGO, "lastUpdatedAfter": LONG_AGO}, "both"),
        ({"createdAfter": LONG_AGO, "lastUpdatedBefore": "2021-01-01T00:00:00Z"}, "created with lastUpdatedBefore"),
        ({"lastUpdatedAfter": LONG_AGO, "createdBefore": "2021-01-01T00:00:00Z"}, "updated with createdBefore"),
        ({"lastUpdatedAfter": "2021-01-01T00:00:00Z", "lastUpdatedBefore": "2020-01-01T00:00:00Z"}, "before < after"),
        ({"lastUpdatedAfter": "2020-01-01T00:00:00"}, "no offset"),
        ({"lastUpdatedAfter": "yesterday"}, "not ISO 8601"),
        ({"lastUpdatedAfter": LONG_AGO, "maxResultsPerPage": "0"}, "page size 0"),
        ({"lastUpdatedAfter": LONG_AGO, "maxResultsPerPage": "101"}, "page size 101"),
        ({"lastUpdatedAfter": LONG_AGO, "maxResultsPerPage": "ten"}, "page size not a number"),
        ({"lastUpdatedAfter": LONG_AGO, "marketplaceIds": ",".join(["A1PA6795UKMFR9"] * 51)}, "51 marketplaces"),
        ({"lastUpdatedAfter": LONG_AGO, "marketplaceIds": "ATVPDKIKX0DER"}, "a marketplace the seller lacks"),
        ({"lastUpdatedAfter": LONG_AGO, "paginationToken": "not-a-token"}, "a made-up token"),
    ],
)
def test_a_search_the_model_forbids_is_a_400_invalid_input(api: Api, params: dict, why: str) -> None:
    answer = api.search(**params)
    error_list(answer, 400, "InvalidInput")
    assert answer.headers["x-amzn-RateLimit-Limit"] == USAGE_PLANS["search_orders"].header, why


def test_a_before_bound_must_be_two_minutes_old(api: Api) -> None:
    now = datetime.now(UTC)
    recent = (now - timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    error_list(api.search(lastUpdatedAfter=LONG_AGO, lastUpdatedBefore=recent), 400, "InvalidInput")
    older = (now - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = api.search(lastUpdatedAfter=LONG_AGO, lastUpdatedBefore=older).json()
    assert body["lastUpdatedBefore"] == older and all(o["lastUpdatedTime"] <= older for o in body["orders"])


def test_page_size_bounds_1_and_100_are_accepted_and_100_is_the_default(api: Api, amz_sandbox: Sandbox) -> None:
    for _ in range(110 - len(amz_sandbox.orders())):
        amz_sandbox.add_order()
    assert len(api.search(lastUpdatedAfter=LONG_AGO, maxResultsPerPage="1").json()["orders"]) == 1
    assert len(api.search(lastUpdatedAfter=LONG_AGO, maxResultsPerPage="100").json()["orders"]) == 100
    assert len(api.search(lastUpdatedAfter=LONG_AGO).json()["orders"]) == 100


# --- the answers -----------------------------------------------------------------------------------


@pytest.mark.parametrize("included", [[], *[[name] for name in sb.INCLUDED_DATA], list(sb.INCLUDED_DATA)])
def test_every_search_page_with_each_included_data_is_a_valid_search_orders_response(
    api: Api, varied: Sandbox, included: list[str]
) -> None:
    params = {"includedData": included} if included else {}
    orders = [o for page in api.walk(size=4, lastUpdatedAfter=LONG_AGO, **params) for o in page["orders"]]
    assert len(orders) == len(varied.orders())
    for order in orders:
        for name, key in sb.ORDER_SECTIONS.items():
            if name not in included:
                assert key not in order, (name, order["orderId"])
        for item in order["orderItems"]:
            assert {"orderItemId", "quantityOrdered", "product"} <= set(item)
            for name, key in sb.ITEM_SECTIONS.items():
                if name not in included:
                    assert key not in item
    by_id = {o["orderId"]: o for o in varied.orders()}
    if "FULFILLMENT" in included:
        statuses = {(o["fulfillment"]["fulfillmentStatus"], o["fulfillment"]["fulfilledBy"]) for o in orders}
        assert {("UNSHIPPED", "MERCHANT"), ("PARTIALLY_SHIPPED", "MERCHANT"), ("SHIPPED", "MERCHANT"),
                ("PENDING", "MERCHANT"), ("CANCELLED", "MERCHANT"), ("SHIPPED", "AMAZON")} <= statuses  # fmt: skip
    if "PROCEEDS" in included:
        paid = [o for o in orders if by_id[o["orderId"]]["fulfillment"]["fulfillmentStatus"] != "PENDING"]
        assert paid and all("proceeds" in o and all("proceeds" in i for i in o["orderItems"]) for o in paid)
    if "RECIPIENT" in included:
        assert all(o["recipient"]["deliveryAddress"]["countryCode"] for o in orders)
    if "PACKAGES" in included:
        assert all(("packages" in o) == (by_id[o["orderId"]]["fulfillment"]["fulfilledBy"] == "MERCHANT")
                   for o in orders)  # fmt: skip


def test_money_is_the_models_money_and_the_proceeds_add_up(api: Api, varied: Sandbox) -> None:
    body = api.search(lastUpdatedAfter=LONG_AGO, includedData=["PROCEEDS", "PROMOTION"]).json()
    promoted = 0
    for order in body["orders"]:
        if "proceeds" not in order:
            continue  # PENDING: no prices before payment is authorized
        currencies = set()
        total = 0
        for item in order["orderItems"]:
            parts = item["proceeds"]["breakdowns"]
            assert all(re.fullmatch(r"-?\d+\.\d{2}", p["subtotal"]["amount"]) for p in parts)
            currencies |= {p["subtotal"]["currencyCode"] for p in parts}
            unit = item["product"]["price"]["unitPrice"]
            item_part = next(p for p in parts if p["type"] == "ITEM")["subtotal"]["amount"]
            assert float(item_part) == pytest.approx(float(unit["amount"]) * item["quantityOrdered"])
            assert float(item["proceeds"]["proceedsTotal"]["amount"]) == pytest.approx(
                sum(float(p["subtotal"]["amount"]) for p in parts)
            )
            total += float(item["proceeds"]["proceedsTotal"]["amount"])
            if "promotion" in item:
                promoted += 1
                assert any(p["type"] == "DISCOUNT" and p["subtotal"]["amount"].startswith("-") for p in parts)
        assert float(order["proceeds"]["grandTotal"]["amount"]) == pytest.approx(total)
        assert currencies == {order["proceeds"]["grandTotal"]["currencyCode"]} == {"EUR"}
    assert promoted, "the seed should hold at least one promotion"


def test_the_pagination_token_walk_yields_every_matching_order_once_oldest_change_first(
    api: Api, varied: Sandbox
) -> None:
    every = varied.orders()
    pivot = every[len(every) // 2]["lastUpdatedTime"]
    pages = api.walk(size=3, lastUpdatedAfter=pivot, includedData=["FULFILLMENT"])
    seen = [o for page in pages for o in page["orders"]]
    expected = [o["orderId"] for o in every if o["lastUpdatedTime"] >= pivot]  # at or after: inclusive
    assert [o["orderId"] for o in seen] == expected
    assert len(pages) == -(-len(expected) // 3) and all(len(p["orders"]) == 3 for p in pages[:-1])
    assert [(o["lastUpdatedTime"], o["orderId"]) for o in seen] == sorted(
        (o["lastUpdatedTime"], o["orderId"]) for o in seen
    )
    assert all("lastUpdatedBefore" in p and "createdBefore" not in p for p in pages)
    created = api.walk(size=5, createdAfter=LONG_AGO)
    assert all("createdBefore" in p for p in created)
    assert sorted(o["orderId"] for p in created for o in p["orders"]) == sorted(o["orderId"] for o in every)


def test_a_next_page_with_other_filters_is_refused_but_size_and_included_data_may_change(api: Api) -> None:
    first = api.search(lastUpdatedAfter=LONG_AGO, maxResultsPerPage="2", fulfilledBy="MERCHANT").json()
    token = first["pagination"]["nextToken"]
    same = {"lastUpdatedAfter": LONG_AGO, "fulfilledBy": "MERCHANT", "paginationToken": token}
    assert api.search(**same, maxResultsPerPage="5", includedData=["BUYER", "FULFILLMENT"]).status_code == 200
    error_list(api.search(**{**same, "fulfilledBy": "AMAZON"}), 400, "InvalidInput")
    error_list(api.search(**{**same, "lastUpdatedAfter": "2021-01-01T00:00:00Z"}), 400, "InvalidInput")
    error_list(
        api.search(lastUpdatedAfter=LONG_AGO, paginationToken=token), 400, "InvalidInput"
    )  # fulfilledBy left out
    tampered = token[:-3] + ("AAA" if token[-3:] != "AAA" else "BBB")
    error_list(api.search(**{**same, "paginationToken": tampered}), 400, "InvalidInput")


def test_filters_keep_to_their_marketplace_status_and_fulfiller(api: Api, varied: Sandbox) -> None:
    by_id = {o["orderId"]: o for o in varied.orders()}
    body = api.search(lastUpdatedAfter=LONG_AGO, marketplaceIds="A13V1IB3VIYZZH").json()
    assert body["orders"] and {o["salesChannel"]["marketplaceId"] for o in body["orders"]} == {"A13V1IB3VIYZZH"}
    body = api.search(lastUpdatedAfter=LONG_AGO, fulfillmentStatuses=["UNSHIPPED", "PARTIALLY_SHIPPED"],
                      fulfilledBy="MERCHANT").json()  # fmt: skip
    assert {o["orderId"] for o in body["orders"]} == varied.unfulfilled_order_ids()
    fba = api.search(lastUpdatedAfter=LONG_AGO, fulfilledBy="AMAZON", includedData=["BUYER", "RECIPIENT", "PACKAGES"])
    orders = fba.json()["orders"]
    assert orders and all(by_id[o["orderId"]]["fulfillment"]["fulfilledBy"] == "AMAZON" for o in orders)
    # the model: packages and buyerEmail for FBM only; the phone is suppressed for FBA orders
    assert not any("packages" in o or "buyerEmail" in o["buyer"] or "phone" in o["recipient"]["deliveryAddress"]
                   for o in orders)  # fmt: skip


def test_get_order_is_a_valid_get_order_response_and_404s_an_unknown_order(api: Api, varied: Sandbox) -> None:
    for order in varied.orders():
        answer = api.get_order(order["orderId"], ["FULFILLMENT", "PACKAGES", "PROCEEDS", "RECIPIENT"])
        assert answer.status_code == 200 and answer.headers["x-amzn-RateLimit-Limit"] == "0.5"
        validate(V2026, "GetOrderResponse", answer.json())
    error_list(api.get_order("999-0000000-0000000"), 404)
    error_list(api.get_order("not-an-order-id"), 400, "InvalidInput")


# --- confirmShipment -------------------------------------------------------------------------------


def test_the_confirm_shipment_bodies_the_plugin_sends_are_valid_and_answered_204(
    api: Api, amz_sandbox: Sandbox
) -> None:
    order_id = amz_sandbox.add_order()
    order = amz_sandbox.order(order_id)
    body = shipment_body(order, "00340434161094042557")
    validate(V0, "ConfirmShipmentRequest", body)
    answer = api.confirm(order_id, body)
    assert answer.status_code == 204 and answer.content == b"", answer.text
    assert answer.headers["x-amzn-RequestId"] and answer.headers["x-amzn-RateLimit-Limit"] == "2"
    assert amz_sandbox.recorded_tracking(order_id) == ["00340434161094042557"]
    assert [s["body"] for s in amz_sandbox.shipments(order_id)] == [body]
    shipped = api.get_order(order_id, ["FULFILLMENT", "PACKAGES"]).json()
    validate(V2026, "GetOrderResponse", shipped)
    assert shipped["order"]["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    assert shipped["order"]["lastUpdatedTime"] > order["lastUpdatedTime"]
    (package,) = shipped["order"]["packages"]
    assert package["trackingNumber"] == "00340434161094042557" and package["carrier"] == "DHL"
    assert order_id not in amz_sandbox.unfulfilled_order_ids()


def test_an_order_shipped_in_two_packages_is_partially_shipped_in_between(api: Api, amz_sandbox: Sandbox) -> None:
    order_id = next(
        o["orderId"]
        for o in (amz_sandbox.order(amz_sandbox.add_order()) for _ in range(30))
        if len(o["orderItems"]) > 1
    )
    order = amz_sandbox.order(order_id)
    first, second = order["orderItems"][:2]
    one = shipment_body(
        order, "1Z999AA10123456784", carrier="UPS", items=[(first["orderItemId"], first["quantityOrdered"])]
    )
    assert api.confirm(order_id, one).status_code == 204
    assert amz_sandbox.order(order_id)["fulfillment"]["fulfillmentStatus"] == "PARTIALLY_SHIPPED"
    assert order_id in amz_sandbox.unfulfilled_order_ids()
    two = shipment_body(amz_sandbox.order(order_id), "1Z999AA10123456795", reference="2", carrier="Other")
    two["packageDetail"]["carrierName"] = "Hermes"
    validate(V0, "ConfirmShipmentRequest", two)
    assert api.confirm(order_id, two).status_code == 204, second
    assert amz_sandbox.order(order_id)["fulfillment"]["fulfillmentStatus"] == "SHIPPED"
    assert amz_sandbox.recorded_tracking(order_id) == ["1Z999AA10123456784", "1Z999AA10123456795"]
    assert amz_sandbox.order(order_id)["packages"][1]["carrier"] == "Hermes"


def _required_paths() -> list[tuple[str, ...]]:
    defs = spec(V0)["definitions"]
    paths = [(name,) for name in defs["ConfirmShipmentRequest"]["required"]]
    paths += [("packageDetail", name) for name in defs["PackageDetail"]["required"]]
    paths += [("packageDetail", "orderItems", 0, name) for name in defs["ConfirmShipmentOrderItem"]["required"]]
    return paths


@pytest.mark.parametrize("path", _required_paths(), ids=lambda p: ".".join(map(str, p)))
def test_a_confirmation_without_a_field_the_model_requires_is_refused(
    api: Api, amz_sandbox: Sandbox, path: tuple
) -> None:
    order_id = amz_sandbox.add_order()
    body = shipment_body(amz_sandbox.order(order_id), "00340434161094042557")
    parent = body
    for step in path[:-1]:
        parent = parent[step]
    del parent[path[-1]]
    with pytest.raises(jsonschema.ValidationError):
        validate(V0, "ConfirmShipmentRequest", body)
    error_list(api.confirm(order_id, body), 400, "InvalidInput", model=V0)
    assert amz_sandbox.recorded_tracking(order_id) == []


@pytest.mark.parametrize(
    "change, why",
    [
        (lambda b: b["packageDetail"].update(packageReferenceId=1), "a number, not a string (it is refused so)"),
        (lambda b: b["packageDetail"].update(packageReferenceId="0"), "not positive"),
        (lambda b: b["packageDetail"].update(packageReferenceId="PKG-1"), "not numeric"),
        (lambda b: b["packageDetail"].update(shipDate="02/21/2022"), "the model's sandbox example of a bad date"),
        (lambda b: b["packageDetail"].update(carrierCode="Other"), "Other without carrierName"),
        (lambda b: b["packageDetail"].update(trackingNumber=""), "empty tracking"),
        (lambda b: b["packageDetail"]["orderItems"][0].update(orderItemId="12345678901234"), "unknown item"),
        (lambda b: b["packageDetail"]["orderItems"][0].update(quantity=99), "more than ordered"),
        (lambda b: b["packageDetail"]["orderItems"][0].update(quantity="1"), "quantity as text"),
        (lambda b: b["packageDetail"].update(orderItems=[]), "no items"),
        (lambda b: b.update(marketplaceId="A13V1IB3VIYZZH"), "another marketplace"),
        (lambda b: b["packageDetail"].update(trackingUrl="https://example.com"), "a field the model lacks"),
        (lambda b: b.update(codCollectionMethod="Cash"), "outside the enum"),
    ],
)
def test_a_confirmation_the_model_or_amazon_refuses_is_a_400(api: Api, amz_sandbox: Sandbox, change, why: str) -> None:
    order_id = amz_sandbox.add_order()
    body = shipment_body(amz_sandbox.order(order_id), "00340434161094042557")
    change(body)
    answer = api.confirm(order_id, body)
    error_list(answer, 400, "InvalidInput", model=V0)
    assert answer.headers["x-amzn-RateLimit-Limit"] == "2", why
    assert amz_sandbox.recorded_tracking(order_id) == []


@pytest.mark.parametrize("status, by", [("PENDING", "MERCHANT"), ("CANCELLED", "MERCHANT"), ("UNSHIPPED", "AMAZON"),
                                        ("SHIPPED", "MERCHANT")])  # fmt: skip
def test_an_order_that_cannot_ship_now_is_refused(api: Api, amz_sandbox: Sandbox, status: str, by: str) -> None:
    order_id = amz_sandbox.add_order(status, by)
    order = amz_sandbox.order(order_id)
    before = amz_sandbox.recorded_tracking(order_id)
    body = shipment_body(order, "00340434161094042557", reference="7",
                         items=[(i["orderItemId"], 1) for i in order["orderItems"]])  # fmt: skip
    error_list(api.confirm(order_id, body), 400, "InvalidInput", model=V0)
    assert amz_sandbox.recorded_tracking(order_id) == before


def test_unknown_and_malformed_order_ids_are_404_and_400(api: Api, amz_sandbox: Sandbox) -> None:
    body = shipment_body(amz_sandbox.order(amz_sandbox.add_order()), "00340434161094042557")
    error_list(api.confirm(amz_sandbox.unknown_order_id(), body), 404, model=V0)
    error_list(api.confirm("999000999", body), 400, "InvalidInput", model=V0)
    error_list(api.confirm("302-1234567-1234567", "not an object"), 404, model=V0)


def test_a_repeated_confirmation_is_refused_and_reading_the_order_back_finds_the_tracking(
    api: Api, amz_sandbox: Sandbox
) -> None:
    order_id = amz_sandbox.add_order()
    body = shipment_body(amz_sandbox.order(order_id), "00340434161094042557")
    assert api.confirm(order_id, body).status_code == 204
    repeat = error_list(api.confirm(order_id, body), 400, "InvalidInput", model=V0)
    assert "already fulfilled" in repeat["errors"][0]["message"]
    assert amz_sandbox.recorded_tracking(order_id) == ["00340434161094042557"]  # not twice
    packages = api.get_order(order_id, ["PACKAGES"]).json()["order"]["packages"]
    assert [p["trackingNumber"] for p in packages] == ["00340434161094042557"]


def test_a_lost_answer_is_a_502_after_the_shipment_was_recorded(api: Api, amz_sandbox: Sandbox) -> None:
    order_id = amz_sandbox.add_order()
    assert SandboxChannel(amz_sandbox).lose_next_answer()
    lost = api.confirm(order_id, shipment_body(amz_sandbox.order(order_id), "00340434161094042557"))
    assert lost.status_code == 502 and lost.headers["x-amzn-RequestId"]
    assert amz_sandbox.recorded_tracking(order_id) == ["00340434161094042557"]
    assert api.get_order(order_id, ["FULFILLMENT"]).json()["order"]["fulfillment"]["fulfillmentStatus"] == "SHIPPED"


# --- Login with Amazon -----------------------------------------------------------------------------


def test_the_token_endpoint_mints_bearer_tokens_and_refuses_bad_grants(amz_sandbox: Sandbox) -> None:
    form = amz_sandbox.token_form()
    good = requests.post(amz_sandbox.token_url, data=form, timeout=5)
    assert good.status_code == 200 and good.headers["x-amzn-RequestId"]
    body = good.json()
    assert set(body) == {"access_token", "token_type", "expires_in", "refresh_token"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600 and body["access_token"].startswith("Atza|")
    as_json = requests.post(amz_sandbox.token_url, json=form, timeout=5)
    assert as_json.status_code == 200
    for changed, status, code in (
        ({"refresh_token": "Atzr|someone-elses"}, 400, "invalid_grant"),
        ({"client_secret": "wrong-secret-0000"}, 401, "invalid_client"),
        ({"client_id": "amzn1.application-oa2-client.other"}, 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
        ({"refresh_token": ""}, 400, "invalid_request"),
    ):
        answer = requests.post(amz_sandbox.token_url, data={**form, **changed}, timeout=5)
        assert answer.status_code == status and answer.json()["error"] == code, changed
        assert set(answer.json()) == {"error", "error_description"}
        assert form["client_secret"] not in answer.text and form["refresh_token"] not in answer.text
    assert amz_sandbox.lwa.describe()["mints"] == 2
    logged = json.dumps(amz_sandbox.request_log())
    assert form["client_secret"] not in logged and form["refresh_token"] not in logged
    assert body["access_token"] not in logged


def test_access_tokens_expire_and_are_revoked_with_the_403_amazon_sends(amz_sandbox: Sandbox) -> None:
    api = Api(amz_sandbox)
    assert api.search(lastUpdatedAfter=LONG_AGO).status_code == 200
    for headers, details in (({}, "no access token"), ({"x-amz-access-token": "Atza|forged"}, "revoked, malformed")):
        url = amz_sandbox.base_url + SEARCH_PATH
        answer = requests.get(url, params={"lastUpdatedAfter": LONG_AGO}, headers=headers, timeout=5)
        assert details in error_list(answer, 403, "Unauthorized")["errors"][0]["details"]
    requests.post(amz_sandbox.control_url + "/tokens/expire", json={}, timeout=5)
    assert "expired" in error_list(api.search(lastUpdatedAfter=LONG_AGO), 403, "Unauthorized")["errors"][0]["details"]
    requests.post(amz_sandbox.control_url + "/tokens", json={"lifetime": 0.3}, timeout=5)
    short = Api(amz_sandbox)
    assert short.search(lastUpdatedAfter=LONG_AGO).status_code == 200
    time.sleep(0.5)
    assert "expired" in error_list(short.search(lastUpdatedAfter=LONG_AGO), 403)["errors"][0]["details"]
    fresh = Api(amz_sandbox)
    requests.post(amz_sandbox.control_url + "/tokens/revoke", json={}, timeout=5)
    error_list(fresh.search(lastUpdatedAfter=LONG_AGO), 403, "Unauthorized")
    error_list(fresh.confirm("302-1234567-1234567", {}), 403, "Unauthorized", model=V0)
    assert amz_sandbox.lwa.describe()["mints"] == 3


def test_a_rotating_refresh_token_retires_the_one_used() -> None:
    with Sandbox(orders=2, rotate_refresh_token=True) as sandbox:
        old = sandbox.token_form()
        first = requests.post(sandbox.token_url, data=old, timeout=5).json()
        assert first["refresh_token"] != old["refresh_token"] == DEFAULT_REFRESH
        again = requests.post(sandbox.token_url, data=old, timeout=5)
        assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
        new = {**old, "refresh_token": first["refresh_token"]}
        assert requests.post(sandbox.token_url, data=new, timeout=5).status_code == 200


DEFAULT_REFRESH = sb.DEFAULT_REFRESH_TOKEN


# --- rate limits and faults ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, model, path, method",
    [("search_orders", V2026, SEARCH_PATH, "get"), ("get_order", V2026, SEARCH_PATH + "/{orderId}", "get"),
     ("confirm_shipment", V0, CONFIRM, "post")],
)  # fmt: skip
def test_the_usage_plans_are_the_documented_ones(key: str, model: str, path: str, method: str) -> None:
    assert (USAGE_PLANS[key].rate, USAGE_PLANS[key].burst) == usage_plan(operation(model, path, method)["description"])
    listed = {int(s) for s, r in operation(model, path, method)["responses"].items()
              if "x-amzn-RateLimit-Limit" in r.get("headers", {})}  # fmt: skip
    assert listed == set(sb.RATE_HEADER_STATUSES[key])


def test_usage_plans_answer_429_quota_exceeded_and_refill_as_fast_as_the_time_scale(
    api: Api, amz_sandbox: Sandbox
) -> None:
    assert api.search(lastUpdatedAfter=LONG_AGO).status_code == 200  # off by default
    amz_sandbox.set_faults(rate_limits=True, rate_time_scale=1.0)
    answers = [api.search(lastUpdatedAfter=LONG_AGO).status_code for _ in range(21)]
    assert answers == [200] * 20 + [429]  # the burst, then one request per 180 s
    limited = api.search(lastUpdatedAfter=LONG_AGO)
    body = error_list(limited, 429, "QuotaExceeded")
    assert body["errors"][0]["message"] == "You exceeded your quota for the requested resource."
    assert "Retry-After" not in limited.headers and "x-amzn-RateLimit-Limit" not in limited.headers
    order_id = amz_sandbox.add_order()
    ship = shipment_body(amz_sandbox.order(order_id), "00340434161094042557")
    assert api.confirm(order_id, ship).status_code == 204  # each operation has its own bucket
    amz_sandbox.set_faults(rate_time_scale=5000.0)  # 28 searches a second
    time.sleep(0.1)
    assert api.search(lastUpdatedAfter=LONG_AGO).status_code == 200
    amz_sandbox.clear_faults()
    assert [api.search(lastUpdatedAfter=LONG_AGO).status_code for _ in range(25)] == [200] * 25


def test_fault_switches_answer_in_the_error_envelope(api: Api, amz_sandbox: Sandbox) -> None:
    amz_sandbox.set_faults(fail_5xx=1)
    error_list(api.search(lastUpdatedAfter=LONG_AGO), 503)
    amz_sandbox.set_faults(too_many_requests=1)
    error_list(api.search(lastUpdatedAfter=LONG_AGO), 429, "QuotaExceeded")
    assert api.search(lastUpdatedAfter=LONG_AGO).status_code == 200
    assert SandboxChannel(amz_sandbox).inject("server_error")
    error_list(api.search(lastUpdatedAfter=LONG_AGO), 503)
    amz_sandbox.clear_faults()


def test_an_unknown_endpoint_is_a_404_in_the_envelope(api: Api, amz_sandbox: Sandbox) -> None:
    answer = requests.get(amz_sandbox.base_url + "/orders/v0/orders", headers=api.headers(), timeout=5)
    error_list(answer, 404)


# --- the control endpoints and the kit's view ------------------------------------------------------


def test_the_control_endpoints_add_touch_and_move_orders(amz_sandbox: Sandbox) -> None:
    control = amz_sandbox.control_url
    index = requests.get(control + "/", timeout=5).json()
    assert "GET /orders/2026-01-01/orders" in index["api"] and f"POST {sb.TOKEN_PATH}" in index["api"]
    (pending,) = requests.post(control + "/orders", json={"status": "PENDING"}, timeout=5).json()["orderIds"]
    assert pending not in SandboxChannel(amz_sandbox).unfulfilled_order_ids()
    moved = requests.post(f"{control}/orders/{pending}/status", json={"status": "UNSHIPPED"}, timeout=5).json()
    assert moved["order"]["fulfillment"]["fulfillmentStatus"] == "UNSHIPPED"
    assert pending in amz_sandbox.unfulfilled_order_ids()
    newest = max(o["lastUpdatedTime"] for o in amz_sandbox.orders())
    oldest = amz_sandbox.orders()[0]["orderId"]
    touched = requests.post(f"{control}/orders/{oldest}/touch", json={}, timeout=5).json()["order"]
    assert touched["lastUpdatedTime"] > newest and amz_sandbox.orders()[-1]["orderId"] == oldest
    refused = requests.post(f"{control}/orders/{oldest}/status", json={"status": "PENDING"}, timeout=5)
    assert refused.status_code == 422
    assert requests.post(f"{control}/orders/nope/touch", json={}, timeout=5).status_code == 404
    assert requests.post(control + "/orders", json={"status": "LOST"}, timeout=5).status_code == 422
    assert requests.get(control + "/tokens", timeout=5).json()["tokens"]["lifetime"] == 3600.0
    assert requests.post(control + "/faults", json={"rate_limits": True}, timeout=5).json()["faults"]["rate_limits"]
    assert requests.get(control + "/shipments", timeout=5).json() == {"shipments": []}


def test_the_kit_channel_sees_what_a_download_of_unfulfilled_orders_must_bring(api: Api, varied: Sandbox) -> None:
    channel = SandboxChannel(varied)
    new = channel.add_order()
    assert new in channel.unfulfilled_order_ids() and varied.orders()[-1]["orderId"] == new
    by_id = {o["orderId"]: o for o in varied.orders()}
    for order_id in channel.unfulfilled_order_ids():
        fulfillment = by_id[order_id]["fulfillment"]
        assert fulfillment["fulfilledBy"] == "MERCHANT"
        assert fulfillment["fulfillmentStatus"] in ("UNSHIPPED", "PARTIALLY_SHIPPED")
    assert channel.recorded_tracking(new) == [] and channel.recorded_tracking("999-0000000-0000000") == []
