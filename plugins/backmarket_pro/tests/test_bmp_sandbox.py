"""The sandbox itself: key check, paging contract, data realism, control endpoints over HTTP."""

from __future__ import annotations

from decimal import Decimal

import pytest
import requests
from bmp_helpers import SECRET_KEY

from backmarket_pro.sandbox import Sandbox


def api(sandbox: Sandbox, path: str, key: str | None = SECRET_KEY, **params: str) -> requests.Response:
    headers = {"x-api-key": key} if key else {}
    return requests.get(f"{sandbox.base_url}/2024-03{path}", headers=headers, params=params, timeout=5)


def test_key_is_checked_and_never_logged(sandbox: Sandbox) -> None:
    missing, wrong, right = api(sandbox, "/orders", None), api(sandbox, "/orders", "nope"), api(sandbox, "/orders")
    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert wrong.json()["error"]["code"] == "unauthorized"
    log = sandbox.request_log()
    assert [e["key_ok"] for e in log] == [False, False, True]
    assert SECRET_KEY not in repr(log) and "nope" not in repr(log)


def test_listing_pages_with_a_keyset_next_link(sandbox: Sandbox) -> None:
    everything = sandbox.orders()
    ids, url, pages = [], f"{sandbox.base_url}/2024-03/orders?page-size=9", 0
    while url:
        body = requests.get(url, headers={"x-api-key": SECRET_KEY}, timeout=5).json()
        assert body["count"] == len(everything)
        ids += [o["id"] for o in body["results"]]
        url, pages = body["next"], pages + 1
    assert ids == [o["id"] for o in everything] and pages == -(-len(everything) // 9)
    keys = [(o["updated_at"], o["id"]) for o in everything]
    assert keys == sorted(keys)


def test_listing_validates_parameters(sandbox: Sandbox) -> None:
    assert api(sandbox, "/orders", **{"page-size": "201"}).status_code == 422
    assert api(sandbox, "/orders", **{"page-size": "200"}).status_code == 200
    assert api(sandbox, "/orders", fulfillment_status="shipped").status_code == 422
    assert api(sandbox, "/orders", updated_at_min="2024-03-05T10:00:00").status_code == 422  # no zone
    assert api(sandbox, "/orders", cursor="!!!").json()["error"]["code"] == "validation_error"
    assert api(sandbox, "/nowhere").json()["error"]["code"] == "no_such_endpoint"


def test_filters(sandbox: Sandbox) -> None:
    orders = sandbox.orders()
    pending = api(sandbox, "/orders", financial_status="pending", **{"page-size": "200"}).json()
    assert [o["id"] for o in pending["results"]] == [o["id"] for o in orders if o["financial_status"] == "pending"]
    fulfilled = api(sandbox, "/orders", fulfillment_status="fulfilled", **{"page-size": "200"}).json()
    assert fulfilled["results"] and all(o["shipments"] for o in fulfilled["results"])


def test_one_order_and_404(sandbox: Sandbox) -> None:
    order = sandbox.orders()[3]
    assert api(sandbox, f"/orders/{order['id']}").json() == order
    missing = api(sandbox, "/orders/BMP-0")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "order_not_found"


def test_generated_orders_are_realistic_and_consistent(sandbox: Sandbox) -> None:
    orders = sandbox.orders()
    assert {o["currency"] for o in orders} >= {"EUR", "GBP"} and len({o["currency"] for o in orders}) >= 3
    assert any(o["cancelled"] for o in orders) and any(o["financial_status"] == "pending" for o in orders)
    assert any(o["fulfillment_status"] == "fulfilled" for o in orders)
    assert any(not o["shipping_address"]["city"].isascii() or not o["buyer"]["first_name"].isascii() for o in orders)
    assert all(o["payment_method"] and o["buyer"]["company"] for o in orders)
    for order in orders:
        assert 1 <= len(order["line_items"]) <= 4
        money = [order[k] for k in ("subtotal_price", "shipping_price", "total_tax", "total_price")]
        assert all(isinstance(m, str) and len(m.split(".")[1]) == 2 for m in money)
        subtotal, shipping, tax, total = map(Decimal, money)
        assert subtotal + shipping + tax == total
        assert subtotal == sum(Decimal(li["price"]) * li["quantity"] for li in order["line_items"])


def test_same_seed_same_orders() -> None:
    def strip(value: object) -> object:  # timestamps are relative to "now"; the rest is seeded
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if not k.endswith("_at")}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    one, two, other = Sandbox(orders=10, seed=3), Sandbox(orders=10, seed=3), Sandbox(orders=10, seed=4)
    assert strip(one.orders()) == strip(two.orders()) != strip(other.orders())


def test_rate_limit_answers_429_with_retry_after(sandbox: Sandbox) -> None:
    sandbox.set_faults(rate_limit=2, rate_window=10.0)
    statuses = [api(sandbox, "/seller-account") for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert 1 <= int(statuses[2].headers["Retry-After"]) <= 10
    assert statuses[2].json()["error"]["code"] == "rate_limited"


def test_control_endpoints_over_http(sandbox: Sandbox) -> None:
    control = sandbox.control_url
    created = requests.post(f"{control}/orders", json={"n": 2}, timeout=5)
    assert created.status_code == 201
    new_ids = created.json()["ids"]
    assert [o["id"] for o in sandbox.orders()[-2:]] == new_ids
    cancelled = requests.post(f"{control}/orders/{new_ids[0]}/cancel", timeout=5).json()["order"]
    assert cancelled["cancelled"] and sandbox.orders()[-1]["id"] == new_ids[0]
    faults = requests.post(f"{control}/faults", json={"fail_5xx": 1}, timeout=5).json()["faults"]
    assert faults["fail_5xx"] == 1
    assert api(sandbox, "/seller-account").status_code == 503
    assert api(sandbox, "/seller-account").status_code == 200
    assert requests.post(f"{control}/faults", json={"bogus": 1}, timeout=5).status_code == 422
    log = requests.get(f"{control}/requests", timeout=5).json()["requests"]
    assert [(e["path"], e["status"], e["fault"]) for e in log] == [
        ("/sellers-prod/2024-03/seller-account", 503, "fail_5xx"),
        ("/sellers-prod/2024-03/seller-account", 200, None),
    ]
    assert requests.delete(f"{control}/faults", timeout=5).json()["faults"]["fail_5xx"] == 0
    other = requests.post(f"{control}/accounts", json={"api_key": "k-2-000000000", "orders": 3}, timeout=5).json()
    listed = requests.get(f"{control}/orders", params={"account": other["id"]}, timeout=5).json()
    assert listed["count"] == 3


def test_python_api_errors(sandbox: Sandbox) -> None:
    with pytest.raises(KeyError):
        sandbox.cancel_order("BMP-0")
    with pytest.raises(ValueError):
        sandbox.set_faults(fail_5xx=-1)
    with pytest.raises(ValueError):
        sandbox.add_account(SECRET_KEY)
