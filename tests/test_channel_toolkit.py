"""The channel toolkit in plugin_spec, on a real ApiSandbox over HTTP: deadlines, size caps,
error classification, paging that stays home and makes progress, wire readers, per-shipment
results and the rate limit shared through SQLite."""

from __future__ import annotations

import gzip
import multiprocessing
import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from support import assert_window_held, record_grants

from plugin_spec import AuthError, BadData, BadOrder, ChannelOrder, RateLimited, Shipment, TransientError
from plugin_spec.http import ApiProfile, HttpOptions, JsonApi, Rejected, origin
from plugin_spec.ratelimit import SharedRateLimiter
from plugin_spec.sandbox import Reply
from plugin_spec.sandbox.api import ApiSandbox, Request, error
from plugin_spec.wire import MappingError, money, order_or_bad, safe_segment, send_or_reconcile, timestamp, upload_each

KEY = "toolkit-key-0a1b2c3d"
FAST = HttpOptions(connect_timeout=0.5, read_timeout=0.5, deadline=1.5, retries=1, backoff_factor=0.01,
                   backoff_jitter=0.0, backoff_max=0.02, retry_after_max=1, max_body=64 * 1024)  # fmt: skip
PROFILE = ApiProfile(name="Toy", check_url="Check the URL.", key_name="API key", auth_hint="Check the key.",
                     error_code=lambda body: body.get("error", {}).get("code"))  # fmt: skip


class Toy(ApiSandbox):
    prefix = "/api"
    routes = [("GET", "/items", "items"), ("POST", "/items/{id}", "refuse"), ("GET", "/gzip/{size}", "gzipped"),
              ("GET", "/traced", "traced"), ("GET", "/firewall", "firewall")]  # fmt: skip

    def traced(self, request: Request) -> Reply:
        return Reply(400, {"error": {"code": "invalid", "message": "page must be a number"}, "requestId": "req-42"})

    def firewall(self, request: Request) -> Reply:
        return Reply(
            403,
            raw=b"<html>Attention Required! | Cloudflare</html>",
            headers={"Content-Type": "text/html; charset=UTF-8", "cf-ray": "931354450813d142-CDG"},
        )

    def items(self, request: Request) -> Reply:
        rows = [{"id": str(i), "n": i} for i in range(7)]
        return self.page(request, rows, key=lambda r: (r["n"],), default_size=3)

    def gzipped(self, request: Request) -> Reply:
        body = b'{"pad": "' + b" " * int(request.params["size"]) + b'"}'
        return Reply(200, raw=gzip.compress(body), headers={"Content-Encoding": "gzip"})

    def refuse(self, request: Request) -> Reply:
        return error(409, "already_recorded", "Already recorded for this item, nothing to do.")


@pytest.fixture
def toy():
    with Toy(api_key=KEY) as server:
        yield server


def client(toy: Toy, options: HttpOptions = FAST, key: str = KEY) -> JsonApi:
    return JsonApi(toy.base_url, PROFILE, options, headers={"x-api-key": key}, limit_key=key)


def test_pages_are_followed_to_the_end_and_the_sandbox_lists_its_endpoints(toy):
    with client(toy) as api:
        assert [item["id"] for page in api.pages("/items", {}) for item in page] == [str(i) for i in range(7)]
        assert api.request("GET", toy.control_url + "/")["api"][:2] == ["GET /api/items", "POST /api/items/{id}"]


def test_a_looping_next_link_is_stopped_after_one_page_without_progress(toy):
    toy.set_faults(next_loop=True)
    with client(toy) as api, pytest.raises(BadData, match="no new orders"):
        list(api.pages("/items", {}))
    assert len(toy.request_log()) == 2


def test_origins_are_compared_normalised():
    assert origin("HTTP://Example.COM:80/a") == origin("http://example.com/b")
    assert origin("https://example.com:443") == origin("https://EXAMPLE.com")
    assert origin("https://example.com:8443") != origin("https://example.com")
    assert origin("http://example.com") != origin("https://example.com")


def test_a_compressed_answer_is_read_and_the_cap_counts_its_decompressed_size(toy):
    with client(toy) as api:
        assert len(api.request("GET", "/gzip/1000")["pad"]) == 1000
        with pytest.raises(BadData, match="refusing to read it"):
            api.request("GET", f"/gzip/{10 * 1024 * 1024}")  # 10 MB of spaces, about 10 kB on the wire


def test_a_trickling_answer_fails_at_the_deadline_not_at_the_end_of_the_body(toy):
    toy.set_faults(trickle=True, trickle_seconds=0.2)
    started = time.monotonic()
    with client(toy) as api, pytest.raises(TransientError, match="did not finish within 1.5 s"):
        api.request("GET", "/items")
    assert time.monotonic() - started < 3.0


@pytest.mark.parametrize("fault", ["huge_body", "endless_body"])
def test_an_answer_over_the_size_cap_is_refused(toy, fault):
    toy.set_faults(**{fault: True})
    with client(toy) as api, pytest.raises(BadData, match="more than 0.0625 MB; refusing to read it"):
        api.request("GET", "/items")


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("rate_limited", RateLimited),
        ("server_error", TransientError),
        ("timeout", TransientError),
        ("cut_off_body", TransientError),
    ],
)
def test_passing_trouble_is_retryable(toy, fault, kind):
    toy.inject(fault)
    with client(toy) as api, pytest.raises(kind) as info:
        api.request("GET", "/items")
    assert info.value.retryable and KEY not in str(info.value)


def test_a_refusal_is_rejected_but_the_same_refusal_cut_in_half_is_transient(toy):
    with client(toy) as api:
        with pytest.raises(Rejected) as info:
            api.request("POST", "/items/1", json={})
        assert info.value.status == 409 and info.value.code == "already_recorded"
        toy.set_faults(cut_error_body=1)
        with pytest.raises(TransientError, match="cut off or unreadable"):
            api.request("POST", "/items/1", json={})


