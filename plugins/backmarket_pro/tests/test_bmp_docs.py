"""docs/backmarket-pro-api.md and the sandbox agree: every documented endpoint answers."""

from __future__ import annotations

import re
from pathlib import Path

import requests
from bmp_helpers import SECRET_KEY, unfulfilled

from backmarket_pro import client
from backmarket_pro.sandbox import ROUTES, Sandbox

DOC = Path(__file__).resolve().parents[3] / "docs" / "backmarket-pro-api.md"
ENDPOINT_HEADING = re.compile(r"^#{2,4} `(GET|POST|PUT|PATCH|DELETE) (/\S+)`\s*$", re.MULTILINE)


def documented() -> list[tuple[str, str]]:
    return ENDPOINT_HEADING.findall(DOC.read_text(encoding="utf-8"))


def test_doc_lists_the_api_and_the_control_endpoints() -> None:
    endpoints = documented()
    api = [(m, p) for m, p in endpoints if not p.startswith("/_sandbox")]
    assert ("GET", client.SELLER_ACCOUNT_PATH) in api and ("GET", client.ORDERS_PATH) in api
    assert len(api) == len(ROUTES)  # the sandbox serves nothing the doc does not describe
    for method, pattern, _ in ROUTES:
        assert any(m == method and pattern.fullmatch("/sellers-prod" + p.replace("{order_id}", "X")) for m, p in api), (
            pattern.pattern
        )
    assert len(endpoints) - len(api) >= 5


def test_every_documented_endpoint_answers(sandbox: Sandbox) -> None:
    orders = [o for o in unfulfilled(sandbox) if not o["cancelled"]]
    ship_me, cancel_me = orders[0]["id"], orders[1]["id"]
    bodies = {
        "/2024-03/orders/{order_id}/shipments": {"tracking_number": "DOC-1", "carrier": "UPS"},
        "/_sandbox/orders": {"n": 1},
        "/_sandbox/faults": {"latency": 0},
        "/_sandbox/accounts": {"api_key": "doc-key-000000001", "orders": 1},
    }
    root = sandbox.base_url.removesuffix("/sellers-prod")
    answered = []
    for method, path in documented():
        order_id = cancel_me if path.endswith("/cancel") else ship_me
        path_here = path.replace("{line_id}", f"{order_id}-1").replace("{order_id}", order_id)
        url = (root if path.startswith("/_sandbox") else sandbox.base_url) + path_here
        body = bodies.get(path) if method == "POST" else None
        response = requests.request(method, url, headers={"x-api-key": SECRET_KEY}, json=body, timeout=5)
        assert response.status_code < 400, (method, path, response.status_code, response.text)
        response.json()  # every answer is JSON
        answered.append((method, path))
    assert len(answered) == len(documented()) >= 9


def test_documented_order_fields_exist(sandbox: Sandbox) -> None:
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index("| API field |") :].split("\n\n", 1)[0]
    fields = set()
    for row in table.splitlines()[2:]:
        first_cell = row.split("|")[1]
        fields.update(re.findall(r"`([a-z_]+)(?:\.[a-z_]+)?(?:\[\])?`", first_cell))
    order = sandbox.orders()[0]
    assert fields and fields <= set(order), fields - set(order)
    assert set(order) <= fields  # and the doc describes every field the sandbox sends
