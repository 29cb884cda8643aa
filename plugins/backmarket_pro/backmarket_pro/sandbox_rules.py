"""Pure rules of the sandbox API: keyset cursors and shipment validation (no state, no I/O)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime
from typing import Any

from .sandbox_data import LINE_CANCELLED


def encode_cursor(updated_at: str, order_id: str) -> str:
    raw = json.dumps([updated_at, order_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[str, str] | None:
    try:
        value = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        return None
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return value[0], value[1]
    return None


def json_body(body: bytes) -> Any:
    if not body:
        return {}
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def same_tracking(a: str, b: str) -> bool:
    return "".join(a.split()).upper() == "".join(b.split()).upper()


def shipment_problem(data: Any) -> str | None:
    """What is wrong with a shipment body, or None."""
    if not isinstance(data, dict):
        return "The body must be a JSON object."
    for name in ("tracking_number", "carrier"):
        value = data.get(name)
        if not isinstance(value, str) or not value.strip():
            return f"{name} is required."
        if len(value) > 100:
            return f"{name} is longer than 100 characters."
    url = data.get("tracking_url")
    if url is not None and (not isinstance(url, str) or not re.match(r"^https?://", url)):
        return "tracking_url must be an http(s) URL."
    shipped_at = data.get("shipped_at")
    if shipped_at is not None:
        try:
            if not isinstance(shipped_at, str) or datetime.fromisoformat(shipped_at).tzinfo is None:
                raise ValueError
        except ValueError:
            return "shipped_at must be an ISO-8601 timestamp with a time zone."
    lines = data.get("lines")
    if lines is not None and (not isinstance(lines, list) or not lines):
        return "lines must be a non-empty list when given."
    return None


def shipped_quantities(order: dict[str, Any]) -> dict[str, int]:
    shipped: dict[str, int] = {}
    for shipment in order["shipments"]:
        for line in shipment["lines"]:
            shipped[line["line_id"]] = shipped.get(line["line_id"], 0) + line["quantity"]
    return shipped


def shipment_lines(order: dict[str, Any], lines: Any) -> tuple[list[dict[str, Any]], str | None]:
    """The lines a shipment covers (all that remain when omitted), or a validation problem."""
    shipped = shipped_quantities(order)
    # a cancelled line has nothing left to ship
    cancelled = {line["id"] for line in order["line_items"] if line.get("state") == LINE_CANCELLED}
    remaining = {
        line["id"]: 0 if line["id"] in cancelled else line["quantity"] - shipped.get(line["id"], 0)
        for line in order["line_items"]
    }
    by_sku: dict[str, str] = {}
    for line in order["line_items"]:
        by_sku.setdefault(line["sku"], line["id"])
    sku_of = {line["id"]: line["sku"] for line in order["line_items"]}
    if lines is None:
        return [
            {"line_id": lid, "sku": sku_of[lid], "quantity": qty, "serial_numbers": []}
            for lid, qty in remaining.items()
            if qty > 0
        ], None
    result = []
    for i, line in enumerate(lines):
        if not isinstance(line, dict):
            return [], f"lines[{i}] must be an object."
        line_id = line.get("line_id")
        if not isinstance(line_id, str) or line_id not in remaining:
            sku = line.get("sku")
            line_id = by_sku.get(sku) if isinstance(sku, str) else None
        if line_id is None:
            return [], f"lines[{i}] names no line of order {order['id']} (line_id or sku)."
        quantity = line.get("quantity")
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
            return [], f"lines[{i}].quantity must be a positive integer."
        if line_id in cancelled:
            return [], f"lines[{i}]: line {line_id} is cancelled; it cannot be shipped."
        if quantity > remaining[line_id]:
            return [], f"lines[{i}].quantity {quantity} exceeds the {remaining[line_id]} left to ship of {line_id}."
        serials = line.get("serial_numbers", [])
        if not isinstance(serials, list) or not all(isinstance(s, str) and s for s in serials):
            return [], f"lines[{i}].serial_numbers must be a list of strings (serial numbers or IMEIs)."
        if len(serials) > quantity:
            return [], f"lines[{i}] has more serial numbers than its quantity."
        remaining[line_id] -= quantity
        result.append({"line_id": line_id, "sku": sku_of[line_id], "quantity": quantity, "serial_numbers": serials})
    return result, None
