"""Helpers of the Amazon plugin tests: plain HTTP against the sandbox, the vendored models as
JSON Schema, and the KitChannel the conformance kit will ask."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import requests

from amazon_sp.sandbox import SEARCH_PATH, Sandbox
from plugin_spec import ChannelOrder, Shipment
from plugin_spec.testing import KitChannel

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
LONG_AGO = "2020-01-01T00:00:00Z"


@cache
def spec(name: str) -> dict[str, Any]:
    """``orders_2026-01-01`` or ``ordersV0``, as published."""
    return json.loads((REFERENCE / f"{name}.json").read_text("utf-8"))


def _strict(node: Any) -> Any:
    """The definitions with ``additionalProperties: false`` on every object that lists its
    properties: Swagger leaves extra fields open, and a sandbox field the model does not define
    (a typo, an invented field) must fail the contract test."""
    if isinstance(node, dict):
        node = {k: _strict(v) for k, v in node.items()}
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


_formats = jsonschema.FormatChecker(formats=())


@_formats.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    # RFC 3339, as Swagger 2.0's date-time: an offset (or Z) is required
    if not isinstance(value, str):
        return True
    return datetime.fromisoformat(value.replace("Z", "+00:00")).tzinfo is not None


def validate(model: str, definition: str, instance: Any) -> None:
    """Validate ``instance`` as ``#/definitions/<definition>`` of the model (strictly)."""
    definitions = _strict(copy.deepcopy(spec(model)["definitions"]))
    schema = {"definitions": definitions, "allOf": [{"$ref": f"#/definitions/{definition}"}]}
    jsonschema.Draft4Validator(schema, format_checker=_formats).validate(instance)


def operation(model: str, path: str, method: str) -> dict[str, Any]:
    return spec(model)["paths"][path][method]


class Api:
    """An authenticated client of the sandbox, as plain as the requests the plugin will send."""

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox
        self.token = requests.post(sandbox.token_url, data=sandbox.token_form(), timeout=5).json()["access_token"]

    def headers(self) -> dict[str, str]:
        return {"x-amz-access-token": self.token, "Accept": "application/json"}

    def search(self, **params: Any) -> requests.Response:
        params = {k: ",".join(v) if isinstance(v, list | tuple) else v for k, v in params.items()}
        return requests.get(self.sandbox.base_url + SEARCH_PATH, params=params, headers=self.headers(), timeout=5)

    def get_order(self, order_id: str, included: list[str] | None = None) -> requests.Response:
        params = {"includedData": ",".join(included)} if included else {}
        url = f"{self.sandbox.base_url}{SEARCH_PATH}/{order_id}"
        return requests.get(url, params=params, headers=self.headers(), timeout=5)

    def confirm(self, order_id: str, body: Any) -> requests.Response:
        url = f"{self.sandbox.base_url}/orders/v0/orders/{order_id}/shipmentConfirmation"
        return requests.post(url, json=body, headers=self.headers(), timeout=5)

    def walk(self, size: int = 100, **params: Any) -> list[dict[str, Any]]:
        """Every page of one search, following nextToken; each page validated."""
        pages, token = [], None
        while True:
            extra = {"paginationToken": token} if token else {}
            answer = self.search(maxResultsPerPage=str(size), **params, **extra)
            assert answer.status_code == 200, answer.text
            body = answer.json()
            validate("orders_2026-01-01", "SearchOrdersResponse", body)
            pages.append(body)
            token = body.get("pagination", {}).get("nextToken")
            if token is None:
                assert "pagination" not in body  # absent on the last page, never empty
                return pages


def shipment_body(order: dict[str, Any], tracking: str, *, reference: str = "1", carrier: str = "DHL",
                  items: list[tuple[str, int]] | None = None) -> dict[str, Any]:  # fmt: skip
    """A confirmShipment body of the kind the plugin sends: every unit left of every item, or
    ``items`` (order item id, quantity)."""
    lines = items or [
        (i["orderItemId"], i["fulfillment"]["quantityUnfulfilled"])
        for i in order["orderItems"]
        if i["fulfillment"]["quantityUnfulfilled"]
    ]
    return {
        "marketplaceId": order["salesChannel"]["marketplaceId"],
        "packageDetail": {
            "packageReferenceId": reference,
            "carrierCode": carrier,
            "trackingNumber": tracking,
            "shipDate": datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
            "orderItems": [{"orderItemId": item_id, "quantity": quantity} for item_id, quantity in lines],
        },
    }


