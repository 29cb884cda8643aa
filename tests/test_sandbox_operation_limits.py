"""The sandbox base's usage plans per operation: a route's bucket lets its burst through, then
answers 429 in the channel's envelope until it refills; routes and clients of the toolkit that
declare the same plan never meet a 429."""

from __future__ import annotations

import time

import requests

from plugin_spec.http import ApiProfile, HttpOptions, JsonApi
from plugin_spec.ratelimit import Rate
from plugin_spec.sandbox import Reply
from plugin_spec.sandbox.api import ApiSandbox, Request

KEY = "plans-key-00000001"
PROFILE = ApiProfile(name="Plans", check_url="Check the URL.", key_name="key", auth_hint="Check the key.")


class Plans(ApiSandbox):
    routes = [("GET", "/slow", "slow"), ("GET", "/fast", "fast")]
    operation_limits = {"slow": (2.0, 2), "fast": (50.0, 10)}

    def slow(self, request: Request) -> Reply:
        return Reply(200, {"ok": True})

    fast = slow


def _get(sandbox: Plans, path: str) -> requests.Response:
    return requests.get(sandbox.base_url + path, headers={"x-api-key": KEY}, timeout=5)


def test_a_route_lets_its_burst_through_then_refuses_until_its_bucket_refills() -> None:
    with Plans(api_key=KEY) as sandbox:
        assert [_get(sandbox, "/slow").status_code for _ in range(3)] == [200, 200, 200]  # not enforced yet
        sandbox.set_faults(operation_limits=True)
        statuses = [_get(sandbox, "/slow").status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        refused = _get(sandbox, "/slow")
        assert refused.status_code == 429 and refused.json()["error"]["code"] == "quota_exceeded"
        assert _get(sandbox, "/fast").status_code == 200  # another operation, another bucket
        time.sleep(0.55)  # one token at 2 per second
        assert _get(sandbox, "/slow").status_code == 200
        sandbox.set_faults(rate_time_scale=100)  # refills 100 times faster: 200 per second
        time.sleep(0.02)
        assert _get(sandbox, "/slow").status_code == 200
        assert sandbox.clear_faults()["operation_limits"] is False


def test_a_client_that_declares_the_plan_never_meets_a_429() -> None:
    with Plans(api_key=KEY) as sandbox:
        # "slow" at 4 per second, burst 2: a 250 ms interval, so that a request held up on the way
        # by a loaded machine (the channel counts arrivals) does not close the gap to the next one;
        # at 20 per second a 50 ms stall in the sandbox's thread was enough for a 429 in CI
        sandbox.set_faults(operation_limits=True, rate_time_scale=2)
        api = JsonApi(sandbox.base_url, PROFILE, HttpOptions(retries=0), headers={"x-api-key": KEY},
                      limit_key=KEY + "-plans", rate_limits={"slow": Rate(4, 2)})  # fmt: skip
        with api:
            for _ in range(8):
                api.request("GET", "/slow", operation="slow")
        assert [r["status"] for r in sandbox.request_log()] == [200] * 8