def test_staff_see_the_channel_message_and_request_id_of_an_error_and_the_ray_of_a_firewall_page(toy):
    with client(toy) as api:
        with pytest.raises(Rejected) as info:
            api.request("GET", "/traced")
        assert info.value.request_id == "req-42" and info.value.code == "invalid"
        assert "(request id req-42)" in str(info.value)
        with pytest.raises(AuthError) as blocked:
            api.request("GET", "/firewall")
        assert "931354450813d142-CDG" in str(blocked.value) and "firewall" in str(blocked.value)


def test_a_change_whose_answer_was_lost_is_reconciled_by_reading_it_back(toy):
    with client(toy) as api:

        def send():
            return api.request("POST", "/items/1", json={})  # refused: the first attempt had landed

        assert send_or_reconcile(send, lambda: "already there") == "already there"
        with pytest.raises(Rejected):
            send_or_reconcile(send, lambda: None)  # not on the channel: the refusal stands
        with client(toy, key="wrong-key-99999999") as wrong, pytest.raises(AuthError):
            send_or_reconcile(lambda: wrong.request("GET", "/items"), lambda: "never asked")


def test_a_wrong_key_is_an_auth_error_without_the_key(toy):
    with client(toy, key="wrong-key-99999999") as api, pytest.raises(AuthError) as info:
        api.request("GET", "/items")
    assert "wrong-key" not in str(info.value)


def test_money_and_timestamps_are_read_strictly():
    assert money("12.30", "total") == Decimal("12.30")
    for junk in (12.3, 12, "1.299,00", "1e3", True, None):
        with pytest.raises(MappingError, match="total"):
            money(junk, "total")
    assert timestamp("2026-01-02T03:04:05+01:00", "at") == datetime(2026, 1, 2, 2, 4, 5, tzinfo=UTC)
    for junk in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "9999-12-31T00:00:00Z",
                 "0999-01-01T00:00:00Z", "2026-01-02T03:04:05", 1700000000):  # fmt: skip
        with pytest.raises(MappingError, match="at"):
            timestamp(junk, "at")


def test_any_error_mapping_one_order_makes_it_a_bad_order_with_its_id():
    def mapper(raw: dict) -> ChannelOrder:
        raise RuntimeError("a bug in the mapper")

    bad = order_or_bad({"id": "A-1", "updated_at": "2026-01-02T03:04:05Z"}, mapper, id_field="id",
                       updated_field="updated_at", channel="Toy")  # fmt: skip
    assert isinstance(bad, BadOrder) and bad.source_order_id == "A-1" and "RuntimeError" in bad.message
    dots = order_or_bad({"id": ".."}, mapper, id_field="id", updated_field="updated_at", channel="Toy")
    assert isinstance(dots, BadOrder) and dots.source_order_id is None


def test_ids_never_change_the_path():
    assert safe_segment("A 1?x#y") == "A%201%3Fx%23y"
    for hostile in (".", "..", "a/b", "a\\b", "a\x00b", ""):
        with pytest.raises(BadData):
            safe_segment(hostile)


def test_one_failing_shipment_never_sinks_the_others():
    shipments = [Shipment(shipment_id=i, source_order_id=f"O-{i}", carrier="UPS", tracking_number=f"T{i}",
                          shipped_at=datetime.now(UTC), lines=[]) for i in (1, 2, 3)]  # fmt: skip

    def send(shipment: Shipment):
        if shipment.shipment_id == 2:
            raise KeyError("surprise")
        from plugin_spec import UploadResult

        return UploadResult(shipment_id=shipment.shipment_id, ok=True)

    results = upload_each(shipments, send, label="Toy")
    assert [(r.shipment_id, r.ok, r.retryable) for r in results] == [
        (1, True, False),
        (2, False, True),
        (3, True, False),
    ]


def _hammer(path: str, grants) -> None:
    limiter = record_grants(SharedRateLimiter(path, "one-key", limit=5, window=0.5), grants)
    for _ in range(6):
        limiter.acquire()


def test_two_processes_share_one_window_through_the_limiter_file(tmp_path):
    path = str(tmp_path / "limits.db")
    with multiprocessing.Manager() as manager:
        shared = manager.list()
        procs = [multiprocessing.Process(target=_hammer, args=(path, shared)) for _ in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(30)
        grants = list(shared)
    assert len(grants) == 12
    assert_window_held(grants, limit=5, window=0.5)  # any 6 of the 12 span more than a window


def test_an_id_that_turns_the_text_direction_around_is_a_bad_order_not_a_reversed_heading():
    from datetime import UTC

    from plugin_spec import OrderLine

    def mapper(raw: dict) -> ChannelOrder:
        at = datetime(2026, 12, 1, tzinfo=UTC)
        line = OrderLine(source_line_id="1", sku="S", title="X", quantity=1, unit_price="10")
        return ChannelOrder(source_order_id=raw["id"], created_at=at, updated_at=at, currency="EUR",
                            subtotal="10", tax_total="0", grand_total="10", lines=[line])  # fmt: skip

    plain = order_or_bad({"id": "BMP-1001"}, mapper, id_field="id", updated_field="updated_at", channel="Toy")
    assert isinstance(plain, ChannelOrder)
    for turning in ("\u202e", "\u202b", "\u2067", "\u200f", "\u061c"):
        bad = order_or_bad({"id": f"BMP-{turning}1001"}, mapper, id_field="id", updated_field="updated_at",
                           channel="Toy")  # fmt: skip
        assert isinstance(bad, BadOrder) and "text-direction" in bad.message, repr(turning)