class SandboxChannel(KitChannel):
    """What the conformance kit asks the sandbox (for the plugin's conformance test)."""

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox

    def unfulfilled_order_ids(self) -> set[str]:
        return self.sandbox.unfulfilled_order_ids()

    def add_order(self) -> str:
        return self.sandbox.add_order()

    def recorded_tracking(self, order_id: str) -> list[str]:
        return self.sandbox.recorded_tracking(order_id)

    def inject(self, fault: str) -> bool:
        return self.sandbox.inject(fault)

    def clear_faults(self) -> None:
        self.sandbox.clear_faults()

    def lose_next_answer(self) -> bool:
        return self.sandbox.lose_next_answer()

    def unknown_order_id(self) -> str:
        return self.sandbox.unknown_order_id()

    def make_shipment(self, order: ChannelOrder, shipment_id: int, tracking_number: str) -> Shipment:
        """Every unit still to ship (a partially shipped order has some of its items shipped)."""
        shipment = super().make_shipment(order, shipment_id, tracking_number)
        try:
            held = self.sandbox.order(order.source_order_id)
        except KeyError:
            return shipment
        left = {i["orderItemId"]: i["fulfillment"]["quantityUnfulfilled"] for i in held["orderItems"]}
        lines = [
            line.model_copy(update={"quantity": left[line.source_line_id]})
            for line in shipment.lines if left.get(line.source_line_id)
        ]  # fmt: skip
        return shipment.model_copy(update={"lines": lines})

    def cancel_order(self, order_id: str) -> bool:
        self.sandbox.set_status(order_id, "CANCELLED")
        return True

    def cancel_line(self, order_id: str, line_id: str) -> bool:
        if self.sandbox.order(order_id)["fulfillment"]["fulfillmentStatus"] != "UNSHIPPED":
            return False  # partly shipped: cancelling the rest ends the order (SHIPPED), no longer listed
        try:
            self.sandbox.cancel_item(order_id, line_id)
        except ValueError:  # shipped already: Amazon takes a refund, not a cancellation
            return False
        return True

    def change_orders_during_download(self) -> bool:
        self.sandbox.set_faults(change_during_download=True)
        return True

    def token_mints(self) -> int | None:
        return self.sandbox.lwa.mints

    def expire_tokens(self) -> bool:
        self.sandbox.lwa.expire_all()
        return True

    def issued_tokens(self) -> list[str]:
        lwa = self.sandbox.lwa
        return [*lwa._access, *lwa._expired, lwa.refresh_token]

    def declared_totals(self, order_id: str) -> dict[str, Any] | None:
        """The order's amounts as Amazon states them: its proceeds by type, each item's ITEM."""
        order = self.sandbox.order(order_id)
        by_type = {b["type"]: Decimal(b["subtotal"]["amount"]) for b in order["proceeds"]["breakdowns"]}
        lines = {}
        for item in order["orderItems"]:
            parts = {b["type"]: Decimal(b["subtotal"]["amount"]) for b in item["proceeds"]["breakdowns"]}
            lines[item["orderItemId"]] = {"line_total": parts["ITEM"], "tax": parts.get("TAX", Decimal("0"))}
        return {
            "subtotal": by_type.get("ITEM", Decimal("0")), "shipping_total": by_type.get("SHIPPING", Decimal("0")),
            "tax_total": by_type.get("TAX", Decimal("0")), "discount_total": -by_type.get("DISCOUNT", Decimal("0")),
            "grand_total": Decimal(order["proceeds"]["grandTotal"]["amount"]), "lines": lines,
        }  # fmt: skip
